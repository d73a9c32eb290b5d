"""Actions a test schedules to happen while the code under test runs: "once X is seen, do Y"."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def background_actions() -> Iterator[Callable[..., None]]:
    """Yield ``when(condition, then, within=, settle=)``: run ``then()`` in a thread once ``condition()`` holds
    (polled every 20 ms for at most ``within`` seconds, then ``settle`` seconds later); threads joined at exit."""
    threads: list[threading.Thread] = []

    def when(condition: Callable[[], bool], then: Callable[[], Any], *, within: float, settle: float = 0) -> None:
        def watch() -> None:
            deadline = time.monotonic() + within
            while time.monotonic() < deadline:
                if condition():
                    time.sleep(settle)
                    then()
                    return
                time.sleep(0.02)

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        threads.append(thread)

    yield when
    for thread in threads:
        thread.join(5)
