"""Exactly-once across task tries, against a sandbox that fails the way SPP behind a gateway does.

Each test runs the operator's ``execute`` as successive Airflow tries would (same task state store,
growing try number) against the real sandbox over HTTP, then counts what SPP stored.
"""

from __future__ import annotations

import os
import pathlib
import time
from typing import Any

import pendulum
import pytest

from airflow_provider_spp._internal.ledger import LEDGER_KEY, PostRecord, file_stamps
from airflow_provider_spp._internal.message_match import text_digest
from airflow_provider_spp.exceptions import (
    SppInputError,
    SppRateLimitError,
    SppServerError,
    SppStateStoreError,
    SppTransportError,
)
from airflow_provider_spp.models import OrderMessageRequest
from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator
from airflow_provider_spp.sandbox import SandboxServer
from tests.support.ledger_support import Store, task_context
from tests.support.task_fixtures import _as_in_a_task as _as_in_a_task
from tests.support.task_fixtures import sandbox as sandbox

pytestmark = pytest.mark.integration

ORDER = "E4A269FC"


def operator(**kwargs: Any) -> CreateOrderMessageOperator:
    kwargs.setdefault("order", ORDER)
    kwargs.setdefault("message", "Your report is ready")
    kwargs.setdefault("lost_answer_wait", 0)
    return CreateOrderMessageOperator(task_id="post", **kwargs)


def posts(server: SandboxServer) -> list[dict[str, Any]]:
    return [r for r in server.requests() if r["method"] == "POST"]


