"""Shears: the Airflow-free library. One module per pipeline stage, pure typed functions."""

__version__ = "0.1.0"
