"""The reacting examples in the deployment: a deferred reply wait, the approval (HITL) notifier, the deadline
alert and the asset-triggered notification, each run for real and checked against the sandbox.

The activity watcher (reply triage), with its triggerer kills, is in :mod:`tests.e2e.activity`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tests.e2e.deploy import CheckFailed, say, wait_for
from tests.e2e.rest import HttpError, parse_time

if TYPE_CHECKING:
    from tests.e2e.checks import Context

WAIT_DAG, APPROVAL_DAG, DEADLINE_DAG = "spp_followup_and_wait", "spp_approval", "spp_deadline_alert"
EXPORT_DAG, NOTIFY_DAG = "spp_nightly_export", "spp_asset_notification"
TRIAGE_DAG = "spp_reply_triage"
#: Every reacting example this suite runs (the E2E waits until each is parsed).
REACTING_DAGS = (WAIT_DAG, APPROVAL_DAG, DEADLINE_DAG, EXPORT_DAG, NOTIFY_DAG, TRIAGE_DAG)
ORDER_IDS = {"E4A269FC": 1001, "B7C3D2A1": 1002, "9F8E7D6C": 1003, "00C0FFEE": 1004}
#: Seconds between the activity watcher's polls, and the deadline example made late (report > deadline).
POLL_INTERVAL, DEADLINE_SECONDS, REPORT_SECONDS = 3, 15, 40
#: What the examples read to be quick (defaults are hours), and a triggerer whose death is noticed in 15 s.
DEPLOYMENT_ENV = {
    "SPP_EXAMPLE_POKE_INTERVAL": "3",
    "SPP_EXAMPLE_REPLY_TIMEOUT": "300",
    "SPP_EXAMPLE_DEADLINE_SECONDS": str(DEADLINE_SECONDS),
    "SPP_EXAMPLE_REPORT_SECONDS": str(REPORT_SECONDS),
    "SPP_EXAMPLE_POLL_INTERVAL": str(POLL_INTERVAL),
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15",
}
STEP_TIMEOUT = 240.0
#: The export and the notification run on one worker: the example hands the file over by its local path.
QUEUE_ROUTES = {f"{EXPORT_DAG}.export_rankings": "worker-a", f"{NOTIFY_DAG}.tell_client": "worker-a"}


def start_reacting_examples(ctx: Context) -> None:
    """Start the reply wait, the approval, the late report and the export (they run while other steps do)."""
    api = ctx.api
    for dag_id in (WAIT_DAG, APPROVAL_DAG, DEADLINE_DAG, NOTIFY_DAG, EXPORT_DAG):
        api.unpause(dag_id)  # the export's scheduled run updates the asset the notification waits on
    for dag_id in (WAIT_DAG, APPROVAL_DAG, DEADLINE_DAG):
        ctx.runs[dag_id] = api.trigger(dag_id, {})
    say(f"Reacting examples: triggered {[ctx.runs[d] for d in (WAIT_DAG, APPROVAL_DAG, DEADLINE_DAG)]}")


def check_unattended_examples(ctx: Context) -> None:
    """The examples that need nobody: the late report's deadline alerts and the asset-triggered notification."""
    if DEADLINE_DAG not in ctx.runs:
        start_reacting_examples(ctx)
    guarded(ctx, "deadline", _check_deadline)
    guarded(ctx, "asset notification", _check_asset_notification)
    ctx.runs["unattended checked"] = "yes"


def check_reacting_examples(ctx: Context) -> None:
    """The reply wait (a client reply posted now) and the approval (approved now through the REST API)."""
    if "unattended checked" not in ctx.runs:
        check_unattended_examples(ctx)
    guarded(ctx, "reply wait", _check_reply_wait, ctx.runs[WAIT_DAG])
    guarded(ctx, "approval", _check_approval, ctx.runs[APPROVAL_DAG])


def guarded(ctx: Context, name: str, check: Callable[..., None], *args: Any) -> None:
    """Run one check; a timeout or an API error fails that check, not the whole E2E run."""
    try:
        check(ctx, *args)
    except (CheckFailed, HttpError) as err:
        ctx.report.check(f"{name}: ran to the end", False, str(err))


