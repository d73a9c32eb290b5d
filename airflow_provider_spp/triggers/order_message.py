"""SppOrderMessageTrigger: the deferrable SppOrderMessageSensor's wait, on the triggerer (asyncio); it never writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_spp._internal.clock import utcnow
from airflow_provider_spp._internal.pattern_search import pick_reply_async
from airflow_provider_spp._internal.replies import (
    ReplyBaseline,
    ReplyFilter,
    ReplyScan,
    ReplyWaitFields,
    checked_interval,
    parse_moment,
    reply_payload,
)
from airflow_provider_spp.exceptions import SppError, SppInputError, SppValidationError
from airflow_provider_spp.hooks.spp_async import SppAsyncHook

__all__ = ["SppOrderMessageTrigger"]

#: The class path ``serialize()`` gives: the one earlier releases wrote into Airflow's metadata DB, kept stable.
CLASSPATH = "airflow_provider_spp.triggers.order_messages.SppOrderMessageTrigger"


class SppOrderMessageTrigger(ReplyWaitFields, BaseTrigger):
    """
    Poll one Wayfront (formerly SPP) order until it gets a new message that passes the filter, then fire once.

    :param order: Order ID or order number.
    :param spp_conn_id: The ``spp`` connection (its id; the trigger never holds the token).
    :param after_message_id: Messages with a higher ID are new (exact; e.g. the ID of the post it follows).
    :param since: ISO-8601 time; messages created at or after it (whole seconds) are new.
    :param from_client: Only the client's messages count (see :mod:`airflow_provider_spp._internal.replies`).
    :param contains: Only messages containing this text (case-insensitive) count.
    :param pattern: Only messages matching this regular expression (``re.search``) count; it runs in a
        child process, never on the event loop, and a search over 5 s fires an ``error`` event.
    :param return_text: Put the message text in the event (it is client data; off by default). The
        triggerer logs each event ("Trigger fired event") and Airflow keeps it in the task's
        ``next_kwargs`` until the task resumes; the sensor therefore never sets it and reads the text itself.
    :param poke_interval: Seconds between polls (finite, at least 0.1).
    :param end_time: ISO-8601 time after which the trigger fires a ``timeout`` event.
    :param api_version: Sent as ``X-Api-Version``.
    """

    def __init__(
        self,
        *,
        order: str | int,
        spp_conn_id: str = SppAsyncHook.default_conn_name,
        after_message_id: int | None = None,
        since: str | None = None,
        from_client: bool = False,
        contains: str | None = None,
        pattern: str | None = None,
        return_text: bool = False,
        poke_interval: float = 60.0,
        end_time: str | None = None,
        api_version: str | None = None,
    ) -> None:
        super().__init__()
        self._keep_reply_fields(
            spp_conn_id=spp_conn_id, api_version=api_version, order=order, after_message_id=after_message_id,
            since=since, from_client=from_client, contains=contains, pattern=pattern, return_text=return_text,
        )  # fmt: skip
        self.poke_interval = checked_interval("poke_interval", poke_interval)
        self.end_time = end_time
        self.check_given()
        self._filter_on_server = True

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and JSON-safe kwargs (a connection id, never a token)."""
        return (
            CLASSPATH,
            {
                "order": self.order,
                "spp_conn_id": self.spp_conn_id,
                "after_message_id": self.after_message_id,
                "since": self.since,
                "from_client": self.from_client,
                "contains": self.contains,
                "pattern": self.pattern,
                "return_text": self.return_text,
                "poke_interval": self.poke_interval,
                "end_time": self.end_time,
                "api_version": self.api_version,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until a matching new message, a timeout, or an error no wait can fix."""
        try:
            baseline, wanted = self.reply_baseline(), self.reply_filter()
            if baseline is None:
                raise SppInputError("a reply baseline needs after_message_id or since")
            deadline = parse_moment(self.end_time)
        except SppInputError as err:
            yield TriggerEvent({"status": "error", "message": str(err)})
            return
        hook = SppAsyncHook(self.spp_conn_id, api_version=self.api_version)
        try:
            while True:
                event = await self._poll_once(hook, baseline, wanted)
                if event is not None:
                    yield event
                    return
                wait = self.poke_interval
                if deadline is not None:
                    left = (deadline - utcnow()).total_seconds()
                    if left <= 0:
                        yield TriggerEvent({"status": "timeout", "order": str(self.order)})
                        return
                    wait = min(wait, left)
                await asyncio.sleep(wait)
        finally:
            await hook.aclose()

    async def _poll_once(self, hook: SppAsyncHook, baseline: ReplyBaseline, wanted: ReplyFilter) -> TriggerEvent | None:
        """The event to fire after one look at the order (a reply, or an error no wait can fix), else None."""
        try:
            scan = await self._scan(hook, baseline, wanted)
            message = await pick_reply_async(scan, wanted)
        except SppError as err:
            if err.permanent:
                return TriggerEvent({"status": "error", "message": str(err)})
            self.log.warning("Polling SPP order %s failed (%s); trying again", self.order, err)
            return None
        if message is None:
            return None
        payload = reply_payload(message, self.order, with_text=self.return_text, order_resource=message.order)
        return TriggerEvent({"status": "success", **payload})

    async def _scan(self, hook: SppAsyncHook, baseline: ReplyBaseline, wanted: ReplyFilter) -> ReplyScan:
        """Read the order's new messages (asking SPP for those only, unless it refused the filter once)."""
        filters = baseline.server_filters() if self._filter_on_server else None
        try:
            return await scan_messages(hook, self.order, ReplyScan(baseline, wanted), filters)
        except SppValidationError as err:
            if filters is None:
                raise
            self.log.warning("SPP refused the message filter (%s); reading the order's messages unfiltered", err)
            self._filter_on_server = False
            return await scan_messages(hook, self.order, ReplyScan(baseline, wanted), None)


async def scan_messages(
    hook: SppAsyncHook, order: str | int, scan: ReplyScan, filters: Mapping[str, str] | None
) -> ReplyScan:
    """Feed the order's messages to the scan until it has read back to its baseline."""
    async with aclosing(hook.list_order_messages(order, filters=filters)) as messages:
        async for message in messages:
            if not scan.feed(message):
                break
    return scan
