#!/usr/bin/env bash
# Set up (idempotent), lint, type-check, then run the whole test suite: unit, sandbox integration, DAG tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check airflow_provider_spp tests example_dags scripts benchmarks
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
