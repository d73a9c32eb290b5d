"""Our own time before the POST: what CreateOrderMessageOperator's code costs a task process, Airflow's API cut out.

    .venv/bin/python benchmarks/own_time.py [--rounds 15] [--json FILE]

Each round starts one fresh process per contender (a task process is fresh too), in a rotating order:
it imports ``airflow.sdk`` (every DAG file pays that), then what the benchmark DAG file of
``mapped_tasks.py`` imports beyond it, loads Airflow's plugins as the task runner does before
``execute``, and runs the post against the sandbox (its own process). The Execution API is replaced by
in-memory stand-ins (the task state store, the claims Variable; the connection comes from an
``AIRFLOW_CONN_`` variable), so what is timed is our code alone, not the round trips that
``mapped_tasks.py`` counts. Per contender it prints the medians of: the DAG file's imports beyond
``airflow.sdk``; ``execute`` entry (the plain ``@task``'s body) to the request leaving; the answer to
``execute`` returning. Nothing is asserted on a number.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_support import ORDER, bench_connections, fresh_process, sandbox_process  # noqa: E402

#: The plain contender's DAG file (``mapped_tasks.py`` runs it); its task body is the plain post here too.
PLAIN_DAG_FILE = ROOT / "tests" / "e2e" / "dags" / "spp_e2e_bench_plain.py"
TEXT = "Hi! To keep your order moving we still need your login details. You can reply to this message with them."
CONTENDERS = {"ours": "CreateOrderMessageOperator", "plain": "plain @task + requests"}
COLUMNS = {
    "parse_ms": "DAG file imports beyond airflow.sdk",
    "before_post_ms": "execute to the request leaving",
    "after_answer_ms": "answer to execute returning",
}


class _Store:
    """The task state store, in memory."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value


def _context() -> dict[str, Any]:
    """The parts of a first try's context the operator reads."""
    from types import SimpleNamespace

    ti = SimpleNamespace(dag_id="bench", run_id="manual__1", task_id="post", map_index=0, try_number=1, start_date=None)
    return {"ti": ti, "dag_run": SimpleNamespace(start_date=None), "task_state_store": _Store()}


def _plain_post() -> Callable[[str], int]:
    """The plain ``@task``'s body, taken from its benchmark DAG file so the two cannot drift apart."""
    spec = importlib.util.spec_from_file_location("spp_e2e_bench_plain", PLAIN_DAG_FILE)
    assert spec is not None
    assert spec.loader is not None
    dag_file = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dag_file)
    return dag_file.post.function  # type: ignore[no-any-return]


def child(contender: str) -> dict[str, float]:
    """One task-like process: the imports, then one post; phase times in ms."""
    import airflow.sdk  # noqa: F401 - every DAG file pays it
    import pendulum  # noqa: F401 - the benchmark DAG files import it

    # Untimed: the plain DAG file imports nothing beyond airflow.sdk, and the column times imports only.
    plain_post = _plain_post() if contender == "plain" else None
    began = time.perf_counter()
    if contender == "ours":
        from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator
    parsed = time.perf_counter()
    from airflow.sdk import Variable
    from airflow.sdk.listener import get_listener_manager

    get_listener_manager()  # the task runner loads the plugins before execute
    variables: dict[str, Any] = {}
    setattr(Variable, "get", staticmethod(lambda key, default=None, **kwargs: variables.get(key, default)))  # noqa: B010
    setattr(Variable, "set", staticmethod(lambda key, value, **kwargs: variables.update({key: value})))  # noqa: B010
    import requests.adapters

    sent: list[float] = []
    send = requests.adapters.HTTPAdapter.send

    def timed_send(self: Any, request: Any, **kwargs: Any) -> Any:
        sent.append(time.perf_counter())
        return send(self, request, **kwargs)

    requests.adapters.HTTPAdapter.send = timed_send  # type: ignore[method-assign,assignment]
    if contender == "ours":
        task = CreateOrderMessageOperator(task_id="post", order=str(ORDER), message=TEXT, spp_conn_id="spp_bench")
        context = _context()
        entered = time.perf_counter()
        task.execute(context)  # type: ignore[arg-type]
    else:
        assert plain_post is not None
        entered = time.perf_counter()
        plain_post(str(ORDER))
    ended = time.perf_counter()
    return {
        "parse_ms": 1000 * (parsed - began),
        "before_post_ms": 1000 * (sent[0] - entered),
        "after_answer_ms": 1000 * (ended - sent[-1]),
    }


def table(found: dict[str, list[dict[str, float]]]) -> list[str]:
    """Medians per contender and the difference ours - plain, in ms."""
    medians = {
        name: {key: statistics.median(row[key] for row in rows) for key in COLUMNS} for name, rows in found.items()
    }
    lines = [
        "| contender | rounds | " + " | ".join(f"{title}, median ms" for title in COLUMNS.values()) + " |",
        "|---|---:|" + "---:|" * len(COLUMNS),
    ]
    for name, rows in found.items():
        lines.append(
            f"| {CONTENDERS[name]} | {len(rows)} | " + " | ".join(f"{medians[name][k]:.1f}" for k in COLUMNS) + " |"
        )
    diff = " | ".join(f"{medians['ours'][k] - medians['plain'][k]:+.1f}" for k in COLUMNS)
    lines.append(f"| ours - plain | | {diff} |")
    return lines


def main() -> int:
    """Run the rounds and print the table (and write the JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", choices=sorted(CONTENDERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    import tempfile

    with tempfile.TemporaryDirectory(prefix="spp-own-time-") as work:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # cached bytecode, as deployed
        env.update(AIRFLOW_HOME=work, AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__PLUGINS_FOLDER=work)
        found: dict[str, list[dict[str, float]]] = {name: [] for name in CONTENDERS}
        with sandbox_process(sys.executable, Path(work), env) as url:
            env.update(bench_connections(url, timeout=30))
            env["AIRFLOW_CONN_SPP_DEFAULT"] = env["AIRFLOW_CONN_SPP_BENCH"]  # the plain DAG file's connection
            order = list(CONTENDERS)
            for round_number in range(args.rounds + 1):  # round 0 warms the bytecode caches, untimed
                for name in order[round_number % 2 :] + order[: round_number % 2]:
                    cmd = fresh_process([sys.executable, str(Path(__file__).resolve()), "--child", name])
                    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
                    if out.returncode:
                        raise RuntimeError(f"{name} failed:\n{out.stderr[-3000:]}")
                    if round_number:
                        found[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    lines = table(found)
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"lines": lines, "figures": found}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
