#!/usr/bin/env bash
# worker_kill_check.sh: in a REAL Airflow deployment (`airflow standalone`: scheduler + LocalExecutor workers,
# dag-processor, api-server, triggerer on SQLite), kill the first try of CreateOrderMessageOperator tasks
# around their POST and check that the retries leave exactly one message per task in the SPP sandbox.
#
# Variants (each on its own sandbox order, WKC_TASKS tasks each; pick with WKC_VARIANTS=a,b,...):
#   after_execute  try 1 runs execute() to the end (201, message ID in the ledger), then SIGKILLs itself
#   after_post     try 1 gets the 201, then SIGKILLs itself before the message ID reaches the ledger
#   in_flight      the sandbox holds the POST's answer for 5 s (fault `slow`, message already stored);
#                  a timer thread SIGKILLs try 1 0.3 s after the POST went out
#   in_flight_commit  the same, but the sandbox stores the message only 5 s after the POST arrived
#                  (fault `slow_commit`; skipped when this sandbox version lacks it)
#   worker         like after_execute, but the LocalExecutor worker (the task's supervisor) is SIGKILLed
#                  too, so only the scheduler's heartbeat timeout notices (a real "zombie")
#
#   bash scripts/worker_kill_check.sh            # env: WKC_TASKS=5 WKC_TIME_LIMIT=360 WKC_PARALLELISM=4
#                                                #      WKC_KEEP=1 keeps the temp dir (logs) for a look
#   WKC_DEDUPLICATE=0 bash scripts/worker_kill_check.sh   # negative control: must report duplicates, exit 1
# Exit 0 only if every task succeeded with 0 duplicates and 0 lost messages. Only 127.0.0.1 traffic.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TASKS=${WKC_TASKS:-5}
VARIANTS=${WKC_VARIANTS:-after_execute,after_post,in_flight,in_flight_commit,worker}
TIME_LIMIT=${WKC_TIME_LIMIT:-360}   # seconds until the script gives up (start-up included; clean-up adds <= ~30 s)
PARALLELISM=${WKC_PARALLELISM:-4}
KEEP=${WKC_KEEP:-0}
DEDUPLICATE=${WKC_DEDUPLICATE:-1}
STARTED=$(date +%s)
DEADLINE=$((STARTED + TIME_LIMIT))

export PATH="$ROOT/.venv/bin:$PATH"   # `airflow standalone` spawns `airflow` from PATH
PY="$ROOT/.venv/bin/python"
WORK=$(mktemp -d -t spp-worker-kill-XXXXXX)
SANDBOX_PGID=""
AIRFLOW_PGID=""

log() { printf '==> [%3ss] %s\n' "$(($(date +%s) - STARTED))" "$*"; }

# Stop a process group we started (by its id): TERM, up to 15 s grace, then KILL.
# shellcheck disable=SC2317  # reached through the EXIT trap
stop_group() {
  local pgid=$1 _
  [[ -n "$pgid" ]] || return 0
  kill -TERM -- "-$pgid" 2>/dev/null || return 0
  for _ in $(seq 1 30); do
    kill -0 -- "-$pgid" 2>/dev/null || return 0
    sleep 0.5
  done
  kill -KILL -- "-$pgid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_group "$AIRFLOW_PGID"
  stop_group "$SANDBOX_PGID"
  if [[ "$KEEP" == 1 ]]; then
    echo "Kept $WORK (AIRFLOW_HOME=$WORK/airflow-home)"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

SANDBOX_PORT=$(free_port)
API_PORT=$(free_port)
while [[ "$API_PORT" == "$SANDBOX_PORT" ]]; do API_PORT=$(free_port); done
SANDBOX_URL="http://127.0.0.1:${SANDBOX_PORT}"
API_URL="http://127.0.0.1:${API_PORT}"
mkdir -p "$WORK/dags" "$WORK/kills"

# ---- 1. the SPP sandbox (fake token via the environment, so it is not in `ps`) ----------------------
log "Starting spp-sandbox on $SANDBOX_URL"
SPP_SANDBOX_TOKEN="worker-kill-fake-token" setsid spp-sandbox --port "$SANDBOX_PORT" >"$WORK/sandbox.log" 2>&1 &
SANDBOX_PGID=$!
until curl -fsS "$SANDBOX_URL/_sandbox/health" >/dev/null 2>&1; do
  kill -0 "$SANDBOX_PGID" 2>/dev/null || { echo "spp-sandbox died:"; cat "$WORK/sandbox.log"; exit 1; }
  (($(date +%s) < DEADLINE)) || { echo "spp-sandbox did not start"; exit 1; }
  sleep 0.2
done
# in_flight: every POST to order B7C3D2A1 is stored at once, but answered only after 5 s.
curl -fsS -X POST "$SANDBOX_URL/_sandbox/faults" -H 'Content-Type: application/json' \
  -d '{"faults": [{"kind": "slow", "times": null, "method": "POST",
                   "path_prefix": "/api/order_messages/B7C3D2A1", "delay": 5}]}' >/dev/null
