"""Where the activity trigger stands between polls (its cursor), what one poll yields, and the event's JSON.

No I/O here: the trigger reads SPP, a :mod:`~airflow_provider_spp._internal.cursor_store` keeps the cursor.

The cursor is saved with a poll's events as *pending* before they are handed over. A pending event becomes
*known* (never handed over again) when Airflow confirmed it stored: on Airflow 3.3+ through the shared
stream's persistence-gated ``advance`` (:meth:`ActivityCursor.acknowledged`); before 3.3, which confirms
nothing, at a later poll at least :data:`PERSIST_GRACE` after its hand-over (:meth:`ActivityCursor.settled`).
A trigger that starts from a stored cursor hands its pending events over again: none is lost; on 3.3+ only
those stored but not yet confirmed at a stop repeat, before 3.3 those of the last poll(s).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_spp._internal.clock import as_utc
from airflow_provider_spp._internal.replies import author_kind

if TYPE_CHECKING:
    from airflow_provider_spp.models import MessageResource, Order

#: Format version of the stored cursor; a cursor of another version is ignored (a new baseline is taken).
CURSOR_VERSION = 1

#: One event to emit: the message ID, its ``created_at`` (ISO-8601) and the event's payload.
ActivityEvent = tuple[int, str, dict[str, Any]]
#: How long after its hand-over an event is taken as stored by Airflow (it syncs its queue about every second).
PERSIST_GRACE = timedelta(seconds=10)


class ActivityCursor:
    """Where the activity trigger stands: the last poll's server time, recently moved orders, known messages."""

    def __init__(
        self,
        *,
        polled_at: datetime,
        orders: dict[str, str],
        unsettled: list[str],
        known: dict[str, str],
        pending: dict[str, dict[str, Any]] | None = None,
        orders_sorted: bool | None = None,
    ) -> None:
        self.polled_at = polled_at
        #: order ID -> its ``last_message_at`` (ISO-8601) as last seen.
        self.orders = orders
        #: IDs of orders whose ``last_message_at`` was too recent to trust: they are read again next poll.
        self.unsettled = unsettled
        #: message ID -> its ``created_at`` (ISO-8601): messages already emitted or taken as the baseline.
        self.known = known
        #: message ID -> {"created_at", "handed_at", "payload"}: handed over, maybe not yet stored by Airflow.
        self.pending = pending or {}
        #: Whether SPP was seen listing orders by ``last_message_at``, newest first, over a whole listing.
        self.orders_sorted = orders_sorted

    @classmethod
    def empty(cls, polled_at: datetime) -> ActivityCursor:
        """A cursor that knows nothing yet (what a baseline starts from)."""
        return cls(polled_at=polled_at, orders={}, unsettled=[], known={})

    def seen(self) -> set[str]:
        """IDs of messages a poll must not emit again: known or pending."""
        return set(self.known) | set(self.pending)

    def pending_events(self) -> list[ActivityEvent]:
        """The pending events, oldest first: what a trigger resuming from this cursor hands over again."""
        events = [(int(k), str(v["created_at"]), dict(v["payload"])) for k, v in self.pending.items()]
        return sorted(events, key=lambda event: event[0])

    def handing_over(self, events: Iterable[ActivityEvent], at: datetime) -> ActivityCursor:
        """This cursor with ``events`` pending, handed over ``at``."""
        handed = {str(i): {"created_at": c, "handed_at": at.isoformat(), "payload": p} for i, c, p in events}
        return self._with(pending={**self.pending, **handed})

    def settled(self, before: datetime) -> ActivityCursor:
        """Pending events handed over before ``before`` taken as stored: known from now on (the fallback's rule)."""
        done = [k for k, v in self.pending.items() if as_utc(datetime.fromisoformat(v["handed_at"])) < before]
        return self.acknowledged(done)

    def acknowledged(self, message_ids: Iterable[str]) -> ActivityCursor:
        """Pending events Airflow confirmed stored: known from now on, never handed over again."""
        done = {k: v for k, v in self.pending.items() if k in set(message_ids)}
        if not done:
            return self
        return self._with(
            known={**self.known, **{k: str(v["created_at"]) for k, v in done.items()}},
            pending={k: v for k, v in self.pending.items() if k not in done},
        )

    def with_orders_sorted(self, orders_sorted: bool) -> ActivityCursor:
        """This cursor, saying whether SPP lists orders newest first."""
        return self._with(orders_sorted=orders_sorted)

    def _with(self, **changes: Any) -> ActivityCursor:
        """A copy with some fields replaced."""
        fields: dict[str, Any] = {
            "polled_at": self.polled_at,
            "orders": dict(self.orders),
            "unsettled": list(self.unsettled),
            "known": dict(self.known),
            "pending": dict(self.pending),
            "orders_sorted": self.orders_sorted,
        }
        return ActivityCursor(**{**fields, **changes})

    def may_have_news(self, order_id: str, last_message_at: datetime) -> bool:
        """Whether an order may hold messages this cursor has not seen: it moved, or had not settled."""
        return self.orders.get(order_id) != last_message_at.isoformat() or order_id in self.unsettled

    def advanced(
        self, polled_at: datetime, moved: Iterable[tuple[str, datetime]], settled_before: datetime
    ) -> ActivityCursor:
        """After a poll at ``polled_at`` that saw these orders' ``last_message_at``; later ones are unsettled."""
        orders = dict(self.orders)
        unsettled: set[str] = set()
        for order_id, last_message_at in moved:
            orders[order_id] = last_message_at.isoformat()
            if last_message_at > settled_before:
                unsettled.add(order_id)
        return self._with(polled_at=polled_at, orders=orders, unsettled=sorted(unsettled))

    def knowing(self, messages: dict[str, str]) -> ActivityCursor:
        """This cursor with more messages known."""
        return self._with(known={**self.known, **messages})

    def pruned(self, floor: datetime) -> ActivityCursor:
        """Without orders and known messages older than ``floor`` (the next poll never looks back that far)."""

        def recent(items: dict[str, str]) -> dict[str, str]:
            return {k: v for k, v in items.items() if as_utc(datetime.fromisoformat(v)) >= floor}

        orders = recent(self.orders)
        return self._with(orders=orders, unsettled=[k for k in self.unsettled if k in orders], known=recent(self.known))

    def as_json(self) -> dict[str, Any]:
        """JSON for the state store."""
        return {
            "v": CURSOR_VERSION,
            "polled_at": self.polled_at.isoformat(),
            "orders": self.orders,
            "unsettled": self.unsettled,
            "known": self.known,
            "pending": self.pending,
            "orders_sorted": self.orders_sorted,
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
                pending={str(k): _pending_entry(v) for k, v in dict(value.get("pending") or {}).items()},
                orders_sorted=value.get("orders_sorted") if isinstance(value.get("orders_sorted"), bool) else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def _pending_entry(value: Any) -> dict[str, Any]:
    """A stored pending event, checked (raises KeyError/TypeError/ValueError when unreadable)."""
    as_utc(datetime.fromisoformat(str(value["handed_at"])))
    return {
        "created_at": str(value["created_at"]),
        "handed_at": str(value["handed_at"]),
        "payload": dict(value["payload"]),
    }


class PollResult:
    """Events to emit (message id, created_at, payload) oldest first, and the cursor with them pending."""

    def __init__(self, events: list[ActivityEvent], cursor: ActivityCursor, skipped: int = 0) -> None:
        self.events = events
        #: Where the trigger stands: save it before handing the events over.
        self.cursor = cursor
        #: New messages not emitted because of the catch-up bound.
        self.skipped = skipped


def activity_payload(message: MessageResource, order: Order) -> dict[str, Any]:
    """The event's small JSON: which order, which message, when, who wrote it and how (never the text)."""
    return {
        "order_id": order.id,
        "order_number": order.number,
        "order_status": order.status,
        "message_id": message.id,
        "created_at": as_utc(message.created_at).isoformat() if message.created_at else None,
        "author": author_kind(message, order),
        "user_id": message.user_id,
        "via": getattr(message, "via", None),
        "is_auto_generated": getattr(message, "is_auto_generated", None),
    }


def catch_up_bound(
    events: list[ActivityEvent], now: datetime, *, max_count: int | None, max_age: float | None
) -> tuple[list[ActivityEvent], list[ActivityEvent]]:
    """The events to emit and those to skip (oldest first each): older than ``max_age`` seconds, then beyond
    the newest ``max_count``; what a poll after a long outage may fire is bounded this way."""
    kept = events
    if max_age is not None:
        floor = now - timedelta(seconds=max_age)
        kept = [event for event in kept if as_utc(datetime.fromisoformat(event[1])) >= floor]
    if max_count is not None and len(kept) > max_count:
        kept = kept[len(kept) - max_count :]
    chosen = {event[0] for event in kept}
    return kept, [event for event in events if event[0] not in chosen]
