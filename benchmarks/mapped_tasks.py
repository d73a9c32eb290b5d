"""Mapped tasks in a real deployment: what one post costs as CreateOrderMessageOperator, a plain @task, HttpOperator.

    .venv/bin/python benchmarks/mapped_tasks.py [--per-contender 200] [--json FILE]

Starts the E2E deployment (tests/e2e/deploy.py: CeleryExecutor, PostgreSQL, Redis, the SPP sandbox; needs
what ``python3 scripts/e2e.py`` needs) unless run as the E2E's ``benchmark`` step, then triggers ONE run of
``spp_e2e_bench_<contender>`` (tests/e2e/dags/) at once, ``--per-contender`` mapped task instances each,
all posting the same body, each to its own order: they share the slots, the scheduler and the API server.

Per contender it prints the median and p95 of the task run time (the task instance's ``duration``), and,
from each task's log and the sandbox's request log, the task process's parse of its DAG file (imports
included), the time from the start of ``execute`` to the POST reaching the sandbox ("before the POST":
imports, connection, exactly-once bookkeeping) and from the answer to the task's last log line ("after
the answer": bookkeeping, XCom pushes, the extra link). A fourth contender, the operator with
``deduplicate=False``, splits our cost in two: ours/bare is what the exactly-once bookkeeping costs,
bare/plain what everything else does. Nothing is asserted on a number.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Contenders in table order (ours, the plain @task as the baseline, HttpOperator, ours without exactly-once
#: bookkeeping); each is its own DAG in tests/e2e/dags/ (so each DAG file imports what its users' would)
#: whose mapped task is ``post``.
CONTENDERS = {
    "ours": "CreateOrderMessageOperator",
    "plain": "plain @task + requests",
    "http": "HttpOperator",
    "bare": "CreateOrderMessageOperator, deduplicate=False",
}
#: The ratio rows under the table: (numerator, denominator).
RATIOS = (("ours", "plain"), ("bare", "plain"), ("ours", "bare"))
TASK_ID = "post"
HTTP_CONN_ID = "spp_bench_http"


@dataclass
class Contender:
    """What one contender's task instances measured."""

    durations: list[float] = field(default_factory=list)
    parse: list[float] = field(default_factory=list)
    before_post: list[float] = field(default_factory=list)
    after_answer: list[float] = field(default_factory=list)
    failed: int = 0


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def log_marks(path: Path, parse_time: Callable[[Any], float | None]) -> dict[str, float]:
    """When a task's log says it began parsing the DAG file, finished, began ``execute`` and wrote its last line."""
    marks: dict[str, float] = {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        moment = parse_time(entry.get("timestamp"))
        if moment is None:
            continue
        event = str(entry.get("event", ""))
        if event.startswith("Filling up the DagBag"):
            marks.setdefault("filling", moment)
        elif event == "Worker startup parse complete":
            marks["parsed"] = moment
        elif event == "::endgroup::" and "parsed" in marks:
            marks.setdefault("execute", moment)
        marks["end"] = moment
    return marks


def dag_id(contender: str) -> str:
    """The benchmark DAG of one contender."""
    return f"spp_e2e_bench_{contender}"


def collect(
    tis: Iterable[dict[str, Any]],
    orders: list[str],
    posts: dict[str, tuple[float, float]],
    logs: Path,
    parse_time: Callable[[Any], float | None],
) -> Contender:
    """One contender's run times from its task instances, and phases from their logs matched to their POSTs."""
    figures = Contender()
    for ti in tis:
        if ti["task_id"] != TASK_ID:
            continue
        if ti.get("state") != "success" or ti.get("duration") is None:
            figures.failed += 1
            continue
        figures.durations.append(float(ti["duration"]))
        order = orders[int(ti["map_index"])]
        log = logs / f"task_id={TASK_ID}" / f"map_index={ti['map_index']}" / "attempt=1.log"
        marks = log_marks(log, parse_time) if log.exists() else {}
        if {"filling", "parsed"} <= set(marks):
            figures.parse.append(marks["parsed"] - marks["filling"])
        if order in posts and {"execute", "end"} <= set(marks):
            arrived, handled = posts[order]
            figures.before_post.append(arrived - marks["execute"])
            figures.after_answer.append(marks["end"] - (arrived + handled))
    return figures


def table(found: dict[str, Contender]) -> list[str]:
    """The Markdown table: run time and phases per contender, in ms, with the ratios of RATIOS."""

    def ms(values: list[float], how: str) -> float:
        if not values:
            return float("nan")
        return 1000 * (statistics.median(values) if how == "median" else percentile(values, 95))

    columns = [
        ("run time median", "durations", "median"),
        ("run time p95", "durations", "p95"),
        ("DAG file parse median", "parse", "median"),
        ("before the POST median", "before_post", "median"),
        ("before the POST p95", "before_post", "p95"),
        ("after the answer median", "after_answer", "median"),
    ]
    lines = [
        "| contender | tasks | " + " | ".join(f"{title} (ms)" for title, _, _ in columns) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    figures = {name: [ms(getattr(c, attr), how) for _, attr, how in columns] for name, c in found.items()}
    for name, contender in found.items():
        cells = " | ".join(f"{v:.0f}" for v in figures[name])
        failed = f" ({contender.failed} failed)" if contender.failed else ""
        lines.append(f"| {CONTENDERS[name]} | {len(contender.durations)}{failed} | {cells} |")
    for top, bottom in RATIOS:
        if top in figures and bottom in figures:
            pairs = zip(figures[top], figures[bottom], strict=True)
            ratios = " | ".join(f"{a / b:.2f}" if b and math.isfinite(a / b) else "-" for a, b in pairs)
            lines.append(f"| {top}/{bottom} | | {ratios} |")
    return lines


def ensure_http_connection(api: Any, sandbox_url: str, token: str) -> None:
    """The HttpOperator's connection: the sandbox, with the token as an Authorization header in its extra."""
    body = {
        "connection_id": HTTP_CONN_ID,
        "conn_type": "http",
        "host": sandbox_url,
        "extra": json.dumps({"Authorization": f"Bearer {token}"}),
    }
    with contextlib.suppress(Exception):  # absent on a first run
        api.request("DELETE", f"connections/{HTTP_CONN_ID}")
    api.request("POST", "connections", body)


def measure(
    api: Any,
    sandbox: Any,
    *,
    airflow_home: Path,
    sandbox_url: str,
    token: str,
    per_contender: int,
    say: Callable[[str], None] = print,
    alive: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """One run of the benchmark DAG against a running deployment; the figures, the table and a correctness line."""
    from tests.e2e.rest import parse_time

    ensure_http_connection(api, sandbox_url, token)
    wanted = {dag_id(name) for name in CONTENDERS}
    deadline = time.monotonic() + 180
    while not wanted <= {d["dag_id"] for d in api.get("dags", limit=200)["dags"]}:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{sorted(wanted)} not all parsed within 180 s: {api.get('importErrors')}")
        time.sleep(2)
    first, last = sandbox.add_orders(len(CONTENDERS) * per_contender, 2)
    ids = [str(i) for i in range(first, last + 1)]
    orders = {name: ids[i * per_contender : (i + 1) * per_contender] for i, name in enumerate(CONTENDERS)}
    before = len(sandbox.requests())
    started = time.time()
    say(f"Benchmark: {per_contender} mapped task instances each of {', '.join(CONTENDERS.values())}; waiting")
    runs = {}
    for name in CONTENDERS:
        api.unpause(dag_id(name))
        runs[name] = api.trigger(dag_id(name), {"orders": orders[name]})
    states = {
        name: api.wait_for_run(dag_id(name), runs[name], timeout=1200, on_poll=alive, step=10)["state"]
        for name in CONTENDERS
    }
    wall = time.time() - started
    requests = sandbox.requests()[before:]
    posts = {
        r["path"].rsplit("/", 1)[1]: (parse_time(r["time"]), float(r["handling_ms"]) / 1000)
        for r in requests
        if r["method"] == "POST" and r.get("handling_ms") is not None
    }
    per_order = collections.Counter(r["path"].rsplit("/", 1)[1] for r in requests if r["method"] == "POST")
    stored = [m for m in sandbox.messages() if str(m["order_id"]) in set(ids)]
    found = {}
    for name in CONTENDERS:
        logs = airflow_home / "logs" / f"dag_id={dag_id(name)}" / f"run_id={runs[name]}"
        found[name] = collect(api.task_instances(dag_id(name), runs[name]), orders[name], posts, logs, parse_time)
    lines = table(found)
    lines.append(
        f"one run each, at once: {len(ids)} mapped tasks, {wall:.0f} s from trigger to all runs finished "
        f"({', '.join(f'{n} {s}' for n, s in states.items())}); {len(per_order)} orders got a POST, "
        f"at most {max(per_order.values(), default=0)} each"
    )
    return {
        "run_state": "success" if set(states.values()) == {"success"} else "failed",
        "one_post_per_order": set(per_order) == set(ids) and max(per_order.values(), default=0) == 1,
        "one_message_per_order": sorted(str(m["order_id"]) for m in stored) == sorted(ids),
        "message_ids": [m["id"] for m in stored],
        "lines": lines,
        "figures": {name: vars(c) for name, c in found.items()},
    }


def _standalone(per_contender: int) -> dict[str, Any]:
    """Start the E2E deployment, run the benchmark once, stop everything it started."""
    import shutil
    import tempfile

    from tests.e2e import checks, reacting
    from tests.e2e.deploy import (
        Processes,
        airflow_config,
        ensure_python_packages,
        say,
        start_airflow,
        start_postgres,
        start_redis,
        start_sandbox,
    )
    from tests.e2e.report import Report
    from tests.e2e.run import SANDBOX_TOKEN

    work = Path(tempfile.mkdtemp(prefix="spp-bench-"))
    work.chmod(0o755)
    (work / "logs").mkdir()
    procs = Processes(log_dir=work / "logs")
    try:
        ensure_python_packages()
        sandbox_url = start_sandbox(procs, SANDBOX_TOKEN, status_style=checks.STATUS_STYLE)
        airflow = airflow_config(
            work,
            start_postgres(procs, work),
            start_redis(procs, work),
            queue_routes={**checks.FOLLOWUP_ROUTES, **reacting.QUEUE_ROUTES},
            shared_storage=(work / "shared-storage").as_uri(),
            parallelism=checks.PARALLELISM,
            worker_concurrency=checks.WORKER_CONCURRENCY,
            extra_env=reacting.DEPLOYMENT_ENV,
        )
        start_airflow(procs, airflow)
        ctx = checks.Context(
            procs=procs, airflow=airflow, sandbox_url=sandbox_url, token=SANDBOX_TOKEN, work=work, report=Report(work)
        )
        checks.wait_until_ready(ctx)
        ctx.api.request("POST", "connections", ctx.connection())
        return measure(
            ctx.api,
            ctx.sandbox,
            airflow_home=airflow.home,
            sandbox_url=sandbox_url,
            token=SANDBOX_TOKEN,
            per_contender=per_contender,
            say=say,
            alive=ctx.alive,
        )
    finally:
        procs.stop_all()
        shutil.rmtree(work / "postgres", ignore_errors=True)


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # so _standalone's finally stops the deployment


def main() -> int:
    """Run standalone and print the table (and write the JSON)."""
    import signal

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-contender", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = _standalone(args.per_contender)
    print("\n".join(result["lines"]))
    if args.json:
        args.json.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
