"""Where the activity trigger stands between polls (its cursor), what one poll yields, and the event's JSON.

No I/O here: the trigger reads SPP, a :mod:`~airflow_provider_spp._internal.cursor_store` keeps the cursor.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_spp._internal.clock import as_utc
from airflow_provider_spp._internal.replies import author_kind

if TYPE_CHECKING:
    from airflow_provider_spp.models import MessageResource, Order

#: Format version of the stored cursor; a cursor of another version is ignored (a new baseline is taken).
CURSOR_VERSION = 1

#: One event to emit: the message ID, its ``created_at`` (ISO-8601) and the event's payload.
ActivityEvent = tuple[int, str, dict[str, Any]]


class ActivityCursor:
    """Where the activity trigger stands: the last poll's server time, recently moved orders, known messages."""

    def __init__(
        self, *, polled_at: datetime, orders: dict[str, str], unsettled: list[str], known: dict[str, str]
    ) -> None:
        self.polled_at = polled_at
        #: order ID -> its ``last_message_at`` (ISO-8601) as last seen.
        self.orders = orders
        #: IDs of orders whose ``last_message_at`` was too recent to trust: they are read again next poll.
        self.unsettled = unsettled
        #: message ID -> its ``created_at`` (ISO-8601): messages already emitted or taken as the baseline.
        self.known = known

    @classmethod
    def empty(cls, polled_at: datetime) -> ActivityCursor:
        """A cursor that knows nothing yet (what a baseline starts from)."""
        return cls(polled_at=polled_at, orders={}, unsettled=[], known={})

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
        return ActivityCursor(polled_at=polled_at, orders=orders, unsettled=sorted(unsettled), known=dict(self.known))

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

    def __init__(self, events: list[ActivityEvent], before_events: ActivityCursor, cursor: ActivityCursor) -> None:
        self.events = events
        #: The previous cursor plus what this poll learnt without emitting: the base of mid-batch saves.
        self.before_events = before_events
        #: Where the trigger stands once every event is out.
        self.cursor = cursor


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
