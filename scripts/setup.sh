#!/usr/bin/env bash
# Create .venv (if missing) and install the provider with its test tools, from this project's own files.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
AIRFLOW_VERSION=${AIRFLOW_VERSION:-3.3.2}

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check uv 2>&1 | grep -v "is ignored" || true
fi
if [ -x .venv/bin/uv ]; then
  .venv/bin/uv pip install --quiet --python .venv/bin/python -e ".[dev]" "apache-airflow==${AIRFLOW_VERSION}"
else
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]" "apache-airflow==${AIRFLOW_VERSION}"
fi
