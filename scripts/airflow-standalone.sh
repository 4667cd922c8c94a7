#!/usr/bin/env bash
# Run the Shears pipeline in a local Airflow 3 (`airflow standalone`: API server + UI, scheduler,
# DAG processor, triggerer; SQLite; LocalExecutor), bound to 127.0.0.1 only.
#
#   scripts/airflow-standalone.sh            # UI/API on http://127.0.0.1:8080 ; stop with Ctrl-C
#   PORT=8090 scripts/airflow-standalone.sh  # another port
#
# State (SQLite DB, logs, admin password) lives in $AIRFLOW_HOME (default: <repo>/.airflow, which
# ignores itself in git); artifacts in $SHEARS_STORE (default: $AIRFLOW_HOME/shears-store); the data
# asset is $SHEARS_DATA_URI (default: file://$AIRFLOW_HOME/shears-incoming/data.npz).
# Started in the background (`... &`), stop it with `kill -INT <pid>`: SIGINT lets Airflow stop its
# children, SIGTERM to the parent orphans them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
if [[ ! -x "$VENV/bin/airflow" ]]; then
    echo "error: $VENV/bin/airflow not found: install the project with its airflow extra first" >&2
    echo "       (python -m venv .venv && .venv/bin/pip install -e '.[airflow,dev]')" >&2
    exit 2
fi

export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/.airflow}"
mkdir -p "$AIRFLOW_HOME"
if [[ "$AIRFLOW_HOME" == "$ROOT/"* && ! -e "$AIRFLOW_HOME/.gitignore" ]]; then
    echo '*' > "$AIRFLOW_HOME/.gitignore"   # a state directory inside the repo ignores itself
fi

export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"   # default 32 means ~44 processes, GBs
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False   # local use: asset events and cron act at once
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="${PORT:-8080}"
export AIRFLOW__API__BASE_URL="http://127.0.0.1:${AIRFLOW__API__PORT}"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:${AIRFLOW__API__PORT}/execution/"
export TF_USE_LEGACY_KERAS=1            # tfmot needs Keras 2 (tf_keras); must be set before TF loads
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export SHEARS_STORE="${SHEARS_STORE:-$AIRFLOW_HOME/shears-store}"
export SHEARS_DATA_URI="${SHEARS_DATA_URI:-file://$AIRFLOW_HOME/shears-incoming/data.npz}"
export PATH="$VENV/bin:$PATH"

echo "AIRFLOW_HOME=$AIRFLOW_HOME"
echo "SHEARS_STORE=$SHEARS_STORE"
echo "SHEARS_DATA_URI=$SHEARS_DATA_URI"
echo "UI/API: http://127.0.0.1:${AIRFLOW__API__PORT}  (user admin; password in" \
     "$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated)"

# A non-interactive shell starts background jobs with SIGINT ignored, and an ignored signal stays
# ignored across exec; restore the default so `kill -INT` (and Ctrl-C) reaches Airflow.
exec "$VENV/bin/python" -c '
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])
' "$VENV/bin/airflow" standalone
