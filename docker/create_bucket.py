"""One-shot: create the Shears bucket on the S3 server (idempotent), optionally with versioning. Used by the
`s3-init` service of docker/compose.yaml; stdlib + boto3 only.

Environment: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (the S3 server's credentials),
SHEARS_BUCKET, SHEARS_BUCKET_VERSIONING (true/false, default true: champion.json keeps its history),
S3_INIT_TIMEOUT (seconds to wait for the server, default 120).

Exit codes: 0 bucket ready, 1 server unreachable or refused the credentials, 2 bad usage.
"""

from __future__ import annotations

import os
import sys
import time


def main() -> int:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    bucket = os.environ.get("SHEARS_BUCKET", "")
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if not bucket or not endpoint:
        print("create_bucket: set SHEARS_BUCKET and AWS_ENDPOINT_URL", file=sys.stderr)
        return 2
    versioning = os.environ.get("SHEARS_BUCKET_VERSIONING", "true").strip().lower() in ("1", "true", "yes")
    timeout = float(os.environ.get("S3_INIT_TIMEOUT", "120"))
    client = boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        config=Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=3, read_timeout=10,
                      s3={"addressing_style": "path"}),
    )
    deadline = time.monotonic() + timeout
    while True:  # bounded by the deadline
        try:
            names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
            break
        except ClientError as exc:  # the server answered: wrong credentials are not worth waiting for
            print(f"create_bucket: {endpoint} refused: {exc.response.get('Error', {}).get('Code')}", file=sys.stderr)
            return 1
        except BotoCoreError as exc:
            if time.monotonic() > deadline:
                print(f"create_bucket: {endpoint} unreachable after {timeout:.0f} s: {exc}", file=sys.stderr)
                return 1
            time.sleep(1)
    try:
        if bucket in names:
            print(f"create_bucket: s3://{bucket} exists")
        else:
            client.create_bucket(Bucket=bucket)
            print(f"create_bucket: created s3://{bucket}")
        if versioning:
            client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            print(f"create_bucket: versioning enabled on s3://{bucket}")
    except (ClientError, BotoCoreError) as exc:
        print(f"create_bucket: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
