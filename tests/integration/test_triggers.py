"""The triggers' run() against the sandbox over real HTTP, on asyncio: events, filters, cost, restarts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_spp._internal.activity_cursor import ActivityCursor
from airflow_provider_spp.hooks.spp import SppAsyncHook
from airflow_provider_spp.sandbox import SandboxServer
from airflow_provider_spp.sandbox.store import SandboxStore
from airflow_provider_spp.triggers.order_activity import SppOrderActivityTrigger
from airflow_provider_spp.triggers.order_message import SppOrderMessageTrigger

pytestmark = pytest.mark.integration

ORDER = "E4A269FC"
ORDER_ID = 1001
STAFF_USER = 3


@pytest.fixture
def conn(spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=2, retry_backoff=0.01))
    return spp_sandbox


async def first_events(trigger: Any, count: int, *, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The first ``count`` events of a trigger's run(), then the generator is closed (as a triggerer would)."""
    events: list[dict[str, Any]] = []
    run: AsyncIterator[Any] = trigger.run()

    async def collect() -> None:
        async for event in run:
            events.append(event.payload)
            if len(events) == count:
                return

    try:
        await asyncio.wait_for(collect(), timeout)
    finally:
        await run.aclose()  # type: ignore[attr-defined]
    return events


class MemoryAssetStore:
    """Stands in for Airflow 3.3's AssetStateStoreAccessors of one watched asset: aget/aset of JSON."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.writes = 0

    async def aget(self, key: str, default: Any = None) -> Any:
        value = self.values.get(key)
        return json.loads(value) if value is not None else default

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = json.dumps(value)
        self.writes += 1


# -- SppOrderMessageTrigger ----------------------------------------------------------------------------


def test_message_trigger_fires_on_the_clients_matching_reply_only(conn: SandboxServer) -> None:
    before = conn.store.create_message(order_id=ORDER_ID, message="Could you send the logins?")
    trigger = SppOrderMessageTrigger(
        order=ORDER, after_message_id=before.id, from_client=True, contains="LOGIN", poke_interval=0.1
    )

    async def scenario() -> list[dict[str, Any]]:
        async def replies() -> None:
            await asyncio.sleep(0.3)
            conn.store.create_message(order_id=ORDER_ID, message="staff: logins still missing", user_id=STAFF_USER)
            conn.post_as_client(ORDER, "thanks, will do")
            await asyncio.sleep(0.3)
            conn.post_as_client(ORDER, "Here are the logins: see vault")

        task = asyncio.create_task(replies())
        try:
            return await first_events(trigger, 1)
        finally:
            await task

    (event,) = asyncio.run(scenario())
    wanted = conn.messages()[-1]
    assert event == {
        "status": "success",
        "order": ORDER,
        "message_id": wanted.id,
        "created_at": wanted.created_at.isoformat(),
        "author": "client",
        "user_id": 2,
        "via": "web",
    }
    assert "message" not in event  # client text only with return_text=True
    assert all(r["method"] == "GET" for r in conn.requests())


def test_message_trigger_returns_text_when_asked_and_matches_a_regex(conn: SandboxServer) -> None:
    since = datetime.now(UTC)
    conn.post_as_client(ORDER, "approved: yes")
    trigger = SppOrderMessageTrigger(
        order=ORDER, since=since.isoformat(), pattern=r"^approved:\s+yes$", return_text=True, poke_interval=0.1
    )
    (event,) = asyncio.run(first_events(trigger, 1))
    assert event["message"] == "approved: yes"


def test_message_trigger_times_out_and_reports_errors_without_writing(conn: SandboxServer) -> None:
    end = (datetime.now(UTC) + timedelta(seconds=0.5)).isoformat()
    old = conn.post_as_client(ORDER, "an old reply")
    timeout = SppOrderMessageTrigger(order=ORDER, after_message_id=old.id, poke_interval=0.1, end_time=end)
    assert asyncio.run(first_events(timeout, 1)) == [{"status": "timeout", "order": ORDER}]
    missing = SppOrderMessageTrigger(order="NOPE0000", after_message_id=1, poke_interval=0.1)
    (event,) = asyncio.run(first_events(missing, 1))
    assert event["status"] == "error"
    assert "404" in event["message"]
    assert {r["method"] for r in conn.requests()} == {"GET"}


def test_message_trigger_keeps_polling_through_transient_errors(conn: SandboxServer) -> None:
    conn.add_fault("unavailable", times=4)  # the hook retries 3 times, so one poll fails and the next succeeds
    conn.post_as_client(ORDER, "hello")
    trigger = SppOrderMessageTrigger(order=ORDER, since=datetime.now(UTC).isoformat(), poke_interval=0.1)
    (event,) = asyncio.run(first_events(trigger, 1))
    assert event["status"] == "success"
    assert [r["status"] for r in conn.requests()][:4] == [503, 503, 503, 503]


def test_trigger_kwargs_hold_a_connection_id_never_a_token(conn: SandboxServer) -> None:
    for trigger in (SppOrderMessageTrigger(order=ORDER, after_message_id=1), SppOrderActivityTrigger()):
        classpath, kwargs = trigger.serialize()
        assert kwargs["spp_conn_id"] == "spp_default"
        assert conn.token not in json.dumps(kwargs)
        rebuilt = type(trigger)(**kwargs)
        assert rebuilt.serialize() == (classpath, kwargs)


# -- SppOrderActivityTrigger ---------------------------------------------------------------------------


def test_activity_kwargs_are_the_same_on_every_parse() -> None:
    first = SppOrderActivityTrigger(orders=["B7C3D2A1", 1001], statuses=["Working"], from_client=True)
    second = SppOrderActivityTrigger(orders=[1001, "B7C3D2A1"], statuses=["Working"], from_client=True)
    assert first.serialize() == second.serialize()
    assert first.cursor_key == second.cursor_key
    # Two watchers differing only in how they poll are two watchers: each keeps its own cursor.
    assert SppOrderActivityTrigger(poll_interval=5).cursor_key != SppOrderActivityTrigger().cursor_key
    assert SppOrderActivityTrigger(lookback=5).cursor_key != SppOrderActivityTrigger().cursor_key
    assert SppOrderActivityTrigger(from_client=True).cursor_key != SppOrderActivityTrigger().cursor_key


def poll(trigger: SppOrderActivityTrigger, cursor: ActivityCursor | None) -> tuple[list[dict[str, Any]], Any]:
    """One poll on a fresh hook; returns the events' payloads and the cursor after them."""

    async def once() -> Any:
        async with SppAsyncHook() as hook:
            return await trigger.poll(hook, cursor)

    result = asyncio.run(once())
    return [payload for _, _, payload in result.events], result.cursor


