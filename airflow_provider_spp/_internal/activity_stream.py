"""The activity trigger's producer on Airflow 3.3+'s shared-stream ack path: a cursor saved only for stored events.

The triggerer runs one :class:`ActivityStreamProducer` per watcher (its ``shared_stream_key`` is the cursor
key, so distinct watchers never share one; identical ones are one trigger in Airflow anyway). The producer
polls SPP with the trigger's own reading code and yields ``(payload, message ID)``; Airflow calls
:meth:`ActivityStreamProducer.advance` only after the trigger events made from them were stored in the
metadata DB, and only then does the cursor take them as done. Imported only where
``airflow.triggers.shared_stream`` exists (see ``version_compat.shared_stream_ack_supported``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from airflow.triggers.shared_stream import AdvanceItem, SharedStreamProducer

from airflow_provider_spp._internal.activity_keeper import CursorKeeper

if TYPE_CHECKING:
    from airflow_provider_spp.triggers.order_activity import SppOrderActivityTrigger


#: At most this many events yielded and not yet advanced: the triggerer fails a watcher whose queue exceeds
#: ``[triggerer] shared_stream_subscriber_queue_size`` (1024), and a catch-up poll can find more new messages.
MAX_IN_FLIGHT = 256


class ActivityStreamProducer(SharedStreamProducer):
    """Polls SPP for one watcher; ``advance`` settles the events Airflow stored and saves the cursor."""

    def __init__(self, trigger: SppOrderActivityTrigger) -> None:
        self._trigger = trigger
        self._keeper = CursorKeeper(trigger.cursor_store(), trigger.log)
        self._stream: Any = None
        self._in_flight = 0
        self._advanced = asyncio.Event()

    def open_stream(self) -> AsyncIterator[tuple[Any, Any]]:
        """Poll forever (errors are logged and retried): each new message's payload with its ID."""
        self._stream = self._events()
        return self._stream

    async def _events(self) -> AsyncIterator[tuple[Any, Any]]:
        """The events of each poll, after the cursor with them pending was saved."""
        async for events in self._trigger.batches(self._keeper, settle_by_time=False):
            for message_id, _, payload in events:
                while self._in_flight >= MAX_IN_FLIGHT:  # back-pressure: wait for Airflow to store some
                    self._advanced.clear()
                    await self._advanced.wait()
                self._in_flight += 1
                yield payload, str(message_id)

    async def advance(self, batch: Sequence[AdvanceItem]) -> None:
        """Settle the events every watcher stored; keep the others pending (handed over again after a restart).

        Never raises (a raise would end the stream): a failed save is logged and retried with the next one.
        """
        self._in_flight -= len(batch)
        self._advanced.set()
        stored = [item.broker_payload for item in batch if item.outcome.is_clean]
        if len(stored) < len(batch):
            self._trigger.log.warning(
                "%d SPP activity event(s) not confirmed stored by Airflow; kept pending, handed over again after a "
                "restart",
                len(batch) - len(stored),
            )
        if stored:
            await self._keeper.confirm(stored)

    async def aclose(self) -> None:
        """Close the poll loop (and its HTTP client) if Airflow stopped the stream."""
        if self._stream is not None:
            with suppress(RuntimeError):  # still running: the cancelled poll closes it itself
                await self._stream.aclose()
