"""The activity trigger's arguments checked once, at DAG parse, and the order filter they make (pure).

A single string is one order or one status (never its characters); statuses are kept exactly as given,
an integer code or a label, because a workspace's statuses are integers it defines ("Status is a number,
not a label"), while older workspaces and stand-ins send labels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from airflow_provider_spp.exceptions import SppInputError
from airflow_provider_spp.models import OrderStatus, order_reference


def watched_orders(orders: Iterable[str | int] | str | int | None) -> list[str] | None:
    """The order IDs/numbers to watch, sorted and unique; one string or int is one order."""
    if orders is None:
        return None
    items = [orders] if isinstance(orders, str | int) else list(_iterable(orders, "orders"))
    if not items:
        raise SppInputError("orders must name at least one order (or be None to watch every order)")
    try:
        return sorted({order_reference(item) for item in items})
    except ValueError as err:
        raise SppInputError(str(err)) from None


def watched_statuses(statuses: Iterable[OrderStatus] | OrderStatus | None) -> list[OrderStatus] | None:
    """The statuses to watch, unique, in a stable order (codes first); one string or int is one status."""
    if statuses is None:
        return None
    items = [statuses] if isinstance(statuses, str | int) else list(_iterable(statuses, "statuses"))
    if not items:
        raise SppInputError("statuses must name at least one status (or be None to watch every status)")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | str) or (isinstance(item, str) and not item.strip()):
            raise SppInputError(f"a status is an integer code or a label such as 'Working', got {item!r}")
    unique = {(isinstance(s, str), s.strip() if isinstance(s, str) else s) for s in items}
    return [value for _, value in sorted(unique, key=lambda pair: (pair[0], str(pair[1])))]


def status_matches(status: Any, watched: Iterable[OrderStatus]) -> bool:
    """Whether an order's status (as SPP sent it) is one of ``watched``: a code equals a code or its digits, a
    label equals a label case-insensitively; a code never matches a label (a workspace's code map is its own)."""
    if status is None or isinstance(status, bool):
        return False
    text = str(status).strip().casefold()
    return any(str(wanted).strip().casefold() == text for wanted in watched)


def positive_seconds(value: Any, name: str) -> float:
    """A finite number of seconds above zero, else SppInputError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise SppInputError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def non_negative_seconds(value: Any, name: str) -> float:
    """A finite number of seconds, zero or more, else SppInputError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise SppInputError(f"{name} must be a number of seconds >= 0, got {value!r}")
    return float(value)


def optional_count(value: Any, name: str) -> int | None:
    """None or a whole number above zero, else SppInputError naming the argument."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SppInputError(f"{name} must be a positive whole number (or None for no limit), got {value!r}")
    return value


def _iterable(value: Any, name: str) -> Iterable[Any]:
    """``value`` when it is a list-like of items, else SppInputError naming the argument."""
    if isinstance(value, bytes | dict) or not isinstance(value, Iterable):
        raise SppInputError(f"{name} must be a list (or one item), got {type(value).__name__}")
    return value
