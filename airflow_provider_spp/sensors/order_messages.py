"""SppOrderMessageSensor: wait for a new message on an SPP order (a client's reply), in a worker or deferred."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_spp._internal.clock import utcnow
from airflow_provider_spp._internal.replies import ReplyBaseline, ReplyFilter, ReplyScan, ReplyWaitFields, reply_payload
from airflow_provider_spp.exceptions import SppError, SppInputError
from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.triggers.order_message import SppOrderMessageTrigger

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

__all__ = ["SppOrderMessageSensor"]


class SppOrderMessageSensor(ReplyWaitFields, BaseSensorOperator):
    """
    Wait until an SPP order gets a new message, optionally only the client's and matching a text.

    Returns (XCom) ``{"order", "message_id", "created_at", "author", "user_id"}`` of the oldest new
    message that matches, plus ``"message"`` (its text) only with ``return_text=True``: it is client data.

    :param order: Order ID or order number. Templated.
    :param after_message_id: A message ID; only later messages are new, e.g. the XCom of the post this
        wait follows (``"{{ ti.xcom_pull('post_followup') }}"``). Exact. Templated.
    :param since: A datetime or ISO-8601 string; messages created at or after it are new (SPP keeps whole
        seconds). Default, when neither is given: when the sensor started. Templated.
    :param from_client: Only messages written by the order's client (or their team) count.
    :param contains: Only messages containing this text (case-insensitive). Templated.
    :param pattern: Only messages matching this regular expression (``re.search``). Templated.
    :param return_text: Also return the message text.
    :param spp_conn_id: The ``spp`` connection to use.
    :param api_version: Sent as ``X-Api-Version``.
    :param deferrable: Wait on the triggerer (async polling every ``poke_interval`` until ``timeout``)
        instead of in a worker slot (default: ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = ("order", "after_message_id", "since", "contains", "pattern")
    ui_color = "#e0f2fe"

    def __init__(
        self,
        *,
        order: str | int,
        after_message_id: int | str | None = None,
        since: datetime | str | None = None,
        from_client: bool = False,
        contains: str | None = None,
        pattern: str | None = None,
        return_text: bool = False,
        spp_conn_id: str = SppHook.default_conn_name,
        api_version: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.deferrable = deferrable
        self._baseline: ReplyBaseline | None = None
        self._keep_reply_fields(
            spp_conn_id=spp_conn_id, api_version=api_version, order=order, after_message_id=after_message_id,
            since=since, from_client=from_client, contains=contains, pattern=pattern, return_text=return_text,
        )

    def _resolve(self, context: Context) -> tuple[ReplyBaseline, ReplyFilter]:
        """The rendered baseline and filter, checked before any request."""
        try:
            return self.reply_baseline(default_since=lambda: self._started_at(context)), self.reply_filter()
        except SppInputError as err:
            raise AirflowFailException(str(err)) from err

    def _started_at(self, context: Context) -> datetime:
        """When this sensor started waiting (the first try of a rescheduled sensor)."""
        if self.reschedule:
            first = context["ti"].get_first_reschedule_date(context)
            if first is not None:
                return first
        return utcnow()

    def execute(self, context: Context) -> Any:
        """Check once; then wait deferred (``deferrable=True``) or poke in this worker."""
        baseline, wanted = self._resolve(context)
        self._baseline = baseline
        if not self.deferrable:
            return super().execute(context)
        found = self._check(baseline, wanted)
        if found is not None:
            return found
        end_time = utcnow() + timedelta(seconds=self.timeout)
        self.defer(
            trigger=SppOrderMessageTrigger(
                order=self.order,
                spp_conn_id=self.spp_conn_id,
                after_message_id=baseline.after_message_id,
                since=baseline.since.isoformat() if baseline.since else None,
                from_client=self.from_client,
                contains=self.contains,
                pattern=self.pattern,
                return_text=self.return_text,
                poke_interval=self.poke_interval,
                end_time=end_time.isoformat(),
                api_version=self.api_version,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + max(60.0, self.poke_interval)),
        )

    def poke(self, context: Context) -> PokeReturnValue:
        """One look at the order's newest messages (worker mode)."""
        baseline, wanted = self._resolve(context) if self._baseline is None else (self._baseline, None)
        wanted = wanted or self.reply_filter()
        found = self._check(baseline, wanted)
        return PokeReturnValue(is_done=found is not None, xcom_value=found)

    def _check(self, baseline: ReplyBaseline, wanted: ReplyFilter) -> dict[str, Any] | None:
        """The matching new message's payload, or None; errors no wait can fix fail the task."""
        scan = ReplyScan(baseline, wanted)
        try:
            with SppHook(spp_conn_id=self.spp_conn_id, api_version=self.api_version) as hook:
                for message in hook.list_order_messages(self.order):
                    if not scan.feed(message):
                        break
        except SppError as err:
            if err.permanent:
                raise AirflowFailException(str(err)) from err
            self.log.warning("Looking for a reply on SPP order %s failed (%s); trying again", self.order, err)
            return None
        if scan.found is None:
            return None
        self.log.info("SPP order %s has a new message: %d", self.order, scan.found.id)
        return reply_payload(scan.found, self.order, with_text=self.return_text)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: the reply, a timeout, or an error."""
        status = event.get("status")
        if status == "success":
            self.log.info("SPP order %s has a new message: %s", event.get("order"), event.get("message_id"))
            return {k: v for k, v in event.items() if k != "status"}
        if status == "timeout":
            raise AirflowSensorTimeout(f"No new matching message on SPP order {self.order} within {self.timeout} s")
        raise AirflowException(f"Waiting for a message on SPP order {self.order} failed: {event.get('message')}")
