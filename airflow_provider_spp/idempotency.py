"""Remember what a task instance posted, across its tries, so a retry never posts a second copy."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)

#: Key under which the record lives in the task instance's ``task_state_store``.
LEDGER_KEY = "airflow_provider_spp.order_message"
#: How far SPP's clock may run behind the worker's when looking for an earlier try's message.
CLOCK_SKEW = timedelta(minutes=2)


@dataclass(frozen=True)
class PostRecord:
    """One task instance's post: when its first try began, and the message ID once known."""

    order: str
    first_attempt_at: datetime
    message_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-safe form for the task state store."""
        return {
            "order": self.order,
            "first_attempt_at": self.first_attempt_at.isoformat(),
            "message_id": self.message_id,
        }

    @classmethod
    def from_json(cls, value: Any) -> PostRecord | None:
        """Read a stored record back, ignoring anything malformed."""
        if not isinstance(value, dict):
            return None
        try:
            started = datetime.fromisoformat(str(value["first_attempt_at"]))
            message_id = value.get("message_id")
            return cls(
                order=str(value["order"]),
                first_attempt_at=started if started.tzinfo else started.replace(tzinfo=UTC),
                message_id=int(message_id) if message_id is not None else None,
            )
        except (KeyError, TypeError, ValueError):
            return None


class PostLedger:
    """The task instance's record of its post, kept in Airflow's task state store (Airflow 3.3+).

    Where Airflow has no task state store the ledger keeps nothing, and the operator falls back to
    looking for the message among those created since the DAG run started.
    """

    def __init__(self, context: Any) -> None:
        self._store = context.get("task_state_store") if hasattr(context, "get") else None

    @property
    def durable(self) -> bool:
        """Whether records survive into the next try of this task instance."""
        return self._store is not None

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
        """Persist the record before the POST goes out, and again once SPP gave the message ID."""
        if self._store is None:
            return
        try:
            self._store.set(LEDGER_KEY, record.as_json())
        except Exception as err:
            log.warning("Could not write the task state store (%s); a retry will look at the order instead", err)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)
