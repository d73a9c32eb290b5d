"""Many POSTs from one caller, without I/O: which post goes next, when, and what each outcome means.

Both hooks' ``create_order_messages`` drive a :class:`BulkSending` through :func:`send_in_threads` or
:func:`send_in_tasks`: these ask :meth:`BulkSending.next_due` for a post to send (or how long to wait),
send it once (the transport does not retry it), and hand its outcome to :meth:`BulkSending.settle`. The
rules:

- At most ``concurrency`` POSTs are in flight (1 to
  :data:`~airflow_provider_spp._internal.concurrency.MAX_CONCURRENCY`).
- A 429 pauses every post, not just the one it answered, for its ``Retry-After`` (else a backoff), and
  halves the posts in flight; each run of successes as long as the limit earns one back. A 429 created
  nothing, so the post is sent again; it never spends the post's retries.
- Another failure that certainly created nothing (the request never left) is sent again after a backoff,
  by the client's retry rule (``retries.retry_delay``). Anything else is the post's final outcome: a POST
  whose outcome is unknown is never re-sent here.
- A 401 or 403 stops the batch: every later post would get it too.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from airflow_provider_spp._internal.client import create_message_request, parse_model, server_date
from airflow_provider_spp._internal.concurrency import DEFAULT_CONCURRENCY, checked_concurrency
from airflow_provider_spp._internal.retries import backoff_wait, retry_delay
from airflow_provider_spp.exceptions import SppApiError, SppError, SppRateLimitError
from airflow_provider_spp.models import Sent

if TYPE_CHECKING:
    from datetime import datetime

    from airflow_provider_spp._internal.client import Answer, ApiRequest
    from airflow_provider_spp._internal.connection import SppConnectionSettings
    from airflow_provider_spp.models import MessageResource, OrderMessageRequest

#: What sending one post once gives: the message SPP created or the error, and SPP's clock from the answer.
Outcome: TypeAlias = "tuple[MessageResource | SppError, datetime | None]"

#: Posts announced to ``before_sending`` at once (the exactly-once record is written per group).
DEFAULT_GROUP_SIZE = 100
#: Seconds between progress lines in the log.
PROGRESS_EVERY = 5.0


def post_request(base_url: str, wanted: OrderMessageRequest) -> ApiRequest:
    """A bulk send's POST: JSON, sent once (the bulk send decides what goes out again)."""
    return dataclasses.replace(create_message_request(base_url, wanted, []), retries=False)


def outcome_of(answer: Answer) -> Outcome:
    """The message a bulk POST's answer carries, and SPP's clock from it."""
    from airflow_provider_spp.models import MessageResource

    return parse_model(MessageResource, answer), server_date(answer)


async def called(callback: Callable[..., object], *args: Any) -> None:
    """Call a callback that may be a plain function or a coroutine function, and wait for it."""
    import inspect

    said = callback(*args)
    if inspect.isawaitable(said):
        await said


@dataclass(eq=False)
class Ticket:
    """A post of the batch: its place in the list, when it may go out, and how many tries failed (429s aside)."""

    index: int
    request: OrderMessageRequest
    due: float = 0.0
    failures: int = 0
    first_sent: float | None = None


