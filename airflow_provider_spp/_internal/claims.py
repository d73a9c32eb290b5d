"""Which task instance took which message, where sibling task instances can see it.

A retry whose earlier POST has an unknown outcome looks for "its" message by text, sender and
visibility; a sibling task instance (another map index, another task, another DAG run) that posted the
same text to the same order made a message that matches too. So every task instance claims the message
it confirmed or adopted, and a retry adopts only a message no other task instance claimed.

Airflow gives sibling task instances no shared store of their own (``task_state_store`` is per task
instance, ``asset_state_store`` per asset), so claims live in one Airflow Variable per order,
``spp_message_claims_<ORDER>``: ``{"<message id>": {"by": "<dag>/<run>/<task>/<map index>", "at": ...}}``,
pruned to the last :data:`RETENTION` and :data:`MAX_CLAIMS` claims on each write. A Variable is not
a lock: two writers at once can lose one claim, so :meth:`ClaimBook.claim` writes, reads back and
writes again while its claim is missing.

The claim on a message SPP created for a POST also says which POST (``"sent"``: the ``last_sent_at``
of the task's record as that POST went out), so it doubles as the POST's outcome: the task writes no
second record after the answer, and a retry that finds its record in flight but its own claim for
that very POST returns the message at once (:meth:`Claims.posted_by`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_spp._internal.clock import as_utc

log = logging.getLogger(__name__)

#: Variable name of an order's claims, before the order as the task names it (upper case).
CLAIMS_PREFIX = "spp_message_claims_"
#: How long a claim is kept: longer than any retry of a sibling is expected to wait.
RETENTION = timedelta(days=7)
#: At most this many claims per order (the newest are kept).
MAX_CLAIMS = 500
#: Write-and-read-back rounds before a claim that keeps vanishing is given up (with a warning).
CLAIM_ROUNDS = 3

DESCRIPTION = (
    "Message IDs that CreateOrderMessageOperator task instances posted or adopted on this SPP order, so a "
    "retry never takes a sibling's message for its own. Safe to delete when no such task is retrying."
)


def claims_key(order: str) -> str:
    """The Variable that holds an order's claims."""
    return CLAIMS_PREFIX + str(order).strip().upper()


def claimer_of(context: Any) -> str | None:
    """The task instance's name in claims, ``dag/run/task/map index``, or None outside a task instance."""
    ti = context.get("ti") if hasattr(context, "get") else None
    parts = [getattr(ti, name, None) for name in ("dag_id", "run_id", "task_id", "map_index")]
    if ti is None or not all(isinstance(part, str) for part in parts[:3]):
        return None
    if not isinstance(parts[3], int):
        parts[3] = -1
    return "/".join(str(part) for part in parts)


@dataclass(frozen=True)
class Claims:
    """An order's claims: message ID -> (task instance, when it claimed it)."""

    held: Mapping[int, tuple[str, datetime]] = field(default_factory=dict)
    #: For claims on a message SPP created for the claimer's POST: that POST's ``last_sent_at``.
    sent: Mapping[int, datetime] = field(default_factory=dict)

    def holder(self, message_id: int) -> str | None:
        """Who claimed a message, if anyone."""
        entry = self.held.get(message_id)
        return entry[0] if entry is not None else None

    def held_by_others(self, me: str) -> frozenset[int]:
        """The messages other task instances claimed: never this one's to adopt."""
        return frozenset(message_id for message_id, (by, _) in self.held.items() if by != me)

    def posted_by(self, me: str, sent_at: datetime) -> int | None:
        """The message SPP created for this claimer's POST that went out at ``sent_at``, if it claimed one."""
        for message_id, when in self.sent.items():
            if when == sent_at and self.holder(message_id) == me:
                return message_id
        return None

    def with_claim(self, message_id: int, me: str, now: datetime, sent_at: datetime | None = None) -> Claims:
        """These claims plus this one, without those older than RETENTION, at most MAX_CLAIMS."""
        kept = {mid: entry for mid, entry in self.held.items() if now - entry[1] <= RETENTION}
        kept[message_id] = (me, now)
        newest = dict(sorted(kept.items(), key=lambda item: item[1][1], reverse=True)[:MAX_CLAIMS])
        sent = {mid: when for mid, when in self.sent.items() if mid in newest and mid != message_id}
        if sent_at is not None:
            sent[message_id] = sent_at
        return Claims(newest, sent)

    def as_json(self) -> dict[str, Any]:
        """JSON-safe form for the Variable."""
        value: dict[str, Any] = {}
        for mid, (by, at) in self.held.items():
            value[str(mid)] = {"by": by, "at": at.isoformat()}
            if mid in self.sent:
                value[str(mid)]["sent"] = self.sent[mid].isoformat()
        return value

    @classmethod
    def from_json(cls, value: Any) -> Claims:
        """Read a Variable's value back, skipping anything malformed."""
        held: dict[int, tuple[str, datetime]] = {}
        sent: dict[int, datetime] = {}
        for key, entry in value.items() if isinstance(value, dict) else ():
            try:
                held[int(key)] = (str(entry["by"]), as_utc(datetime.fromisoformat(str(entry["at"]))))
                if entry.get("sent") is not None:
                    sent[int(key)] = as_utc(datetime.fromisoformat(str(entry["sent"])))
            except (AttributeError, KeyError, TypeError, ValueError):
                continue
        return cls(held, sent)


@dataclass(frozen=True)
class ClaimBook:
    """Read and write an order's claims through a JSON Variable getter and setter."""

    me: str
    get: Callable[[str], Any]
    set: Callable[[str, Any], None]

    def load(self, order: str) -> Claims:
        """The order's claims (raises what the Variable API raises)."""
        return Claims.from_json(self.get(claims_key(order)))

    def record(self, order: str, message_id: int, now: datetime, sent_at: datetime) -> str | None:
        """Claim the message SPP just created for this task instance's POST sent at ``sent_at``; who holds it.

        Read, then write: not :meth:`claim`'s three or more round trips. The message is this task
        instance's by SPP's answer, so nothing waits on who holds it, and reading back cannot make the
        write safe from a concurrent writer anyway (one that read before this write and writes after the
        read-back still drops it). A claim held by another task instance (a sibling that adopted it
        first) is left alone.
        """
        claims = self.load(order)
        if claims.holder(message_id) not in (None, self.me):
            return claims.holder(message_id)
        self.set(claims_key(order), claims.with_claim(message_id, self.me, now, sent_at).as_json())
        return self.me

    def claim(self, order: str, message_id: int, now: datetime) -> str | None:
        """Claim a message; who holds it afterwards (another task instance, if it was first), None if unsure."""
        key = claims_key(order)
        for _ in range(CLAIM_ROUNDS):
            claims = self.load(order)
            if claims.holder(message_id) not in (None, self.me):
                return claims.holder(message_id)
            self.set(key, claims.with_claim(message_id, self.me, now).as_json())
            holder = self.load(order).holder(message_id)
            if holder is not None:
                return holder
        log.warning("Could not record the claim on message %d: a concurrent writer kept replacing it", message_id)
        return None