def _wait_for_state(ctx: Context, dag_id: str, run_id: str, task_id: str, *states: str) -> float:
    """Wait until the task instance is in one of ``states``; returns when that was seen (time.time())."""
    wait_for(
        f"{dag_id}.{task_id} to be {' or '.join(states)}",
        lambda: ctx.api.task_state(dag_id, run_id, task_id) in states,
        timeout=STEP_TIMEOUT,
        step=1,
        alive=ctx.alive,
    )
    return time.time()


def _check_reply_wait(ctx: Context, run_id: str) -> None:
    """The deferred sensor sees the client's reply posted while it waits on the triggerer; XCom holds its ID."""
    from tests.e2e.checks import _record_run

    api, report = ctx.api, ctx.report
    deferred_at = _wait_for_state(ctx, WAIT_DAG, run_id, "wait_for_reply", "deferred")
    time.sleep(2)  # the trigger has polled at least once without a reply
    reply = ctx.sandbox.client_message("E4A269FC", f"Here are the logins (E2E reply for {run_id}).")
    replied_at = time.time()
    run = api.wait_for_run(WAIT_DAG, run_id, timeout=STEP_TIMEOUT, on_poll=ctx.alive)
    tis = {ti["task_id"]: ti for ti in api.task_instances(WAIT_DAG, run_id)}
    waited = api.xcom(WAIT_DAG, run_id, "wait_for_reply") if run["state"] == "success" else None
    asked = api.xcom(WAIT_DAG, run_id, "ask_for_logins") if run["state"] == "success" else None
    thanked = api.xcom(WAIT_DAG, run_id, "acknowledge") if run["state"] == "success" else None
    sensor_end = parse_time(tis.get("wait_for_reply", {}).get("end_date")) or 0.0
    figures = (
        f"deferred {replied_at - deferred_at:.0f} s before the reply; reply {reply['id']} seen and the task "
        f"done {sensor_end - replied_at:.1f} s after it was posted; XCom {waited}"
    )
    report.check(
        "reply wait: the deferred sensor saw the client reply posted while it waited (XCom = that message ID)",
        run["state"] == "success"
        and isinstance(waited, dict)
        and waited.get("message_id") == reply["id"]
        and waited.get("author") == "client"
        and (tis.get("acknowledge") or {}).get("state") == "success"
        and (tis.get("escalate") or {}).get("state") == "skipped",
        figures,
    )
    report.figures.setdefault("Reacting examples", []).append(f"reply wait: {figures}")
    _record_run(
        ctx,
        WAIT_DAG,
        run_id,
        run["state"],
        f"asked {asked}, reply {reply['id']}, thanked {thanked}",
        [asked, reply["id"], thanked],
    )


def _check_approval(ctx: Context, run_id: str) -> None:
    """The HITL notifier's staff-only note (with the link) is posted; approved via REST, the reminder goes out."""
    from tests.e2e.checks import _record_run

    api, report = ctx.api, ctx.report
    _wait_for_state(ctx, APPROVAL_DAG, run_id, "approve_reminder", "awaiting_input", "deferred")
    note = wait_for(
        "the approval notifier's note",
        lambda: next(
            (
                m
                for m in ctx.sandbox.messages()
                if m["order_id"] == ORDER_IDS["00C0FFEE"] and "Approval needed" in m["message"]
            ),
            None,
        ),
        timeout=60,
        alive=ctx.alive,
    )
    link_ok = f"Respond in Airflow: {ctx.airflow.api_url}/" in note["message"]
    report.check(
        "approval: the HITL notifier posted a staff-only note with the link to the required action",
        note["staff_only"] is True and link_ok and "{{" not in note["message"],
        repr(note["message"][-160:]),
    )
    detail = api.hitl(APPROVAL_DAG, run_id, "approve_reminder")
    asked_at = time.time()
    answer = api.hitl(APPROVAL_DAG, run_id, "approve_reminder", {"chosen_options": ["Approve"]})
    run = api.wait_for_run(APPROVAL_DAG, run_id, timeout=STEP_TIMEOUT, on_poll=ctx.alive)
    sent = api.xcom(APPROVAL_DAG, run_id, "send_reminder") if run["state"] == "success" else None
    stored = next((m for m in ctx.sandbox.messages() if m["id"] == sent), None)
    report.check(
        "approval: approved through the REST API (PATCH hitlDetails), the reminder was posted to the client",
        run["state"] == "success"
        and answer.get("chosen_options") == ["Approve"]
        and stored is not None
        and stored["order_id"] == ORDER_IDS["00C0FFEE"]
        and stored["staff_only"] is False
        and stored["message"].startswith("Friendly reminder"),
        f"options {detail.get('options')}, note {note['id']}, reminder {sent}, run done "
        f"{(parse_time(run.get('end_date')) or asked_at) - asked_at:.1f} s after the approval",
    )
    _record_run(ctx, APPROVAL_DAG, run_id, run["state"], f"note {note['id']}, reminder {sent}", [note["id"], sent])


