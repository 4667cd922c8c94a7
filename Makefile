# The README's two commands are `make run` and `make test`; both create .venv if missing.
SHELL := /bin/bash
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: setup run test test-fast lint bench-fashion bench-dag bench-search bench-workers bench-keras3 bench-tasks bench-kinds bench-intake figures
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

bench-search: setup  ## the search on full Fashion-MNIST, seeds 0 1 2, beside the tutorial recipe (~45 min; needs dataset-fashion-mnist)
	.venv/bin/python bench/search_fashion.py --target size --seeds 0 1 2

bench-workers: setup  ## the search's trial phase through the DAG on Celery: one TF worker vs two (~10 min)
	.venv/bin/python bench/dag_workers.py

bench-keras3: setup  ## the Keras 3 models of the tests, end to end (~4 min)
	.venv/bin/python bench/keras3_models.py

bench-tasks: setup  ## regression (Friedman #1) and binary (breast cancer, Keras 3 sigmoid) through the default search (~6 min)
	.venv/bin/python bench/tasks.py --seeds 0 1

bench-kinds: setup  ## every prunable layer kind (Keras 3 and tf_keras) and the Embedding+LSTM text case (~6 min)
	.venv/bin/python bench/layer_kinds.py

bench-intake: setup  ## every model-intake attack, and what Shears does with it (~1 min)
	.venv/bin/python bench/intake_attacks.py

# Every table in README.md, regenerated at HEAD, in README order (~50 min on 2 cores; the Fashion-MNIST ones need
# `apt-get install dataset-fashion-mnist`). Nothing else should run meanwhile: the timings are wall times.
figures: setup  ## regenerate every README figure (the output of each command is the table the README quotes)
	@echo "== README first screen: make run (default run, artifact table)" && d=$$(mktemp -d) && \
	  cd $$d && /usr/bin/time -f "wall %e s" $(CURDIR)/.venv/bin/shears run --run-id figures; rm -rf $$d
	@echo "== Keras 3 models" && $(MAKE) -s bench-keras3
	@echo "== regression and binary models" && $(MAKE) -s bench-tasks
	@echo "== layer kinds and the text model" && $(MAKE) -s bench-kinds
	@echo "== what a model file can do" && $(MAKE) -s bench-intake
	@echo "== Fashion-MNIST, tutorial settings" && $(MAKE) -s bench-fashion
	@echo "== the search on Fashion-MNIST" && $(MAKE) -s bench-search
	@echo "== the trial phase on Celery" && $(MAKE) -s bench-workers
	@echo "== what Airflow costs" && .venv/bin/python bench/dag_vs_cli.py && \
	  .venv/bin/python bench/dag_vs_cli.py --config bench/fashion_mnist.yaml --repeat 3
