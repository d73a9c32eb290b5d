"""The reply wait keeps its promises against a faithful sandbox: SPP's clock, retries, bad patterns, SPP's own
messages, server-side filters. The sensor runs as a worker runs it (``execute`` with a task's context); the
trigger as a triggerer runs it (``run()`` on an event loop)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest

from airflow_provider_spp.sandbox import SandboxServer
from airflow_provider_spp.sensors.order_messages import SppOrderMessageSensor
from airflow_provider_spp.triggers.order_message import SppOrderMessageTrigger
from tests.integration.test_triggers import first_events
from tests.support.background import background_actions
from tests.support.ledger_support import Store

pytestmark = pytest.mark.integration

ORDER = "E4A269FC"
ORDER_ID = 1001
CATASTROPHIC = r"(a+)+$"  # on "aaaa...b", re.search backtracks 2**n times


@pytest.fixture
def conn(spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=2, retry_backoff=0.01))
    return spp_sandbox


def sensor(**kwargs: Any) -> SppOrderMessageSensor:
    """A sensor as the worker holds it once templates are rendered (poke mode, short waits)."""
    return SppOrderMessageSensor(
        task_id="wait", **{"order": ORDER, "poke_interval": 0.2, "timeout": 3, "mode": "poke", **kwargs}
    )


def context(store: Store | None, *, max_tries: int = 1) -> dict[str, Any]:
    """What a try's context holds for the sensor: the task instance (its series of tries) and the state store."""
    from types import SimpleNamespace

    ctx: dict[str, Any] = {"ti": SimpleNamespace(max_tries=max_tries, try_number=1)}
    if store is not None:
        ctx["task_state_store"] = store
    return ctx


@pytest.fixture
def once_read(conn: SandboxServer) -> Iterator[Callable[[Callable[[], Any]], None]]:
    """Run ``then()`` in the background right after the order's messages are first listed."""
    path = f"/api/order_messages/{ORDER}"
    with background_actions() as when:
        yield lambda then: when(lambda: any(r["path"] == path for r in conn.requests()), then, within=20)


# -- the default baseline: SPP's clock, once, across tries ------------------------------------------------


def test_a_poking_sensor_sees_a_reply_when_spps_clock_is_behind(conn: SandboxServer, once_read: Any) -> None:
    conn.configure(clock_offset=-5)
    replies: list[Any] = []
    once_read(lambda: replies.append(conn.post_as_client(ORDER, "here you go")))
    result = sensor(from_client=True).execute(context(Store()))
    assert result["message_id"] == replies[0].id


def test_a_deferred_sensor_hands_its_trigger_a_baseline_on_spps_clock(conn: SandboxServer) -> None:
    from airflow.providers.common.compat.sdk import TaskDeferred

    conn.configure(clock_offset=-5)
    with pytest.raises(TaskDeferred) as deferred:
        sensor(from_client=True, deferrable=True, timeout=3).execute(context(Store()))
    trigger = deferred.value.trigger
    since = datetime.fromisoformat(trigger.since)
    assert abs((since - (datetime.now(UTC) - timedelta(seconds=5))).total_seconds()) < 3
    reply = conn.post_as_client(ORDER, "here you go")
    (event,) = asyncio.run(first_events(trigger, 1))
    assert event["status"] == "success"
    assert event["message_id"] == reply.id


def test_a_retry_waits_from_the_first_tries_baseline(conn: SandboxServer) -> None:
    from airflow.providers.common.compat.sdk import AirflowSensorTimeout

    store = Store()
    with pytest.raises(AirflowSensorTimeout):
        sensor(from_client=True, timeout=1, retries=1).execute(context(store))
    reply = conn.post_as_client(ORDER, "answered while the task waited for its retry")
    time.sleep(1.1)  # the retry starts in a later second than the reply
    result = sensor(from_client=True, timeout=2, retries=1).execute(context(store))
    assert result["message_id"] == reply.id
    # A task cleared to wait again (Airflow raises max_tries) starts a new series and a new baseline.
    time.sleep(2.1)  # a baseline read from a whole-second Date header may be up to 2 s early
    with pytest.raises(AirflowSensorTimeout):
        sensor(from_client=True, timeout=1, retries=1).execute(context(store, max_tries=3))


# -- a user's pattern is bounded ------------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_a_catastrophic_pattern_reports_an_error_and_never_stalls_the_event_loop(conn: SandboxServer) -> None:
    before = conn.post_as_client(ORDER, "before")
    conn.post_as_client(ORDER, "a" * 40 + "b")
    trigger = SppOrderMessageTrigger(order=ORDER, after_message_id=before.id, pattern=CATASTROPHIC, poke_interval=0.1)
    gaps: list[float] = []

    async def scenario() -> list[dict[str, Any]]:
        async def ticker() -> None:
            while True:
                started = time.monotonic()
                await asyncio.sleep(0.05)
                gaps.append(time.monotonic() - started)

        ticking = asyncio.create_task(ticker())
        try:
            return await first_events(trigger, 1, timeout=30)
        finally:
            ticking.cancel()

    (event,) = asyncio.run(scenario())
    assert event["status"] == "error"
    assert "took more than" in event["message"]
    assert "aaaa" not in event["message"]  # never the client's text
    assert max(gaps) < 1.0  # the loop kept running while the pattern ran