def _check_deadline(ctx: Context) -> None:
    """Every run of the late report (the manual one, and the scheduled one unpausing started) gets its alert."""
    from tests.e2e.checks import _record_run

    api, report = ctx.api, ctx.report
    runs = [
        api.wait_for_run(DEADLINE_DAG, r["dag_run_id"], timeout=STEP_TIMEOUT, on_poll=ctx.alive)
        for r in api.runs(DEADLINE_DAG)
    ]

    def notes() -> dict[str, dict[str, Any]] | None:
        found = {
            r["dag_run_id"]: next(
                (
                    m
                    for m in ctx.sandbox.messages()
                    if r["dag_run_id"] in m["message"] and "missed its deadline" in m["message"]
                ),
                None,
            )
            for r in runs
        }
        return found if all(found.values()) else None

    try:
        found = wait_for("every deadline alert", notes, timeout=120, step=2, alive=ctx.alive)
    except CheckFailed:
        found = {}
    for run in runs:
        note = found.get(run["dag_run_id"])
        queued = parse_time(run.get("queued_at")) or 0.0
        posted = parse_time(note["created_at"]) if note and note.get("created_at") else None
        report.check(
            f"deadline: the late {run['run_type']} run's DeadlineAlert posted its staff-only note (AsyncCallback)",
            note is not None
            and note["staff_only"] is True
            and note["order_id"] == ORDER_IDS["B7C3D2A1"]
            and "{{" not in note["message"],
            f"{run['dag_run_id']}: deadline {DEADLINE_SECONDS} s, report {REPORT_SECONDS} s, note "
            f"{note['id'] if note else None} posted {f'{posted - queued:.0f} s after queued' if posted else '-'}, "
            f"run ended {(parse_time(run.get('end_date')) or queued) - queued:.0f} s after queued",
        )
        _record_run(
            ctx,
            DEADLINE_DAG,
            run["dag_run_id"],
            run["state"],
            f"deadline note {note and note['id']}",
            [note["id"]] if note else [],
        )


def _check_asset_notification(ctx: Context) -> None:
    """The export's asset event starts the notification, which posts the file to both orders it names."""
    from tests.e2e.checks import _record_run

    api, report = ctx.api, ctx.report
    started = wait_for(
        "a run of the asset notification", lambda: api.runs(NOTIFY_DAG), timeout=STEP_TIMEOUT, step=2, alive=ctx.alive
    )
    for item in started:
        run = api.wait_for_run(NOTIFY_DAG, item["dag_run_id"], timeout=STEP_TIMEOUT, on_poll=ctx.alive)
        tis = [ti for ti in api.task_instances(NOTIFY_DAG, run["dag_run_id"]) if ti["task_id"] == "tell_client"]
        ids = [
            api.xcom(NOTIFY_DAG, run["dag_run_id"], "tell_client", ti["map_index"])
            for ti in tis
            if ti["state"] == "success"
        ]
        stored = [m for m in ctx.sandbox.messages() if m["id"] in ids]
        report.check(
            "asset notification: the export's asset event started a run that posted the file to both orders",
            run["state"] == "success"
            and run["run_type"] == "asset_triggered"
            and sorted(m["order_id"] for m in stored) == [ORDER_IDS["E4A269FC"], ORDER_IDS["00C0FFEE"]]
            and all(len(m["files"]) == 1 for m in stored),
            f"{run['dag_run_id']}: messages {ids}",
        )
        _record_run(ctx, NOTIFY_DAG, run["dag_run_id"], run["state"], f"messages {ids}", ids)