# in_flight_commit: every POST to order 1002 (the same order, by ID) is stored only after 5 s.
if [[ ",$VARIANTS," == *,in_flight_commit,* ]] &&
  ! curl -fsS -X POST "$SANDBOX_URL/_sandbox/faults" -H 'Content-Type: application/json' \
    -d '{"faults": [{"kind": "slow_commit", "times": null, "method": "POST",
                     "path_prefix": "/api/order_messages/1002", "delay": 5}]}' >/dev/null 2>&1; then
  log "This sandbox has no slow_commit fault; skipping the in_flight_commit variant"
  VARIANTS=$(echo ",$VARIANTS," | sed 's/,in_flight_commit,/,/; s/^,//; s/,$//')
fi

# ---- 2. the DAG: one operator subclass per variant, killed on try 1 -------------------------------
TAG="wkc-$(date +%Y%m%dT%H%M%S)-$$"
{
  printf 'TASKS = %d\nVARIANTS = %s\nTAG = %s\nKILLS_DIR = %s\nDEDUPLICATE = %s\n' \
    "$TASKS" "$("$PY" -c 'import sys; print(sys.argv[1].split(","))' "$VARIANTS")" "'$TAG'" "'$WORK/kills'" \
    "$([[ "$DEDUPLICATE" == 0 ]] && echo False || echo True)"
  cat <<'DAG'
"""worker_kill_check: CreateOrderMessageOperator tasks whose first try is SIGKILLed around the POST."""

import json
import os
import signal
import threading
import time
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator

ORDERS = {
    "after_execute": "E4A269FC",
    "after_post": "9F8E7D6C",
    "in_flight": "B7C3D2A1",
    "in_flight_commit": "1002",  # order B7C3D2A1 again, by ID: a separate fault path
    "worker": "00C0FFEE",
}
#: The variant whose try 1 runs in this task process (one task per process), else None.
_DOOMED = None


def _note_kill(variant, **extra):
    """Leave proof of the kill outside Airflow (the task's own last log lines may never be shipped)."""
    task_id = extra.pop("task_id")
    with open(os.path.join(KILLS_DIR, f"{task_id}.json"), "w") as fh:
        json.dump({"variant": variant, "time": time.time(), "pid": os.getpid(), **extra}, fh)
        fh.flush()
        os.fsync(fh.fileno())


_create_order_message = SppHook.create_order_message


def _create_or_die(self, *args, **kwargs):
    """SppHook.create_order_message (the POST), with try 1 of the POST-time variants killed around it."""
    if _DOOMED is None or _DOOMED[0] not in ("after_post", "in_flight", "in_flight_commit"):
        return _create_order_message(self, *args, **kwargs)
    variant, task_id = _DOOMED
    if variant == "after_post":  # 201 in hand; the operator never gets to record the message ID
        created = _create_order_message(self, *args, **kwargs)
        _note_kill(variant, task_id=task_id, message_id=created.id)
        os.kill(os.getpid(), signal.SIGKILL)
    answered = threading.Event()  # in_flight*: die 0.3 s into the POST, while the sandbox holds it

    def kill():
        _note_kill(variant, task_id=task_id, answer_already_in=answered.is_set())
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Timer(0.3, kill).start()
    created = _create_order_message(self, *args, **kwargs)
    answered.set()
    time.sleep(60)  # the timer kills us first
    return created


SppHook.create_order_message = _create_or_die


class KilledOnFirstTry(CreateOrderMessageOperator):
    """The real operator; on try 1 the process dies at the point chosen by ``variant``."""

    def __init__(self, *, variant, **kwargs):
        super().__init__(**kwargs)
        self.variant = variant

    def execute(self, context):
        global _DOOMED
        first_try = context["ti"].try_number == 1
        _DOOMED = (self.variant, self.task_id) if first_try else None
        message_id = super().execute(context)
        if first_try and self.variant in ("after_execute", "worker"):  # ID recorded, return value not
            _note_kill(self.variant, task_id=self.task_id, message_id=message_id)
            if self.variant == "worker":
                os.kill(os.getppid(), signal.SIGKILL)  # the LocalExecutor worker supervising this task
            os.kill(os.getpid(), signal.SIGKILL)
        return message_id


with DAG(
    "spp_worker_kill_check",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=16,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=3)},
    tags=["spp", "check"],
):
    for variant in VARIANTS:
        for i in range(TASKS):
            KilledOnFirstTry(
                task_id=f"{variant}_{i}",
                variant=variant,
                order=ORDERS[variant],
                message=f"{TAG} {variant} message {i}",
                deduplicate=DEDUPLICATE,
            )