@pytest.mark.timeout(90)
def test_a_catastrophic_pattern_fails_a_poking_sensor_instead_of_hanging(conn: SandboxServer) -> None:
    from airflow.providers.common.compat.sdk import AirflowFailException

    before = conn.post_as_client(ORDER, "before")
    conn.post_as_client(ORDER, "a" * 40 + "b")
    with pytest.raises(AirflowFailException, match="took more than"):
        sensor(after_message_id=before.id, pattern=CATASTROPHIC).execute(context(Store()))


def test_a_pattern_still_picks_the_oldest_matching_reply(conn: SandboxServer) -> None:
    before = conn.post_as_client(ORDER, "before")
    conn.post_as_client(ORDER, "maybe later")
    wanted = conn.post_as_client(ORDER, "approved: yes")
    conn.post_as_client(ORDER, "approved: yes, again")
    result = sensor(after_message_id=before.id, pattern=r"^approved:\s+yes").execute(context(Store()))
    assert result["message_id"] == wanted.id


# -- SPP's own messages, and what the server is asked for ----------------------------------------------------


@pytest.mark.parametrize("deferred", [False, True], ids=["poke", "trigger"])
def test_a_from_client_wait_ignores_messages_spp_generated(conn: SandboxServer, deferred: bool) -> None:
    before = conn.post_as_client(ORDER, "before")
    conn.post_auto_generated(ORDER)  # written by the service, in the client's name
    reply = conn.post_as_client(ORDER, "Thanks, all good", via="email")
    if deferred:
        trigger = SppOrderMessageTrigger(order=ORDER, after_message_id=before.id, from_client=True, poke_interval=0.1)
        (event,) = asyncio.run(first_events(trigger, 1))
    else:
        event = sensor(after_message_id=before.id, from_client=True).execute(context(Store()))
    assert event["message_id"] == reply.id
    assert event["author"] == "client"
    assert event["via"] == "email"


def message_listings(conn: SandboxServer) -> list[dict[str, Any]]:
    return [r for r in conn.requests() if r["method"] == "GET" and r["path"] == f"/api/order_messages/{ORDER}"]


@pytest.mark.parametrize("ignored", [False, True], ids=["filtered", "filters-ignored"])
@pytest.mark.parametrize("by", ["id", "time"])
def test_the_wait_asks_for_new_messages_only_and_is_right_when_spp_ignores_that(
    conn: SandboxServer, ignored: bool, by: str
) -> None:
    conn.configure(ignore_filters_and_sort=ignored)
    for n in range(150):  # more than a page of old messages
        conn.store.create_message(order_id=ORDER_ID, message=f"old {n}", user_id=3)
    time.sleep(1.1)  # the time baseline is in a later second than the old messages
    since = datetime.now(UTC)
    before = conn.post_as_client(ORDER, "before")
    reply = conn.post_as_client(ORDER, "the reply")
    conn.store.clear_requests()
    baseline = {"after_message_id": before.id} if by == "id" else {"since": since.isoformat()}
    trigger = SppOrderMessageTrigger(order=ORDER, from_client=True, contains="reply", poke_interval=0.1, **baseline)
    (event,) = asyncio.run(first_events(trigger, 1))
    assert event["message_id"] == reply.id
    query = parse_qs(message_listings(conn)[0]["query"])
    if by == "id":
        assert query["filters[id][$gt]"] == [str(before.id)]
    else:
        (earliest,) = query["filters[created_at][$gte]"]
        assert datetime.fromisoformat(earliest) <= since
    # Never more requests than reading the whole listing; one when SPP honours the filter.
    assert len(message_listings(conn)) == (2 if ignored else 1)


# -- return_text: the client's text goes to XCom only --------------------------------------------------------


def test_return_text_keeps_the_client_text_out_of_the_trigger_event(conn: SandboxServer) -> None:
    from airflow.providers.common.compat.sdk import TaskDeferred

    before = conn.post_as_client(ORDER, "before")
    waiting = sensor(after_message_id=before.id, from_client=True, return_text=True, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        waiting.execute(context(Store()))
    reply = conn.post_as_client(ORDER, "my secret answer")
    (event,) = asyncio.run(first_events(deferred.value.trigger, 1))
    # The event is what the triggerer logs ("Trigger fired event") and stores in the task's next_kwargs.
    assert "my secret answer" not in repr(event)
    assert "my secret answer" not in repr(deferred.value.trigger.serialize())
    result = waiting.execute_complete(context(Store()), event)
    assert result["message_id"] == reply.id
    assert result["message"] == "my secret answer"  # read by the worker on resume, returned as asked


@pytest.mark.parametrize("deferred", [False, True], ids=["poke", "trigger"])
def test_a_refused_filter_is_dropped_for_the_rest_of_the_wait(conn: SandboxServer, deferred: bool) -> None:
    conn.configure(rejected_filters=("id",), query_error_status=422)
    before = conn.post_as_client(ORDER, "before")
    reply = conn.post_as_client(ORDER, "the reply")
    if deferred:
        trigger = SppOrderMessageTrigger(order=ORDER, after_message_id=before.id, contains="reply", poke_interval=0.1)
        (event,) = asyncio.run(first_events(trigger, 1))
    else:
        event = sensor(after_message_id=before.id, contains="reply").execute(context(Store()))
    assert event["message_id"] == reply.id
    filtered = ["filters" in r["query"] for r in message_listings(conn)]
    assert filtered == [True, False]  # refused once (422), then read unfiltered
