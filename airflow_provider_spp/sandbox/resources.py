"""JSON shapes the sandbox answers with: Order, Ticket, MessageResource and Laravel's paginator."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from airflow_provider_spp.sandbox.store import MAX_PER_PAGE, LinkStyle, StoredMessage, file_url, iso

__all__ = [
    "message_resource",
    "order_resource",
    "page_params",
    "paginate",
]

T = TypeVar("T")

DEFAULT_PER_PAGE = 20


def order_resource(order: Mapping[str, Any], users: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """An Order with its client (a full User) embedded."""
    rendered = copy.deepcopy(dict(order))
    client = users.get(order["user_id"])
    rendered["client"] = copy.deepcopy(dict(client)) if client is not None else None
    return rendered


def ticket_resource(order: Mapping[str, Any], users: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """The TicketResource SPP sends beside an order message: every documented key, mostly empty."""
    client = users.get(order["user_id"])
    return {
        "id": None,
        "created_at": order.get("created_at"),
        "updated_at": order.get("updated_at"),
        "last_message_at": order.get("last_message_at"),
        "date_closed": None,
        "subject": None,
        "user_id": order["user_id"],
        "form_data": {},
        "tags": [],
        "note": None,
        "employees": copy.deepcopy(list(order.get("employees") or [])),
        "status": None,
        "source": None,
        "order_id": order["id"],
        "client": copy.deepcopy(dict(client)) if client is not None else None,
        "metadata": {},
    }


def message_resource(
    message: StoredMessage,
    order: Mapping[str, Any],
    users: Mapping[int, Mapping[str, Any]],
    base_url: str,
) -> dict[str, Any]:
    """A MessageResource (not wrapped in ``data``); ``files`` are absolute sandbox URLs.

    Besides the documented fields it carries Wayfront's ``is_auto_generated``, ``via`` and ``date_seen``.
    """
    return {
        "id": message.id,
        "user_id": message.user_id,
        "created_at": iso(message.created_at),
        "message": message.message,
        "staff_only": message.staff_only,
        "is_auto_generated": message.is_auto_generated,
        "via": message.via,
        "date_seen": iso(message.date_seen) if message.date_seen is not None else None,
        "files": [file_url(base_url, message.id, f.filename) for f in message.files],
        "order": order_resource(order, users),
        "ticket": ticket_resource(order, users),
    }


def page_params(query: Mapping[str, str], max_per_page: int = MAX_PER_PAGE) -> tuple[int, int]:
    """``page`` (from 1) and ``limit`` (default 20, at most ``max_per_page``) from a query, forgiving bad values."""

    def whole(name: str, default: int) -> int:
        try:
            return int(query.get(name, default))
        except (TypeError, ValueError):
            return default

    page = max(1, whole("page", 1))
    per_page = min(max_per_page, max(1, whole("limit", DEFAULT_PER_PAGE)))
    return page, per_page


def paginate(
    items: Sequence[T],
    *,
    page: int,
    per_page: int,
    path: str,
    query: Sequence[tuple[str, str]] = (),
    link_style: LinkStyle = "laravel",
) -> tuple[list[T], dict[str, Any], dict[str, Any]]:
    """Slice one page; return it with Laravel's ``links`` and ``meta``.

    ``link_style="laravel"`` is what Laravel's ``LengthAwarePaginator::url()`` does unless the app calls
    ``withQueryString()``: every link is the absolute path plus ``?page=N`` only, without the request's
    filters, sort and limit. ``"with_query"`` is ``withQueryString()`` (the query kept, ``page`` replaced);
    ``"relative"`` gives ``/path?page=N`` links without scheme and host.
    """
    total = len(items)
    last_page = max(1, math.ceil(total / per_page))
    start = (page - 1) * per_page
    chunk = list(items[start : start + per_page])
    kept = [(k, v) for k, v in query if k != "page"] if link_style == "with_query" else []
    link_path = urlsplit(path).path if link_style == "relative" else path

    def url(number: int) -> str:
        return f"{link_path}?{urlencode([*kept, ('page', str(number))])}"

    links = {
        "first": url(1),
        "last": url(last_page),
        "prev": url(page - 1) if page > 1 else None,
        "next": url(page + 1) if page < last_page else None,
    }
    meta = {
        "current_page": page,
        "from": start + 1 if chunk else None,
        "last_page": last_page,
        "path": path,
        "per_page": per_page,
        "to": start + len(chunk) if chunk else None,
        "total": total,
    }
    return chunk, links, meta
