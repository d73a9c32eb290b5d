"""The exactly-once decision: what a try does about its post, from what earlier tries recorded.

Pure functions of the record, the request, its files, the time and a few facts about the try: no
Airflow, no HTTP. The operator carries the answer out (wait, look, post) and records the outcome.

The rule: a POST whose outcome is unknown may have created the message. While the record says so, a
later try gives SPP ``lost_answer_wait`` seconds after the client gave up, then looks before it posts.
It adopts only a message this task instance can have created: same text (one its POSTs carried),
sender and visibility; created, on SPP's clock, no earlier than the record's first POST (less
:data:`CLOCK_MARGIN`; less :data:`CLOCK_SKEW` when no answer ever told SPP's clock); and claimed by no
other task instance (:mod:`airflow_provider_spp._internal.claims`). Without a task state store, a
retry looks among the unclaimed messages created since the DAG run started.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING

from airflow_provider_spp._internal.ledger import FileStamp, PostRecord
from airflow_provider_spp._internal.message_match import is_one_of, text_digest

if TYPE_CHECKING:
    from airflow_provider_spp.exceptions import SppError
    from airflow_provider_spp.models import MessageResource, OrderMessageRequest

#: How far SPP's clock may run behind the worker's when looking for an earlier try's message.
CLOCK_SKEW = timedelta(minutes=2)
#: Slack when SPP's clock is known: whole-second ``Date`` headers and ``created_at`` values, network time.
CLOCK_MARGIN = timedelta(seconds=2)


@dataclass(frozen=True)
class ThisTry:
    """What the decision needs to know about the running try, besides its record."""

    #: Whether the operator deduplicates at all (``deduplicate=True``).
    deduplicate: bool
    #: Whether this Airflow keeps a task state store for the task instance (3.3+).
    has_state_store: bool
    #: Airflow's try number; above 1 on a retry.
    try_number: int
    #: When the DAG run (else the task instance) started, if known.
    run_started: datetime | None
    #: Seconds SPP gets to finish a request whose answer was lost before a try looks for its message.
    lost_answer_wait: float
    #: Whether this try resumes after a deferred wait, which it must not repeat.
    resumed_after_wait: bool = False

    @property
    def may_find_a_record(self) -> bool:
        """Whether an earlier try can have left a record: not on a first try, where reading it is wasted."""
        return self.deduplicate and self.has_state_store and (self.try_number > 1 or self.resumed_after_wait)

    @property
    def earlier_try_began(self) -> datetime | None:
        """On a retry, when the earliest try may have posted: when the run started."""
        return self.run_started if self.try_number > 1 else None


@dataclass(frozen=True)
class Wanted:
    """What an earlier try's message looks like on SPP: one of these texts, this sender and visibility.

    ``excluded`` are messages claimed by other task instances: never this one's, whatever they look like.
    """

    digests: tuple[str, ...]
    user_id: int | None
    staff_only: bool | None
    excluded: frozenset[int] = frozenset()

    @classmethod
    def for_request(cls, request: OrderMessageRequest) -> Wanted:
        """The message this request would create."""
        return cls((text_digest(request.message),), request.user_id, request.staff_only)

    @classmethod
    def for_record(cls, record: PostRecord) -> Wanted:
        """Any of the messages the recorded POSTs would have created."""
        return cls(record.digests, record.user_id, record.staff_only)

    def excluding(self, message_ids: Iterable[int]) -> Wanted:
        """The same, but never one of these messages."""
        return dataclasses.replace(self, excluded=self.excluded | frozenset(message_ids))

    def __call__(self, candidate: MessageResource) -> bool:
        """Whether a listed message is one of these."""
        return candidate.id not in self.excluded and is_one_of(candidate, self.digests, self.user_id, self.staff_only)


class Superseded(Enum):
    """Why this try drops an earlier try's record and posts anew (worth saying in the log)."""

    #: Order, sender, visibility or files changed while the earlier POST may have landed.
    OTHER_TARGET = "other target"
    #: The earlier try's message exists, and this try's text differs from it.
    NEW_TEXT = "new text"


@dataclass(frozen=True)
class ReturnExisting:
    """An earlier try posted this very message: return its ID, post nothing."""

    message_id: int


