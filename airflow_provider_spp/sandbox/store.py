"""Thread-safe in-memory state of one sandbox: seeded users and orders, messages, files, request log, faults.

The server thread writes and the test thread reads, so every public method takes the lock and hands
out copies (or frozen dataclasses); nothing returned aliases the live state.

Timestamps: ``created_at`` is the current UTC time truncated to **whole seconds** by default, as a
real workspace stores it (``timestamp_precision="microseconds"`` keeps the fraction). A client that
looks for "messages created since I started" must allow for that truncation (and for clock skew: the
``clock_offset`` setting shifts SPP's clock, its ``Date`` header and every timestamp it writes).

Workspace switches (:class:`~airflow_provider_spp.sandbox.workspace.WorkspaceSettings`) live here too:
``configure()`` changes them until ``reset()``, which returns to ``baseline`` (the settings the sandbox
was started with; the defaults unless given).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

from airflow_provider_spp.sandbox.faults import Fault, FaultKind, FaultPlan, RandomFaults, fault_kind, parse_fault_spec
from airflow_provider_spp.sandbox.handshake import HandshakeDrops
from airflow_provider_spp.sandbox.page_actions import AfterPage, AfterPagePlan
from airflow_provider_spp.sandbox.seed import (
    TOKEN_USER_ID,
    Status,
    checked_status,
    generated_orders,
    order_record,
    seeded_orders,
    seeded_users,
)
from airflow_provider_spp.sandbox.throttle import RateLimiter
from airflow_provider_spp.sandbox.workspace import WorkspaceSettings

__all__ = [
    "MAX_PER_PAGE",
    "LinkStyle",
    "NewFile",
    "SandboxStore",
    "StoredFile",
    "StoredMessage",
    "file_url",
    "iso",
]

Precision = Literal["seconds", "microseconds"]
#: How listings write ``links``: Laravel's default (``?page=N`` only), ``withQueryString()``, or relative.
LinkStyle = Literal["laravel", "with_query", "relative"]
#: The largest page a listing serves unless a test lowers ``SandboxStore.max_per_page`` (SPP's cap "varies by
#: endpoint": a server may hand out smaller pages than the ``limit`` asked for).
MAX_PER_PAGE = 100
_UNSAFE_FILENAME = re.compile(r"[\x00-\x1f\x7f]")


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO-8601 with offset, seconds unless the moment has a fraction (e.g. 2026-11-25T12:00:00+00:00)."""
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")


def safe_filename(name: str | None) -> str:
    """The last path component of an uploaded file name, without control characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE_FILENAME.sub("", base).strip()
    return base if base not in ("", ".", "..") else "attachment"


def file_url(base_url: str, message_id: int, filename: str) -> str:
    """Where the sandbox serves a stored attachment."""
    return f"{base_url.rstrip('/')}/_sandbox/files/{message_id}/{quote(filename, safe='')}"


@dataclass(frozen=True)
class StoredFile:
    """An attachment as received (bytes kept verbatim)."""

    field: str
    filename: str
    content_type: str
    data: bytes = dataclasses.field(repr=False)

    @property
    def size(self) -> int:
        """Length in bytes."""
        return len(self.data)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the bytes."""
        return hashlib.sha256(self.data).hexdigest()

    def to_dict(self, base_url: str | None, message_id: int) -> dict[str, Any]:
        """JSON-ready description (no bytes); ``url`` only when a base URL is known."""
        return {
            "field": self.field,
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "url": file_url(base_url, message_id, self.filename) if base_url else None,
        }


@dataclass(frozen=True)
class StoredMessage:
    """A message as the sandbox stored it."""

    id: int
    order_id: int
    user_id: int
    message: str
    staff_only: bool
    created_at: datetime
    files: tuple[StoredFile, ...] = ()
    #: The service wrote it (e.g. "Order status changed to Working"), not a person, whatever its ``user_id``.
    is_auto_generated: bool = False
    #: How it arrived: "api" (posted through the API), "web" (the portal), "email", ...
    via: str = "web"
    #: When the recipient saw it, or None.
    date_seen: datetime | None = None

    def to_dict(self, base_url: str | None = None) -> dict[str, Any]:
        """JSON-ready admin view (the ``/_sandbox/messages`` shape)."""
        return {
            "id": self.id,
            "order_id": self.order_id,
            "user_id": self.user_id,
            "message": self.message,
            "staff_only": self.staff_only,
            "created_at": iso(self.created_at),
            "files": [f.to_dict(base_url, self.id) for f in self.files],
            "is_auto_generated": self.is_auto_generated,
            "via": self.via,
            "date_seen": iso(self.date_seen) if self.date_seen is not None else None,
        }


