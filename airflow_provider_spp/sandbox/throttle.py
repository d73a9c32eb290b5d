"""The workspace's rate limit, as Laravel's ``throttle`` middleware keeps it: N requests per window per token.

Laravel's limiter counts a client's requests in a window that starts with the first one; once N were
let through, every further request of that window is answered 429 with ``Retry-After`` (whole seconds
until the window ends) and is not counted. Answers that pass carry ``X-RateLimit-Limit`` and
``X-RateLimit-Remaining``. Assumption (Wayfront documents no limit): the key is the API token, and
every ``/api/`` request counts, whatever its method.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from dataclasses import dataclass

__all__ = [
    "RateLimiter",
    "Verdict",
]


@dataclass(frozen=True)
class Verdict:
    """What the limiter says about one request: let through (with what is left) or wait ``retry_after``."""

    limit: int
    remaining: int
    retry_after: int | None = None

    @property
    def allowed(self) -> bool:
        """Whether the request goes through."""
        return self.retry_after is None

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The rate-limit headers of the answer (Retry-After and X-RateLimit-Reset only on a 429)."""
        found = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
        ]
        if self.retry_after is not None:
            reset = math.ceil(time.time()) + self.retry_after
            found += [(b"retry-after", str(self.retry_after).encode()), (b"x-ratelimit-reset", str(reset).encode())]
        return found


class RateLimiter:
    """Windows of counted requests per key; thread-safe (the server thread hits, tests reset)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}

    def clear(self) -> None:
        """Forget every window."""
        with self._lock:
            self._windows.clear()

    def hit(self, authorization: str | None, limit: int, window: float) -> Verdict | None:
        """Count one request of this token; None when there is no limit (``limit`` 0)."""
        if limit <= 0:
            return None
        key = hashlib.sha256((authorization or "").encode("latin-1", "replace")).hexdigest()
        now = time.monotonic()
        with self._lock:
            started, count = self._windows.get(key, (now, 0))
            if now - started >= window:
                started, count = now, 0
            if count >= limit:
                return Verdict(limit, 0, retry_after=max(1, math.ceil(started + window - now)))
            self._windows[key] = (started, count + 1)
            return Verdict(limit, limit - count - 1)
