"""Remember what a task instance posted, across its tries, so a retry never posts a second copy."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_spp.models import MessageResource, OrderMessageRequest

log = logging.getLogger(__name__)

#: Key under which the record lives in the task instance's ``task_state_store``.
LEDGER_KEY = "airflow_provider_spp.order_message"
#: How far SPP's clock may run behind the worker's when looking for an earlier try's message.
CLOCK_SKEW = timedelta(minutes=2)


def normalized_text(text: str) -> str:
    """Message text as a server stores it, for comparison: line endings and outer blanks aside."""
    return text.replace("\r\n", "\n").strip()


def text_digest(text: str) -> str:
    """A digest of a message's text, so the ledger never has to keep the text itself."""
    return hashlib.sha256(normalized_text(text).encode()).hexdigest()


def is_same_post(candidate: MessageResource, digest: str, user_id: int | None, staff_only: bool | None) -> bool:
    """Whether a listed message is the one described: same text, and same sender/visibility where asked."""
    return (
        candidate.message is not None
        and text_digest(candidate.message) == digest
        and (user_id is None or candidate.user_id in (None, user_id))
        and (staff_only is None or candidate.staff_only in (None, staff_only))
    )


@dataclass(frozen=True)
class PostRecord:
    """One task instance's post, as its tries left it.

    ``first_sent_at``/``last_sent_at`` bound when a POST that may have landed went out; ``maybe_created``
    stays true from just before a POST until its outcome is known, so a worker killed meanwhile leaves
    it set; ``message_id`` is the message SPP confirmed.
    """

    order: str
    digest: str
    user_id: int | None
    staff_only: bool | None
    first_sent_at: datetime
    last_sent_at: datetime
    maybe_created: bool = True
    message_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-safe form for the task state store."""
        return {
            "order": self.order,
            "digest": self.digest,
            "user_id": self.user_id,
            "staff_only": self.staff_only,
            "first_sent_at": self.first_sent_at.isoformat(),
            "last_sent_at": self.last_sent_at.isoformat(),
            "maybe_created": self.maybe_created,
            "message_id": self.message_id,
        }

    @classmethod
    def from_json(cls, value: Any) -> PostRecord | None:
        """Read a stored record back, ignoring anything malformed."""
        if not isinstance(value, dict):
            return None
        try:
            message_id = value.get("message_id")
            return cls(
                order=str(value["order"]),
                digest=str(value["digest"]),
                user_id=int(value["user_id"]) if value.get("user_id") is not None else None,
                staff_only=bool(value["staff_only"]) if value.get("staff_only") is not None else None,
                first_sent_at=as_utc(datetime.fromisoformat(str(value["first_sent_at"]))),
                last_sent_at=as_utc(datetime.fromisoformat(str(value["last_sent_at"]))),
                maybe_created=bool(value.get("maybe_created", True)),
                message_id=int(message_id) if message_id is not None else None,
            )
        except (KeyError, TypeError, ValueError):
            return None

    @classmethod
    def for_request(cls, request: OrderMessageRequest, now: datetime) -> PostRecord:
        """A fresh record for a POST of this request going out now."""
        return cls(
            order=request.order,
            digest=text_digest(request.message),
            user_id=request.user_id,
            staff_only=request.staff_only,
            first_sent_at=now,
            last_sent_at=now,
        )

    def describes(self, request: OrderMessageRequest) -> bool:
        """Whether this record is about the same post: same order, text, sender and visibility."""
        return (self.order, self.digest, self.user_id, self.staff_only) == (
            request.order,
            text_digest(request.message),
            request.user_id,
            request.staff_only,
        )

    def sending_again(self, now: datetime) -> PostRecord:
        """The record as another POST goes out."""
        return dataclasses.replace(self, last_sent_at=now, maybe_created=True)


def as_utc(moment: datetime) -> datetime:
    """Make a timestamp comparable: one without an offset is taken as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class PostLedger:
    """The task instance's record of its post, kept in Airflow's task state store (Airflow 3.3+).

    Where Airflow has no task state store, or it cannot be reached, the ledger keeps nothing and the
    operator falls back to looking for the message among those created since the DAG run started.
    """

    def __init__(self, context: Any) -> None:
        self._store = context.get("task_state_store") if hasattr(context, "get") else None

    def load(self) -> PostRecord | None:
        """The record an earlier try (or this one) left, if any."""
        if self._store is None:
            return None
        try:
            return PostRecord.from_json(self._store.get(LEDGER_KEY))
        except Exception as err:
            log.warning("Could not read the task state store (%s); looking at the order's messages instead", err)
            return None

    def save(self, record: PostRecord) -> None:
        """Persist the record before a POST goes out, and again once its outcome is known."""
        if self._store is None:
            return
        try:
            self._store.set(LEDGER_KEY, record.as_json())
        except Exception as err:
            log.warning("Could not write the task state store (%s); a retry will look at the order instead", err)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)