@dataclass(frozen=True)
class NewFile:
    """An attachment to store with a new message."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes = dataclasses.field(repr=False)


def _unique_names(files: Iterable[NewFile]) -> list[StoredFile]:
    """Sanitise file names and make them unique within one message ("a.txt", "a (2).txt")."""
    stored: list[StoredFile] = []
    seen: set[str] = set()
    for new in files:
        name = safe_filename(new.filename)
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem:
            stem, dot, ext = name, "", ""
        candidate, n = name, 1
        while candidate.lower() in seen:
            n += 1
            candidate = f"{stem} ({n}){dot}{ext}"
        seen.add(candidate.lower())
        stored.append(StoredFile(new.field, candidate, new.content_type or "application/octet-stream", new.data))
    return stored


def _as_fault(item: Fault | str | Mapping[str, Any]) -> Fault:
    """Accept a Fault, a text spec ("rate_limit:2") or a JSON-style dict."""
    if isinstance(item, Fault):
        return item
    if isinstance(item, str):
        return parse_fault_spec(item)
    return Fault.from_dict(dict(item))


class SandboxStore:
    """All state of one sandbox workspace; safe to share between the server thread and tests."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = utc_now,
        timestamp_precision: Precision = "seconds",
        token_user_id: int = TOKEN_USER_ID,
        settings: WorkspaceSettings | None = None,
    ) -> None:
        """Seed the workspace; ``clock`` must return timezone-aware datetimes; ``settings`` survive resets."""
        if timestamp_precision not in ("seconds", "microseconds"):
            raise ValueError(f"timestamp_precision must be 'seconds' or 'microseconds', not {timestamp_precision!r}")
        self._lock = threading.RLock()
        self._clock = clock
        self.timestamp_precision: Precision = timestamp_precision
        self.token_user_id = token_user_id
        self.faults = FaultPlan()
        #: Writes that land right after a listing page is built (see ``page_actions``); cleared by reset().
        self.after_pages = AfterPagePlan()
        #: New connections to close mid-handshake (see ``handshake``); cleared by reset().
        self.handshake_drops = HandshakeDrops()
        #: Requests counted against the ``rate_limit`` setting, per token; cleared by reset().
        self.throttle = RateLimiter()
        #: The settings reset() returns to (those the sandbox was started with).
        self.baseline = settings if settings is not None else WorkspaceSettings()
        self._settings = self.baseline
        self._users: dict[int, dict[str, Any]] = {}
        self._orders: dict[int, dict[str, Any]] = {}
        self._messages: dict[int, StoredMessage] = {}
        self._next_message_id = 1
        self._requests: list[dict[str, Any]] = []
        #: Handle of the request at position 0 of the log: handles keep counting across resets, so an
        #: answer that finishes after a reset cannot update a newer request's entry.
        self._first_handle = 0
        #: Listings serve at most this many items per page, whatever ``limit`` asks; reset() restores 100.
        self.max_per_page = MAX_PER_PAGE
        #: How paginator links are written (see ``resources.paginate``); reset() restores "laravel".
        self.link_style: LinkStyle = "laravel"
        self.reset()

    # -- lifecycle ------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget messages, files, the request log, faults, page actions and switches; re-seed users and orders."""
        with self._lock:
            self.max_per_page = MAX_PER_PAGE
            self.link_style = "laravel"
            self._settings = self.baseline
            self.after_pages.clear()
            self.handshake_drops.clear()
            self.throttle.clear()
            self._users = seeded_users()
            self._orders = seeded_orders()
            self._messages = {}
            self._next_message_id = 1
            self._clear_requests()
            self.faults.clear()

    def now(self) -> datetime:
        """SPP's current UTC time (the clock plus ``clock_offset``) at the configured precision."""
        moment = self.spp_clock()
        return moment.replace(microsecond=0) if self.timestamp_precision == "seconds" else moment

    def spp_clock(self) -> datetime:
        """SPP's clock, unrounded: this machine's clock shifted by the ``clock_offset`` setting."""
        return self._clock().astimezone(UTC) + timedelta(seconds=self.settings.clock_offset)

    # -- workspace switches -----------------------------------------------------------------------------

    @property
    def settings(self) -> WorkspaceSettings:
        """The workspace switches in force."""
        with self._lock:
            return self._settings

    def configure(self, **changes: Any) -> WorkspaceSettings:
        """Change some switches until the next reset (names: :class:`WorkspaceSettings`' fields)."""
        with self._lock:
            self._settings = self._settings.changed(**changes)
            return self._settings

    def start_with(self, **settings: Any) -> WorkspaceSettings:
        """Change the settings reset() returns to, and put them in force now."""
        with self._lock:
            self.baseline = self.baseline.changed(**settings)
            self._settings = self.baseline
            return self.baseline

    def restore_settings(self) -> WorkspaceSettings:
        """Back to the settings the sandbox was started with (only the switches)."""
        with self._lock:
            self._settings = self.baseline
            return self._settings

    # -- users and orders -----------------------------------------------------------------------------

    def user(self, user_id: int) -> dict[str, Any] | None:
        """A copy of one user, or None."""
        with self._lock:
            user = self._users.get(user_id)
            return copy.deepcopy(user) if user is not None else None

    def has_user(self, user_id: int) -> bool:
        """Whether a user ID exists."""
        with self._lock:
            return user_id in self._users

    def users(self) -> dict[int, dict[str, Any]]:
        """Copies of all users, by ID."""
        with self._lock:
            return copy.deepcopy(self._users)

    def order(self, key: str | int) -> dict[str, Any] | None:
        """A copy of the order with this ID (digits) or order number (case-insensitive), or None."""
        text = str(key)
        with self._lock:
            if text.isascii() and text.isdigit() and int(text) in self._orders:
                return copy.deepcopy(self._orders[int(text)])
            for order in self._orders.values():
                if str(order["number"]).casefold() == text.casefold():
                    return copy.deepcopy(order)
            return None

    def add_order(self, number: str, status: Status, *, service: str = "Extra order") -> dict[str, Any]:
        """Add an order with the next free ID, created now; returns a copy (gone again after reset()).

        ``status`` is a label ("Working") or a code (2); orders carry it as the ``status_style`` setting says.
        """
        checked_status(status)
        with self._lock:
            order_id = max(self._orders, default=1000) + 1
            self._orders[order_id] = order_record(order_id, number, status, service, iso(self.now()))
            return copy.deepcopy(self._orders[order_id])

    def orders(self) -> list[dict[str, Any]]:
        """Copies of all orders, in ID order."""
        with self._lock:
            return [copy.deepcopy(self._orders[k]) for k in sorted(self._orders)]

    def add_orders(
        self, count: int, *, status: Status = "Working", last_message_at: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Add ``count`` generated client orders (B0000001, ...) until the next reset; returns copies of them.

        ``status`` is a label ("Working") or a code (2); orders carry it as the ``status_style`` setting says.
        """
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100_000:
            raise ValueError(f"count must be an integer from 1 to 100000, got {count!r}")
        checked_status(status)
        with self._lock:
            added = generated_orders(max(self._orders) + 1, count, status)
            for order in added:
                order["last_message_at"] = iso(last_message_at) if last_message_at is not None else None
                self._orders[order["id"]] = order
            return copy.deepcopy(added)

    def client_of(self, order_id: int) -> int:
        """The user ID of the order's client."""
        with self._lock:
            return int(self._orders[order_id]["user_id"])

    def add_after_page(self, *actions: AfterPage) -> list[AfterPage]:
        """Register after-page writes (see ``page_actions``); every order they name must exist."""
        for action in actions:
            for key in (action.order, action.listed_order):
                if key is not None and self.order(key) is None:
                    raise ValueError(f"no order {key!r}")
        self.after_pages.add(*actions)
        return list(actions)

    def touch_order(self, order_id: int) -> None:
        """Move an order's ``last_message_at`` to now, without a message."""
        with self._lock:
            self._orders[order_id]["last_message_at"] = iso(self.now())

    # -- messages --------------------------------------------------------------------------------------

    def create_message(
        self,
        *,
        order_id: int,
        message: str,
        user_id: int | None = None,
        staff_only: bool = False,
        files: Iterable[NewFile] = (),
        via: str = "web",
        is_auto_generated: bool = False,
        date_seen: datetime | None = None,
    ) -> StoredMessage:
        """Store a message (the next sequential ID) and bump the order's ``last_message_at``.

        ``via`` says how it arrived ("api" for a POST through the API, "web" the portal, "email", ...).
        """
        stored_files = tuple(_unique_names(files))
        with self._lock:
            if order_id not in self._orders:
                raise KeyError(f"no order {order_id}")
            created = StoredMessage(
                id=self._next_message_id,
                order_id=order_id,
                user_id=self.token_user_id if user_id is None else user_id,
                message=message,
                staff_only=staff_only,
                created_at=self.now(),
                files=stored_files,
                is_auto_generated=is_auto_generated,
                via=via,
                date_seen=date_seen,
            )
            self._messages[created.id] = created
            self._next_message_id += 1
            self._orders[order_id]["last_message_at"] = iso(created.created_at)
            return created

    def message(self, message_id: int) -> StoredMessage | None:
        """One stored message, or None."""
        with self._lock:
            return self._messages.get(message_id)

    def delete_message(self, message_id: int) -> bool:
        """Delete a message; False when there was none."""
        with self._lock:
            return self._messages.pop(message_id, None) is not None

    def messages(self, order_id: int | None = None) -> list[StoredMessage]:
        """Stored messages in creation (ID) order, optionally of one order."""
        with self._lock:
            found = [m for m in self._messages.values() if order_id is None or m.order_id == order_id]
        return sorted(found, key=lambda m: m.id)

    def file(self, message_id: int, filename: str) -> StoredFile | None:
        """One stored attachment by message ID and (sanitised) file name, or None."""
        with self._lock:
            stored = self._messages.get(message_id)
        if stored is None:
            return None
        return next((f for f in stored.files if f.filename == filename), None)

    # -- request log -----------------------------------------------------------------------------------

    def record_request(self, record: dict[str, Any]) -> int:
        """Append a request to the log (its position stored as ``record["index"]``); returns its handle."""
        with self._lock:
            index = len(self._requests)
            self._requests.append({**copy.deepcopy(record), "index": index})
            return self._first_handle + index

    def update_request(self, handle: int, **changes: Any) -> None:
        """Fill in what happened to a logged request (status, dropped, ...), unless the log was cleared since."""
        with self._lock:
            index = handle - self._first_handle
            if 0 <= index < len(self._requests):
                self._requests[index].update(copy.deepcopy(changes))

    def requests(self) -> list[dict[str, Any]]:
        """Copies of every logged request, oldest first."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def clear_requests(self) -> None:
        """Empty the request log only."""
        with self._lock:
            self._clear_requests()

    def _clear_requests(self) -> None:
        """Empty the log; the caller holds the lock."""
        self._first_handle += len(self._requests)
        self._requests = []

    # -- faults ----------------------------------------------------------------------------------------

    def add_faults(self, *faults: Fault | str | Mapping[str, Any]) -> list[Fault]:
        """Queue faults (Fault objects, specs like ``"rate_limit:2"`` or dicts); returns them parsed."""
        parsed = [_as_fault(item) for item in faults]
        self.faults.add(*parsed)
        return parsed

    def set_random_faults(self, rate: float, kinds: Iterable[FaultKind | str], **options: Any) -> RandomFaults:
        """Turn on probabilistic faults; ``options`` are :class:`RandomFaults`' (seed and the fault options)."""
        random_faults = RandomFaults(rate=rate, kinds=tuple(fault_kind(k) for k in kinds), **options)
        self.faults.set_random(random_faults)
        return random_faults

    def clear_faults(self) -> None:
        """Remove queued faults and turn random faults off."""
        self.faults.clear()
