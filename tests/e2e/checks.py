"""The E2E checks, in order, against a running deployment (see tests/e2e/run.py)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow_provider_spp._internal.provider_info import CONN_FIELDS
from tests.e2e.deploy import WORKERS, Airflow, CheckFailed, Processes, restart_worker, say, wait_for
from tests.e2e.rest import AirflowApi, HttpError, Sandbox, parse_time

EXAMPLE_DAGS = ("spp_order_followup", "spp_bulk_reminders", "spp_pipeline_alerts")
KILL_DAG = "spp_e2e_worker_kill"
TASK_KILL_DAG = "spp_e2e_task_kill"
#: What a retry logs when the claim its first try wrote says the POST created this message.
FROM_CLAIM = "An earlier try already posted message"
#: What a retry logs when a look-up found the message its first try's POST created.
BY_LOOK_UP = "posted by an earlier try whose answer was lost"
#: spp_e2e_task_kill's kill points, the order each posts to, and how its retry may find the message.
#: after_execute: from its claim, or by a look-up when the sibling posting to the same order at the same
#: moment dropped that claim (a Variable is not a lock: docs/exactly-once.md). The others wrote no claim.
TASK_KILL_POINTS = {
    "after_execute": ("E4A269FC", (FROM_CLAIM, BY_LOOK_UP)),
    "after_post": ("00C0FFEE", (BY_LOOK_UP,)),
    "in_flight": ("B7C3D2A1", (BY_LOOK_UP,)),
}
TASKS_PER_KILL_POINT = 2
#: The follow-up example's two tasks go to different workers (cluster policy, see site/airflow_local_settings.py).
FOLLOWUP_ROUTES = {"spp_order_followup.build_report": WORKERS[0], "spp_order_followup.post_followup": WORKERS[1]}
RUN_TIMEOUT = 240.0
BULK_ORDERS = int(os.environ.get("SPP_E2E_BULK_ORDERS", "1000"))
KILL_ORDER, KILL_ORDER_ID = "9F8E7D6C", 1003
SLOW_COMMIT_DELAY = 10.0
PARALLELISM, WORKER_CONCURRENCY = 8, 4
#: Orders carry integer statuses (Wayfront today, issue 13): "code"; the sandbox's older labels: "label".
STATUS_STYLE = os.environ.get("SPP_E2E_STATUS_STYLE", "code")
#: The statuses the checks filter by, as this workspace's orders carry them (codes from the sandbox's map).
WORKING, BULK_STATUS = (2, 6) if STATUS_STYLE == "code" else ("Working", "Awaiting client")


@dataclass
class Context:
    """The deployment the checks talk to, and the report they fill in."""

    procs: Processes
    airflow: Airflow
    sandbox_url: str
    token: str = field(repr=False)
    work: Path
    report: Any
    api: AirflowApi = field(init=False)
    sandbox: Sandbox = field(init=False)
    runs: dict[str, str] = field(default_factory=dict)
    expected_ids: set[int] = field(default_factory=set)
    start_reacting: bool = True

    def __post_init__(self) -> None:
        self.api = AirflowApi(self.airflow.api_url)
        self.sandbox = Sandbox(self.sandbox_url)

    def alive(self) -> None:
        """Fail fast when a server of the deployment died (the killed worker is checked separately)."""
        self.procs.check_alive()

    def connection(self, token: str | None = None) -> dict[str, Any]:
        """The spp_default connection body for the REST API."""
        return {
            "connection_id": "spp_default",
            "conn_type": "spp",
            "host": self.sandbox_url,
            "password": token or self.token,
            "extra": json.dumps({"timeout": 30, "max_retries": 3}),
        }


def run_all(ctx: Context) -> None:
    """Every check, in the order a newcomer would try things (SPP_E2E_SKIP=ui,bulk,... leaves some out)."""
    from tests.e2e import activity, benchmark, bulk, reacting, ui

    skip = {s.strip() for s in os.environ.get("SPP_E2E_SKIP", "").split(",") if s.strip()}
    steps = {
        "connection": check_connection_type_and_test,
        "examples": check_example_runs,
        "task_kill": check_task_kill,
        "worker_kill": check_worker_kill,
        "reacting": reacting.check_reacting_examples,
        "activity": activity.check_activity_watcher,
        "ui": ui.check_ui,
        "bulk": bulk.check_bulk,
        # last: its 600 generated orders would be among the orders bulk's check reads back
        "benchmark": benchmark.check_benchmark,
    }
    if skip - set(steps):
        raise CheckFailed(f"SPP_E2E_SKIP names unknown steps {sorted(skip - set(steps))}; steps: {sorted(steps)}")
    ctx.start_reacting = "reacting" not in skip
    wait_until_ready(ctx)
    for name, step in steps.items():
        if name in skip:
            ctx.report.fail(f"step {name} skipped (SPP_E2E_SKIP)")
        else:
            say(f"Step: {name}")
            step(ctx)
    check_every_message_accounted_for(ctx)


def wait_until_ready(ctx: Context) -> None:
    """The api-server answers, a token is issued, both workers are up and every DAG is parsed."""
    api, report = ctx.api, ctx.report
    wait_for("the api-server", lambda: api.get("monitor/health"), timeout=180, alive=ctx.alive)
    api.login(ctx.airflow.admin_user, ctx.airflow.admin_password)
    report.check("REST API token from POST /auth/token", bool(api.token))
    try:
        ctx.api.token, real = "not-a-token", api.token
        api.get("dags")
        rejected = False
    except HttpError as err:
        rejected = err.status in (401, 403)
    finally:
        api.token = real
    report.check("REST API refuses a bad token", rejected)
    for name in WORKERS:
        log = ctx.procs.log_dir / f"{name}.log"
        wait_for(
            f"Celery worker {name}",
            lambda log=log, name=name: f"celery@{name} ready" in log.read_text(errors="replace"),
            timeout=180,
            alive=ctx.alive,
        )
    from tests.e2e.reacting import REACTING_DAGS

    wanted = {*EXAMPLE_DAGS, *REACTING_DAGS, KILL_DAG, TASK_KILL_DAG}

    def parsed() -> set[str] | None:
        found = {d["dag_id"] for d in api.get("dags", limit=100)["dags"]}
        return found if wanted <= found else None

    wait_for("the DAGs to be parsed", parsed, timeout=180, step=2, alive=ctx.alive)
    errors = api.get("importErrors")["import_errors"]
    examples = sorted(d["dag_id"] for d in api.get("dags", limit=100)["dags"] if d.get("bundle_name") == "spp-examples")
    report.check(
        "DAG processor parsed every example DAG without import errors",
        not errors,
        f"{examples}" + (f" errors: {errors}" if errors else ""),
    )
    untouched = sorted(set(examples) - wanted)
    if untouched:
        report.notes.append(f"example DAGs parsed but not run by this check: {', '.join(untouched)}")
    say("Deployment ready")


def check_connection_type_and_test(ctx: Context) -> None:
    """The spp type and its form are listed; spp_default is created and tested (right and wrong token)."""
    api, report = ctx.api, ctx.report
    meta = {m["connection_type"]: m for m in api.get("/ui/connections/hook_meta")}
    spp = meta.get("spp") or {}
    fields = spp.get("standard_fields") or {}
    extra = spp.get("extra_fields") or {}
    report.check(
        "hook_meta lists the spp connection type",
        spp.get("hook_name") == "Wayfront (formerly Service Provider Pro, SPP)",
        f"hook_name={spp.get('hook_name')!r}",
    )
    report.check(
        "hook_meta carries the relabelled fields and placeholders",
        (fields.get("host") or {}).get("title") == "Workspace URL"
        and (fields.get("password") or {}).get("title") == "API token"
        and (fields.get("host") or {}).get("placeholder") == "https://acme.wayfront.com"
        and all((fields.get(name) or {}).get("hidden") for name in ("login", "port", "url_schema")),
        json.dumps({k: v for k, v in fields.items() if k in ("host", "password", "login")}),
    )
    report.check(
        f"hook_meta carries the {len(CONN_FIELDS)} extra fields", set(extra) == set(CONN_FIELDS), f"{sorted(extra)}"
    )

    api.request("POST", "connections", ctx.connection())
    stored = api.get("connections/spp_default")
    report.check(
        "spp_default created through the REST API (token not echoed)",
        stored["conn_type"] == "spp" and stored.get("password") in (None, "***", ""),
        f"host={stored['host']}",
    )
    table, order = ctx.sandbox.statuses(), ctx.sandbox.order("E4A269FC", ctx.token)
    report.check(
        f"the sandbox's orders carry {STATUS_STYLE} statuses (the checks filter by {WORKING!r} and {BULK_STATUS!r})",
        table["status_style"] == STATUS_STYLE and order["status"] == WORKING,
        f"order E4A269FC status={order['status']!r}; map {[(s['code'], s['label']) for s in table['statuses']]}",
    )
    good = api.request("POST", "connections/test", ctx.connection())
    report.check("connection test succeeds against the sandbox", good["status"] is True, good["message"])
    bad = api.request("POST", "connections/test", ctx.connection(token="wrong-token-for-e2e"))
    report.check(
        "connection test with a wrong token fails clearly (and does not echo it)",
        bad["status"] is False
        and "rejected the API token (401" in bad["message"]
        and "wrong-token-for-e2e" not in bad["message"],
        bad["message"],
    )


def _unpause(ctx: Context, dag_id: str) -> None:
    ctx.api.request("PATCH", f"dags/{dag_id}", {"is_paused": False})


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _record_run(ctx: Context, dag_id: str, run_id: str, state: str, note: str, ids: list[Any] | None = None) -> None:
    ctx.report.runs.append({"dag_id": dag_id, "run_id": run_id, "state": state, "note": note})
    ctx.expected_ids.update(i for i in ids or [] if isinstance(i, int))


def check_every_message_accounted_for(ctx: Context) -> None:
    """Nothing posted twice anywhere: each message the sandbox stored is one a checked run reported."""
    messages = ctx.sandbox.messages()
    (ctx.work / "sandbox-messages.json").write_text(json.dumps(messages, indent=1))
    requests = [{k: v for k, v in r.items() if k != "headers"} for r in ctx.sandbox.requests()]
    (ctx.work / "sandbox-requests.json").write_text(json.dumps(requests, indent=1))
    stored = {m["id"] for m in messages}
    extra = sorted(stored - ctx.expected_ids)
    ctx.report.check(
        "every message in the sandbox is one a run reported (no stray or duplicate posts)",
        not extra and ctx.expected_ids <= stored,
        f"{len(stored)} stored; unexpected {[(m['id'], m['order_id'], m['message'][:60]) for m in messages if m['id'] in extra][:5]}"  # noqa: E501
        f"; missing {sorted(ctx.expected_ids - stored)[:5]}",
    )


def check_example_runs(ctx: Context) -> None:
    """Trigger every example DAG (one pipeline-alerts run fails on purpose); check each against the sandbox."""
    from tests.e2e import reacting

    api = ctx.api
    for dag_id in (*EXAMPLE_DAGS, KILL_DAG, TASK_KILL_DAG):
        _unpause(ctx, dag_id)
    if ctx.start_reacting:
        reacting.start_reacting_examples(ctx)  # they run meanwhile; checked at the end of this step and later
    runs = {
        "followup": ("spp_order_followup", {}),
        "reminders": ("spp_bulk_reminders", {"status": WORKING}),
        "alerts": ("spp_pipeline_alerts", {}),
        "alerts_failing": ("spp_pipeline_alerts", {"simulate_failure": True}),
    }
    for key, (dag_id, conf) in runs.items():
        ctx.runs[key] = api.trigger(dag_id, conf, logical_date=_now_iso())
        time.sleep(1.1)  # distinct logical dates (a run's logical date is unique per DAG)
    say(f"Triggered {len(runs)} example runs; waiting (at most {RUN_TIMEOUT:.0f} s each)")
    finished = {
        key: api.wait_for_run(dag_id, ctx.runs[key], timeout=RUN_TIMEOUT, on_poll=ctx.alive)
        for key, (dag_id, _) in runs.items()
    }
    messages = ctx.sandbox.messages()
    by_id = {m["id"]: m for m in messages}
    _check_followup(ctx, finished["followup"], by_id)
    _check_reminders(ctx, finished["reminders"], by_id)
    _check_alerts(ctx, finished["alerts"], by_id)
    _check_failure_alert(ctx, finished["alerts_failing"])
    _check_scheduled_runs(ctx)
    if ctx.start_reacting:
        reacting.check_unattended_examples(ctx)  # done before the kill steps count their POSTs


#: The tasks of each example that post, and how many map indexes to read (None: not mapped).
POSTING_TASKS = {
    "spp_order_followup": "post_followup",
    "spp_pipeline_alerts": "note_rankings_landed",
    "spp_bulk_reminders": "remind_client",
}


def _check_scheduled_runs(ctx: Context) -> None:
    """Unpausing made the scheduler start each example's latest interval: those runs must succeed too."""
    api = ctx.api
    triggered = set(ctx.runs.values())
    for dag_id, task_id in POSTING_TASKS.items():
        runs = [
            r
            for r in api.get(f"dags/{dag_id}/dagRuns", limit=100)["dag_runs"]
            if r["run_type"] == "scheduled" and r["dag_run_id"] not in triggered
        ]
        for run in runs:
            run = api.wait_for_run(dag_id, run["dag_run_id"], timeout=RUN_TIMEOUT, on_poll=ctx.alive)
            tis = [ti for ti in api.task_instances(dag_id, run["dag_run_id"]) if ti["task_id"] == task_id]
            ids = [
                api.xcom(dag_id, run["dag_run_id"], task_id, ti["map_index"]) for ti in tis if ti["state"] == "success"
            ]
            ctx.report.check(
                f"scheduled run of {dag_id} succeeded",
                run["state"] == "success",
                f"{run['dag_run_id']}: message IDs {ids}",
            )
            _record_run(ctx, dag_id, run["dag_run_id"], run["state"], f"scheduled: messages {ids}", ids)


