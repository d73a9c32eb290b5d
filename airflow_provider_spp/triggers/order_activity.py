"""SppOrderActivityTrigger: one event per new message across the workspace, for ``AssetWatcher``; it never writes.

Its cost grows with what changed, not with what is watched; where it stands between polls is an
:class:`~airflow_provider_spp._internal.activity_cursor.ActivityCursor`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import aclosing
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_spp._internal.activity_cursor import ActivityCursor, ActivityEvent, PollResult, activity_payload
from airflow_provider_spp._internal.client import SORT_BY_LAST_MESSAGE
from airflow_provider_spp._internal.clock import as_utc, utcnow
from airflow_provider_spp._internal.cursor_store import AssetCursorStore, CursorStore, VariableCursorStore
from airflow_provider_spp._internal.listing_order import ListingOrder
from airflow_provider_spp._internal.replies import author_kind
from airflow_provider_spp.exceptions import SppError
from airflow_provider_spp.hooks.spp import SppAsyncHook
from airflow_provider_spp.models import order_reference

if TYPE_CHECKING:
    from airflow_provider_spp.models import MessageResource, Order

__all__ = ["SppOrderActivityTrigger"]

#: The class path ``serialize()`` gives: the one earlier releases wrote into Airflow's metadata DB, kept stable
#: (an asset watcher is known by class path and kwargs: a new path would replace every watcher's trigger).
CLASSPATH = "airflow_provider_spp.triggers.order_messages.SppOrderActivityTrigger"
#: How long after an order's ``last_message_at`` it is checked once more: a second message within the
#: same (whole) second leaves ``last_message_at`` unchanged.
SETTLE = timedelta(seconds=2)
#: Longest wait between polls while SPP keeps failing.
MAX_ERROR_BACKOFF = 900.0


class SppOrderActivityTrigger(BaseEventTrigger):
    """
    Fire one event per new message on the workspace's orders, for ``Asset(watchers=[AssetWatcher(...)])``.

    Each poll reads the orders sorted by ``last_message_at`` (newest first) down to the last poll's time
    minus ``lookback``, and lists messages only of the orders whose ``last_message_at`` moved: O(1)
    requests plus one per order with new messages, however many orders are watched. The first run
    takes a baseline and emits nothing (existing messages are not news).

    The cursor (last poll time, recently seen orders and message IDs) lives in the watched asset's
    ``asset_state_store`` (Airflow 3.3+), else in an Airflow Variable ``spp_order_activity_<digest>``,
    so a restarted triggerer resumes where it stopped: no message missed, none emitted twice.

    :param spp_conn_id: The ``spp`` connection (its id; never a token).
    :param from_client: Only the client's messages fire (see :mod:`airflow_provider_spp._internal.replies`).
    :param orders: Only these orders (IDs or order numbers).
    :param statuses: Only orders in these statuses (case-insensitive).
    :param poll_interval: Seconds between polls.
    :param lookback: Seconds a message may appear late (a slow commit, clock skew) and still be seen.
    :param api_version: Sent as ``X-Api-Version``.
    """

    def __init__(
        self,
        *,
        spp_conn_id: str = SppAsyncHook.default_conn_name,
        from_client: bool = False,
        orders: Iterable[str | int] | None = None,
        statuses: Iterable[str] | None = None,
        poll_interval: float = 60.0,
        lookback: float = 120.0,
        api_version: str | None = None,
    ) -> None:
        super().__init__()
        self.spp_conn_id = spp_conn_id
        self.from_client = bool(from_client)
        self.orders = sorted({order_reference(o) for o in orders}) if orders is not None else None
        self.statuses = sorted({str(s) for s in statuses}) if statuses is not None else None
        self.poll_interval = float(poll_interval)
        self.lookback = float(lookback)
        self.api_version = api_version

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and kwargs: the same on every DAG parse (nothing time-dependent), so the watcher is stable."""
        return (
            CLASSPATH,
            {
                "spp_conn_id": self.spp_conn_id,
                "from_client": self.from_client,
                "orders": self.orders,
                "statuses": self.statuses,
                "poll_interval": self.poll_interval,
                "lookback": self.lookback,
                "api_version": self.api_version,
            },
        )

    @property
    def cursor_key(self) -> str:
        """Where the cursor is kept: named after what is watched, not how often it is polled."""
        watched = {k: v for k, v in self.serialize()[1].items() if k not in ("poll_interval", "lookback")}
        digest = hashlib.sha256(json.dumps(watched, sort_keys=True).encode()).hexdigest()[:16]
        return f"spp_order_activity_{digest}"

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever: one event per new message; errors are logged and retried with backoff."""
        store = self._cursor_store()
        hook = SppAsyncHook(self.spp_conn_id, api_version=self.api_version)
        failures = 0
        try:
            while True:
                try:
                    batch = await self.poll(hook, ActivityCursor.from_json(await store.load()))
                except Exception as err:  # a watcher keeps watching: SPP, the network or the store may recover
                    failures += 1
                    await self._back_off(err, failures)
                    continue
                failures = 0
                async with aclosing(self._hand_over(batch, store)) as events:
                    async for event in events:
                        yield event
                await asyncio.sleep(self.poll_interval)
        finally:
            await hook.aclose()

    async def _back_off(self, err: Exception, failures: int) -> None:
        """Log a failed poll and wait before the next: longer after each failure in a row, at most 15 minutes."""
        wait = min(MAX_ERROR_BACKOFF, self.poll_interval * 2 ** min(failures, 10))
        log = self.log.error if not isinstance(err, SppError) or err.permanent else self.log.warning
        log("Polling SPP for new messages failed (%s); next try in %.0f s", err, wait)
        await asyncio.sleep(wait)

    @staticmethod
    async def _hand_over(batch: PollResult, store: CursorStore) -> AsyncGenerator[TriggerEvent, None]:
        """The batch's events, each recorded as sent the moment it is handed over; then the cursor after them."""
        emitted = batch.before_events
        for message_id, created_at, payload in batch.events:
            try:
                yield TriggerEvent(payload)
            finally:
                # Handed over: record it at once, so a restart from here on never sends it again.
                emitted = emitted.knowing({str(message_id): created_at})
                await store.save(emitted.as_json())
        await store.save(batch.cursor.as_json())

    async def poll(self, hook: SppAsyncHook, cursor: ActivityCursor | None) -> PollResult:
        """One poll: the new messages of the orders that moved, and the cursor after them (nothing saved).

        Without a cursor this is the baseline: every message seen becomes known, none is emitted.
        """
        recent, now, horizon = await self._recent_orders(hook, cursor)
        previous = cursor or ActivityCursor.empty(horizon)
        known = dict(previous.known)
        events: list[ActivityEvent] = []
        for order in recent:
            if not previous.may_have_news(str(order.id), self._last_message_at(order)):
                continue
            for message in await self._new_messages(hook, order, horizon, known):
                created = as_utc(message.created_at).isoformat() if message.created_at else now.isoformat()
                if cursor is not None and self._fires_for(message, order):
                    events.append((message.id, created, activity_payload(message, order)))
                else:
                    known[str(message.id)] = created
        events.sort(key=lambda event: event[0])
        moved = [(str(order.id), self._last_message_at(order)) for order in recent]
        after = previous.advanced(now, moved, settled_before=now - SETTLE).knowing(known)
        after = after.knowing({str(message_id): created for message_id, created, _ in events})
        return PollResult(events, previous.knowing(known), after.pruned(now - timedelta(seconds=self.lookback)))

    def _fires_for(self, message: MessageResource, order: Order) -> bool:
        """Whether a new message is an event (with ``from_client``, only the client's are)."""
        return not self.from_client or author_kind(message, order) == "client"

    @staticmethod
    def _last_message_at(order: Order) -> datetime:
        """A recent order's ``last_message_at`` in UTC (recent orders always have one)."""
        assert order.last_message_at is not None
        return as_utc(order.last_message_at)

    def _watches(self, order: Order) -> bool:
        """Whether the order passes the ``orders`` and ``statuses`` filters."""
        if self.orders is not None and str(order.id) not in self.orders and (order.number or "") not in self.orders:
            return False
        statuses = {s.casefold() for s in self.statuses or ()}
        return not statuses or str("" if order.status is None else order.status).casefold() in statuses

    async def _recent_orders(
        self, hook: SppAsyncHook, cursor: ActivityCursor | None
    ) -> tuple[list[Order], datetime, datetime]:
        """Watched orders with a message since the horizon (last poll minus lookback), the server's now, the horizon.

        Reads orders newest ``last_message_at`` first and stops at the first older than the horizon;
        if SPP turns out not to sort that way, it reads every page instead (correct, only dearer).
        """
        recent: list[Order] = []
        ordering = ListingOrder()
        horizon: datetime | None = None
        async with aclosing(hook.list_orders(sort=SORT_BY_LAST_MESSAGE)) as listing:
            async for order in listing:
                if horizon is None:
                    start = cursor.polled_at if cursor else hook.server_time or utcnow()
                    horizon = start - timedelta(seconds=self.lookback)
                if order.last_message_at is None or order.id is None:
                    continue
                last = as_utc(order.last_message_at)
                was_sorted = ordering.newest_first is not False
                ordering.feed(last)
                if was_sorted and ordering.newest_first is False:
                    self.log.warning("SPP did not sort orders by last_message_at; reading every page this time")
                if last < horizon:
                    if ordering.newest_first is not False:
                        break
                    continue
                if self._watches(order):
                    recent.append(order)
        now = hook.server_time or utcnow()
        return recent, now, horizon or now - timedelta(seconds=self.lookback)

    @staticmethod
    async def _new_messages(
        hook: SppAsyncHook, order: Order, horizon: datetime, known: dict[str, str]
    ) -> list[MessageResource]:
        """The order's messages since the horizon that the cursor does not know yet, oldest first."""
        fresh: list[MessageResource] = []
        async with aclosing(hook.list_order_messages(order.id or 0)) as messages:
            async for message in messages:
                if message.created_at is not None and as_utc(message.created_at) < horizon:
                    break
                if str(message.id) not in known:
                    fresh.append(message)
        return sorted(fresh, key=lambda m: m.id)

    def _cursor_store(self) -> CursorStore:
        """The watched asset's state store (Airflow 3.3+) when the triggerer gave one, else a Variable."""
        variable = VariableCursorStore(self.cursor_key, description="SppOrderActivityTrigger cursor")
        accessor = getattr(self, "asset_state_store", None)
        if accessor is not None:
            return AssetCursorStore(accessor, self.cursor_key, fallback=variable)
        return variable