DAG
} >"$WORK/dags/spp_worker_kill_check.py"

# ---- 3. Airflow standalone in a throw-away home ---------------------------------------------------
export AIRFLOW_HOME="$WORK/airflow-home"
export AIRFLOW__CORE__DAGS_FOLDER="$WORK/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__PARALLELISM="$PARALLELISM"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="$API_URL/execution/"
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$API_PORT"
export AIRFLOW__API__BASE_URL="$API_URL"
export AIRFLOW__LOGGING__LOGGING_LEVEL=INFO
# Notice a dead worker fast: heartbeats every 3 s, a task silent for 20 s is failed (and retried).
export AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL=3
export AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC=3
export AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT=20
export AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL=3
export AIRFLOW_CONN_SPP_DEFAULT
AIRFLOW_CONN_SPP_DEFAULT=$("$PY" -c 'import json, sys
print(json.dumps({"conn_type": "spp", "host": sys.argv[1], "password": "worker-kill-fake-token",
                  "extra": {"timeout": 30, "max_retries": 3}}))' "$SANDBOX_URL")

log "Starting airflow standalone (api-server on $API_URL, parallelism $PARALLELISM); output in \$AIRFLOW_HOME/../standalone.log"
setsid airflow standalone >"$WORK/standalone.log" 2>&1 &
AIRFLOW_PGID=$!

# ---- 4. trigger, wait, count (Python, talking to the REST API and the sandbox's admin API) -----------
set +e
"$PY" - "$API_URL" "$SANDBOX_URL" "$AIRFLOW_HOME" "$WORK/kills" "$TAG" "$TASKS" "$VARIANTS" "$DEADLINE" \
  "$AIRFLOW_PGID" "$STARTED" "$WORK/standalone.log" <<'PY'
import collections, glob, json, os, re, sys, time, urllib.error, urllib.request
from datetime import datetime

api, sandbox, home, kills_dir, tag, tasks, variants, deadline, airflow_pid, started, console = sys.argv[1:]
tasks, deadline, started = int(tasks), float(deadline), float(started)
variants = variants.split(",")
DAG_ID = "spp_worker_kill_check"
ORDERS = {"after_execute": "E4A269FC", "after_post": "9F8E7D6C", "in_flight": "B7C3D2A1", "in_flight_commit": "1002",
          "worker": "00C0FFEE"}
token = None


def say(msg):
    print(f"==> [{time.time() - started:3.0f}s] {msg}", flush=True)


def call(method, url, body=None, auth=True):
    headers = {"Content-Type": "application/json"}
    if auth and token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method), timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def alive():
    try:
        os.kill(int(airflow_pid), 0)
        return True
    except OSError:
        return False


