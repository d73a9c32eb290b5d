"""Remember what a task instance posted, across its tries, so a retry never posts a second copy.

A POST whose outcome is unknown (a lost answer, any 5xx, a 2xx that is not a message) may have created
the message: its record stays "may have landed" until a look-up finds the message. What a try does
with a record is decided in :mod:`airflow_provider_spp._internal.exactly_once`; this module keeps the
record and its storage.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_spp._internal.clock import as_utc
from airflow_provider_spp._internal.message_match import text_digest
from airflow_provider_spp.exceptions import SppStateStoreError

if TYPE_CHECKING:
    from airflow_provider_spp._internal.attachments import Attachment
    from airflow_provider_spp.models import OrderMessageRequest

log = logging.getLogger(__name__)

#: Key under which the record lives in the task instance's ``task_state_store``.
LEDGER_KEY = "airflow_provider_spp.order_message"

#: One attachment as the ledger knows it: file name, size, and a version (mtime, digest or ETag).
FileStamp = tuple[str, "int | None", "str | None"]


def file_stamps(attachments: Sequence[Attachment]) -> tuple[FileStamp, ...]:
    """What identifies a post's files: names, sizes and versions, never their content."""
    return tuple((a.filename, a.size, a.version) for a in attachments)


@dataclass(frozen=True)
class PostRecord:
    """One task instance's post, as its tries left it.

    ``digests`` are the texts its POSTs carried (the last is the newest); ``in_flight`` is set just
    before a POST and cleared once its outcome is known, so a worker killed meanwhile leaves it set;
    ``lost_at`` is when a try last gave up on an answer (an unknown outcome), kept until a look-up finds
    the message; ``message_id`` is the message SPP confirmed or a look-up found; ``clock_offset`` is
    SPP's clock minus the worker's, in seconds, from the ``Date`` of the first answer to one of its POSTs
    (None until one came), so a look-up can tell which messages were created before the first POST.
    """

    order: str
    user_id: int | None
    staff_only: bool | None
    files: tuple[FileStamp, ...]
    digests: tuple[str, ...]
    first_sent_at: datetime
    last_sent_at: datetime
    in_flight: bool = True
    lost_at: datetime | None = None
    message_id: int | None = None
    clock_offset: float | None = None

    @property
    def digest(self) -> str:
        """The text of the newest POST."""
        return self.digests[-1]

    @property
    def may_have_landed(self) -> bool:
        """Whether a POST of this record may exist on SPP without the record knowing its ID."""
        return self.message_id is None and (self.in_flight or self.lost_at is not None)

    def as_json(self) -> dict[str, Any]:
        """JSON-safe form for the task state store."""
        return {
            "order": self.order,
            "user_id": self.user_id,
            "staff_only": self.staff_only,
            "files": [list(f) for f in self.files],
            "digests": list(self.digests),
            "first_sent_at": self.first_sent_at.isoformat(),
            "last_sent_at": self.last_sent_at.isoformat(),
            "in_flight": self.in_flight,
            "lost_at": self.lost_at.isoformat() if self.lost_at else None,
            "message_id": self.message_id,
            "clock_offset": self.clock_offset,
        }

    @classmethod
    def from_json(cls, value: Any) -> PostRecord | None:
        """Read a stored record back, ignoring anything malformed."""
        if not isinstance(value, dict):
            return None
        try:
            message_id = value["message_id"]
            lost_at = value["lost_at"]
            digests = tuple(str(d) for d in value["digests"])
            if not digests:
                return None
            return cls(
                order=str(value["order"]),
                user_id=_opt_int(value["user_id"]),
                staff_only=bool(value["staff_only"]) if value["staff_only"] is not None else None,
                files=tuple((str(n), _opt_int(s), _opt_str(v)) for n, s, v in value["files"]),
                digests=digests,
                first_sent_at=as_utc(datetime.fromisoformat(str(value["first_sent_at"]))),
                last_sent_at=as_utc(datetime.fromisoformat(str(value["last_sent_at"]))),
                in_flight=bool(value["in_flight"]),
                lost_at=as_utc(datetime.fromisoformat(str(lost_at))) if lost_at else None,
                message_id=_opt_int(message_id),
                clock_offset=_opt_seconds(value.get("clock_offset")),
            )
        except (KeyError, TypeError, ValueError):
            return None

    @classmethod
    def for_request(cls, request: OrderMessageRequest, files: tuple[FileStamp, ...], now: datetime) -> PostRecord:
        """A fresh record for a POST of this request going out now."""
        return cls(
            order=request.order,
            user_id=request.user_id,
            staff_only=request.staff_only,
            files=files,
            digests=(text_digest(request.message),),
            first_sent_at=now,
            last_sent_at=now,
        )

    def same_target(self, request: OrderMessageRequest, files: tuple[FileStamp, ...]) -> bool:
        """Same order, sender, visibility and files: what makes a try's post the same post, text aside."""
        return (self.order, self.user_id, self.staff_only, self.files) == (
            request.order,
            request.user_id,
            request.staff_only,
            files,
        )

    def describes(self, request: OrderMessageRequest, files: tuple[FileStamp, ...]) -> bool:
        """Whether this record is about this very post: same target and the same text as its newest POST."""
        return self.same_target(request, files) and self.digest == text_digest(request.message)

    def look_after(self, grace: float) -> datetime:
        """When SPP has had ``grace`` seconds since the client gave up on the answer."""
        return (self.lost_at or self.last_sent_at) + timedelta(seconds=grace)

    def sending_again(self, request: OrderMessageRequest, now: datetime) -> PostRecord:
        """The record as another POST (perhaps with reworded text) goes out."""
        digest = text_digest(request.message)
        digests = (*(d for d in self.digests if d != digest), digest)
        return dataclasses.replace(self, digests=digests, last_sent_at=now, in_flight=True)

    def answer_lost(self, now: datetime) -> PostRecord:
        """The record after a POST whose outcome is unknown."""
        return dataclasses.replace(self, in_flight=False, lost_at=now)

    def rejected(self) -> PostRecord:
        """The record after a POST SPP certainly did not act on; an earlier lost answer stays recorded."""
        return dataclasses.replace(self, in_flight=False)

    def spp_clock_measured(self, spp_now: datetime, now: datetime) -> PostRecord:
        """The record knowing SPP's clock, from the ``Date`` of the answer to its first POST, read at ``now``.

        Only the first POST's answer counts: it was read by the worker whose clock ``first_sent_at`` is on.
        """
        if self.clock_offset is not None or self.last_sent_at != self.first_sent_at:
            return self
        return dataclasses.replace(self, clock_offset=(spp_now - now).total_seconds())

    def confirmed(self, message_id: int) -> PostRecord:
        """The record once the message is known to exist."""
        return dataclasses.replace(self, in_flight=False, lost_at=None, message_id=message_id)


