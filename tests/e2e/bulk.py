"""E2E step "bulk": 1,000 reminders from one bulk task, then a run whose Celery worker is SIGKILLed mid-batch.

Both runs use the bulk-reminders example with ``way="bulk"`` against a sandbox that rate-limits (Laravel's
throttle: a 429 with Retry-After beyond N requests a second), and are checked against what the sandbox
stored: one message per order, 0 duplicates, 0 lost, the XCom map equal to the stored messages.
"""

from __future__ import annotations

import collections
import json
import signal
import time
import urllib.parse
from typing import Any

from tests.e2e.checks import BULK_ORDERS, BULK_STATUS, Context, _now_iso, _record_run
from tests.e2e.deploy import WORKERS, CheckFailed, restart_worker, say, wait_for
from tests.e2e.rest import call, parse_time

DAG_ID, TASK_ID = "spp_bulk_reminders", "remind_in_bulk"
#: Trigger to success, in seconds, that 1,000 reminders must beat (issue 16).
TARGET_SECONDS = 30.0
#: The sandbox's rate limit for the fast run (requests per second) and for the killed run (slower, to kill mid-batch).
FAST_LIMIT, KILL_LIMIT = 150, 40
#: The killed run's worker dies once this many of its messages are stored.
KILL_AFTER = 300


def check_bulk(ctx: Context) -> None:
    """Both bulk runs; the rate limit is off again afterwards."""
    first_id, last_id = ctx.sandbox.add_orders(BULK_ORDERS, BULK_STATUS)
    orders = {o["id"]: o["number"] for o in _orders(ctx, first_id, last_id)}
    try:
        _check_fast_run(ctx, orders)
        _check_killed_run(ctx, orders)
    finally:
        _rate_limit(ctx, 0)


def _orders(ctx: Context, first_id: int, last_id: int) -> list[dict[str, Any]]:
    """The generated orders (ID and number), read the way a client would, oldest first."""
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        query = urllib.parse.urlencode(
            {"limit": 100, "page": page, "sort": "id:asc", "filters[id][$gte]": first_id, "filters[id][$lte]": last_id}
        )
        body = call("GET", f"{ctx.sandbox_url}/api/orders?{query}", token=ctx.token)
        found += [{"id": o["id"], "number": o["number"]} for o in body["data"]]
        if not body["links"].get("next"):
            return found
        page += 1


def _rate_limit(ctx: Context, per_second: int) -> None:
    call("POST", f"{ctx.sandbox_url}/_sandbox/settings", {"rate_limit": per_second, "rate_limit_window": 1})


def _trigger(ctx: Context) -> str:
    conf = {"status": BULK_STATUS, "max_orders": BULK_ORDERS, "way": "bulk"}
    return ctx.api.trigger(DAG_ID, conf, logical_date=_now_iso())


def _new_messages(ctx: Context, before: set[int]) -> list[dict[str, Any]]:
    return [m for m in ctx.sandbox.messages() if m["id"] not in before]


def _accounting(
    ctx: Context, run: dict[str, Any], orders: dict[int, str], new: list[dict[str, Any]]
) -> tuple[bool, str]:
    """Whether every order got exactly one message and the XCom maps each to it; the counts as text."""
    per_order = collections.Counter(m["order_id"] for m in new if m["order_id"] in orders)
    duplicates = sum(n - 1 for n in per_order.values())
    lost = sum(1 for order_id in orders if order_id not in per_order)
    result = ctx.api.xcom(DAG_ID, run["dag_run_id"], TASK_ID) if run["state"] == "success" else None
    stored = {orders[m["order_id"]]: m["id"] for m in new if m["order_id"] in orders}
    xcom_ok = isinstance(result, dict) and result.get("message_ids") == stored and result.get("failed") == {}
    ok = run["state"] == "success" and duplicates == 0 and lost == 0 and xcom_ok and len(new) == len(orders)
    text = (
        f"run {run['state']}, {len(new)} messages stored for {len(orders)} orders, {duplicates} duplicates, "
        f"{lost} lost, XCom map {'equals' if xcom_ok else 'DIFFERS FROM'} the stored messages"
    )
    return ok, text