def _posted(
    ctx: Context, run: dict[str, Any], task_id: str, by_id: dict[int, dict[str, Any]]
) -> tuple[bool, Any, dict[str, Any] | None]:
    """Whether the run succeeded, the message ID its task put in XCom, and that message as the sandbox stored it."""
    ok = ctx.report.check(f"{run['dag_id']} run succeeded", run["state"] == "success", run["dag_run_id"])
    message_id = ctx.api.xcom(run["dag_id"], run["dag_run_id"], task_id) if ok else None
    return ok, message_id, by_id.get(message_id) if isinstance(message_id, int) else None


def _check_followup(ctx: Context, run: dict[str, Any], by_id: dict[int, dict[str, Any]]) -> None:
    """One message with the rendered template and the report, byte for byte, though each task ran elsewhere."""
    api, report, dag_id, run_id = ctx.api, ctx.report, run["dag_id"], run["dag_run_id"]
    ok, message_id, stored = _posted(ctx, run, "post_followup", by_id)
    report.check(
        "follow-up: XCom message ID is the message the sandbox stored on order 1001",
        stored is not None
        and stored["order_id"] == 1001
        and stored["message"].startswith("Hi Dana,")
        and "{{" not in stored["message"]
        and api.xcom(dag_id, run_id, "record_message_id") == message_id,
        f"message_id={message_id}",
    )
    tis = {ti["task_id"]: ti for ti in api.task_instances(dag_id, run_id)}
    hosts = {task: (tis.get(task) or {}).get("hostname") for task in ("build_report", "post_followup")}
    report.check(
        "follow-up: build_report and post_followup ran on different Celery workers",
        hosts["build_report"] == WORKERS[0] and hosts["post_followup"] == WORKERS[1],
        f"{hosts}",
    )
    report_url = api.xcom(dag_id, run_id, "build_report") if ok else ""
    local = Path(urllib.parse.urlsplit(str(report_url)).path)
    files = (stored or {}).get("files") or []
    sent = ctx.sandbox.file(stored["id"], files[0]["filename"]) if stored and files else b""
    on_storage = local.read_bytes() if local.is_file() else None
    report.check(
        "follow-up: the report arrived byte for byte through shared object storage",
        str(report_url).startswith(ctx.airflow.env["AIRFLOW_VAR_SPP_EXAMPLE_STORAGE"])
        and on_storage is not None
        and sent == on_storage
        and len(files) == 1,
        f"{report_url} sha256={hashlib.sha256(sent).hexdigest()[:16]} ({len(sent)} bytes)",
    )
    ctx.report.handover = {
        "build_report@": hosts["build_report"],
        "post_followup@": hosts["post_followup"],
        "file": str(report_url),
        "bytes": len(sent),
        "identical": sent == on_storage,
    }
    _record_run(ctx, dag_id, run_id, run["state"], f"message {message_id} on order E4A269FC", [message_id])


