"""The activity trigger's cursor in memory, saved to its store; events Airflow confirmed stored are settled here.

Shared by both delivery paths: the trigger's own ``run()`` (Airflow before 3.3) and the shared-stream
producer (3.3+), whose ``advance`` may come while a poll is under way. A confirmation that arrives during a
poll is applied again to the cursor that poll returns, so no confirmed event is handed over twice. Saves are
serialised: the last one to finish writes the newest cursor. A failed save is logged and kept in memory,
like a failed poll, and written by the next save.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from airflow_provider_spp._internal.activity_cursor import ActivityCursor
from airflow_provider_spp._internal.cursor_store import CursorStore


class CursorKeeper:
    """One watcher's cursor: loaded once, replaced after each poll, settled by confirmations, saved each time."""

    def __init__(self, store: CursorStore, log: Any) -> None:
        self.store = store
        self.log = log
        #: Where the watcher stands; None before the load and until the baseline when nothing was stored.
        self.cursor: ActivityCursor | None = None
        self.loaded = False
        #: Whether the next poll starts from a stored cursor (its pending events are handed over again).
        self.resumed = False
        self._confirmed: set[str] = set()
        self._unsaved = False
        self._lock = asyncio.Lock()

    async def load(self, read: Callable[[], Awaitable[ActivityCursor | None]]) -> None:
        """Read the stored cursor once (``read`` may raise: the caller retries like a failed poll)."""
        if not self.loaded:
            self.cursor = await read()
            self.loaded, self.resumed = True, self.cursor is not None

    async def replace(self, cursor: ActivityCursor) -> bool:
        """Take a poll's cursor (confirmations that came during the poll applied again) and save it."""
        self.cursor = cursor.acknowledged(self._confirmed)
        self._confirmed.clear()
        self.resumed = False
        return await self.save()

    async def confirm(self, message_ids: Iterable[str]) -> bool:
        """Events Airflow stored: settle them (never handed over again) and save."""
        ids = set(message_ids)
        self._confirmed |= ids
        if self.cursor is not None:
            self.cursor = self.cursor.acknowledged(ids)
        return await self.save()

    async def save(self) -> bool:
        """Save the newest cursor; a failure is logged (the cursor stays in memory) and False returned."""
        async with self._lock:
            if self.cursor is None:
                return True
            try:
                await self.store.save(self.cursor.as_json())
            except Exception as err:
                self._unsaved = True
                self.log.warning("Saving the SPP activity cursor failed (%s); kept in memory, saved again later", err)
                return False
            if self._unsaved:
                self._unsaved = False
                self.log.info("Saved the SPP activity cursor again after a failed save")
            return True
