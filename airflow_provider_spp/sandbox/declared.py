"""Helpers for the sandbox's "declared once" dataclasses (faults, workspace settings, page actions).

Each such dataclass is the one place its names, defaults and help live; the admin API reads JSON into it
with :func:`checked_json`, writes it back with :func:`json_ready`, and the CLI builds flags from its fields.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

__all__ = [
    "CountedQueue",
    "as_dict",
    "checked_json",
    "init_names",
    "json_ready",
]


def init_names(cls: type) -> tuple[str, ...]:
    """The constructor's field names of a dataclass."""
    return tuple(f.name for f in fields(cls) if f.init)


def checked_json(cls: type, data: Any, what: str, noun: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Check a JSON object (``what``) names only ``cls``'s fields and has the ``required`` ones; return it."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be a JSON object, got {data!r}")
    unknown = set(data) - set(init_names(cls))
    if unknown:
        raise ValueError(f"unknown {noun} field(s): {', '.join(sorted(unknown))}; known: {', '.join(init_names(cls))}")
    if any(name not in data for name in required):
        needed = " and ".join(repr(name) for name in required)
        raise ValueError(f"{what} {'needs a' if len(required) == 1 else 'need'} {needed}")
    return data


def json_ready(value: Any) -> Any:
    """Enums as their value, tuples as lists, mappings with text keys; other values as they are."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [json_ready(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    return value


def as_dict(instance: Any) -> dict[str, Any]:
    """A declared dataclass as JSON (the shape its ``from_dict`` reads)."""
    return {name: json_ready(getattr(instance, name)) for name in init_names(type(instance))}


class Counted(Protocol):
    """A queued entry that is used up after ``times`` uses (None: never)."""

    @property
    def times(self) -> int | None:
        """Uses left."""


C = TypeVar("C", bound=Counted)


class CountedQueue(Generic[C]):
    """A thread-safe queue of frozen dataclasses with ``times``: the first wanted entry is taken, once per use."""

    def __init__(self) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self._items: list[C] = []

    def add(self, *items: C) -> None:
        """Append entries."""
        with self._lock:
            self._items.extend(items)

    def clear(self) -> None:
        """Remove every entry."""
        with self._lock:
            self._items.clear()

    def pending(self) -> list[C]:
        """The entries still to be used, in order."""
        with self._lock:
            return list(self._items)

    def take(self, wanted: Callable[[C], bool]) -> C | None:
        """Use the first entry ``wanted`` accepts (removed when its ``times`` run out), or None.

        An entry with ``after`` > 0 lets that many wanted uses pass (None) before it is used.
        """
        with self._lock:
            for index, item in enumerate(self._items):
                if wanted(item):
                    if getattr(item, "after", 0) > 0:
                        self._items[index] = replace(item, after=item.after - 1)  # type: ignore[attr-defined,type-var]
                        return None
                    if item.times is not None:
                        if item.times <= 1:
                            del self._items[index]
                        else:
                            self._items[index] = replace(item, times=item.times - 1)  # type: ignore[type-var]
                    return item
            return None