@dataclass(frozen=True)
class LookFirst:
    """An earlier try may have posted the message: wait for SPP, look, and post only if it is absent."""

    #: The order to look at.
    order: str
    #: What the earlier message looks like.
    wanted: Wanted
    #: Look among the messages created since this moment on SPP's clock (margin included).
    since: datetime
    #: Do not look before this moment (SPP may still be working on the earlier request); None: now.
    wait_until: datetime | None
    #: The record the look is made for (None without a task state store).
    record: PostRecord | None
    #: Whether ``record`` must be saved before the wait (a killed try left it in flight).
    save_first: bool = False


@dataclass(frozen=True)
class Post:
    """Post the message: save ``record`` first, so a try killed during the POST leaves it in flight."""

    record: PostRecord
    #: The earlier try's record this one replaces, and why, when that is worth a log line.
    superseded: tuple[PostRecord, Superseded] | None = None


Action = ReturnExisting | LookFirst | Post


def decide(
    record: PostRecord | None,
    request: OrderMessageRequest,
    files: tuple[FileStamp, ...],
    now: datetime,
    this_try: ThisTry,
) -> Action:
    """What this try does about its post: return an earlier try's message, look for it first, or post."""
    first_post = Post(PostRecord.for_request(request, files, now))
    if not this_try.deduplicate:
        return first_post
    if record is None:
        return _look_since_run_started(request, now, this_try) or first_post
    if not record.same_target(request, files):
        return Post(first_post.record, (record, Superseded.OTHER_TARGET)) if record.may_have_landed else first_post
    if record.message_id is not None:
        if record.describes(request, files):
            return ReturnExisting(record.message_id)
        return Post(first_post.record, (record, Superseded.NEW_TEXT))
    if record.may_have_landed:
        return _look_for_lost_post(record, now, this_try.lost_answer_wait)
    return Post(record.sending_again(request, now))


def _look_since_run_started(request: OrderMessageRequest, now: datetime, this_try: ThisTry) -> LookFirst | None:
    """Without a task state store, a retry looks for its message among those since the run started.

    It cannot know when the earlier try gave up, only that it was before this try began: it waits
    ``lost_answer_wait`` from now (once; not again after a deferred wait) before looking.
    """
    since = this_try.earlier_try_began
    if this_try.has_state_store or since is None:
        return None
    wait_until = None if this_try.resumed_after_wait else now + timedelta(seconds=this_try.lost_answer_wait)
    return LookFirst(request.order, Wanted.for_request(request), since - CLOCK_SKEW, wait_until, record=None)


def _look_for_lost_post(record: PostRecord, now: datetime, lost_answer_wait: float) -> LookFirst:
    """Look for a POST that may have landed, once SPP had time to finish it.

    A record still in flight belongs to a try that died before the answer: it gave up by now at the
    latest, so the record says the answer was lost now, and that is saved before the wait.
    """
    in_flight = record.in_flight
    if in_flight:
        record = record.answer_lost(now)
    return LookFirst(
        record.order,
        Wanted.for_record(record),
        window_start(record),
        record.look_after(lost_answer_wait),
        record=record,
        save_first=in_flight,
    )


def window_start(record: PostRecord) -> datetime:
    """On SPP's clock, the earliest a message of this record's POSTs can have been created."""
    if record.clock_offset is None:
        return record.first_sent_at - CLOCK_SKEW
    return record.first_sent_at + timedelta(seconds=record.clock_offset) - CLOCK_MARGIN


def record_to_send(
    record: PostRecord | None, request: OrderMessageRequest, files: tuple[FileStamp, ...], now: datetime
) -> PostRecord:
    """The record to save before a POST goes out now, after a look that found nothing."""
    return record.sending_again(request, now) if record is not None else PostRecord.for_request(request, files, now)


def after_post(
    record: PostRecord, outcome: int | SppError, now: datetime, spp_now: datetime | None = None
) -> PostRecord:
    """What a POST's outcome (the new message's ID, or the error it raised) does to its record.

    ``spp_now`` is SPP's clock from the ``Date`` of the POST's answer, when one came.
    """
    if spp_now is not None:
        record = record.spp_clock_measured(spp_now, now)
    if isinstance(outcome, int):
        return record.confirmed(outcome)
    if outcome.outcome_unknown:
        return record.answer_lost(now)
    return record.rejected()
