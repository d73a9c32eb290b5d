"""A user's ``pattern`` run on client text in a child process with a time limit, never in the caller's.

Python's ``re`` holds the GIL while it matches, so a pattern that backtracks catastrophically (``(a+)+$``
on ``"aaaa…b"``) would stall the triggerer's event loop, and every trigger on it, for minutes; a worker
thread does not help. The search therefore runs in a short-lived ``python -I -S`` child (about 20 ms to
start, only when a new message passed every other condition), which is killed after
:data:`PATTERN_TIMEOUT` seconds; the wait then reports an error naming the pattern, never the text.
The text goes to the child on its stdin, never on its command line.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from airflow_provider_spp.exceptions import SppInputError

if TYPE_CHECKING:
    from airflow_provider_spp._internal.replies import ReplyFilter, ReplyScan
    from airflow_provider_spp.models import MessageResource

#: Seconds one search (all of a poll's candidate messages) may take, child start included.
PATTERN_TIMEOUT = 5.0

#: The child: reads {"pattern", "texts"} and prints the index of the first text the pattern finds, or -1.
_CHILD = (
    "import json,re,sys\n"
    "job=json.load(sys.stdin)\n"
    "found=re.compile(job['pattern'])\n"
    "print(next((i for i,t in enumerate(job['texts']) if found.search(t)),-1))\n"
)


def _command() -> list[str]:
    """The child's command line: this interpreter, isolated (no site, no environment), running :data:`_CHILD`."""
    return [sys.executable, "-I", "-S", "-c", _CHILD]


def _job(pattern: str, texts: Sequence[str]) -> bytes:
    """What the child reads on stdin."""
    return json.dumps({"pattern": pattern, "texts": list(texts)}).encode()


def _answer(returncode: int | None, stdout: bytes) -> int | None:
    """The index the child printed (None: no text matched); a failed child is an error."""
    try:
        index = int(stdout.decode().strip()) if returncode == 0 else None
    except ValueError:
        index = None
    if index is None:
        raise SppInputError(f"the pattern could not be run on the messages (exit status {returncode})")
    return index if index >= 0 else None


def _too_slow(pattern: str, timeout: float) -> SppInputError:
    """The error of a pattern that ran out of time (it names the pattern, never the text)."""
    return SppInputError(
        f"pattern {pattern!r} took more than {timeout:g} s on a new message (catastrophic backtracking?); "
        "simplify it, e.g. avoid nested repetition such as (a+)+"
    )


def _not_started(err: OSError) -> SppInputError:
    """The error when no child process can be started to run the pattern."""
    return SppInputError(f"the pattern could not be run: no child process ({type(err).__name__}: {err})")


def first_match(pattern: str, texts: Sequence[str], timeout: float = PATTERN_TIMEOUT) -> int | None:
    """The index of the first text the pattern finds (``re.search``), in a child process killed after ``timeout``."""
    if not texts:
        return None
    try:
        # This interpreter and fixed code; the pattern and texts go on stdin.
        done = subprocess.run(_command(), input=_job(pattern, texts), capture_output=True, timeout=timeout)  # noqa: S603
    except subprocess.TimeoutExpired:
        raise _too_slow(pattern, timeout) from None
    except OSError as err:
        raise _not_started(err) from None
    return _answer(done.returncode, done.stdout)


async def first_match_async(pattern: str, texts: Sequence[str], timeout: float = PATTERN_TIMEOUT) -> int | None:
    """:func:`first_match` without blocking the event loop: the child is awaited, and killed after ``timeout``."""
    if not texts:
        return None
    try:
        child = await asyncio.create_subprocess_exec(
            *_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
    except OSError as err:
        raise _not_started(err) from None
    try:
        stdout, _ = await asyncio.wait_for(child.communicate(_job(pattern, texts)), timeout)
    except (TimeoutError, asyncio.CancelledError) as err:
        if child.returncode is None:
            child.kill()
            await asyncio.shield(child.wait())
        if isinstance(err, asyncio.CancelledError):
            raise
        raise _too_slow(pattern, timeout) from None
    return _answer(child.returncode, stdout)


def pick_reply(scan: ReplyScan, wanted: ReplyFilter) -> MessageResource | None:
    """The oldest new message that passed the scan and, when there is one, the pattern (run bounded)."""
    candidates = scan.candidates
    if wanted.pattern is None or not candidates:
        return candidates[0] if candidates else None
    index = first_match(wanted.pattern, [m.message or "" for m in candidates])
    return candidates[index] if index is not None else None


async def pick_reply_async(scan: ReplyScan, wanted: ReplyFilter) -> MessageResource | None:
    """:func:`pick_reply` on the event loop, the pattern run in an awaited child process."""
    candidates = scan.candidates
    if wanted.pattern is None or not candidates:
        return candidates[0] if candidates else None
    index = await first_match_async(wanted.pattern, [m.message or "" for m in candidates])
    return candidates[index] if index is not None else None
