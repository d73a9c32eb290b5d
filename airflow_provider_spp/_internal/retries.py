"""The retry rule: which failed call is tried again, after how long, and what a retried call's answer means.

A call is tried again only when that cannot create a second copy of anything (see
:attr:`SppError.retryable` and :attr:`SppError.outcome_unknown`); both transports' loops ask :class:`Retries`.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_spp._internal.client import raise_for_status
from airflow_provider_spp._internal.host_answers import redirect_target
from airflow_provider_spp.exceptions import SppApiError, SppError, SppTransportError

if TYPE_CHECKING:
    from airflow_provider_spp._internal.client import Answer, ApiRequest
    from airflow_provider_spp._internal.connection import SppConnectionSettings

#: Redirects followed within the workspace for one try (requests' own limit is 30; a loop ends sooner here).
MAX_REDIRECTS = 5
#: Longest single wait between retries when the server gives no Retry-After.
MAX_BACKOFF = 30.0


def backoff_wait(attempt: int, base: float) -> float:
    """Exponential backoff with jitter: between half and all of ``base * 2**(attempt-1)``, capped."""
    ceiling = min(MAX_BACKOFF, base * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def should_retry(err: BaseException, *, idempotent: bool) -> bool:
    """Retry what certainly created nothing; an idempotent call also after a lost answer or any 5xx."""
    return isinstance(err, SppError) and err.retryable and (idempotent or not err.outcome_unknown)


def retry_delay(
    err: BaseException,
    attempt: int,
    elapsed: float,
    settings: SppConnectionSettings,
    *,
    idempotent: bool,
    retries: bool,
) -> float | None:
    """Seconds to wait before trying a call again after ``err`` ended try number ``attempt``; None: give up.

    A call is tried again only when that cannot create a second copy of anything, at most ``max_retries``
    times, and never when the wait would end ``retry_max_time`` or more after the first try began
    (``elapsed`` is the time since then). The server's Retry-After wins over backoff.
    """
    if not retries or attempt > settings.max_retries or not should_retry(err, idempotent=idempotent):
        return None
    retry_after = getattr(err, "retry_after", None)
    wait = float(retry_after) if retry_after is not None else backoff_wait(attempt, settings.retry_backoff)
    return wait if elapsed + wait < settings.retry_max_time else None


class Retries:
    """One call's tries, for a transport's retry loop: what an answer means, and what follows a failure.

    Create it just before the first try; after each failure, :meth:`wait_after` says how long to wait
    (and warns once) or None to give up.
    """

    def __init__(self, request: ApiRequest, settings: SppConnectionSettings, log: Any) -> None:
        self.request = request
        self._settings = settings
        self._log = log
        self._started = time.monotonic()
        self._failures = 0
        #: Whether an earlier try of this call may have been acted on although its answer was lost.
        self._answer_lost = False
        self._redirects = 0

    def follow(self, answer: Answer) -> ApiRequest | None:
        """The request that follows ``answer``'s redirect within the workspace (at most MAX_REDIRECTS), or None."""
        target = redirect_target(self.request, answer, self._settings.base_url)
        if target is None or self._redirects >= MAX_REDIRECTS:
            return None
        self._redirects += 1
        return target

    def checked(self, answer: Answer) -> Answer:
        """The answer of a try, or the SppApiError its status stands for."""
        request = self.request
        if not (request.gone_is_done and self._answer_lost and answer.status == 404):
            raise_for_status(answer, request.method, answer.path or request.path)
        return answer

    def wait_after(self, err: SppTransportError | SppApiError) -> float | None:
        """Seconds to wait before the next try after ``err`` (with a warning), or None: raise ``err``."""
        request = self.request
        self._failures += 1
        self._answer_lost = self._answer_lost or err.outcome_unknown
        wait = retry_delay(
            err,
            self._failures,
            time.monotonic() - self._started,
            self._settings,
            idempotent=request.idempotent,
            retries=request.retries,
        )
        if wait is not None:
            what = f"answered {err.status_code}" if isinstance(err, SppApiError) else f"failed ({err})"
            self._log.warning(
                "Wayfront (SPP) %s %s %s (request id %s); retry %d of %d in %.1f s",
                request.method,
                request.path,
                what,
                getattr(err, "request_id", None) or "none",
                self._failures,
                self._settings.max_retries,
                wait,
            )
        return wait