def _opt_int(value: Any) -> int | None:
    return int(value) if value is not None else None


def _opt_seconds(value: Any) -> float | None:
    """A finite number of seconds, or None for anything else (an older record has none)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _opt_str(value: Any) -> str | None:
    return str(value) if value is not None else None


def stored_value(store: Any, key: str) -> Any:
    """A task state store key's value; SppStateStoreError (retryable) when the store cannot be read."""
    try:
        return store.get(key)
    except Exception as err:
        raise SppStateStoreError(
            f"Could not read the task state store ({type(err).__name__}: {err}); not posting without "
            "knowing what an earlier try sent. The task will be retried."
        ) from None


def store_value(store: Any, key: str, value: Any) -> None:
    """Write a task state store key before a POST; SppStateStoreError (retryable) when that fails."""
    try:
        store.set(key, value)
    except Exception as err:
        raise SppStateStoreError(
            f"Could not write the task state store ({type(err).__name__}: {err}); not posting without a "
            "record of it. The task will be retried."
        ) from err


class PostLedger:
    """The task instance's record of its post, kept in Airflow's task state store (Airflow 3.3+).

    Where Airflow has no task state store, the ledger keeps nothing (``available`` is false) and the
    operator falls back to looking for the message among those created since the DAG run started.
    A store that is there but fails is an error: posting without a record could post twice.
    """

    def __init__(self, context: Any) -> None:
        self._store = context.get("task_state_store") if hasattr(context, "get") else None

    @property
    def available(self) -> bool:
        """Whether this Airflow keeps a task state store for the task instance."""
        return self._store is not None

    def load(self) -> PostRecord | None:
        """The record an earlier try (or this one) left, if any."""
        if self._store is None:
            return None
        return PostRecord.from_json(stored_value(self._store, LEDGER_KEY))

    def save(self, record: PostRecord) -> None:
        """Persist the record before a POST goes out; a failure stops the POST (the try fails, retryable)."""
        if self._store is None:
            return
        store_value(self._store, LEDGER_KEY, record.as_json())

    def update(self, record: PostRecord) -> None:
        """Persist what a POST's outcome taught; on failure the earlier record (in flight) stays, which is safe."""
        try:
            self.save(record)
        except SppStateStoreError as err:
            log.warning("Could not record the POST's outcome (%s); a retry will look at the order first", err.__cause__)
