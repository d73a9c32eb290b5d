#!/usr/bin/env bash
# Set up (idempotent), lint, type-check, then run the whole test suite: unit, sandbox integration, DAG tests.
# Another Airflow line in its own venv: AIRFLOW_VERSION=3.1.8 VENV=.venv-3.1 bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export VENV
bash scripts/setup.sh
"$VENV/bin/ruff" check airflow_provider_spp tests example_dags scripts benchmarks docs
"$VENV/bin/mypy"
exec "$VENV/bin/python" -m pytest "$@"
