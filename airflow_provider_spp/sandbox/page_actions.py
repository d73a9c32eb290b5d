"""Writes that land between two page requests: the "page shift" a paginating client must survive.

A test registers an :class:`AfterPage` (admin ``POST /_sandbox/after_page`` or ``SandboxServer.after_page``):
right after the sandbox has built page ``page`` of a listing (``GET /api/orders`` or ``GET
/api/order_messages/{order}``), and before that answer leaves, it writes to an order. The client holds
the page as it was; its next page request sees the listing after the write. Deterministic, unlike a
thread racing the client: e.g. with ``sort=last_message_at:desc`` a client message on an order of page 2
moves it to the top, so the last order of page 1 slides onto page 2 and is read twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from airflow_provider_spp.sandbox.declared import CountedQueue, as_dict, checked_json

if TYPE_CHECKING:
    from airflow_provider_spp.sandbox.store import SandboxStore

__all__ = [
    "AfterPage",
    "AfterPagePlan",
    "Listing",
    "run_after_page",
]


class Listing(StrEnum):
    """A paginated listing of the API."""

    #: ``GET /api/orders``
    ORDERS = "orders"
    #: ``GET /api/order_messages/{order}``
    ORDER_MESSAGES = "order_messages"


class PageWrite(StrEnum):
    """What happens to the order after the page was built."""

    #: A message from the order's client arrives (``via`` web); the order's ``last_message_at`` moves.
    CLIENT_MESSAGE = "client_message"
    #: The service writes an auto-generated message (authored by the client, as a status change may be).
    AUTO_MESSAGE = "auto_message"
    #: Only the order's ``last_message_at`` moves to now (no message).
    TOUCH = "touch"


@dataclass(frozen=True)
class AfterPage:
    """After page ``page`` of ``listing`` is built, ``write`` to ``order``; used ``times`` times (None: always)."""

    listing: Listing
    #: The order written to (ID or number); for an order_messages listing it defaults to the listed order.
    order: str | None = None
    page: int = 1
    #: order_messages only: react only to the listing of this order (ID or number); None: any order's.
    listed_order: str | None = None
    write: PageWrite = PageWrite.CLIENT_MESSAGE
    message: str = "A message written between two page requests"
    times: int | None = 1

    def __post_init__(self) -> None:
        """Validate and normalise (raises ValueError)."""
        object.__setattr__(self, "listing", _enum(Listing, self.listing, "listing"))
        object.__setattr__(self, "write", _enum(PageWrite, self.write, "write"))
        for name in ("order", "listed_order"):
            value = getattr(self, name)
            object.__setattr__(self, name, None if value is None or value == "" else str(value))
        if self.listing is Listing.ORDERS and self.order is None:
            raise ValueError("an after_page action on the orders listing needs the 'order' to write to")
        for name in ("page", "times"):
            value = getattr(self, name)
            if (value is not None or name == "page") and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value!r}")
        if not isinstance(self.message, str) or not self.message.strip():
            raise ValueError(f"message must be a non-empty string, got {self.message!r}")

    @classmethod
    def from_dict(cls, data: Any) -> AfterPage:
        """Build from JSON such as ``{"listing": "orders", "page": 1, "order": "00C0FFEE"}``."""
        return cls(**checked_json(cls, data, "an after_page action", "after_page", ("listing",)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what :meth:`from_dict` reads)."""
        return as_dict(self)

    def wants(self, listing: Listing, page: int, is_listed: Callable[[str], bool]) -> bool:
        """Whether this action reacts to page ``page`` of ``listing`` (``is_listed``: the listed order has this key)."""
        if (self.listing, self.page) != (listing, page):
            return False
        return self.listed_order is None or is_listed(self.listed_order)


def _enum(kind: type[StrEnum], value: Any, name: str) -> Any:
    """A member of ``kind`` from its text."""
    try:
        return kind(str(value).strip().lower())
    except ValueError:
        raise ValueError(f"{name} must be one of {', '.join(m.value for m in kind)}, got {value!r}") from None


class AfterPagePlan(CountedQueue[AfterPage]):
    """The registered after-page actions, safe to change from a test while the server consumes them."""

    def snapshot(self) -> list[dict[str, Any]]:
        """JSON-ready list of the pending actions."""
        return [action.to_dict() for action in self.pending()]


def _is(order: Mapping[str, Any] | None, key: str) -> bool:
    """Whether ``key`` (an ID or a number, any case) names this order."""
    return order is not None and key.casefold() in (str(order["id"]), str(order["number"]).casefold())


def run_after_page(store: SandboxStore, listing: Listing, page: int, listed: Mapping[str, Any] | None) -> None:
    """Do the write registered for page ``page`` of ``listing`` (``listed``: the order whose messages are listed)."""
    action = store.after_pages.take(lambda a: a.wants(listing, page, lambda key: _is(listed, key)))
    if action is None:
        return
    target = store.order(action.order) if action.order is not None else listed
    if target is None:
        return  # the order named is gone (or never was): nothing to write
    if action.write is PageWrite.TOUCH:
        store.touch_order(target["id"])
        return
    store.create_message(
        order_id=target["id"],
        message=action.message,
        user_id=store.client_of(target["id"]),
        is_auto_generated=action.write is PageWrite.AUTO_MESSAGE,
    )
