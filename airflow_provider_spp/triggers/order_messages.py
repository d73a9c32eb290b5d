"""Triggers that read SPP order messages on the triggerer (asyncio); none of them ever writes to SPP.

* :class:`SppOrderMessageTrigger` - the deferrable :class:`SppOrderMessageSensor`'s wait: polls one
  order until a new message matching the sensor's filter arrives, or the wait times out.
* :class:`SppOrderActivityTrigger` - a ``BaseEventTrigger`` for ``AssetWatcher``: one event per new
  message across the workspace, at a cost that grows with what changed, not with what is watched.

Both take a connection id (never a token) and only JSON-safe kwargs.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import json
import sys
from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent

from airflow_provider_spp._internal.client import SORT_BY_LAST_MESSAGE
from airflow_provider_spp._internal.clock import as_utc, utcnow
from airflow_provider_spp._internal.listing_order import ListingOrder
from airflow_provider_spp._internal.replies import (
    ReplyBaseline,
    ReplyFilter,
    ReplyScan,
    author_kind,
    parse_message_id,
    parse_moment,
    reply_payload,
)
from airflow_provider_spp.exceptions import SppError, SppInputError
from airflow_provider_spp.hooks.spp import SppAsyncHook
from airflow_provider_spp.models import order_reference

if TYPE_CHECKING:
    from airflow_provider_spp.models import MessageResource, Order

_MODULE = __name__


class SppOrderMessageTrigger(BaseTrigger):
    """
    Poll one order until it gets a new message that passes the filter, then fire once.

    :param order: Order ID or order number.
    :param spp_conn_id: The ``spp`` connection (its id; the trigger never holds the token).
    :param after_message_id: Messages with a higher ID are new (exact; e.g. the ID of the post it follows).
    :param since: ISO-8601 time; messages created at or after it (whole seconds) are new.
    :param from_client: Only the client's messages count (see :mod:`airflow_provider_spp._internal.replies`).
    :param contains: Only messages containing this text (case-insensitive) count.
    :param pattern: Only messages matching this regular expression (``re.search``) count.
    :param return_text: Put the message text in the event (it is client data; off by default).
    :param poke_interval: Seconds between polls.
    :param end_time: ISO-8601 time after which the trigger fires a ``timeout`` event.
    :param api_version: Sent as ``X-Api-Version``.
    """

    def __init__(
        self,
        *,
        order: str | int,
        spp_conn_id: str = SppAsyncHook.default_conn_name,
        after_message_id: int | None = None,
        since: str | None = None,
        from_client: bool = False,
        contains: str | None = None,
        pattern: str | None = None,
        return_text: bool = False,
        poke_interval: float = 60.0,
        end_time: str | None = None,
        api_version: str | None = None,
    ) -> None:
        super().__init__()
        self.order = order
        self.spp_conn_id = spp_conn_id
        self.after_message_id = after_message_id
        self.since = since
        self.from_client = from_client
        self.contains = contains
        self.pattern = pattern
        self.return_text = return_text
        self.poke_interval = poke_interval
        self.end_time = end_time
        self.api_version = api_version

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and JSON-safe kwargs (a connection id, never a token)."""
        return (
            f"{_MODULE}.SppOrderMessageTrigger",
            {
                "order": self.order,
                "spp_conn_id": self.spp_conn_id,
                "after_message_id": self.after_message_id,
                "since": self.since,
                "from_client": self.from_client,
                "contains": self.contains,
                "pattern": self.pattern,
                "return_text": self.return_text,
                "poke_interval": self.poke_interval,
                "end_time": self.end_time,
                "api_version": self.api_version,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until a matching new message, a timeout, or an error no wait can fix."""
        try:
            baseline = ReplyBaseline(parse_message_id(self.after_message_id), parse_moment(self.since))
            wanted = ReplyFilter(self.from_client, self.contains, self.pattern)
            deadline = parse_moment(self.end_time)
        except SppInputError as err:
            yield TriggerEvent({"status": "error", "message": str(err)})
            return
        hook = SppAsyncHook(self.spp_conn_id, api_version=self.api_version)
        try:
            while True:
                try:
                    found = await find_reply(hook, self.order, baseline, wanted)
                except SppError as err:
                    if err.permanent:
                        yield TriggerEvent({"status": "error", "message": str(err)})
                        return
                    self.log.warning("Polling SPP order %s failed (%s); trying again", self.order, err)
                else:
                    if found is not None:
                        message, order = found
                        payload = reply_payload(message, self.order, with_text=self.return_text, order_resource=order)
                        yield TriggerEvent({"status": "success", **payload})
                        return
                wait = self.poke_interval
                if deadline is not None:
                    left = (deadline - utcnow()).total_seconds()
                    if left <= 0:
                        yield TriggerEvent({"status": "timeout", "order": str(self.order)})
                        return
                    wait = min(wait, left)
                await asyncio.sleep(wait)
        finally:
            await hook.aclose()


async def find_reply(
    hook: SppAsyncHook, order: str | int, baseline: ReplyBaseline, wanted: ReplyFilter
) -> tuple[MessageResource, Order | None] | None:
    """The oldest new message of the order passing the filter (newest-first pages, read to the baseline)."""
    scan = ReplyScan(baseline, wanted)
    async with aclosing(hook.list_order_messages(order)) as messages:
        async for message in messages:
            if not scan.feed(message):
                break
    if scan.found is None:
        return None
    return scan.found, scan.found.order


# -- the event trigger ------------------------------------------------------------------------------------

#: Format version of the stored cursor; a cursor of another version is ignored (a new baseline is taken).
CURSOR_VERSION = 1
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
            f"{_MODULE}.SppOrderActivityTrigger",
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
                    cursor = ActivityCursor.from_json(await store.load())
                    batch = await self.poll(hook, cursor)
                except Exception as err:  # a watcher keeps watching: SPP, the network or the store may recover
                    failures += 1
                    wait = min(MAX_ERROR_BACKOFF, self.poll_interval * 2 ** min(failures, 10))
                    log = self.log.error if not isinstance(err, SppError) or err.permanent else self.log.warning
                    log("Polling SPP for new messages failed (%s); next try in %.0f s", err, wait)
                    await asyncio.sleep(wait)
                    continue
                failures = 0
                emitted = batch.before_events
                for message_id, created_at, payload in batch.events:
                    try:
                        yield TriggerEvent(payload)
                    finally:
                        # Handed over: record it at once, so a restart from here on never sends it again.
                        emitted = emitted.knowing({str(message_id): created_at})
                        await store.save(emitted.as_json())
                await store.save(batch.cursor.as_json())
                await asyncio.sleep(self.poll_interval)
        finally:
            await hook.aclose()

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

    async def poll(self, hook: SppAsyncHook, cursor: ActivityCursor | None) -> PollResult:
        """One poll: the new messages of the orders that moved, and the cursor after them (nothing saved).

        Without a cursor this is the baseline: every message seen becomes known, none is emitted.
        """
        recent, now, horizon = await self._recent_orders(hook, cursor)
        seen = dict(cursor.orders) if cursor else {}
        unsettled = set(cursor.unsettled) if cursor else set()
        known = dict(cursor.known) if cursor else {}
        events: list[tuple[int, str, dict[str, Any]]] = []
        orders_now = dict(seen)
        unsettled_now: set[str] = set()
        for order in recent:
            assert order.last_message_at is not None
            key, last = str(order.id), as_utc(order.last_message_at)
            orders_now[key] = last.isoformat()
            if now - last < SETTLE:
                unsettled_now.add(key)
            if seen.get(key) == last.isoformat() and key not in unsettled:
                continue
            for message in await self._new_messages(hook, order, horizon, known):
                created = as_utc(message.created_at).isoformat() if message.created_at else now.isoformat()
                if cursor is not None and (not self.from_client or author_kind(message, order) == "client"):
                    events.append((message.id, created, activity_payload(message, order)))
                else:
                    known[str(message.id)] = created
        events.sort(key=lambda item: item[0])
        before = (cursor or ActivityCursor(polled_at=horizon, orders={}, unsettled=[], known={})).knowing(known)
        after = ActivityCursor(polled_at=now, orders=orders_now, unsettled=sorted(unsettled_now), known=known).knowing(
            {str(message_id): created for message_id, created, _ in events}
        )
        return PollResult(events, before, after.pruned(now - timedelta(seconds=self.lookback)))

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
        accessor = getattr(self, "asset_state_store", None)
        if accessor is not None:
            return AssetCursorStore(accessor, self.cursor_key, fallback=VariableCursorStore(self.cursor_key))
        return VariableCursorStore(self.cursor_key)


def activity_payload(message: MessageResource, order: Order) -> dict[str, Any]:
    """The event's small JSON: which order, which message, when, and who wrote it (never the text)."""
    return {
        "order_id": order.id,
        "order_number": order.number,
        "order_status": order.status,
        "message_id": message.id,
        "created_at": as_utc(message.created_at).isoformat() if message.created_at else None,
        "author": author_kind(message, order),
        "user_id": message.user_id,
    }


class ActivityCursor:
    """Where the activity trigger stands: the last poll's server time, recently moved orders, known messages."""

    def __init__(
        self, *, polled_at: datetime, orders: dict[str, str], unsettled: list[str], known: dict[str, str]
    ) -> None:
        self.polled_at = polled_at
        self.orders = orders
        self.unsettled = unsettled
        self.known = known

    def knowing(self, messages: dict[str, str]) -> ActivityCursor:
        """This cursor with more messages known."""
        return ActivityCursor(
            polled_at=self.polled_at,
            orders=dict(self.orders),
            unsettled=list(self.unsettled),
            known={**self.known, **messages},
        )

    def pruned(self, floor: datetime) -> ActivityCursor:
        """Without orders and messages older than ``floor``: the next poll never looks back that far."""

        def recent(items: dict[str, str]) -> dict[str, str]:
            return {k: v for k, v in items.items() if as_utc(datetime.fromisoformat(v)) >= floor}

        return ActivityCursor(
            polled_at=self.polled_at,
            orders=recent(self.orders),
            unsettled=[k for k in self.unsettled if k in self.orders],
            known=recent(self.known),
        )

    def as_json(self) -> dict[str, Any]:
        """JSON for the state store."""
        return {
            "v": CURSOR_VERSION,
            "polled_at": self.polled_at.isoformat(),
            "orders": self.orders,
            "unsettled": self.unsettled,
            "known": self.known,
        }

    @classmethod
    def from_json(cls, value: Any) -> ActivityCursor | None:
        """A stored cursor, or None (take a baseline) when there is none or it is unreadable."""
        if not isinstance(value, dict) or value.get("v") != CURSOR_VERSION:
            return None
        try:
            return cls(
                polled_at=as_utc(datetime.fromisoformat(str(value["polled_at"]))),
                orders={str(k): str(v) for k, v in dict(value.get("orders") or {}).items()},
                unsettled=[str(k) for k in value.get("unsettled") or []],
                known={str(k): str(v) for k, v in dict(value.get("known") or {}).items()},
            )
        except (KeyError, TypeError, ValueError):
            return None


class PollResult:
    """Events to emit (message id, created_at, payload) oldest first; the cursor before and after them."""

    def __init__(
        self, events: list[tuple[int, str, dict[str, Any]]], before_events: ActivityCursor, cursor: ActivityCursor
    ) -> None:
        self.events = events
        #: The previous cursor plus what this poll learnt without emitting: the base of mid-batch saves.
        self.before_events = before_events
        #: Where the trigger stands once every event is out.
        self.cursor = cursor


class CursorStore(abc.ABC):
    """Where a trigger keeps its cursor between polls and across triggerer restarts."""

    @abc.abstractmethod
    async def load(self) -> Any:
        """The stored cursor JSON, or None."""

    @abc.abstractmethod
    async def save(self, value: dict[str, Any]) -> None:
        """Store the cursor JSON."""


class AssetCursorStore(CursorStore):
    """Airflow 3.3+'s ``asset_state_store`` of the watched asset (awaited, never blocking the loop)."""

    def __init__(self, accessor: Any, key: str, *, fallback: CursorStore) -> None:
        self._accessor = accessor
        self._key = key
        self._fallback = fallback
        self._use_fallback = False

    async def load(self) -> Any:
        """Read the cursor; a trigger watched by several assets has no single store, so use the fallback."""
        if not self._use_fallback:
            try:
                return await self._accessor.aget(self._key)
            except ValueError:
                self._use_fallback = True
        return await self._fallback.load()

    async def save(self, value: dict[str, Any]) -> None:
        """Write the cursor."""
        if not self._use_fallback:
            try:
                await self._accessor.aset(self._key, value)
                return
            except ValueError:
                self._use_fallback = True
        await self._fallback.save(value)


class VariableCursorStore(CursorStore):
    """Before Airflow 3.3: an Airflow Variable named after the trigger's filters (JSON)."""

    def __init__(self, key: str) -> None:
        self._key = key

    async def load(self) -> Any:
        """Read the Variable (in a thread: the Variable API is synchronous)."""
        from asgiref.sync import sync_to_async

        return await sync_to_async(_variable_get)(self._key)

    async def save(self, value: dict[str, Any]) -> None:
        """Write the Variable."""
        from asgiref.sync import sync_to_async

        await sync_to_async(_variable_set)(self._key, value)


def _variable_api() -> Any:
    """The Task SDK's Variable inside Airflow's processes (triggerer, worker), the metadata DB's outside."""
    if hasattr(sys.modules.get("airflow.sdk.execution_time.task_runner"), "SUPERVISOR_COMMS"):
        from airflow.sdk import Variable

        return Variable
    from airflow.models.variable import Variable as DbVariable

    return DbVariable


def _variable_get(key: str) -> Any:
    """A JSON Variable, or None."""
    variable = _variable_api()
    if variable.__module__.startswith("airflow.sdk"):
        return variable.get(key, default=None, deserialize_json=True)
    return variable.get(key, default_var=None, deserialize_json=True)


def _variable_set(key: str, value: dict[str, Any]) -> None:
    """Write a JSON Variable."""
    _variable_api().set(key, value, description="SppOrderActivityTrigger cursor", serialize_json=True)
