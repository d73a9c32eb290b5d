"""SppOrderActivityTrigger run by Airflow's own triggerer code (``TriggerRunner.run_trigger``, in-process): each
client message becomes exactly one stored event across repeated kills of the triggerer, on Airflow 3.3+'s
shared-stream ack path.

A :class:`Triggerer` models the supervisor around the real runner: every ``sync`` seconds it stores the events
the runner queued (the metadata DB) and confirms them back, as ``sync_state_to_supervisor`` does. A kill stops
it all at once, without a last sync, and the state store takes no more writes (a SIGKILLed process writes
nothing). Before the ack path, ``run_trigger`` fell back to ``run()``: the same scenario then stored the events
of every restart within ``PERSIST_GRACE`` again.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_spp._internal.version_compat import shared_stream_ack_supported
from airflow_provider_spp.sandbox import SandboxServer
from airflow_provider_spp.triggers.order_activity import SppOrderActivityTrigger
from tests.integration.test_triggers import MemoryAssetStore

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shared_stream_ack_supported(), reason="Airflow before 3.3 has no shared-stream ack path"),
]

ORDERS = ("E4A269FC", "00C0FFEE", "B7C3D2A1")


@pytest.fixture
def conn(spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=2, retry_backoff=0.01))
    monkeypatch.setenv("AIRFLOW_DISABLE_GREENBACK_PORTAL", "true")
    return spp_sandbox


class KillableStore(MemoryAssetStore):
    """The watched asset's state store; after a kill (``dead``) the killed process's writes never arrive."""

    def __init__(self) -> None:
        super().__init__()
        self.dead = False

    async def aset(self, key: str, value: Any) -> None:
        if self.dead:
            raise ConnectionError("the triggerer was killed")
        await super().aset(key, value)


class Triggerer:
    """Airflow's TriggerRunner for watchers, with a supervisor model that stores and confirms queued events."""

    def __init__(self, store: KillableStore, *kwargs: dict[str, Any], sync: float = 0.05) -> None:
        self.store = store
        self.kwargs = [{"poll_interval": 0.05, **k} for k in kwargs or ({},)]
        self.sync = sync
        #: Per watcher: the events Airflow stored (each one DAG run), in order.
        self.stored: list[list[dict[str, Any]]] = [[] for _ in self.kwargs]
        self.syncing = True
        self.runner: Any = None

    def cursor(self, index: int = 0) -> dict[str, Any]:
        """The cursor watcher ``index`` saved, as JSON ({} before its first save)."""
        value = self.store.values.get(SppOrderActivityTrigger(**self.kwargs[index]).cursor_key)
        return json.loads(value) if value is not None else {}

    async def _step(self) -> None:
        """One supervisor loop: wait, then store and confirm what was queued (unless syncing is held)."""
        await asyncio.sleep(self.sync)
        if self.syncing:
            self._sync_once()

    def _sync_once(self) -> None:
        """Store what the runner queued and confirm it, as the supervisor and the next state sync do."""
        seqs = []
        while self.runner.events:
            entry = self.runner.events.popleft()
            self.stored[entry.trigger_id - 1].append(entry.event.payload)
            if entry.persist_seq is not None:
                seqs.append(entry.persist_seq)
        self.runner._shared_streams.confirm_persisted(seqs)

    async def run(self, until: Callable[[], bool], *, linger: float = 0.0, timeout: float = 20) -> None:
        """Start a fresh triggerer (each trigger re-created from its serialized kwargs), run until ``until`` and
        ``linger`` seconds more (far less than ``PERSIST_GRACE``), then kill it."""
        from airflow.jobs.triggerer_job_runner import TriggerRunner

        self.store.dead = False
        self.runner = TriggerRunner()
        tasks = []
        for number, kwargs in enumerate(self.kwargs, start=1):
            classpath, serialized = SppOrderActivityTrigger(**kwargs).serialize()
            assert classpath.endswith("SppOrderActivityTrigger")
            trigger = SppOrderActivityTrigger(**serialized)
            trigger.asset_state_store = self.store  # what the triggerer injects for a watched asset
            self.runner.triggers[number] = {"name": f"ID {number}", "events": 0, "is_watcher": True}
            tasks.append(asyncio.create_task(self.runner.run_trigger(number, trigger)))
        try:
            async with asyncio.timeout(timeout):
                while not until():
                    await self._step()
            for _ in range(round(linger / self.sync)):
                await self._step()
        finally:
            self.store.dead = True  # SIGKILL: no last sync, no more writes
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.runner._shared_streams.stop_all()

    def queued(self, count: int) -> Callable[[], bool]:
        """A condition: at least ``count`` events queued in the runner (handed over, not stored)."""
        return lambda: len(self.runner.events) >= count

    def stored_count(self, count: int, index: int = 0) -> Callable[[], bool]:
        """A condition: ``count`` events stored for watcher ``index``."""
        return lambda: len(self.stored[index]) >= count

    def settled(self, count: int, index: int = 0) -> Callable[[], bool]:
        """A condition: ``count`` events stored for watcher ``index`` and none pending in its saved cursor."""
        return lambda: len(self.stored[index]) >= count and not self.cursor(index).get("pending")