def test_activity_baseline_emits_nothing_then_one_event_per_new_message(conn: SandboxServer) -> None:
    conn.post_as_client(ORDER, "already there")
    trigger = SppOrderActivityTrigger(poll_interval=0.1)
    events, cursor = poll(trigger, None)
    assert events == []  # existing messages are not news
    events, cursor = poll(trigger, cursor)
    assert events == []  # a state that merely stays true never fires
    staff = conn.store.create_message(order_id=1002, message="internal", user_id=STAFF_USER, staff_only=True)
    reply = conn.post_as_client(ORDER, "a new reply")
    events, cursor = poll(trigger, cursor)
    assert [(e["message_id"], e["author"], e["order_number"]) for e in events] == [
        (staff.id, "staff", "B7C3D2A1"),
        (reply.id, "client", ORDER),
    ]
    assert set(events[1]) == {
        "order_id",
        "order_number",
        "order_status",
        "message_id",
        "created_at",
        "author",
        "user_id",
        "via",
        "is_auto_generated",
    }
    events, cursor = poll(trigger, cursor)
    assert events == []


def test_activity_filters_by_author_order_and_status(conn: SandboxServer) -> None:
    triggers = {
        "client": SppOrderActivityTrigger(from_client=True),
        "orders": SppOrderActivityTrigger(orders=["00C0FFEE"]),
        "working": SppOrderActivityTrigger(statuses=["working"]),
    }
    cursors = {name: poll(t, None)[1] for name, t in triggers.items()}
    conn.store.create_message(order_id=ORDER_ID, message="staff note", user_id=STAFF_USER)
    on_1001 = conn.post_as_client(ORDER, "client on 1001")
    on_1004 = conn.post_as_client("00C0FFEE", "client on 1004")
    on_1002 = conn.post_as_client("B7C3D2A1", "client on a Submitted order")
    got = {name: [e["message_id"] for e in poll(t, cursors[name])[0]] for name, t in triggers.items()}
    assert got["client"] == [on_1001.id, on_1004.id, on_1002.id]
    assert got["orders"] == [on_1004.id]
    assert got["working"][-2:] == [on_1001.id, on_1004.id]
    assert on_1002.id not in got["working"]


