# The README's two commands are `make run` and `make test`; both create .venv if missing.
SHELL := /bin/bash
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: setup run test test-fast lint bench-fashion bench-dag bench-search bench-workers
setup:
	@scripts/setup.sh

run: setup  ## default pipeline: bundled digits, embedded config, local store ./artifacts
	.venv/bin/shears run

test: setup  ## the whole suite: everything but the Celery integration in 2 processes, then the integration alone
	.venv/bin/python -m pytest -n 2 --dist loadgroup -m "not integration"
	.venv/bin/python -m pytest -m integration

test-fast: setup  ## everything that needs no TensorFlow training, S3 server, Airflow or browser (< 1 min)
	.venv/bin/python -m pytest -m "not tf and not s3 and not airflow and not integration and not browser" -q

lint: setup
	.venv/bin/ruff check tasks dags plugins tests bench docker
	.venv/bin/mypy
	.venv/bin/lint-imports

bench-fashion: setup  ## Fashion-MNIST with the TF tutorial's settings (needs Debian package dataset-fashion-mnist)
	.venv/bin/python bench/fashion_mnist.py

bench-dag: setup
	.venv/bin/python bench/dag_vs_cli.py

bench-search: setup  ## the search alone on full Fashion-MNIST, two seeds (~20 min; needs dataset-fashion-mnist)
	.venv/bin/python bench/search_fashion.py --target size --seeds 0 1

bench-workers: setup  ## the search's trial phase through the DAG on Celery: one TF worker vs two (~10 min)
	.venv/bin/python bench/dag_workers.py
