#!/usr/bin/env bash
# The main job, end to end on this machine: start the SPP sandbox, run the weekly follow-up example DAG
# against it with `airflow dags test`, then show the created message ID and what the sandbox stored.
# Another Airflow line in its own venv: AIRFLOW_VERSION=3.1.8 VENV=.venv-3.1 bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export VENV
bash scripts/setup.sh
VENV=$(cd "$VENV" && pwd)

PORT=${SPP_SANDBOX_PORT:-8765}
TOKEN="demo-sandbox-token"   # the sandbox's own fake token, not an SPP credential
URL="http://127.0.0.1:${PORT}"
WORK=$(mktemp -d -t spp-demo-XXXXXX)
export AIRFLOW_HOME="$WORK/airflow-home"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/example_dags"
export AIRFLOW__LOGGING__LOGGING_LEVEL=INFO
export AIRFLOW_CONN_SPP_DEFAULT="{\"conn_type\": \"spp\", \"host\": \"${URL}\", \"password\": \"${TOKEN}\"}"
export PATH="$VENV/bin:$PATH"

echo "==> Starting the SPP sandbox on ${URL}"
spp-sandbox --port "$PORT" --token "$TOKEN" >"$WORK/sandbox.log" 2>&1 &
SANDBOX_PID=$!
trap 'kill $SANDBOX_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do
  python -c "import urllib.request,sys; urllib.request.urlopen('${URL}/_sandbox/health', timeout=1)" 2>/dev/null && break
  kill -0 "$SANDBOX_PID" 2>/dev/null || { cat "$WORK/sandbox.log"; exit 1; }
  sleep 0.1
done

echo "==> Preparing a throw-away Airflow home in ${AIRFLOW_HOME}"
airflow db migrate >"$WORK/db.log" 2>&1 || { cat "$WORK/db.log"; exit 1; }

echo "==> airflow dags test spp_order_followup"
airflow dags test spp_order_followup 2>&1 | tee "$WORK/dag.log" | grep -E "Message [0-9]+ is on SPP order|SPP message ID|DagRun Finished" | sed -E "s/^[0-9TZ:.-]+ \[[a-z ]+\] //; s/ \[airflow[^]]*\].*//; s/, logical_date.*state=(\w+).*/ state=\1/" || true
grep -q "DagRun Finished.*state=success\|dag_run state: success" "$WORK/dag.log" || { echo "The DAG run did not succeed; full log:"; cat "$WORK/dag.log"; exit 1; }

echo "==> What the sandbox stored"
python - "$URL" <<'PY'
import json, sys, urllib.request
url = sys.argv[1]
messages = json.load(urllib.request.urlopen(f"{url}/_sandbox/messages"))
for m in messages if isinstance(messages, list) else messages.get("data", messages.get("messages", [])):
    print(json.dumps(m, indent=2, default=str)[:3000])
PY