def more_requests(conn: SandboxServer, count: int) -> Callable[[], bool]:
    """A condition: SPP got ``count`` more requests (a few polls) from now on."""
    mark = len(conn.requests())
    return lambda: len(conn.requests()) >= mark + count


def stored_ids(events: list[dict[str, Any]]) -> Counter[int]:
    """How often each message was stored."""
    return Counter(event["message_id"] for event in events)


def test_every_message_is_stored_once_across_repeated_kills(conn: SandboxServer) -> None:
    triggerer = Triggerer(KillableStore(), {"from_client": True})

    async def scenario() -> list[int]:
        await triggerer.run(lambda: bool(triggerer.cursor()))  # the baseline
        written = [conn.post_as_client(ORDERS[n % 3], f"reply {n}").id for n in range(3)]
        triggerer.syncing = False
        await triggerer.run(triggerer.queued(2))  # killed with two events handed over, never stored
        triggerer.syncing = True
        written.append(conn.post_as_client(ORDERS[1], "written while the triggerer was down").id)
        await triggerer.run(triggerer.stored_count(4), linger=0.3)  # restarted: the dropped ones come again
        for n in range(4):  # killed again and again, 0.3 s after the events were stored
            written.append(conn.post_as_client(ORDERS[n % 3], f"between restarts {n}").id)
            await triggerer.run(triggerer.stored_count(len(written)), linger=0.3)
        await triggerer.run(more_requests(conn, 6))  # one more restart: nothing comes again
        return written

    written = asyncio.run(scenario())
    counts = stored_ids(triggerer.stored[0])
    repeated = {m: n for m, n in counts.items() if n > 1}
    lost = sorted(set(written) - set(counts))
    assert not repeated, f"repeated: {repeated}"
    assert not lost, f"lost: {lost}"
    assert list(counts) == written


def test_quiet_restarts_hand_nothing_over_again(conn: SandboxServer) -> None:
    triggerer = Triggerer(KillableStore())

    async def scenario() -> list[int]:
        await triggerer.run(lambda: bool(triggerer.cursor()))
        written = [conn.post_as_client(ORDERS[0], f"reply {n}").id for n in range(2)]
        await triggerer.run(triggerer.stored_count(2), linger=0.3)
        for _ in range(3):  # restarts shorter than PERSIST_GRACE: before 3.3 each one stored the last events again
            await triggerer.run(more_requests(conn, 6))
        return written

    written = asyncio.run(scenario())
    assert [e["message_id"] for e in triggerer.stored[0]] == written


def test_distinct_watchers_each_get_every_event_on_their_own_stream(conn: SandboxServer) -> None:
    triggerer = Triggerer(KillableStore(), {"from_client": True}, {"from_client": True, "poll_interval": 0.06})

    async def scenario() -> list[int]:
        await triggerer.run(lambda: bool(triggerer.cursor(0)) and bool(triggerer.cursor(1)))
        written = [conn.post_as_client(ORDERS[n % 3], f"reply {n}").id for n in range(3)]
        await triggerer.run(lambda: triggerer.settled(3, 0)() and triggerer.settled(3, 1)())
        return written

    written = asyncio.run(scenario())
    assert [[e["message_id"] for e in stored] for stored in triggerer.stored] == [written, written]
    keys = {SppOrderActivityTrigger(**k).shared_stream_key() for k in triggerer.kwargs}
    assert len(keys) == 2
    assert None not in keys


def test_the_remaining_window_a_kill_after_airflow_stored_an_event_but_before_the_cursor_save_repeats_it(
    conn: SandboxServer,
) -> None:
    store = KillableStore()
    triggerer = Triggerer(store)

    async def scenario() -> int:
        await triggerer.run(lambda: bool(triggerer.cursor()))
        reply = conn.post_as_client(ORDERS[0], "stored, then the triggerer dies before its cursor is saved").id

        def stored_but_not_saved() -> bool:
            if triggerer.stored[0]:
                store.dead = True  # the kill lands between Airflow's commit and advance() saving the cursor
            return bool(triggerer.stored[0])

        await triggerer.run(stored_but_not_saved)
        await triggerer.run(triggerer.settled(2))
        return reply

    reply = asyncio.run(scenario())
    assert stored_ids(triggerer.stored[0]) == {reply: 2}  # the one repeat this window allows


def test_a_catch_up_larger_than_the_triggerers_queue_is_fed_as_airflow_stores_it(
    conn: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The triggerer fails a watcher whose queue overflows ([triggerer] shared_stream_subscriber_queue_size, 1024
    # by default): here 4, with a catch-up of 12 new messages in one poll.
    monkeypatch.setenv("AIRFLOW__TRIGGERER__SHARED_STREAM_SUBSCRIBER_QUEUE_SIZE", "4")
    monkeypatch.setattr("airflow_provider_spp._internal.activity_stream.MAX_IN_FLIGHT", 3)
    triggerer = Triggerer(KillableStore())

    async def scenario() -> list[int]:
        await triggerer.run(lambda: bool(triggerer.cursor()))
        written = [conn.post_as_client(ORDERS[n % 3], f"while the triggerer was down {n}").id for n in range(12)]
        await triggerer.run(triggerer.settled(12))
        return written

    written = asyncio.run(scenario())
    assert sorted(e["message_id"] for e in triggerer.stored[0]) == written