def _check_reminders(ctx: Context, run: dict[str, Any], by_id: dict[int, dict[str, Any]]) -> None:
    """One reminder per Working order (1001, 1004), IDs from the mapped task's XCom."""
    api, report, dag_id, run_id = ctx.api, ctx.report, run["dag_id"], run["dag_run_id"]
    ok = report.check("spp_bulk_reminders run succeeded", run["state"] == "success", run_id)
    ids = [api.xcom(dag_id, run_id, "remind_client", i) for i in range(2)] if ok else []
    orders = sorted(by_id[i]["order_id"] for i in ids if i in by_id)
    report.check(
        "reminders: each mapped XCom ID is a stored message, one per Working order",
        orders == [1001, 1004],
        f"message_ids={ids} orders={orders}",
    )
    _record_run(ctx, dag_id, run_id, run["state"], f"messages {ids} on orders {orders}", ids)


def _check_alerts(ctx: Context, run: dict[str, Any], by_id: dict[int, dict[str, Any]]) -> None:
    """The staff-only note with the rankings file."""
    report, dag_id, run_id = ctx.report, run["dag_id"], run["dag_run_id"]
    _, message_id, stored = _posted(ctx, run, "note_rankings_landed", by_id)
    report.check(
        "alerts: the XCom ID is a staff-only note with one file on order 1002",
        stored is not None
        and stored["order_id"] == 1002
        and stored["staff_only"] is True
        and len(stored["files"]) == 1,
        f"message_id={message_id}",
    )
    _record_run(ctx, dag_id, run_id, run["state"], f"staff-only note {message_id} on order B7C3D2A1", [message_id])


