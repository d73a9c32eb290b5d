"""SppOrderActivityTrigger keeps its promises in a triggerer: every watcher gets every event, none is lost when
the triggerer or the cursor store fails, and a long outage fires a bounded, logged catch-up."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from airflow_provider_spp._internal import activity_cursor
from airflow_provider_spp.hooks.spp import SppAsyncHook
from airflow_provider_spp.sandbox import SandboxServer
from airflow_provider_spp.sandbox.store import SandboxStore
from airflow_provider_spp.triggers.order_activity import SppOrderActivityTrigger
from tests.integration.test_triggers import MemoryAssetStore

pytestmark = pytest.mark.integration

ORDER = "E4A269FC"


@pytest.fixture
def conn(spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=2, retry_backoff=0.01))
    return spp_sandbox


class Triggerer:
    """Models Airflow's triggerer for one watcher: it stores an event when the trigger is asked for the next one
    (about once a second in Airflow), and a kill drops the event handed over last (never stored)."""

    def __init__(self, store: Any, **kwargs: Any) -> None:
        self.store = store
        self.kwargs = {"poll_interval": 0.05, **kwargs}
        #: Events Airflow stored (each one DAG run), in order.
        self.stored: list[dict[str, Any]] = []

    def trigger(self) -> SppOrderActivityTrigger:
        trigger = SppOrderActivityTrigger(**self.kwargs)
        trigger.asset_state_store = self.store  # what Airflow 3.3's triggerer injects for a watched asset
        return trigger

    async def run(self, seconds: float, *, killed_after: int | None = None) -> None:
        """Run a fresh trigger (as after a restart) for ``seconds`` or until ``killed_after`` events, then kill it."""
        run: AsyncIterator[Any] = self.trigger().run()
        handed: list[dict[str, Any]] = []

        async def consume() -> None:
            async for event in run:
                if handed:
                    self.stored.append(handed[-1])  # asked for the next one: the previous is stored by now
                handed.append(event.payload)
                if killed_after is not None and len(handed) == killed_after:
                    return

        try:
            await asyncio.wait_for(consume(), seconds)
        except TimeoutError:
            if handed:
                self.stored.append(handed[-1])  # the loop went on polling: Airflow synced meanwhile
        finally:
            await run.aclose()  # type: ignore[attr-defined]


def test_two_watchers_differing_only_in_poll_interval_or_lookback_each_get_every_event(conn: SandboxServer) -> None:
    shared = MemoryAssetStore()  # one namespace, as the Variables are (or one asset watched twice)
    watchers = [
        Triggerer(shared, from_client=True, poll_interval=0.05),
        Triggerer(shared, from_client=True, poll_interval=0.06),
        Triggerer(shared, from_client=True, poll_interval=0.05, lookback=60),
    ]

    async def scenario() -> list[int]:
        for watcher in watchers:
            await watcher.run(0.4)  # the baselines
        written = [conn.post_as_client(ORDER, f"client message {n}").id for n in range(3)]
        for watcher in watchers:
            await watcher.run(0.6)
        return written

    written = asyncio.run(scenario())
    got = [[e["message_id"] for e in w.stored] for w in watchers]
    assert got == [written, written, written], f"each watcher must get every client message: {got}"


class FlakyStore(MemoryAssetStore):
    """A state store whose next ``fail_next`` writes fail."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next = self.failed = 0

    async def aset(self, key: str, value: Any) -> None:
        if self.fail_next:
            self.fail_next -= 1
            self.failed += 1
            raise ConnectionError("the metadata DB went away")
        await super().aset(key, value)


def test_a_failed_cursor_write_keeps_the_watcher_running_and_emits_nothing_twice(conn: SandboxServer) -> None:
    store = FlakyStore()
    triggerer = Triggerer(store, poll_interval=0.05)

    async def scenario() -> list[int]:
        await triggerer.run(0.4)  # the baseline is saved
        store.fail_next = 3  # then three saves in a row fail
        written = [conn.post_as_client(ORDER, "first").id]
        run = triggerer.trigger().run()
        events: list[int] = []
        try:
            events.append((await asyncio.wait_for(anext(run), 5)).payload["message_id"])
            written.append(conn.post_as_client(ORDER, "second, while the store is still failing").id)
            events.append((await asyncio.wait_for(anext(run), 5)).payload["message_id"])
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(anext(run), 0.5)  # and nothing twice, though saves failed
        finally:
            await run.aclose()
        assert events == written
        return written

    written = asyncio.run(scenario())
    assert store.failed == 3
    saved = json.loads(store.values[SppOrderActivityTrigger(poll_interval=0.05).cursor_key])
    # saved again once the store recovered
    assert {str(i) for i in written} <= set(saved["known"]) | set(saved["pending"])