@dataclass
class BulkSending:
    """The state of one bulk send: the queue, the shared pause, the posts in flight and the outcomes."""

    requests: Sequence[OrderMessageRequest]
    settings: SppConnectionSettings
    log: Any
    concurrency: int = DEFAULT_CONCURRENCY
    group_size: int = DEFAULT_GROUP_SIZE
    progress_every: float = PROGRESS_EVERY
    clock: Callable[[], float] = time.monotonic
    results: list[Sent] = field(default_factory=list)
    rate_limited: int = 0
    _queue: collections.deque[Ticket] = field(init=False)
    _in_flight: set[Ticket] = field(init=False, default_factory=set)
    _paused_until: float = field(init=False, default=0.0)
    _allowed: int = field(init=False)
    _streak: int = field(init=False, default=0)
    _announced: int = field(init=False, default=0)
    _stopped: SppError | None = field(init=False, default=None)
    _started: float = field(init=False)
    _last_progress: float = field(init=False)

    def __post_init__(self) -> None:
        self.concurrency = checked_concurrency(self.concurrency)
        self._allowed = self.concurrency
        self._queue = collections.deque(Ticket(i, r) for i, r in enumerate(self.requests))
        self._started = self._last_progress = self.clock()

    @property
    def finished(self) -> bool:
        """Whether every post has its final outcome."""
        return not self._queue and not self._in_flight

    def announce(self, ticket: Ticket) -> list[OrderMessageRequest]:
        """The group of posts to announce before this one goes out (empty: announced already)."""
        if ticket.index < self._announced:
            return []
        end = max(ticket.index + 1, self._announced + self.group_size)
        group = list(self.requests[self._announced : end])
        self._announced = end
        return group

    def next_due(self) -> tuple[Ticket | None, float]:
        """A post to send now, or None and the seconds to wait before asking again."""
        if self._stopped is not None or not self._queue or len(self._in_flight) >= self._allowed:
            return None, 0.5
        now = self.clock()
        head = self._queue[0]
        wait = max(self._paused_until, head.due) - now
        if wait > 0:
            return None, min(wait, 0.5)
        self._queue.popleft()
        if head.first_sent is None:
            head.first_sent = now
        self._in_flight.add(head)
        return head, 0.0

    def settle(self, ticket: Ticket, outcome: MessageResource | SppError, spp_time: datetime | None) -> Sent | None:
        """Take a sent post's outcome; its final :class:`Sent`, or None when it goes out again later."""
        self._in_flight.discard(ticket)
        request = ticket.request
        if not isinstance(outcome, SppError):
            self._succeeded()
            return self._final(Sent(request, message=outcome, spp_time=spp_time))
        if isinstance(outcome, SppRateLimitError):
            self._slow_down(outcome)
            self._queue.appendleft(ticket)
            return None
        now = self.clock()
        ticket.failures += 1
        wait = retry_delay(
            outcome, ticket.failures, now - (ticket.first_sent or now), self.settings, idempotent=False, retries=True
        )
        if wait is not None:
            ticket.due = now + wait
            self._queue.append(ticket)
            return None
        if isinstance(outcome, SppApiError) and outcome.status_code in (401, 403):
            self._stop(outcome)
        return self._final(Sent(request, error=outcome, spp_time=spp_time))

    def _succeeded(self) -> None:
        """One more success: after as many in a row as the limit, one more post may be in flight."""
        self._streak += 1
        if self._allowed < self.concurrency and self._streak >= self._allowed * 4:
            self._allowed += 1
            self._streak = 0

    def _slow_down(self, err: SppRateLimitError) -> None:
        """A 429: every post waits for its Retry-After (else a backoff), and half as many go at once."""
        self.rate_limited += 1
        self._streak = 0
        self._allowed = max(1, self._allowed // 2)
        wait = err.retry_after if err.retry_after is not None else backoff_wait(1, self.settings.retry_backoff)
        until = self.clock() + float(wait)
        if until > self._paused_until:
            self._paused_until = until
            self.log.warning(
                "Wayfront (SPP) answered 429 (too many requests): every post waits %.1f s; %d at once from now",
                float(wait),
                self._allowed,
            )

    def _stop(self, err: SppApiError) -> None:
        """A 401 or 403: no later post can succeed; the ones not sent end as not sent."""
        self._stopped = err
        self.log.error("Stopping the bulk post: %s", err)
        while self._queue:
            self._final(Sent(self._queue.popleft().request, error=err, not_sent=True))

    def _final(self, sent: Sent) -> Sent:
        self.results.append(sent)
        return sent

    def log_progress(self, *, force: bool = False) -> None:
        """Log a progress line when one is due (or now, with ``force``)."""
        if (line := self.progress(force=force)) is not None:
            self.log.info("%s", line)

    def progress(self, *, force: bool = False) -> str | None:
        """A progress line every ``progress_every`` seconds (or now, with ``force``): done, failed, left, rate."""
        now = self.clock()
        if not force and now - self._last_progress < self.progress_every:
            return None
        self._last_progress = now
        done = sum(1 for s in self.results if s.error is None)
        failed = len(self.results) - done
        left = len(self.requests) - len(self.results)
        elapsed = max(now - self._started, 1e-9)
        return (
            f"Bulk post: {done} done, {failed} failed, {left} left of {len(self.requests)} "
            f"({done / elapsed:.1f} posts/s over {elapsed:.0f} s, {self.rate_limited} answered 429)"
        )


def send_in_threads(
    plan: BulkSending,
    post_once: Callable[[OrderMessageRequest], Outcome],
    *,
    before_sending: Callable[[list[OrderMessageRequest]], object] | None = None,
    on_sent: Callable[[Sent], object] | None = None,
) -> list[Sent]:
    """Carry out a bulk send on a thread pool: ``post_once`` in its threads, the callbacks in the calling one."""
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    running: dict[Future[Outcome], Ticket] = {}
    with ThreadPoolExecutor(plan.concurrency, thread_name_prefix="spp-bulk") as pool:
        while not plan.finished:
            ticket, pause = plan.next_due()
            if ticket is not None:
                if before_sending is not None and (group := plan.announce(ticket)):
                    before_sending(group)
                running[pool.submit(post_once, ticket.request)] = ticket
                continue
            if not running:
                time.sleep(pause)  # everything waits (a 429's pause, a backoff)
                continue
            done, _ = wait(running, timeout=pause, return_when=FIRST_COMPLETED)
            for future in done:
                sent = plan.settle(running.pop(future), *future.result())
                if sent is not None and on_sent is not None:
                    on_sent(sent)
            plan.log_progress()
    plan.log_progress(force=True)
    return plan.results


async def send_in_tasks(
    plan: BulkSending,
    post_once: Callable[[OrderMessageRequest], Coroutine[Any, Any, Outcome]],
    *,
    before_sending: Callable[[list[OrderMessageRequest]], object] | None = None,
    on_sent: Callable[[Sent], object] | None = None,
) -> list[Sent]:
    """Carry out a bulk send on asyncio: ``post_once`` in tasks; the callbacks may be coroutine functions."""
    import asyncio

    running: dict[asyncio.Task[Outcome], Ticket] = {}
    try:
        while not plan.finished:
            ticket, pause = plan.next_due()
            if ticket is not None:
                if before_sending is not None and (group := plan.announce(ticket)):
                    await called(before_sending, group)
                running[asyncio.ensure_future(post_once(ticket.request))] = ticket
                continue
            if not running:
                await asyncio.sleep(pause)  # everything waits (a 429's pause, a backoff)
                continue
            done, _ = await asyncio.wait(running, timeout=pause, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                sent = plan.settle(running.pop(task), *task.result())
                if sent is not None and on_sent is not None:
                    await called(on_sent, sent)
            plan.log_progress()
    finally:
        for task in running:
            task.cancel()
    plan.log_progress(force=True)
    return plan.results