def _check_failure_alert(ctx: Context, run: dict[str, Any]) -> None:
    """A run failed on purpose: the DAG-level notifier (run by the dag-processor) posts a staff-only alert."""
    report, dag_id, run_id = ctx.report, run["dag_id"], run["dag_run_id"]
    report.check("spp_pipeline_alerts with simulate_failure failed as asked", run["state"] == "failed", run_id)

    def alert() -> dict[str, Any] | None:
        return next((m for m in ctx.sandbox.messages() if run_id in m["message"]), None)

    try:
        found = wait_for("the failure notifier's note", alert, timeout=90, step=1, alive=ctx.alive)
    except CheckFailed:
        found = None
        log = ctx.procs.log_dir / "dag-processor.log"
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if "allback" in ln][-5:]
        report.check(
            "alerts: the DAG-level failure notifier posted its staff-only note",
            False,
            "no note; dag-processor log: " + " | ".join(lines),
        )
    if found is not None:
        report.check(
            "alerts: the DAG-level failure notifier posted its staff-only note, templates rendered",
            found["order_id"] == 1002 and found["staff_only"] is True and "{{" not in found["message"],
            repr(found["message"]),
        )
    _record_run(
        ctx,
        dag_id,
        run_id,
        run["state"],
        f"failure alert {found['id'] if found else None} on order B7C3D2A1",
        [found["id"]] if found else [],
    )


