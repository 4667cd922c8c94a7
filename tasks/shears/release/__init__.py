"""What was published, and is it intact: manifest, publish (files then manifest), champion, verify, audit.

Nothing here imports TensorFlow: audits, promotions and rollbacks run anywhere boto3 does.
"""
