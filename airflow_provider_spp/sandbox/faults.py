"""Injectable faults: what can go wrong between an SPP client and the server, on demand.

Two sources, both off by default and both thread-safe inside :class:`FaultPlan`:

* a **queue** of :class:`Fault` entries; a request takes the first entry that matches it (method and
  raw-path prefix), and the entry is removed once it has been taken ``times`` times (``None`` = forever);
  an entry with ``after=N`` lets the first N matching requests through untouched before it hits;
* an optional **random** mode (:class:`RandomFaults`): each matching request, when the queue gave
  nothing, fails with probability ``rate`` with a kind drawn from ``kinds`` (seeded, reproducible).

Faults only ever apply to the SPP API (paths under ``/api/``), never to the ``/_sandbox`` admin API.

Text spec (CLI ``--fault``): ``KIND[:TIMES][:key=value...]`` with keys ``method``, ``path_prefix``,
``retry_after`` and ``delay``; TIMES is a positive integer or ``*`` for "every matching request".
Examples: ``rate_limit``, ``rate_limit:2:retry_after=3``, ``slow:1:delay=5``, ``server_error:*:method=POST``.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import KW_ONLY, dataclass, field, fields
from enum import StrEnum
from typing import Any

from airflow_provider_spp.sandbox.declared import CountedQueue, checked_json, init_names, json_ready

__all__ = [
    "BEFORE_KINDS",
    "DEFAULT_RETRY_AFTER",
    "DEFAULT_SLOW_DELAY",
    "ERROR_AFTER_COMMIT_KINDS",
    "AppliedFault",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "RandomFaults",
    "fault_kind",
    "option_help",
    "option_names",
    "parse_fault_spec",
]

API_PREFIX = "/api/"


class FaultKind(StrEnum):
    """What the sandbox does instead of (or after) answering normally."""

    #: 429 with ``Retry-After``; nothing stored.
    RATE_LIMIT = "rate_limit"
    #: 500; nothing stored.
    SERVER_ERROR = "server_error"
    #: 503; nothing stored.
    UNAVAILABLE = "unavailable"
    #: 502 (an HTML page, as a proxy sends it); nothing stored.
    BAD_GATEWAY = "bad_gateway"
    #: The request IS processed (a message stored), then 504 (an HTML page).
    GATEWAY_TIMEOUT = "gateway_timeout"
    #: The request IS processed (a message stored), then Laravel's 500: an exception thrown after the
    #: INSERT, e.g. by the notification a new message triggers.
    SERVER_ERROR_AFTER_COMMIT = "server_error_after_commit"
    #: The request IS processed (a message stored), then 503 (an HTML page): a gateway that gave up on
    #: an application still finishing the request.
    UNAVAILABLE_AFTER_COMMIT = "unavailable_after_commit"
    #: The TCP connection is closed without any response; nothing stored.
    DROP_BEFORE = "drop_before"
    #: The request is processed (a message stored), then the connection is closed without a response.
    DROP_AFTER = "drop_after"
    #: The request is processed, then bytes that are not part of the protocol are written to the raw
    #: socket and the connection is aborted: over TLS the client sees a TLS error after the handshake.
    BREAK_STREAM_AFTER = "break_stream_after"
    #: The request is processed, then the normal response is sent only after ``delay`` seconds.
    SLOW = "slow"
    #: The request waits ``delay`` seconds before it is processed (stored), then is answered normally:
    #: a server still working on a request after the client gave up on it.
    SLOW_COMMIT = "slow_commit"
    #: The request is processed, then the normal status with a truncated JSON body.
    MALFORMED_JSON = "malformed_json"
    #: The request is processed, then the normal status with a valid JSON body that lacks ``"id"``.
    MISSING_ID = "missing_id"


#: Kinds that reject the request before the application sees it (nothing is stored).
BEFORE_KINDS = frozenset(
    {FaultKind.RATE_LIMIT, FaultKind.SERVER_ERROR, FaultKind.UNAVAILABLE, FaultKind.BAD_GATEWAY, FaultKind.DROP_BEFORE}
)
#: Kinds that let the application process the request (side effects happen) and then spoil the answer.
AFTER_KINDS = frozenset(FaultKind) - BEFORE_KINDS
#: Kinds that store the message and then answer with an error status instead of 201.
ERROR_AFTER_COMMIT_KINDS = frozenset(
    {FaultKind.GATEWAY_TIMEOUT, FaultKind.SERVER_ERROR_AFTER_COMMIT, FaultKind.UNAVAILABLE_AFTER_COMMIT}
)

DEFAULT_RETRY_AFTER = 1
DEFAULT_SLOW_DELAY = 2.0


def fault_kind(value: Any) -> FaultKind:
    """Parse a fault kind, listing the valid ones on error."""
    try:
        return FaultKind(str(value).strip().lower())
    except ValueError:
        valid = ", ".join(k.value for k in FaultKind)
        raise ValueError(f"unknown fault kind {value!r}; valid kinds: {valid}") from None


def _optional_method(value: Any) -> str | None:
    """An HTTP method in upper case, or None for any method."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.isalpha():
        raise ValueError(f"method must be an HTTP method such as POST, got {value!r}")
    return value.upper()