def check_task_kill(ctx: Context) -> None:
    """First tries SIGKILL their own task process after execute, after the 201, and mid-POST: 0 duplicates."""
    api, report, sandbox = ctx.api, ctx.report, ctx.sandbox
    in_flight_path = f"/api/order_messages/{TASK_KILL_POINTS['in_flight'][0]}"
    sandbox.add_fault(kind="slow", times=TASKS_PER_KILL_POINT, method="POST", path_prefix=in_flight_path, delay=5)
    before = len(sandbox.requests())
    run_id = api.trigger(TASK_KILL_DAG, {}, logical_date=_now_iso())
    say(f"Task kill: triggered {run_id}; first tries die around their POST")
    run = api.wait_for_run(TASK_KILL_DAG, run_id, timeout=RUN_TIMEOUT, on_poll=ctx.alive)
    sandbox.clear_faults()
    messages, requests = sandbox.messages(), sandbox.requests()[before:]
    logs = ctx.airflow.home / "logs" / f"dag_id={TASK_KILL_DAG}" / f"run_id={run_id}"
    ids: list[Any] = []
    counts: dict[str, str] = {}
    for kill_point, (order, ways) in TASK_KILL_POINTS.items():
        tasks = [f"{kill_point}_{i}" for i in range(TASKS_PER_KILL_POINT)]
        texts = [f"E2E task kill {kill_point} {i}, run {run_id}" for i in range(TASKS_PER_KILL_POINT)]
        stored = [[m["id"] for m in messages if m["message"] == text] for text in texts]
        tries = [api.tries(TASK_KILL_DAG, run_id, task) for task in tasks]
        answered = [
            api.xcom(TASK_KILL_DAG, run_id, task) if tr and tr[-1]["state"] == "success" else None
            for task, tr in zip(tasks, tries, strict=True)
        ]
        retry_logs = [
            "".join(
                path.read_text(errors="replace")
                for path in (logs / f"task_id={task}").glob("attempt=*.log")
                if path.name != "attempt=1.log"
            )
            for task in tasks
        ]
        said = {way: sum(1 for text in retry_logs if way in text) for way in ways}
        posts = sum(1 for r in requests if r["method"] == "POST" and r["path"] == f"/api/order_messages/{order}")
        ids += [i for i in answered if i is not None]
        counts[kill_point] = (
            f"{len(tasks)} tasks, {sum(1 for tr in tries if tr and tr[0]['state'] == 'failed')} "
            f"first tries killed, {sum(map(len, stored))} stored, {sum(max(0, len(s) - 1) for s in stored)} "
            f"duplicates, {sum(1 for s in stored if not s)} lost, {posts} POSTs; retries answered "
            + ", ".join(f"{n} {'from the claim' if way == FROM_CLAIM else 'by a look-up'}" for way, n in said.items())
        )
        report.check(
            f"task kill {kill_point}: each retry returned its first try's message, no second one was posted",
            all(len(s) == 1 for s in stored)
            and answered == [s[0] for s in stored]
            and all(any(way in text for way in ways) for text in retry_logs)
            and all(len(tr) >= 2 for tr in tries)
            and posts == len(tasks),
            counts[kill_point],
        )
    report.worker_kill["task process kills"] = "; ".join(f"{k}: {v}" for k, v in counts.items())
    _record_run(ctx, TASK_KILL_DAG, run_id, run["state"], f"messages {ids}", ids)