def wait_for_messages(server: SandboxServer, count: int, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while len(server.messages()) < count and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("kind", ["server_error_after_commit", "unavailable_after_commit", "gateway_timeout"])
def test_a_retry_after_a_5xx_that_followed_the_insert_returns_the_stored_message(
    sandbox: SandboxServer, kind: str
) -> None:
    store = Store()
    sandbox.add_fault(kind, method="POST")
    with pytest.raises(SppServerError):
        operator().execute(task_context(1, store))
    (stored,) = sandbox.messages()
    assert operator().execute(task_context(2, store)) == stored.id
    assert len(posts(sandbox)) == 1
    assert len(sandbox.messages()) == 1


# Sibling task instances (two map indexes, two tasks, two runs) posting the same text to the same order


def test_a_retry_after_a_502_never_adopts_a_sibling_task_instances_message(sandbox: SandboxServer) -> None:
    text = "Your report is ready"
    mine, sibling = Store(), Store()
    sandbox.add_fault("bad_gateway", method="POST")  # this POST only: SPP stored nothing
    with pytest.raises(SppServerError):
        operator(message=text).execute(task_context(1, mine, map_index=0))
    theirs = operator(message=text).execute(task_context(1, sibling, map_index=1))
    retried = operator(message=text).execute(task_context(2, mine, map_index=0))
    assert retried != theirs
    assert [m.message for m in sandbox.messages()] == [text, text]
    assert sorted(m.id for m in sandbox.messages()) == sorted([theirs, retried])


def test_a_retry_adopts_its_own_landed_post_next_to_a_siblings_message(sandbox: SandboxServer) -> None:
    text = "Your report is ready"
    mine, sibling = Store(), Store()
    theirs = operator(message=text).execute(task_context(1, sibling, map_index=1))
    sandbox.add_fault("gateway_timeout", method="POST")  # stored, then 504
    with pytest.raises(SppServerError):
        operator(message=text).execute(task_context(1, mine, map_index=0))
    own = next(m.id for m in sandbox.messages() if m.id != theirs)
    assert operator(message=text).execute(task_context(2, mine, map_index=0)) == own
    assert len(sandbox.messages()) == 2
    assert len(posts(sandbox)) == 2


def test_two_siblings_with_lost_answers_split_the_messages_between_them(sandbox: SandboxServer) -> None:
    text = "Your report is ready"
    first, second = Store(), Store()
    sandbox.add_fault("gateway_timeout", method="POST")  # first's POST stored, answer lost
    with pytest.raises(SppServerError):
        operator(message=text).execute(task_context(1, first, map_index=0))
    sandbox.add_fault("bad_gateway", method="POST")  # second's POST not stored
    with pytest.raises(SppServerError):
        operator(message=text).execute(task_context(1, second, map_index=1))
    (landed,) = sandbox.messages()
    from_second = operator(message=text).execute(task_context(2, second, map_index=1))
    from_first = operator(message=text).execute(task_context(2, first, map_index=0))
    # whichever retry looks first takes the one landed message; the other posts its own: two messages, two IDs
    assert {from_first, from_second} == {m.id for m in sandbox.messages()}
    assert landed.id in {from_first, from_second}
    assert len(sandbox.messages()) == 2


def test_without_a_state_store_a_retry_never_adopts_a_siblings_message(sandbox: SandboxServer) -> None:
    text = "Your report is ready"
    run_started = pendulum.now("UTC")
    theirs = operator(message=text).execute(task_context(1, None, run_started, map_index=1))
    sandbox.add_fault("bad_gateway", method="POST")
    with pytest.raises(SppServerError):
        operator(message=text).execute(task_context(1, None, run_started, map_index=0))
    retried = operator(message=text).execute(task_context(2, None, run_started, map_index=0))
    assert retried != theirs
    assert [m.message for m in sandbox.messages()] == [text, text]


def test_claims_that_cannot_be_read_fail_the_retry_before_it_adopts_or_posts(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from airflow.sdk import Variable

    store = Store()
    sandbox.add_fault("gateway_timeout", method="POST")
    with pytest.raises(SppServerError):
        operator().execute(task_context(1, store))

    def unreachable(*args: object, **kwargs: object) -> None:
        raise ConnectionError("execution API unreachable")

    monkeypatch.setattr(Variable, "get", unreachable)
    with pytest.raises(SppStateStoreError, match="claimed"):
        operator().execute(task_context(2, store))
    assert len(posts(sandbox)) == 1
    monkeypatch.setattr(Variable, "set", unreachable)
    posted = operator(message="Another text").execute(task_context(1, Store(), map_index=3))
    assert posted == sandbox.messages()[-1].id  # a post whose claim cannot be written still succeeds, warned
    out, err = capfd.readouterr()
    assert "Could not record message" in out + err


def test_a_same_text_message_created_before_the_first_post_on_spps_clock_is_never_adopted(
    sandbox: SandboxServer,
) -> None:
    text = "Your report is ready"
    written_by_hand = sandbox.store.create_message(order_id=1001, message=text)  # claimed by no task instance
    time.sleep(3.5)
    store = Store()
    sandbox.add_fault("bad_gateway", method="POST")  # nothing stored; the 502 still tells SPP's clock
    with pytest.raises(SppServerError):
        operator(message=text).execute(task_context(1, store))
    assert store.values[LEDGER_KEY]["clock_offset"] is not None
    retried = operator(message=text).execute(task_context(2, store))
    assert retried != written_by_hand.id
    assert [m.message for m in sandbox.messages()] == [text, text]


def test_an_unknown_outcome_stays_recorded_through_a_later_certain_failure(sandbox: SandboxServer) -> None:
    store = Store()
    sandbox.add_fault("slow_commit", method="POST", delay=1.5)
    with pytest.raises(SppTransportError):
        operator(lost_answer_wait=0.1).execute(task_context(1, store))
    # try 2 looks too early (SPP is still working on try 1), posts, and is certainly rejected
    sandbox.add_fault("rate_limit", times=4, method="POST", retry_after=0)
    with pytest.raises(SppRateLimitError):
        operator(lost_answer_wait=0.1).execute(task_context(2, store))
    assert sandbox.messages() == []
    wait_for_messages(sandbox, 1)
    (landed,) = sandbox.messages()
    requests_before = len(posts(sandbox))
    assert operator().execute(task_context(3, store)) == landed.id
    assert len(posts(sandbox)) == requests_before
    assert len(sandbox.messages()) == 1


def test_the_grace_counts_from_when_the_client_gave_up_not_from_when_it_sent(
    spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # timeout and grace equal, as the shipped defaults are (30 s and 30 s), scaled down; retry_delay 0
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=1.0, retry_backoff=0.01))
    store = Store()
    spp_sandbox.add_fault("slow_commit", method="POST", delay=1.6)
    with pytest.raises(SppTransportError):
        operator(lost_answer_wait=1.0).execute(task_context(1, store))
    found = operator(lost_answer_wait=1.0).execute(task_context(2, store))
    time.sleep(1.6)  # anything try 1 left in flight has landed by now
    (stored,) = spp_sandbox.messages()
    assert found == stored.id
    assert len(posts(spp_sandbox)) == 1


@pytest.mark.parametrize(("failing", "try_number"), [("set", 1), ("set", 2), ("get", 2)])
def test_a_state_store_that_fails_fails_the_try_without_posting(
    sandbox: SandboxServer, failing: str, try_number: int
) -> None:
    # a first try reads nothing (no earlier try can have left a record), so only a retry meets a failing read
    with pytest.raises(SppStateStoreError, match="task state store"):
        operator().execute(task_context(try_number, Store(failing=failing)))
    assert sandbox.requests() == []


def test_a_record_written_just_before_a_killed_post_makes_the_retry_look_first(sandbox: SandboxServer) -> None:
    from airflow_provider_spp.hooks.spp import SppHook

    store = Store()
    request = OrderMessageRequest.model_validate({"order": ORDER, "message": "Your report is ready"})
    store.values[LEDGER_KEY] = PostRecord.for_request(request, (), pendulum.now("UTC")).as_json()
    with SppHook() as hook:  # the killed try's POST reached SPP; its worker died before the answer
        landed = hook.create_order_message(ORDER, "Your report is ready")
    assert operator().execute(task_context(2, store)) == landed.id
    assert len(posts(sandbox)) == 1


def test_a_deferred_wait_for_a_killed_post_resumes_into_the_look_up_not_another_wait(sandbox: SandboxServer) -> None:
    from airflow.providers.common.compat.sdk import TaskDeferred

    store = Store()
    request = OrderMessageRequest.model_validate({"order": ORDER, "message": "Your report is ready"})
    store.values[LEDGER_KEY] = PostRecord.for_request(request, (), pendulum.now("UTC")).as_json()
    task = operator(lost_answer_wait=0.3, deferrable=True)
    with pytest.raises(TaskDeferred):
        task.execute(task_context(2, store))
    sandbox.store.create_message(order_id=1001, message="Your report is ready")
    time.sleep(0.35)
    (landed,) = sandbox.messages()
    assert task.execute_after_wait(task_context(2, store), event=None) == landed.id
    assert posts(sandbox) == []


def users_and_files(tmp_path: pathlib.Path) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    first, second = tmp_path / "report-v1.csv", tmp_path / "report-v2.csv"
    first.write_text("a,b\n1,2\n")
    second.write_text("a,b\n3,4\n")
    return {
        "order": ({"order": ORDER}, {"order": "B7C3D2A1"}),
        "sender": ({"user_id": None}, {"user_id": 3}),
        "visibility": ({"staff_only": None}, {"staff_only": True}),
        "files": ({"attachments": [str(first)]}, {"attachments": [str(second)]}),
    }


@pytest.mark.parametrize("change", ["order", "sender", "visibility", "files"])
def test_after_a_lost_answer_a_try_with_another_target_is_a_different_post(
    sandbox: SandboxServer, tmp_path: pathlib.Path, change: str
) -> None:
    before, after = users_and_files(tmp_path)[change]
    store = Store()
    sandbox.add_fault("drop_after", method="POST")
    with pytest.raises(SppTransportError):
        operator(**before).execute(task_context(1, store))
    (earlier,) = sandbox.messages()
    posted = operator(**after).execute(task_context(2, store))
    assert posted != earlier.id
    assert len(sandbox.messages()) == 2
    newest = sandbox.messages()[-1]
    assert newest.id == posted
    if change == "order":
        assert (earlier.order_id, newest.order_id) == (1001, 1002)


def test_a_cleared_task_whose_attachment_was_regenerated_sends_the_new_file(
    sandbox: SandboxServer, tmp_path: pathlib.Path
) -> None:
    report = tmp_path / "report.csv"
    report.write_bytes(b"week,visits\n47,1200\n")
    store = Store()
    first = operator(attachments=[str(report)]).execute(task_context(1, store))
    assert operator(attachments=[str(report)]).execute(task_context(2, store)) == first  # same file: no second post
    report.write_bytes(b"week,visits\n47,1250\n")  # regenerated: same name, same size, new content
    stat = report.stat()
    os.utime(report, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = operator(attachments=[str(report)]).execute(task_context(3, store))
    assert second != first
    assert [m.files[0].data for m in sandbox.messages()] == [b"week,visits\n47,1200\n", b"week,visits\n47,1250\n"]


def test_the_ledger_keeps_names_sizes_and_versions_of_files_never_their_bytes(sandbox: SandboxServer) -> None:
    store = Store()
    operator(attachments=[("client.txt", b"client secret notes")]).execute(task_context(1, store))
    record = store.values[LEDGER_KEY]
    ((name, size, version),) = record["files"]
    assert (name, size) == ("client.txt", 19)
    assert version.startswith("sha256:")
    assert "client secret notes" not in str(record)


def test_without_a_state_store_a_retry_waits_for_a_slow_commit_before_looking(
    spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=0.3, retry_backoff=0.01))
    run_started = pendulum.now("UTC")
    spp_sandbox.add_fault("slow_commit", method="POST", delay=1.0)
    with pytest.raises(SppTransportError):
        operator(lost_answer_wait=1.2).execute(task_context(1, None, run_started))
    found = operator(lost_answer_wait=1.2).execute(task_context(2, None, run_started))
    time.sleep(1.0)  # anything try 1 left in flight has landed by now
    (stored,) = spp_sandbox.messages()
    assert found == stored.id
    assert len(posts(spp_sandbox)) == 1


def test_without_a_state_store_the_wait_can_be_deferred_and_is_not_repeated(
    sandbox: SandboxServer,
) -> None:
    from airflow.providers.common.compat.sdk import TaskDeferred

    run_started = pendulum.now("UTC")
    sandbox.store.create_message(order_id=1001, message="Your report is ready")
    task = operator(lost_answer_wait=5, deferrable=True)
    with pytest.raises(TaskDeferred):
        task.execute(task_context(2, None, run_started))
    (landed,) = sandbox.messages()
    assert task.execute_after_wait(task_context(2, None, run_started)) == landed.id
    assert posts(sandbox) == []


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "30", True, None])
def test_lost_answer_wait_must_be_a_number_of_seconds(bad: Any) -> None:
    with pytest.raises(SppInputError, match="lost_answer_wait must be a number of seconds >= 0"):
        operator(lost_answer_wait=bad)


