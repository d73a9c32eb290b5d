#!/usr/bin/env bash
# Create a venv (if missing) and install the provider with its test tools for one Airflow line, pinned by
# the project's own constraints/airflow-${AIRFLOW_VERSION}.txt (see scripts/constraints.py).
#   AIRFLOW_VERSION  3.3.2 (default), 3.1.8 or 3.4.0b2: the lines with a constraints file
#   VENV             where the venv lives (default .venv), e.g. VENV=.venv-3.1 to keep several side by side
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
AIRFLOW_VERSION=${AIRFLOW_VERSION:-3.3.2}
VENV=${VENV:-.venv}
CONSTRAINTS="constraints/airflow-${AIRFLOW_VERSION}.txt"

if [ ! -f "$CONSTRAINTS" ]; then
  echo "No $CONSTRAINTS: supported Airflow versions are $(ls constraints | sed -E 's/airflow-(.*)\.txt/\1/' | tr '\n' ' ')" >&2
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -x "$VENV/bin/uv" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check uv 2>&1 | grep -v "is ignored" || true
fi
if [ -x "$VENV/bin/uv" ]; then
  "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" -e ".[dev]" "apache-airflow==${AIRFLOW_VERSION}" -c "$CONSTRAINTS"
else
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]" "apache-airflow==${AIRFLOW_VERSION}" -c "$CONSTRAINTS"
fi
