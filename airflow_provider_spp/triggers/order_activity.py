"""SppOrderActivityTrigger: one event per new message across the workspace, for ``AssetWatcher``; it never writes.

Its cost grows with what changed, not with what is watched; where it stands between polls is an
:class:`~airflow_provider_spp._internal.activity_cursor.ActivityCursor`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Hashable, Iterable
from contextlib import aclosing
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_spp._internal.activity_cursor import (
    PERSIST_GRACE,
    ActivityCursor,
    ActivityEvent,
    PollResult,
    activity_payload,
    catch_up_bound,
)
from airflow_provider_spp._internal.activity_keeper import CursorKeeper
from airflow_provider_spp._internal.activity_reading import ListingReader, purity_time
from airflow_provider_spp._internal.client import SORT_BY_LAST_MESSAGE
from airflow_provider_spp._internal.clock import as_utc, utcnow
from airflow_provider_spp._internal.cursor_store import AssetCursorStore, CursorStore, VariableCursorStore
from airflow_provider_spp._internal.replies import author_kind
from airflow_provider_spp._internal.version_compat import shared_stream_ack_supported
from airflow_provider_spp._internal.watch_settings import (
    non_negative_seconds,
    optional_count,
    positive_seconds,
    status_matches,
    watched_orders,
    watched_statuses,
)
from airflow_provider_spp.exceptions import SppApiError, SppError
from airflow_provider_spp.hooks.spp_async import SppAsyncHook

if TYPE_CHECKING:
    from airflow.triggers.shared_stream import SharedStreamProducer

    from airflow_provider_spp.models import MessageResource, Order, OrderStatus

__all__ = ["SppOrderActivityTrigger"]

#: The class path ``serialize()`` gives: the one earlier releases wrote into Airflow's metadata DB, kept stable
#: (an asset watcher is known by class path and kwargs: a new path would replace every watcher's trigger).
CLASSPATH = "airflow_provider_spp.triggers.order_messages.SppOrderActivityTrigger"
#: How long after an order's ``last_message_at`` it is checked once more: a second message within the
#: same (whole) second leaves ``last_message_at`` unchanged.
SETTLE = timedelta(seconds=2)
#: Longest wait between polls while SPP keeps failing.
MAX_ERROR_BACKOFF = 900.0
#: After this many polls in a row whose sorted listing got a 500 while the plain listing worked, the sort is
#: taken as unsupported (a stock Laravel app answers an unknown sort column with 500, not 400/422).
SORT_SERVER_ERRORS = 3
#: Watched asset's state store by cursor key, for the shared-stream producer (built from kwargs alone).
_STATE_STORES: dict[str, Any] = {}


class SppOrderActivityTrigger(BaseEventTrigger):
    """
    Fire one event per new message on Wayfront (formerly SPP) orders, for ``Asset(watchers=[AssetWatcher(...)])``.

    Each poll reads the orders sorted by ``last_message_at`` (newest first) down to the last poll's time
    minus ``lookback``, and lists messages only of the orders whose ``last_message_at`` moved: O(1)
    requests plus one per order with new messages, however many orders are watched. The first run
    takes a baseline and emits nothing (existing messages are not news).

    The cursor (last poll time, recently seen orders and message IDs, events handed over but not yet known
    stored) lives in the watched asset's ``asset_state_store`` (Airflow 3.3+), else in an Airflow Variable
    ``spp_order_activity_<digest of the kwargs>``: every distinct watcher has its own. It is saved with a
    poll's events pending before they are handed over; a trigger that starts from it hands its pending events
    over again, so none is lost across a triggerer restart (SIGTERM, SIGKILL, OOM).

    Where Airflow has the shared-stream ack path (3.3.2, 3.4) the triggerer runs it there, one stream per watcher:
    an event stops being pending only when Airflow confirmed it stored in the metadata DB (``advance``), so a
    kill repeats only the events Airflow stored but had not confirmed yet, a window of about one state sync
    (a second or two) per event. Before 3.3 nothing is confirmed: an event counts as stored at a poll at least
    ``PERSIST_GRACE`` (10 s) after its hand-over, so a stop within that time (or before the next poll)
    repeats the last poll's events, and a restart's hand-over starts that time again.

    :param spp_conn_id: The ``spp`` connection (its id; never a token).
    :param from_client: Only the client's messages fire (see :mod:`airflow_provider_spp._internal.replies`).
    :param orders: Only these orders (IDs or order numbers; one string is one order).
    :param statuses: Only orders in these statuses: integer codes or labels, as the workspace sends them
        (a code matches a code, a label a label case-insensitively; one string is one status).
    :param poll_interval: Seconds between polls (> 0).
    :param lookback: Seconds a message may appear late (a slow commit, clock skew) and still be seen (>= 0).
    :param api_version: Sent as ``X-Api-Version``.
    :param max_catch_up: At most this many events per poll (the newest); the others are skipped and logged.
    :param max_catch_up_age: Skip (and log) messages older than this many seconds, e.g. after a long outage.
    """

    def __init__(
        self,
        *,
        spp_conn_id: str = SppAsyncHook.default_conn_name,
        from_client: bool = False,
        orders: Iterable[str | int] | str | int | None = None,
        statuses: Iterable[OrderStatus] | OrderStatus | None = None,
        poll_interval: float = 60.0,
        lookback: float = 120.0,
        api_version: str | None = None,
        max_catch_up: int | None = None,
        max_catch_up_age: float | None = None,
    ) -> None:
        super().__init__()
        #: Airflow 3.3+: the watched asset's state store, handed to the shared-stream producer's own trigger.
        self.state_store_for_producer: Any = None
        self.spp_conn_id = spp_conn_id
        self.from_client = bool(from_client)
        self.orders = watched_orders(orders)
        self.statuses = watched_statuses(statuses)
        self.poll_interval = positive_seconds(poll_interval, "poll_interval")
        self.lookback = non_negative_seconds(lookback, "lookback")
        self.api_version = api_version
        self.max_catch_up = optional_count(max_catch_up, "max_catch_up")
        self.max_catch_up_age = (
            positive_seconds(max_catch_up_age, "max_catch_up_age") if max_catch_up_age is not None else None
        )
        #: Set once SPP rejected the sort/filter (400/422, or a repeated 500): the plain listing is read from then on.
        self._plain_listing = False
        #: Polls in a row whose sorted listing failed with a 500 while the plain listing worked.
        self._sort_server_errors = 0
        self._warned: set[str] = set()

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and kwargs: the same on every DAG parse (nothing time-dependent), so the watcher is stable.

        The catch-up bounds appear only when set: a watcher stored by an earlier release keeps its kwargs.
        """
        kwargs: dict[str, Any] = {
            "spp_conn_id": self.spp_conn_id,
            "from_client": self.from_client,
            "orders": self.orders,
            "statuses": self.statuses,
            "poll_interval": self.poll_interval,
            "lookback": self.lookback,
            "api_version": self.api_version,
        }
        bounds = {"max_catch_up": self.max_catch_up, "max_catch_up_age": self.max_catch_up_age}
        return CLASSPATH, kwargs | {k: v for k, v in bounds.items() if v is not None}

    @property
    def cursor_key(self) -> str:
        """Where the cursor is kept: named after all kwargs, as Airflow tells watchers apart (each gets every event)."""
        return _cursor_key(self.serialize()[1])

    @property
    def shared_cursor_key(self) -> str:
        """The key of earlier releases (without ``poll_interval`` and ``lookback``): read once, on upgrade."""
        return _cursor_key({k: v for k, v in self.serialize()[1].items() if k not in ("poll_interval", "lookback")})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever: one event per new message; errors are logged and retried with backoff (before Airflow 3.3).

        Airflow 3.3+ runs :meth:`create_shared_stream_producer` and :meth:`filter_shared_stream` instead. Here
        nothing confirms that Airflow stored an event, so one counts as stored at a poll at least
        ``PERSIST_GRACE`` after its hand-over (at-least-once).
        """
        keeper = CursorKeeper(self.cursor_store(), self.log)
        async for events in self.batches(keeper, settle_by_time=True):
            for _, _, payload in events:
                yield TriggerEvent(payload)

    async def batches(self, keeper: CursorKeeper, *, settle_by_time: bool) -> AsyncIterator[list[ActivityEvent]]:
        """Each poll's events, yielded after the cursor with them pending was saved (or its save failed, logged).

        Errors (SPP, the network, the store) are logged and the poll tried again after a backoff; a failed save
        keeps the cursor in memory and is retried. ``settle_by_time``: pending events settle after
        ``PERSIST_GRACE`` (no confirmations), else only through ``keeper.confirm``.
        """
        hook = SppAsyncHook(self.spp_conn_id, api_version=self.api_version)
        failures = 0
        try:
            while True:
                try:
                    await keeper.load(lambda: self._load_cursor(keeper.store))
                    batch = await self.poll(hook, keeper.cursor, resumed=keeper.resumed, settle=settle_by_time)
                except Exception as err:  # a watcher keeps watching: SPP, the network or the store may recover
                    failures += 1
                    await self._back_off(err, failures)
                    continue
                failures = 0
                await keeper.replace(batch.cursor)
                yield batch.events
                await asyncio.sleep(self.poll_interval)
        finally:
            await hook.aclose()

    def shared_stream_key(self) -> Hashable | None:
        """Airflow 3.3+: run through the shared-stream ack path, one stream per watcher (its cursor key).

        The producer is built from the kwargs alone, so this hands it the watched asset's state store.
        """
        if not shared_stream_ack_supported():
            return None
        _STATE_STORES[self.cursor_key] = getattr(self, "asset_state_store", None)
        return ("airflow_provider_spp.order_activity", self.cursor_key)

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> SharedStreamProducer:
        """Airflow 3.3+: the producer that polls SPP and saves the cursor only for events Airflow stored."""
        from airflow_provider_spp._internal.activity_stream import ActivityStreamProducer

        trigger = cls(**kwargs)
        trigger.state_store_for_producer = _STATE_STORES.get(trigger.cursor_key)
        return ActivityStreamProducer(trigger)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """Airflow 3.3+: one trigger event per payload the producer yields (it already applied the filters)."""
        async for payload in shared_stream:
            yield TriggerEvent(payload)

    async def _load_cursor(self, store: CursorStore) -> ActivityCursor | None:
        """The stored cursor; on the first start after an upgrade, the one earlier releases kept (shared key)."""
        cursor = ActivityCursor.from_json(await store.load())
        if cursor is None and self.shared_cursor_key != self.cursor_key:
            cursor = ActivityCursor.from_json(await self.cursor_store(self.shared_cursor_key).load())
        return cursor

    async def _back_off(self, err: Exception, failures: int) -> None:
        """Log a failed poll and wait before the next: longer after each failure in a row, at most 15 minutes."""
        wait = min(MAX_ERROR_BACKOFF, self.poll_interval * 2 ** min(failures, 10))
        log = self.log.error if not isinstance(err, SppError) or err.permanent else self.log.warning
        log("Polling SPP for new messages failed (%s); next try in %.0f s", err, wait)
        await asyncio.sleep(wait)

    async def poll(
        self, hook: SppAsyncHook, cursor: ActivityCursor | None, *, resumed: bool = False, settle: bool = True
    ) -> PollResult:
        """One poll: the new messages of the orders that moved, and the cursor with them pending (nothing saved).

        Without a cursor this is the baseline: every message seen becomes known, none is emitted. ``resumed``
        (the first poll from a stored cursor): its pending events are handed over again; else, with ``settle``,
        those handed over ``PERSIST_GRACE`` ago settle (without it, only a confirmation settles them).
        """
        recent, now, horizon, ordered = await self._recent_orders(hook, cursor)
        previous = cursor or ActivityCursor.empty(horizon)
        replay = previous.pending_events() if resumed else []
        previous = previous if resumed or not settle else previous.settled(now - PERSIST_GRACE)
        seen = previous.seen()  # grows as the poll goes: nothing is emitted twice by one poll
        known: dict[str, str] = {}
        events: list[ActivityEvent] = []
        for order in recent:
            if not previous.may_have_news(str(order.id), self._last_message_at(order)):
                continue
            for message in await self._new_messages(hook, order, horizon, seen):
                created = as_utc(message.created_at).isoformat() if message.created_at else now.isoformat()
                seen.add(str(message.id))
                if cursor is not None and self._fires_for(message, order):
                    events.append((message.id, created, activity_payload(message, order)))
                else:
                    known[str(message.id)] = created
        events.sort(key=lambda event: event[0])
        events, skipped = self._bounded(events, now, previous)
        moved = [(str(order.id), self._last_message_at(order)) for order in recent]
        after = previous.advanced(now, moved, settled_before=now - SETTLE).knowing(known)
        after = after.with_orders_sorted(ordered)
        after = after.knowing({str(i): created for i, created, _ in skipped}).handing_over(replay + events, now)
        return PollResult(replay + events, after.pruned(now - timedelta(seconds=self.lookback)), len(skipped))

    def _bounded(
        self, events: list[ActivityEvent], now: datetime, previous: ActivityCursor
    ) -> tuple[list[ActivityEvent], list[ActivityEvent]]:
        """Apply ``max_catch_up``/``max_catch_up_age``; log what was skipped, or a long catch-up (counts only)."""
        kept, skipped = catch_up_bound(events, now, max_count=self.max_catch_up, max_age=self.max_catch_up_age)
        behind = (now - previous.polled_at).total_seconds() - self.lookback
        if skipped:
            self.log.warning(
                "Catching up %.0f s of SPP activity: %d new message(s), %d skipped (max_catch_up=%s, "
                "max_catch_up_age=%s), %d emitted",
                behind, len(events), len(skipped), self.max_catch_up, self.max_catch_up_age, len(kept),
            )  # fmt: skip
        elif kept and behind > 3 * self.poll_interval:
            self.log.warning("Catching up %.0f s of SPP activity: %d new message(s) emitted", behind, len(kept))
        return kept, skipped

    def _fires_for(self, message: MessageResource, order: Order) -> bool:
        """Whether a new message is an event (``from_client``: only the client's, never one the service wrote)."""
        if not self.from_client:
            return True
        return author_kind(message, order) == "client"  # a message the service wrote is never "client"

    def _warn_once(self, listing: str) -> None:
        """Say once per run that SPP did not list ``listing`` newest first (it is then read to the end)."""
        if listing not in self._warned:
            self._warned.add(listing)
            self.log.warning("SPP did not list %s newest first; reading such listings to their end", listing)

    @staticmethod
    def _last_message_at(order: Order) -> datetime:
        """A recent order's ``last_message_at`` in UTC (recent orders always have one)."""
        assert order.last_message_at is not None
        return as_utc(order.last_message_at)

    def _watches(self, order: Order) -> bool:
        """Whether the order passes the ``orders`` and ``statuses`` filters."""
        if self.orders is not None and str(order.id) not in self.orders and (order.number or "") not in self.orders:
            return False
        return self.statuses is None or status_matches(order.status, self.statuses)

    async def _recent_orders(
        self, hook: SppAsyncHook, cursor: ActivityCursor | None
    ) -> tuple[list[Order], datetime, datetime, bool]:
        """Watched orders with a message since the horizon (last poll minus lookback), the server's now, the horizon,
        and whether the listing came newest first.

        Asks for orders by ``last_message_at``, newest first, since the horizon. A workspace that rejects that
        sort or filter (400/422) is read unsorted and unfiltered from then on, with one warning. A 500 there
        (not 502-504) may be a hiccup or a stock Laravel app's unhandled query error: this poll reads the plain listing
        instead, and once the sorted listing failed so ``SORT_SERVER_ERRORS`` polls in a row while the plain one
        worked, the plain one is read from then on (one warning).
        """
        try:
            recent, horizon, ordered = await self._read_orders(hook, cursor, plain=self._plain_listing)
            self._sort_server_errors = 0
        except SppApiError as err:
            if self._plain_listing or err.status_code not in (400, 422, 500):
                raise
            recent, horizon, _ = await self._read_orders(hook, cursor, plain=True)  # raises if SPP is down
            ordered = False
            self._sort_refused(err.status_code)
        return recent, hook.server_time or utcnow(), horizon, ordered and not self._plain_listing

    def _sort_refused(self, status_code: int) -> None:
        """The sorted listing failed and the plain one worked: read the plain one from now on once it is clear."""
        if status_code == 500:
            self._sort_server_errors += 1
            if self._sort_server_errors < SORT_SERVER_ERRORS:
                self.log.info(
                    "SPP answered the orders sorted by last_message_at with %s while the plain listing works "
                    "(%d of %d); read the plain listing this poll",
                    status_code, self._sort_server_errors, SORT_SERVER_ERRORS,
                )  # fmt: skip
                return
        self._plain_listing = True
        self.log.warning(
            "SPP rejected sorting/filtering orders by last_message_at (%s); reading every page of the plain "
            "listing instead (correct, dearer)",
            status_code,
        )

    async def _read_orders(
        self, hook: SppAsyncHook, cursor: ActivityCursor | None, *, plain: bool
    ) -> tuple[list[Order], datetime, bool]:
        """Read the orders listing down to the horizon (to its end unless SPP is known to sort it); the horizon;
        whether it came newest first. The server may ignore the filter and the sort: each order is checked here.
        """
        horizon = cursor.polled_at - timedelta(seconds=self.lookback) if cursor else None
        since = {"filters[last_message_at][$gte]": purity_time(horizon)} if horizon and not plain else None
        recent: dict[int, Order] = {}
        trusted = bool(cursor and cursor.orders_sorted) and not plain
        reader = ListingReader(trusted=trusted, on_unsorted=None if plain else lambda: self._warn_once("orders"))
        async with aclosing(hook.list_orders(sort=None if plain else SORT_BY_LAST_MESSAGE, filters=since)) as listing:
            async for order in listing:
                if horizon is None:  # the baseline: since the server's now
                    horizon = (hook.server_time or utcnow()) - timedelta(seconds=self.lookback)
                if order.last_message_at is None or order.id is None:
                    continue
                if reader.is_old(as_utc(order.last_message_at), horizon):
                    if trusted and reader.done:
                        break
                elif self._watches(order):
                    recent.setdefault(order.id, order)  # an order that slid onto the next page is read once
        horizon = horizon or (hook.server_time or utcnow()) - timedelta(seconds=self.lookback)
        return list(recent.values()), horizon, reader.sorted

    async def _new_messages(
        self, hook: SppAsyncHook, order: Order, horizon: datetime, seen: set[str]
    ) -> list[MessageResource]:
        """The order's messages since the horizon that the cursor does not know yet, oldest first, each once."""
        fresh: dict[int, MessageResource] = {}
        reader = ListingReader(trusted=False)
        async with aclosing(hook.list_order_messages(order.id or 0)) as messages:
            async for message in messages:
                if message.created_at is not None and reader.is_old(as_utc(message.created_at), horizon):
                    if reader.done:
                        break
                elif str(message.id) not in seen:
                    fresh.setdefault(message.id, message)  # a message that slid onto the next page is read once
        return sorted(fresh.values(), key=lambda m: m.id)

    def cursor_store(self, key: str | None = None) -> CursorStore:
        """The watched asset's state store (Airflow 3.3+) when the triggerer gave one, else a Variable."""
        key = key or self.cursor_key
        variable = VariableCursorStore(key, description="SppOrderActivityTrigger cursor")
        accessor = getattr(self, "asset_state_store", None) or self.state_store_for_producer
        if accessor is not None:
            return AssetCursorStore(accessor, key, fallback=variable)
        return variable


def _cursor_key(kwargs: dict[str, Any]) -> str:
    """A Variable/state-store key from a trigger's kwargs (a digest: kwargs may be long)."""
    digest = hashlib.sha256(json.dumps(kwargs, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"spp_order_activity_{digest}"