def check_worker_kill(ctx: Context) -> None:
    """SIGKILL the Celery worker running a task while its POST is in flight; the other worker finishes it."""
    api, report, sandbox = ctx.api, ctx.report, ctx.sandbox
    path = f"/api/order_messages/{KILL_ORDER}"
    sandbox.add_fault(kind="slow_commit", times=1, method="POST", path_prefix=path, delay=SLOW_COMMIT_DELAY)
    before = len(sandbox.requests())
    run_id = api.trigger(KILL_DAG, {}, logical_date=_now_iso())
    say(f"Worker kill: triggered {run_id}; waiting for its POST to reach the sandbox")

    def post_in_flight() -> dict[str, Any] | None:
        return next((r for r in sandbox.requests()[before:] if r["method"] == "POST" and r["path"] == path), None)

    wait_for("the POST", post_in_flight, timeout=RUN_TIMEOUT, step=0.2, alive=ctx.alive)
    (first,) = api.tries(KILL_DAG, run_id, "post_while_worker_dies") or [{}]
    victim = first.get("hostname")
    if victim not in WORKERS:
        raise CheckFailed(f"the task runs on {victim!r}, not on one of {WORKERS}")
    stored_at_kill = sum(1 for m in sandbox.messages() if m["order_id"] == KILL_ORDER_ID)
    pgid = ctx.procs.kill(victim, signal.SIGKILL)
    killed_at = time.time()
    say(
        f"Worker kill: SIGKILLed {victim} (process group {pgid}) with the POST in flight "
        f"({stored_at_kill} message stored yet)"
    )
    survivor = next(w for w in WORKERS if w != victim)
    run = api.wait_for_run(
        KILL_DAG,
        run_id,
        timeout=RUN_TIMEOUT,
        on_poll=lambda: ctx.procs.check_alive(*(n for n in ctx.procs.started if n != victim)),
    )
    tries = api.tries(KILL_DAG, run_id, "post_while_worker_dies")
    final = tries[-1]
    texts = [m for m in sandbox.messages() if m["order_id"] == KILL_ORDER_ID and run_id in m["message"]]
    posts = [r for r in sandbox.requests()[before:] if r["method"] == "POST" and r["path"] == path]
    gets = [r for r in sandbox.requests()[before:] if r["method"] == "GET" and r["path"].startswith(path)]
    message_id = api.xcom(KILL_DAG, run_id, "post_while_worker_dies") if run["state"] == "success" else None
    retry_started = parse_time(final.get("start_date"))
    ctx.report.worker_kill |= {
        "killed": victim,
        "finished_on": final.get("hostname"),
        "tries": len(tries),
        "stored_when_killed": stored_at_kill,
        "messages": len(texts),
        "duplicates": max(0, len(texts) - 1),
        "lost": 1 if not texts else 0,
        "POSTs": len(posts),
        "GETs": len(gets),
        "message_id": message_id,
        "kill_to_retry_s": f"{retry_started - killed_at:.0f}" if retry_started else "-",
    }
    report.check("worker kill: the POST was in flight (nothing stored yet) when the worker died", stored_at_kill == 0)
    report.check(
        "worker kill: the retry finished on the other worker with 0 duplicates and 0 lost",
        run["state"] == "success"
        and final.get("hostname") == survivor
        and len(tries) >= 2
        and len(texts) == 1
        and texts[0]["id"] == message_id,
        json.dumps(ctx.report.worker_kill),
    )
    _record_run(ctx, KILL_DAG, run_id, run["state"], f"message {message_id} after {victim} was SIGKILLed", [message_id])
    sandbox.clear_faults()
    restart_worker(ctx.procs, ctx.airflow, victim, ctx.alive)