def test_an_event_dropped_by_a_killed_triggerer_comes_again_and_none_is_lost(conn: SandboxServer) -> None:
    triggerer = Triggerer(MemoryAssetStore())

    async def scenario() -> list[int]:
        await triggerer.run(0.4)  # the baseline
        written = [conn.post_as_client(ORDER, f"reply {n}").id for n in range(3)]
        await triggerer.run(5, killed_after=1)  # killed right after handing one over: it is never stored
        written.append(conn.post_as_client("00C0FFEE", "written while the triggerer was down").id)
        await triggerer.run(5, killed_after=2)  # killed again, mid-batch
        await triggerer.run(1.0)  # runs on
        return written

    written = asyncio.run(scenario())
    stored = [e["message_id"] for e in triggerer.stored]
    assert set(stored) == set(written), f"lost: {sorted(set(written) - set(stored))}"


def test_events_settle_after_the_persist_grace_and_are_not_handed_over_again(
    conn: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("airflow_provider_spp.triggers.order_activity.PERSIST_GRACE", timedelta(seconds=0.2))
    triggerer = Triggerer(MemoryAssetStore())

    async def scenario() -> list[int]:
        await triggerer.run(0.4)
        written = [conn.post_as_client(ORDER, f"reply {n}").id for n in range(2)]
        await triggerer.run(2.0)  # handed over, then polls go on past the grace: stored for good
        await triggerer.run(0.5)  # a restart hands nothing over again
        return written

    written = asyncio.run(scenario())
    assert [e["message_id"] for e in triggerer.stored] == written


def test_a_stored_cursor_of_an_earlier_release_is_picked_up_once(conn: SandboxServer) -> None:
    store = MemoryAssetStore()
    trigger = SppOrderActivityTrigger(poll_interval=0.05)

    async def scenario() -> list[int]:
        async with SppAsyncHook() as hook:
            cursor = (await trigger.poll(hook, None)).cursor.as_json()
        cursor.pop("pending")
        store.values[trigger.shared_cursor_key] = json.dumps(cursor)  # as 0.2 stored it
        reply = conn.post_as_client(ORDER, "written during the upgrade")
        triggerer = Triggerer(store)
        await triggerer.run(0.5)
        return [reply.id, *[e["message_id"] for e in triggerer.stored]]

    reply_id, *got = asyncio.run(scenario())
    assert got == [reply_id]


def test_a_long_outage_fires_at_most_max_catch_up_events_and_logs_the_skipped_counts() -> None:
    clock = [datetime.now(UTC)]
    store = SandboxStore(clock=lambda: clock[0])
    with SandboxServer(store=store) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_SPP_DEFAULT", server.connection_json())
        bounded = SppOrderActivityTrigger(max_catch_up=2)
        by_age = SppOrderActivityTrigger(max_catch_up_age=3600)

        async def poll(trigger: SppOrderActivityTrigger, cursor: Any) -> Any:
            async with SppAsyncHook() as hook:
                return await trigger.poll(hook, cursor)

        cursors = [asyncio.run(poll(t, None)).cursor for t in (bounded, by_age)]
        for cursor in cursors:
            cursor.polled_at -= timedelta(hours=4)  # the last poll before a four-hour outage
        clock[0] = datetime.now(UTC) - timedelta(hours=3)
        old = [server.post_as_client(ORDER, f"during the outage {n}").id for n in range(3)]
        clock[0] = datetime.now(UTC)
        recent = [server.post_as_client("00C0FFEE", f"just now {n}").id for n in range(2)]
        with capture_logs() as entries:
            results = [asyncio.run(poll(t, c)) for t, c in zip((bounded, by_age), cursors, strict=True)]
        again = [asyncio.run(poll(t, r.cursor)) for t, r in zip((bounded, by_age), results, strict=True)]
    ids = [[event[0] for event in r.events] for r in results]
    assert ids == [recent, recent], ids
    assert [r.skipped for r in results] == [3, 3]
    logged = [str(entry.get("event")) for entry in entries]
    warnings = [text for text in logged if "skipped" in text]
    assert len(warnings) == 2, logged
    assert all("5 new message(s), 3 skipped" in w for w in warnings), warnings
    assert not any("outage" in text or "just now" in text for text in logged)  # counts, never text
    assert [r.events for r in again] == [[], []]  # skipped for good, not fired by the next poll
    assert len(old) == 3


def test_catch_up_bound_is_pure() -> None:
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    events = [(n, (now - timedelta(minutes=10 * (5 - n))).isoformat(), {}) for n in range(1, 6)]
    kept, skipped = activity_cursor.catch_up_bound(events, now, max_count=None, max_age=None)
    assert (kept, skipped) == (events, [])
    kept, skipped = activity_cursor.catch_up_bound(events, now, max_count=2, max_age=None)
    assert [e[0] for e in kept] == [4, 5]
    assert [e[0] for e in skipped] == [1, 2, 3]
    kept, skipped = activity_cursor.catch_up_bound(events, now, max_count=None, max_age=25 * 60)
    assert [e[0] for e in kept] == [3, 4, 5]