def test_file_stamps_name_size_and_version() -> None:
    from airflow_provider_spp._internal.attachments import prepare_attachments

    (stamp,) = file_stamps(prepare_attachments([("a.txt", b"abc")]))
    assert stamp[:2] == ("a.txt", 3)


@pytest.mark.filterwarnings("ignore:UPath 'flakyfs' filesystem not explicitly implemented")
def test_an_attachment_that_cannot_be_opened_for_the_upload_leaves_nothing_to_look_for(sandbox: SandboxServer) -> None:
    from airflow_provider_spp.exceptions import SppAttachmentUnavailableError
    from tests.support.flaky_storage import install

    storage = install()
    try:
        storage.files["bucket/reports/report.csv"] = b"id,total\n1,20\n"
        storage.fail("open", ConnectionError("connection reset by peer"), times=1)
        store = Store()
        with pytest.raises(SppAttachmentUnavailableError):
            operator(attachments=["flakyfs://bucket/reports/report.csv"], lost_answer_wait=30).execute(
                task_context(1, store)
            )
        assert store.values[LEDGER_KEY]["in_flight"] is False
        posted = operator(attachments=["flakyfs://bucket/reports/report.csv"], lost_answer_wait=30).execute(
            task_context(2, store)
        )
        assert [r["method"] for r in sandbox.requests()] == ["POST"]  # no look-up, so no 30 s wait either
        assert [m.id for m in sandbox.messages()] == [posted]
    finally:
        storage.reset()


