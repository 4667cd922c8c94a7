"""Pure stages: arrays and models in, typed results out. No store, no paths, no Airflow.

    data      parse NPZ/CSV/Parquet (or the bundled digits) and split
    checks    data validation with Great Expectations
    schedule  the pruning schedule, derived from the data before training
    baseline  train (or check a pre-trained) baseline
    prune     pruning fine-tune of a clone (tfmot)
    strip     strip wrappers, verify achieved sparsity
    convert   TFLite variants
    measure   raw/gzipped bytes, accuracy, latency
    gates     verdicts (threshold, observed, passed, reason); callers decide to raise
"""
