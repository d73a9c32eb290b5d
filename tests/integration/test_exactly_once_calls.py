"""How many task state store and Variable round trips each exactly-once path makes (issue 16).

In a task each one is a round trip through the supervisor to Airflow's Execution API (~10-50 ms under
load), so the count is the cost: a first try never reads a record that cannot exist yet. The counts are
asserted, not the time.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_spp.exceptions import SppRateLimitError, SppServerError
from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator
from airflow_provider_spp.sandbox import SandboxServer
from tests.support.ledger_support import Store, task_context
from tests.support.task_fixtures import _as_in_a_task as _as_in_a_task
from tests.support.task_fixtures import sandbox as sandbox

pytestmark = pytest.mark.integration

ORDER = "E4A269FC"


@pytest.fixture
def variable_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every Variable.get / Variable.set the operator makes (claims), in order, still reaching the DB."""
    from airflow.sdk import Variable

    calls: list[str] = []
    get, set_ = Variable.get, Variable.set

    def counted_get(*args: Any, **kwargs: Any) -> Any:
        calls.append("get")
        return get(*args, **kwargs)

    def counted_set(*args: Any, **kwargs: Any) -> Any:
        calls.append("set")
        return set_(*args, **kwargs)

    monkeypatch.setattr(Variable, "get", counted_get)
    monkeypatch.setattr(Variable, "set", counted_set)
    return calls


def post(store: Store, try_number: int, **kwargs: Any) -> int:
    kwargs.setdefault("lost_answer_wait", 0)
    task = CreateOrderMessageOperator(task_id="post", order=ORDER, message="Your report is ready", **kwargs)
    return task.execute(task_context(try_number, store))


def test_a_first_try_that_succeeds_reads_nothing_and_writes_before_and_after(
    sandbox: SandboxServer, variable_calls: list[str]
) -> None:
    store = Store()
    message_id = post(store, 1)
    assert store.calls == ["set"]  # in flight before the POST; no read
    assert variable_calls == ["get", "set"]  # the claim naming that POST is its outcome's record: read, write
    assert [m.id for m in sandbox.messages()] == [message_id]


def test_a_retry_of_a_successful_try_finds_its_claim_posts_nothing_and_never_waits(
    sandbox: SandboxServer, variable_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store()
    message_id = post(store, 1)
    store.calls.clear()
    variable_calls.clear()
    monkeypatch.setattr("time.sleep", no_wait)
    assert post(store, 2, lost_answer_wait=3600) == message_id
    assert store.calls == ["get", "set"]  # the record (in flight), then the ID its claim gave
    assert variable_calls == ["get"]
    store.calls.clear()
    variable_calls.clear()
    assert post(store, 3, lost_answer_wait=3600) == message_id
    assert (store.calls, variable_calls) == (["get"], [])
    assert len(sandbox.messages()) == 1


def test_a_success_whose_claim_cannot_be_written_records_its_outcome_in_the_ledger(
    sandbox: SandboxServer, variable_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk import Variable

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        variable_calls.append("set failed")
        raise ConnectionError("execution API unreachable")

    monkeypatch.setattr(Variable, "set", unreachable)
    store = Store()
    message_id = post(store, 1)
    assert store.calls == ["set", "set"]  # in flight, then the message ID: the claim did not say it
    assert variable_calls == ["get", "set failed"]
    store.calls.clear()
    monkeypatch.setattr("time.sleep", no_wait)
    assert post(store, 2, lost_answer_wait=3600) == message_id
    assert store.calls == ["get"]
    assert len(sandbox.messages()) == 1


def no_wait(seconds: float) -> None:
    raise AssertionError(f"the retry waited {seconds} s for an answer it already had")


def test_a_retry_after_an_unknown_outcome_reads_once_looks_and_records_what_it_found(
    sandbox: SandboxServer, variable_calls: list[str]
) -> None:
    store = Store()
    sandbox.add_fault("gateway_timeout", method="POST")  # stored, then 504
    with pytest.raises(SppServerError):
        post(store, 1)
    assert store.calls == ["set", "set"]
    assert variable_calls == []  # nothing to claim without an ID
    store.calls.clear()
    (landed,) = sandbox.messages()
    assert post(store, 2) == landed.id
    assert store.calls == ["get", "set"]  # the record, then its message ID; no write before a look
    assert variable_calls == ["get", "get", "set", "get"]  # others' claims, then the claim
    assert len(sandbox.messages()) == 1


def test_a_certain_failure_writes_before_and_after_and_claims_nothing(
    sandbox: SandboxServer, variable_calls: list[str]
) -> None:
    store = Store()
    sandbox.add_fault("rate_limit", times=4, method="POST", retry_after=0)
    with pytest.raises(SppRateLimitError):
        post(store, 1)
    assert store.calls == ["set", "set"]  # in flight, then rejected
    assert variable_calls == []
    assert sandbox.messages() == []


def test_without_deduplicate_no_record_and_no_claim(sandbox: SandboxServer, variable_calls: list[str]) -> None:
    store = Store()
    post(store, 2, deduplicate=False)
    assert store.calls == []
    assert variable_calls == []


def test_a_try_whose_connection_is_missing_records_nothing_so_its_retry_posts_at_once(
    sandbox: SandboxServer, variable_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.common.compat.sdk import AirflowNotFoundException

    store = Store()
    with pytest.raises(AirflowNotFoundException):
        post(store, 1, spp_conn_id="spp_not_set_up_yet")
    assert store.calls == []  # nothing left the machine: no record "in flight" for the retry to wait on
    monkeypatch.setattr("time.sleep", no_wait)
    message_id = post(store, 2, lost_answer_wait=3600)
    assert [m.id for m in sandbox.messages()] == [message_id]