def _optional_prefix(value: Any) -> str | None:
    """A raw path prefix starting with '/', or None for any API path."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"path_prefix must start with '/', got {value!r}")
    return value


def _optional_retry_after(value: Any) -> int | None:
    """Whole seconds for a Retry-After header, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"retry_after must be a whole number of seconds, got {value!r}")
    seconds = int(value)
    if seconds < 0:
        raise ValueError(f"retry_after must not be negative, got {value!r}")
    return seconds


def _optional_delay(value: Any) -> float | None:
    """Seconds to wait, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"delay must be a number of seconds, got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"delay must be a finite, non-negative number of seconds, got {value!r}")
    return seconds


def _matches(method: str | None, path_prefix: str | None, request_method: str, raw_path: str) -> bool:
    """Whether a fault filter selects this request (API paths only)."""
    if not raw_path.startswith(API_PREFIX):
        return False
    if method is not None and method != request_method.upper():
        return False
    return path_prefix is None or raw_path.startswith(path_prefix)


@dataclass(frozen=True)
class AppliedFault:
    """A fault chosen for one request."""

    kind: FaultKind
    retry_after: int | None = None
    delay: float | None = None
    #: "queue" or "random".
    source: str = "queue"


@dataclass(frozen=True)
class FaultOptions:
    """The options queued and random faults share: which requests they hit and how long they make them wait.

    This is the one declaration of them: the admin API, :class:`SandboxServer`, the CLI and text specs
    all read their names from here (see :func:`option_names`).
    """

    _: KW_ONLY
    #: Only requests with this method (any method when None).
    method: str | None = field(default=None, metadata={"help": "only requests with this HTTP method, e.g. POST"})
    #: Only requests whose raw path starts with this (any ``/api/`` path when None).
    path_prefix: str | None = field(
        default=None, metadata={"help": "only requests whose raw path starts with this, e.g. /api/order_messages"}
    )
    #: Retry-After seconds (rate_limit defaults to 1; unavailable sends it only when set).
    retry_after: int | None = field(
        default=None, metadata={"help": "Retry-After seconds of rate_limit/unavailable answers"}
    )
    #: Seconds a ``slow`` fault waits before answering, or a ``slow_commit`` one before processing (default 2.0).
    delay: float | None = field(
        default=None, metadata={"help": "seconds a slow fault waits before answering (slow_commit: before storing)"}
    )

    def __post_init__(self) -> None:
        """Normalise and validate the options (raises ValueError)."""
        object.__setattr__(self, "method", _optional_method(self.method))
        object.__setattr__(self, "path_prefix", _optional_prefix(self.path_prefix))
        object.__setattr__(self, "retry_after", _optional_retry_after(self.retry_after))
        object.__setattr__(self, "delay", _optional_delay(self.delay))

    def matches(self, method: str, raw_path: str) -> bool:
        """Whether this fault applies to a request."""
        return _matches(self.method, self.path_prefix, method, raw_path)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the same shape :meth:`from_dict` reads): its own fields first, then the options."""
        own = {name: json_ready(getattr(self, name)) for name in init_names(type(self)) if name not in _OPTIONS}
        return own | {name: getattr(self, name) for name in _OPTIONS}

    @classmethod
    def _from_json(cls, data: Any, what: str, noun: str, required: tuple[str, ...]) -> dict[str, Any]:
        """Check a JSON object (``what``) names only this class's fields and has the ``required`` ones."""
        return checked_json(cls, data, what, noun, required)


_OPTIONS = init_names(FaultOptions)


def option_names() -> tuple[str, ...]:
    """The names of the options every fault takes (``method``, ``path_prefix``, ``retry_after``, ``delay``)."""
    return _OPTIONS


def option_help(name: str) -> str:
    """The one-line help of a fault option."""
    return str(next(f.metadata["help"] for f in fields(FaultOptions) if f.name == name))