def _check_fast_run(ctx: Context, orders: dict[int, str]) -> None:
    """1,000 reminders in one task under a rate limit: trigger to success under TARGET_SECONDS, 0 dup, 0 lost."""
    _rate_limit(ctx, FAST_LIMIT)
    before_ids = {m["id"] for m in ctx.sandbox.messages()}
    before_requests = len(ctx.sandbox.requests())
    started = time.time()
    run_id = _trigger(ctx)
    say(f"Bulk: triggered {run_id} for {BULK_ORDERS} orders in one task")
    run = ctx.api.wait_for_run(DAG_ID, run_id, timeout=300, on_poll=ctx.alive, step=0.5)
    wall = time.time() - started
    new = _new_messages(ctx, before_ids)
    ok, text = _accounting(ctx, run, orders, new)
    posts = [r for r in ctx.sandbox.requests()[before_requests:] if r["method"] == "POST"]
    throttled = sum(1 for r in posts if r["status"] == 429)
    ctx.report.check(f"bulk: {BULK_ORDERS} reminders in one task, 0 duplicates, 0 lost, XCom map checked", ok, text)
    ctx.report.check(
        f"bulk: trigger to success in under {TARGET_SECONDS:.0f} s", ok and wall < TARGET_SECONDS, f"{wall:.1f} s"
    )
    (ti,) = [t for t in ctx.api.task_instances(DAG_ID, run_id) if t["task_id"] == TASK_ID]
    ctx.report.bulk += [
        f"{BULK_ORDERS} reminders, one bulk task: {wall:.1f} s from trigger to run success "
        f"(the task itself {float(ti.get('duration') or 0):.1f} s); {len(posts)} POSTs, {throttled} answered 429 "
        f"(sandbox limit {FAST_LIMIT}/s)",
    ]
    _record_run(ctx, DAG_ID, run_id, run["state"], text, [m["id"] for m in new])


def _check_killed_run(ctx: Context, orders: dict[int, str]) -> None:
    """SIGKILL the worker running the bulk task mid-batch; the retry leaves one message per order."""
    _rate_limit(ctx, KILL_LIMIT)
    before_ids = {m["id"] for m in ctx.sandbox.messages()}
    before_requests = len(ctx.sandbox.requests())
    run_id = _trigger(ctx)
    say(f"Bulk kill: triggered {run_id}; SIGKILLing its worker once {KILL_AFTER} messages are stored")
    stored_at_kill = wait_for(
        f"{KILL_AFTER} messages of the run",
        lambda: (n := len(_new_messages(ctx, before_ids))) >= KILL_AFTER and n,
        timeout=240,
        step=0.5,
        alive=ctx.alive,
    )
    (first,) = ctx.api.tries(DAG_ID, run_id, TASK_ID) or [{}]
    victim = first.get("hostname")
    if victim not in WORKERS:
        raise CheckFailed(f"the bulk task runs on {victim!r}, not on one of {WORKERS}")
    ctx.procs.kill(victim, signal.SIGKILL)
    killed_at = time.time()
    say(f"Bulk kill: SIGKILLed {victim} with {stored_at_kill} of {len(orders)} messages stored")
    run = ctx.api.wait_for_run(
        DAG_ID,
        run_id,
        timeout=600,
        on_poll=lambda: ctx.procs.check_alive(*(n for n in ctx.procs.started if n != victim)),
        step=1,
    )
    new = _new_messages(ctx, before_ids)
    ok, text = _accounting(ctx, run, orders, new)
    tries = ctx.api.tries(DAG_ID, run_id, TASK_ID)
    figures = _kill_figures(tries, killed_at, stored_at_kill, victim)
    posts = [r for r in ctx.sandbox.requests()[before_requests:] if r["method"] == "POST"]
    gets = [r for r in ctx.sandbox.requests()[before_requests:] if r["method"] == "GET"]
    figures |= {"POSTs": len(posts), "429s": sum(1 for r in posts if r["status"] == 429), "GETs": len(gets)}
    ctx.report.check(
        "bulk kill: the worker died mid-batch; the retry left one message per order (0 duplicates, 0 lost)",
        ok and len(tries) >= 2 and 0 < stored_at_kill < len(orders),
        f"{text}; {json.dumps(figures)}",
    )
    ctx.report.bulk.append("worker killed mid-batch: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    _record_run(ctx, DAG_ID, run_id, run["state"], text, [m["id"] for m in new])
    restart_worker(ctx.procs, ctx.airflow, victim, ctx.alive)


def _kill_figures(tries: list[dict[str, Any]], killed_at: float, stored: int, victim: str) -> dict[str, Any]:
    """How long Airflow took to notice the dead task and to retry it, and where the retry ran."""
    first, final = (tries[0], tries[-1]) if tries else ({}, {})
    noticed = parse_time(first.get("end_date"))
    retried = parse_time(final.get("start_date")) if len(tries) > 1 else None
    finished = parse_time(final.get("end_date"))
    return {
        "killed": victim,
        "stored_when_killed": stored,
        "tries": len(tries),
        "finished_on": final.get("hostname"),
        "airflow_detection_s": f"{noticed - killed_at:.0f}" if noticed else "-",
        "kill_to_retry_start_s": f"{retried - killed_at:.0f}" if retried else "-",
        "retry_duration_s": f"{finished - retried:.1f}" if retried and finished else "-",
    }
