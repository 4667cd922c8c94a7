"""One run, the same in the CLI and in Airflow: its context, its steps (STEPS) and its lifecycle."""