def wait_for(what, probe, step=2.0):
    while time.time() < deadline:
        if not alive():
            sys.exit(f"airflow standalone exited while waiting for {what}")
        try:
            result = probe()
            if result:
                return result
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            pass
        time.sleep(step)
    sys.exit(f"time limit reached while waiting for {what}")


def get_token():
    path = os.path.join(home, "simple_auth_manager_passwords.json.generated")
    users = json.load(open(path))  # {"admin": "<password>"}; never printed
    user, password = next(iter(users.items()))
    return call("POST", f"{api}/auth/token", {"username": user, "password": password}, auth=False)["access_token"]


wait_for("the api-server", lambda: call("GET", f"{api}/api/v2/monitor/health", auth=False))
token = wait_for("an API token", get_token)
say("api-server up; waiting for the DAG to be parsed")
wait_for("the DAG", lambda: call("GET", f"{api}/api/v2/dags/{DAG_ID}"))
run = call("POST", f"{api}/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None})
run_id = run["dag_run_id"]
t0 = time.time()
say(f"triggered run {run_id}; waiting for it to finish")
last = None
def finished():
    global last
    state = call("GET", f"{api}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
    tis = call("GET", f"{api}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=100")["task_instances"]
    summary = dict(sorted(collections.Counter(f"{ti['state']}@try{ti['try_number']}" for ti in tis).items()))
    if summary != last:
        say(f"run {state}: {summary}")
        last = summary
    return state if state in ("success", "failed") else None
run_state = wait_for("the DAG run", finished, step=3.0)
run_seconds = time.time() - t0

# ---- what Airflow recorded, per task instance and try
tries = {}
for variant in variants:
    for i in range(tasks):
        tid = f"{variant}_{i}"
        tries[tid] = call("GET", f"{api}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{tid}/tries")["task_instances"]

def ts(value):
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None

# ---- what the sandbox stored and saw
messages = call("GET", f"{sandbox}/_sandbox/messages", auth=False)
requests = call("GET", f"{sandbox}/_sandbox/requests", auth=False)
stored = collections.Counter(m["message"] for m in messages)

# ---- task logs: $AIRFLOW_HOME/logs/dag_id=.../run_id=.../task_id=.../attempt=N.log
def task_logs(tid):
    for path in glob.glob(os.path.join(home, "logs", f"dag_id={DAG_ID}", "*", f"task_id={tid}", "*.log")):
        with open(path, errors="replace") as fh:
            yield fh.read()

def log_hits(tid, needle):
    return sum(text.count(needle) for text in task_logs(tid))

def waited(tid):
    """Seconds a retry slept before looking for a lost answer's message (newer operator versions)."""
    return sum(float(s) for text in task_logs(tid) for s in re.findall(r"Giving SPP ([0-9.]+) s", text))

rows, bad = [], 0
for variant in variants:
    tids = [f"{variant}_{i}" for i in range(tasks)]
    texts = [f"{tag} {variant} message {i}" for i in range(tasks)]
    notes = {}
    for tid in tids:
        path = os.path.join(kills_dir, f"{tid}.json")
        if os.path.exists(path):
            notes[tid] = json.load(open(path))
    first = [next((t for t in tries[tid] if t["try_number"] == 1), None) for tid in tids]
    final = [max(tries[tid], key=lambda t: t["try_number"]) if tries[tid] else None for tid in tids]
    # kill -> next try started (how long Airflow needed to notice the death and retry)
    # kill -> try 1 marked failed, and kill -> try 2 started (how fast Airflow noticed the death and retried)
    to_fail, gaps = [], []
    for tid, one in zip(tids, first):
        second = next((t for t in tries[tid] if t["try_number"] == 2), None)
        if tid in notes and one and one.get("end_date"):
            to_fail.append(ts(one["end_date"]) - notes[tid]["time"])
        if tid in notes and second and second.get("start_date"):
            gaps.append(ts(second["start_date"]) - notes[tid]["time"])
    order_path = f"/api/order_messages/{ORDERS[variant]}"
    dup = sum(max(0, stored[t] - 1) for t in texts)
    lost = sum(1 for t in texts if stored[t] == 0)
    ok = sum(1 for f in final if f and f["state"] == "success")
    bad += dup + lost + (tasks - ok)
    rows.append({
        "variant": variant,
        "tasks": tasks,
        "try-1 kills": len(notes),
        "in flight": sum(1 for n in notes.values() if n.get("answer_already_in") is False) if variant.startswith("in_flight") else "-",
        "try-1 states": "/".join(f"{s}:{n}" for s, n in collections.Counter(f["state"] if f else "none" for f in first).items()),
        "tries per TI": "/".join(str(f["try_number"]) if f else "?" for f in final),
        "succeeded": ok,
        "stored": sum(stored[t] for t in texts),
        "duplicates": dup,
        "lost": lost,
        "POST": sum(1 for r in requests if r["method"] == "POST" and r["path"].startswith(order_path)),
        "GET": sum(1 for r in requests if r["method"] == "GET" and r["path"].startswith(order_path)),
        "'already posted'": sum(log_hits(t, "An earlier try already posted") for t in tids),
        "'Found message'": sum(log_hits(t, "posted by an earlier try whose answer was lost") for t in tids),
        "wait s": f"{sum(waited(t) for t in tids):.0f}",
        "SIGKILL in log": sum(log_hits(t, '"signal_name":"SIGKILL"') for t in tids),
        "kill->fail s": f"{min(to_fail):.0f}-{max(to_fail):.0f}" if to_fail else "-",
        "kill->retry s": f"{min(gaps):.0f}-{max(gaps):.0f}" if gaps else "-",
    })

cols = list(rows[0])
total = {c: "" for c in cols}
total["variant"] = "TOTAL"
for c in cols:
    if all(isinstance(r[c], int) for r in rows):
        total[c] = sum(r[c] for r in rows)
rows.append(total)
widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
with open(console, errors="replace") as fh:
    detections = fh.read().count("Detected a task instance without a heartbeat")
print()
print(f"DAG run {run_id}: {run_state} in {run_seconds:.0f}s (retries=2, retry_delay=3s); "
      f"all requests: {sum(1 for r in requests if r['method'] == 'POST')} POST, "
      f"{sum(1 for r in requests if r['method'] == 'GET')} GET; messages in sandbox: {len(messages)}; "
      f"scheduler heartbeat-timeout detections: {detections}")
print("| " + " | ".join(c.ljust(widths[c]) for c in cols) + " |")
print("|" + "|".join("-" * (widths[c] + 2) for c in cols) + "|")
for r in rows:
    print("| " + " | ".join(str(r[c]).ljust(widths[c]) for c in cols) + " |")
print()
sys.exit(0 if bad == 0 and run_state == "success" else 1)
PY
rc=$?
set -e
log "Done in $(($(date +%s) - STARTED))s; exit $rc"
if ((rc != 0)) && [[ "$KEEP" != 1 ]]; then
  # The console may carry the admin password and the (fake) token: drop and mask them.
  echo "--- last lines of standalone.log (rerun with WKC_KEEP=1 to keep all logs) ---"
  tail -n 15 "$WORK/standalone.log" | grep -v -i "password" | sed 's/worker-kill-fake-token/***/g' | cut -c1-300 || true
fi
exit "$rc"