# The operator over plain spp_sandbox connections (moved from tests/unit/test_operators.py)


def test_without_a_state_store_a_retry_looks_back_to_the_run_start(spp_sandbox, spp_sandbox_conn) -> None:
    from airflow_provider_spp.hooks.spp import SppHook

    run_started = pendulum.now("UTC").subtract(minutes=1)
    earlier = SppHook().create_order_message("E4A269FC", "Sent by try 1")
    operator = CreateOrderMessageOperator(task_id="post", order="E4A269FC", message="Sent by try 1")
    assert operator.execute(task_context(2, run_started=run_started)) == earlier.id  # type: ignore[arg-type]
    assert [r["method"] for r in spp_sandbox.requests()] == ["POST", "GET"]
    assert len(spp_sandbox.messages()) == 1
    assert operator.execute(task_context(1, run_started=run_started)) != earlier.id  # type: ignore[arg-type]
    assert len(spp_sandbox.messages()) == 2


def test_the_state_store_records_the_first_try_and_the_message_id(spp_sandbox, spp_sandbox_conn) -> None:
    from airflow_provider_spp._internal.ledger import LEDGER_KEY

    store = Store()
    operator = CreateOrderMessageOperator(task_id="post", order="B7C3D2A1", message="Recorded")
    message_id = operator.execute(task_context(1, store=store))  # type: ignore[arg-type]
    record = store.values[LEDGER_KEY]
    assert isinstance(record, dict)
    # In flight until a retry reads it: the claim on the message, naming this POST, recorded the outcome.
    assert (record["order"], record["message_id"], record["in_flight"]) == ("B7C3D2A1", None, True)
    assert record["digests"] == [text_digest("Recorded")]
    assert record["files"] == []
    assert "Recorded" not in str(record)
    assert pendulum.parse(record["first_sent_at"]) <= pendulum.now("UTC")  # type: ignore[operator]
    assert operator.execute(task_context(2, store=store)) == message_id  # type: ignore[arg-type]
    confirmed = store.values[LEDGER_KEY]
    assert (confirmed["message_id"], confirmed["in_flight"]) == (message_id, False)
    assert [r["method"] for r in spp_sandbox.requests()] == ["POST"]