@dataclass(frozen=True)
class Fault(FaultOptions):
    """A queued fault: hits the next ``times`` requests matching ``method`` and ``path_prefix``."""

    kind: FaultKind
    #: How many matching requests this fault hits; None means every one, forever.
    times: int | None = 1
    #: How many matching requests pass untouched before it hits: 1 targets the second POST, not the next.
    after: int = 0

    def __post_init__(self) -> None:
        """Normalise and validate the fields (raises ValueError)."""
        object.__setattr__(self, "kind", fault_kind(self.kind))
        if self.times is not None and (isinstance(self.times, bool) or not isinstance(self.times, int)):
            raise ValueError(f"times must be a positive integer or None, got {self.times!r}")
        if self.times is not None and self.times < 1:
            raise ValueError(f"times must be at least 1 (or None for always), got {self.times!r}")
        if isinstance(self.after, bool) or not isinstance(self.after, int) or self.after < 0:
            raise ValueError(f"after must be a whole number >= 0, got {self.after!r}")
        super().__post_init__()

    def applied(self, source: str = "queue") -> AppliedFault:
        """The fault as applied to one request."""
        return AppliedFault(self.kind, self.retry_after, self.delay, source)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; ``after`` only when it still holds requests back."""
        data = super().to_dict()
        if not self.after:
            del data["after"]
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Fault:
        """Build from JSON; a missing ``times`` means 1, an explicit null means always."""
        return cls(**cls._from_json(data, "a fault", "fault", ("kind",)))


@dataclass(frozen=True)
class RandomFaults(FaultOptions):
    """Probabilistic faults: each matching request fails with probability ``rate``."""

    rate: float
    kinds: tuple[FaultKind, ...]
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate and seed the generator (raises ValueError)."""
        if isinstance(self.rate, bool) or not isinstance(self.rate, int | float) or not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be a number between 0 and 1, got {self.rate!r}")
        object.__setattr__(self, "rate", float(self.rate))
        if not isinstance(self.kinds, Iterable) or isinstance(self.kinds, Mapping):
            raise ValueError(f"kinds must be a list of fault kinds, got {self.kinds!r}")
        kinds = (self.kinds,) if isinstance(self.kinds, str) else tuple(self.kinds)
        object.__setattr__(self, "kinds", tuple(fault_kind(k) for k in kinds))
        if not self.kinds:
            raise ValueError("random faults need at least one kind")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        super().__post_init__()
        object.__setattr__(self, "_rng", random.Random(self.seed))

    def draw(self, method: str, raw_path: str) -> AppliedFault | None:
        """Roll the dice for one request (call under a lock: the generator is shared)."""
        if not self.matches(method, raw_path):
            return None
        if self._rng.random() >= self.rate:
            return None
        return AppliedFault(self._rng.choice(self.kinds), self.retry_after, self.delay, "random")

    @classmethod
    def from_dict(cls, data: Any) -> RandomFaults:
        """Build from JSON such as ``{"rate": 0.3, "kinds": ["drop_after"], "seed": 42}``."""
        return cls(**cls._from_json(data, "random faults", "random-fault", ("rate", "kinds")))


def parse_fault_spec(spec: str) -> Fault:
    """Parse ``KIND[:TIMES][:key=value...]``, e.g. ``rate_limit:2:retry_after=3`` or ``slow:1:delay=5``."""
    parts = [p.strip() for p in spec.strip().split(":")]
    if not parts or not parts[0]:
        raise ValueError(f"empty fault spec {spec!r}")
    kind = fault_kind(parts[0])
    rest = parts[1:]
    times: int | None = 1
    if rest and "=" not in rest[0]:
        count = rest.pop(0)
        if count in ("*", "always"):
            times = None
        elif count.isdigit():
            times = int(count)
        else:
            raise ValueError(f"fault times must be a positive integer or '*', got {count!r} in {spec!r}")
    options: dict[str, str] = {}
    for item in rest:
        key, sep, value = item.partition("=")
        if not sep or key not in _OPTIONS:
            raise ValueError(f"bad fault option {item!r} in {spec!r}; options: {', '.join(_OPTIONS)}")
        options[key] = value
    return Fault.from_dict({"kind": kind, "times": times, **options})


class FaultPlan:
    """The queue and random mode, safe to change from a test thread while the server consumes it."""

    def __init__(self) -> None:
        """Start with no faults."""
        self._lock = threading.Lock()
        self._queue: CountedQueue[Fault] = CountedQueue()
        self._random: RandomFaults | None = None

    def add(self, *faults: Fault) -> None:
        """Append faults to the queue."""
        self._queue.add(*faults)

    def set_random(self, random_faults: RandomFaults | None) -> None:
        """Turn the random mode on (or off with None)."""
        with self._lock:
            self._random = random_faults

    def clear(self) -> None:
        """Remove every queued fault and turn the random mode off."""
        self._queue.clear()
        with self._lock:
            self._random = None

    def take(self, method: str, raw_path: str) -> AppliedFault | None:
        """Consume the fault (if any) for one incoming request."""
        fault = self._queue.take(lambda queued: queued.matches(method, raw_path))
        if fault is not None:
            return fault.applied()
        with self._lock:
            return self._random.draw(method, raw_path) if self._random is not None else None

    def pending(self) -> list[Fault]:
        """The queued faults still to be consumed, in order."""
        return self._queue.pending()

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state: ``{"faults": [...], "random": {...} | None}``."""
        with self._lock:
            return {
                "faults": [f.to_dict() for f in self._queue.pending()],
                "random": self._random.to_dict() if self._random is not None else None,
            }
