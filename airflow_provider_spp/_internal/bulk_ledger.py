"""The exactly-once record of a bulk post: one :class:`PostRecord` per order, kept in a few task state store keys.

A bulk task instance posts to many orders; a record per order in its own key would cost a state store
round trip (~40 ms) per order and per change. Instead the records live in chunks of
:data:`ORDERS_PER_CHUNK` orders, one key each (``airflow_provider_spp.bulk_messages.0``, ``.1``, ...,
each well under the store's 64 KB), in a compact form. The operator writes the chunks that changed
before a group of POSTs goes out (so a worker killed meanwhile leaves those orders "in flight") and
checkpoints what the answers taught every :data:`CHECKPOINT_EVERY` seconds; a retry reads the chunks
back (one round trip each) and decides each order by the single post's rule (``exactly_once``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from airflow_provider_spp._internal.ledger import PostRecord, store_value, stored_value
from airflow_provider_spp.exceptions import SppStateStoreError

log = logging.getLogger(__name__)

#: Key prefix of the chunks in the task instance's ``task_state_store``.
BULK_KEY = "airflow_provider_spp.bulk_messages"
#: Orders per chunk: about 15 KB of JSON each.
ORDERS_PER_CHUNK = 100
#: Seconds between checkpoints of what POSTs' answers taught.
CHECKPOINT_EVERY = 3.0


def _stamp(moment: datetime | None) -> float | None:
    return round(moment.timestamp(), 3) if moment is not None else None


def _moment(value: Any) -> datetime | None:
    return datetime.fromtimestamp(float(value), UTC) if value is not None else None


def packed(record: PostRecord) -> list[Any]:
    """An order's record as a short list (bulk posts carry no files; the order is the key)."""
    return [
        list(record.digests),
        _stamp(record.first_sent_at),
        _stamp(record.last_sent_at),
        int(record.in_flight),
        _stamp(record.lost_at),
        record.message_id,
        record.clock_offset,
        record.user_id,
        record.staff_only,
    ]


def unpacked(order: str, value: Any) -> PostRecord | None:
    """A record back from its packed form (None when malformed), by way of the single post's JSON form."""
    try:
        digests, first, last, in_flight, lost_at, message_id, clock_offset, user_id, staff_only = value
        first_sent, last_sent, lost = _moment(first), _moment(last), _moment(lost_at)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    if first_sent is None or last_sent is None:
        return None
    return PostRecord.from_json(
        {
            "order": order,
            "user_id": user_id,
            "staff_only": staff_only,
            "files": [],
            "digests": digests,
            "first_sent_at": first_sent.isoformat(),
            "last_sent_at": last_sent.isoformat(),
            "in_flight": in_flight,
            "lost_at": lost.isoformat() if lost else None,
            "message_id": message_id,
            "clock_offset": clock_offset,
        }
    )


class BulkLedger:
    """The bulk task instance's records, by order, in chunked task state store keys (Airflow 3.3+).

    Without a task state store it keeps nothing (``available`` is false). A store that is there but
    fails to write before POSTs go out is an error (the try fails, retryable); a failed checkpoint only
    warns: the orders stay "in flight" in the store, which makes a retry look before it posts.
    """

    def __init__(self, context: Any) -> None:
        self._store = context.get("task_state_store") if hasattr(context, "get") else None
        self._records: dict[str, PostRecord] = {}
        self._chunk_of: dict[str, int] = {}
        self._chunks: list[list[str]] = []
        self._dirty: set[int] = set()
        self._saved_at = time.monotonic()

    @property
    def available(self) -> bool:
        """Whether this Airflow keeps a task state store for the task instance."""
        return self._store is not None

    def load(self) -> dict[str, PostRecord]:
        """Every order's record that earlier tries left (one state store read per chunk, and one more)."""
        if self._store is None:
            return {}
        while True:
            value = stored_value(self._store, f"{BULK_KEY}.{len(self._chunks)}")
            if not isinstance(value, dict):
                break
            self._read_chunk(value)
        return dict(self._records)

    def _read_chunk(self, value: dict[str, Any]) -> None:
        """Take one stored chunk's records in."""
        orders = value.get("orders")
        if not isinstance(orders, dict):
            orders = {}
        chunk: list[str] = []
        for order, packed_record in orders.items():
            record = unpacked(order, packed_record)
            if record is not None and order not in self._chunk_of:
                self._records[order] = record
                self._chunk_of[order] = len(self._chunks)
                chunk.append(order)
        self._chunks.append(chunk)

    def put(self, records: Iterable[PostRecord]) -> None:
        """Change records in memory (saved by :meth:`save` or :meth:`checkpoint`)."""
        for record in records:
            order = record.order
            if order not in self._chunk_of:
                if not self._chunks or len(self._chunks[-1]) >= ORDERS_PER_CHUNK:
                    self._chunks.append([])
                self._chunks[-1].append(order)
                self._chunk_of[order] = len(self._chunks) - 1
            self._records[order] = record
            self._dirty.add(self._chunk_of[order])

    def save(self) -> None:
        """Write every changed chunk before POSTs go out; a failure stops them (the try fails, retryable)."""
        if self._store is None:
            self._dirty.clear()
            return
        for index in sorted(self._dirty):
            store_value(self._store, f"{BULK_KEY}.{index}", self._chunk_value(index))
            self._dirty.discard(index)
        self._saved_at = time.monotonic()

    def checkpoint(self, *, force: bool = False) -> None:
        """Save what answers taught, at most every CHECKPOINT_EVERY seconds (or now); a failure only warns."""
        if not self._dirty or (not force and time.monotonic() - self._saved_at < CHECKPOINT_EVERY):
            return
        try:
            self.save()
        except SppStateStoreError as err:
            log.warning("Could not record the POSTs' outcomes (%s); a retry will look at those orders first", err)

    def _chunk_value(self, index: int) -> dict[str, Any]:
        """One chunk as stored: each of its orders' packed record."""
        return {"orders": {order: packed(self._records[order]) for order in self._chunks[index]}}