def _post(store: Store, try_number: int, message: str, order: str = "E4A269FC", **kwargs: object) -> int:
    kwargs.setdefault("lost_answer_wait", 0)
    operator = CreateOrderMessageOperator(task_id="post", order=order, message=message, **kwargs)  # type: ignore[arg-type]
    return operator.execute(task_context(try_number, store=store))  # type: ignore[arg-type]


def test_a_changed_message_after_a_successful_post_is_posted(spp_sandbox, spp_sandbox_conn) -> None:
    store = Store()
    first = _post(store, 1, "Total: 10 EUR")
    corrected = _post(store, 2, "Total: 12 EUR (corrected)")
    assert corrected != first
    assert [m.message for m in spp_sandbox.messages()] == ["Total: 10 EUR", "Total: 12 EUR (corrected)"]
    assert _post(store, 3, "Total: 12 EUR (corrected)") == corrected
    assert len(spp_sandbox.messages()) == 2


def test_a_retry_finds_the_lost_post_even_if_its_text_renders_differently(spp_sandbox, spp_sandbox_conn) -> None:
    from airflow_provider_spp.exceptions import SppTransportError

    store = Store()
    spp_sandbox.add_fault("drop_after", method="POST")
    with pytest.raises(SppTransportError):
        _post(store, 1, "Report generated at 10:00:01")
    (stored,) = spp_sandbox.messages()
    assert _post(store, 2, "Report generated at 10:05:02") == stored.id
    assert len(spp_sandbox.messages()) == 1


def test_a_retry_after_a_certain_failure_never_adopts_another_tasks_message(spp_sandbox, spp_sandbox_conn) -> None:
    from airflow_provider_spp.exceptions import SppRateLimitError

    text = "New files were uploaded to your order."
    other_task = _post(Store(), 1, text)
    store = Store()
    spp_sandbox.add_fault("rate_limit", times=4, method="POST", retry_after=0)
    with pytest.raises(SppRateLimitError):
        _post(store, 1, text)
    own = _post(store, 2, text)
    assert own != other_task
    assert [m.message for m in spp_sandbox.messages()] == [text, text]


def test_a_retry_waits_for_a_request_the_server_was_still_processing(
    spp_sandbox, spp_sandbox_conn, monkeypatch
) -> None:
    import json

    from airflow_provider_spp.exceptions import SppTransportError

    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=0.3, retry_backoff=0.01))
    store = Store()
    spp_sandbox.add_fault("slow_commit", method="POST", delay=1.0)
    with pytest.raises(SppTransportError):
        _post(store, 1, "Committed late", lost_answer_wait=1.5)
    assert spp_sandbox.messages() == []
    operator = CreateOrderMessageOperator(
        task_id="post", order="E4A269FC", message="Committed late", lost_answer_wait=1.5
    )
    found = operator.execute(task_context(2, store=store))  # type: ignore[arg-type]
    (stored,) = spp_sandbox.messages()
    assert found == stored.id
    assert json.dumps(store.values).count(str(found)) >= 1