def test_activity_costs_one_listing_plus_one_request_per_moved_order(conn: SandboxServer) -> None:
    conn.store.add_orders(1000, last_message_at=datetime.now(UTC) - timedelta(days=3))
    trigger = SppOrderActivityTrigger()
    _, cursor = poll(trigger, None)
    conn.store.clear_requests()
    reply = conn.post_as_client(ORDER, "one new message among 1004 orders")
    conn.store.clear_requests()
    events, cursor = poll(trigger, cursor)
    assert [e["message_id"] for e in events] == [reply.id]
    assert [r["path"] for r in conn.requests()] == ["/api/orders", f"/api/order_messages/{ORDER_ID}"]


def test_activity_catches_a_second_message_in_the_same_second() -> None:
    frozen = datetime.now(UTC).replace(microsecond=0)
    store = SandboxStore(clock=lambda: frozen)
    with SandboxServer(store=store) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_SPP_DEFAULT", server.connection_json())
        trigger = SppOrderActivityTrigger()
        _, cursor = poll(trigger, None)
        first = server.post_as_client(ORDER, "one")
        events, cursor = poll(trigger, cursor)
        assert [e["message_id"] for e in events] == [first.id]
        second = server.post_as_client(ORDER, "two, same second: last_message_at did not change")
        events, cursor = poll(trigger, cursor)
        assert [e["message_id"] for e in events] == [second.id]


def test_activity_survives_a_triggerer_restart_without_losing(conn: SandboxServer) -> None:
    store = MemoryAssetStore()

    def started() -> SppOrderActivityTrigger:
        trigger = SppOrderActivityTrigger(poll_interval=0.1)
        trigger.asset_state_store = store  # what Airflow 3.3's triggerer injects for a watched asset
        return trigger

    async def scenario() -> tuple[list[int], list[int], list[int]]:
        with pytest.raises(TimeoutError):
            await first_events(started(), 1, timeout=0.5)  # the baseline: existing state is not news
        assert store.writes >= 1
        replies = [conn.post_as_client(ORDER, f"reply {n}").id for n in range(3)]
        # The triggerer stops right after handing over the first event (the generator is closed there):
        # whether Airflow stored it is unknown, so the next start hands it over again (at-least-once).
        before = [e["message_id"] for e in await first_events(started(), 1)]
        replies.append(conn.post_as_client("00C0FFEE", "written while the triggerer was down").id)
        after = [e["message_id"] for e in await first_events(started(), 4)]
        return replies, before, after

    written, before, after = asyncio.run(scenario())
    assert before == written[:1]
    assert after == written


def test_activity_keeps_polling_through_errors(conn: SandboxServer) -> None:
    store = MemoryAssetStore()
    trigger = SppOrderActivityTrigger(poll_interval=0.05)
    trigger.asset_state_store = store

    async def scenario() -> list[dict[str, Any]]:
        async with SppAsyncHook() as hook:
            store.values[trigger.cursor_key] = json.dumps((await trigger.poll(hook, None)).cursor.as_json())
        reply = conn.post_as_client(ORDER, "arrives during an outage")
        conn.add_fault("unavailable", times=8)
        events = await first_events(trigger, 1)
        assert events[0]["message_id"] == reply.id
        return events

    asyncio.run(scenario())
    assert [r["status"] for r in conn.requests()].count(503) == 8


@pytest.fixture
def as_on_the_triggerer(airflow_db: str) -> Iterator[None]:
    """The Task SDK's link to Airflow that the triggerer (and ``dag.test()``) give a running trigger."""
    from tests.support.task_sdk import task_sdk_link

    with task_sdk_link():
        yield


def test_activity_cursor_falls_back_to_an_airflow_variable(conn: SandboxServer, as_on_the_triggerer: None) -> None:
    from airflow.sdk import Variable
    from asgiref.sync import sync_to_async

    trigger = SppOrderActivityTrigger(poll_interval=0.1, statuses=["Working"])
    assert getattr(trigger, "asset_state_store", None) is None  # Airflow before 3.3, or not watched

    async def scenario() -> list[int]:
        baseline = asyncio.create_task(first_events(trigger, 1, timeout=0.5))
        await asyncio.sleep(0.3)
        with pytest.raises(TimeoutError):
            await baseline
        # In the trigger's own worker thread: Airflow's in-process test comms are not thread-safe.
        stored = await sync_to_async(Variable.get)(trigger.cursor_key, deserialize_json=True)
        assert stored["v"] == 1
        reply = conn.post_as_client(ORDER, "seen through the Variable cursor")
        events = await first_events(SppOrderActivityTrigger(poll_interval=0.1, statuses=["Working"]), 1)
        return [reply.id, events[0]["message_id"]]

    wanted, got = asyncio.run(scenario())
    assert got == wanted
