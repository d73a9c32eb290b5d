"""SppOrderMessageSensor: wait for a new message on an SPP order (a client's reply), in a worker or deferred."""

from __future__ import annotations

import logging
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
from airflow_provider_spp._internal.links import WayfrontOrderLink, persist_order_link
from airflow_provider_spp._internal.pattern_search import pick_reply
from airflow_provider_spp._internal.replies import (
    ReplyBaseline,
    ReplyFilter,
    ReplyScan,
    ReplyWaitFields,
    baseline_from_record,
    baseline_record,
    checked_interval,
    reply_payload,
    spp_clock,
)
from airflow_provider_spp.exceptions import SppError, SppInputError, SppValidationError
from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.triggers.order_message import SppOrderMessageTrigger

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

log = logging.getLogger(__name__)

__all__ = ["SppOrderMessageSensor"]

#: Key of the default baseline in the task instance's ``task_state_store`` (Airflow 3.3+).
BASELINE_KEY = "airflow_provider_spp.reply_baseline"


class KeptBaseline:
    """The default baseline kept in Airflow's task state store, so every try and reschedule waits from it.

    Tries of one task instance share the store; a task cleared to wait again starts a new series of
    tries (Airflow raises ``max_tries``), which takes a new baseline. Without a store (Airflow before
    3.3) nothing is kept: see :meth:`SppOrderMessageSensor._started_at`. A failing store is logged and
    the wait goes on with the baseline in memory.
    """

    def __init__(self, context: Context, retries: int | None) -> None:
        self._store: Any = context.get("task_state_store")
        self._series = int(getattr(context.get("ti"), "max_tries", 0) or 0) - (retries or 0)

    def load(self) -> datetime | None:
        """The baseline an earlier try (or poke) of this series took, if any."""
        if self._store is None:
            return None
        try:
            return baseline_from_record(self._store.get(BASELINE_KEY), self._series)
        except Exception as err:
            log.warning("Could not read the reply baseline from the task state store (%s)", type(err).__name__)
            return None

    def save(self, since: datetime) -> None:
        """Keep the baseline for later tries and pokes."""
        if self._store is None:
            return
        try:
            self._store.set(BASELINE_KEY, baseline_record(since, self._series))
        except Exception as err:
            log.warning("Could not keep the reply baseline in the task state store (%s)", type(err).__name__)


class SppOrderMessageSensor(ReplyWaitFields, BaseSensorOperator):
    """
    Wait until a Wayfront (formerly Service Provider Pro, SPP) order gets a new message, optionally filtered.

    Returns (XCom) ``{"order", "message_id", "created_at", "author", "user_id", "via"}`` of the oldest new
    message that matches, plus ``"message"`` (its text) only with ``return_text=True``: it is client data.
    ``author`` is ``"client"``, ``"staff"``, ``"service"`` (SPP wrote it itself: ``is_auto_generated``) or
    ``"unknown"``; ``via`` is how the message arrived, as SPP says (``"web"``, ``"email"``, ...).

    :param order: Order ID or order number. Templated.
    :param after_message_id: A message ID; only later messages are new, e.g. the XCom of the post this
        wait follows (``"{{ ti.xcom_pull('post_followup') }}"``). Exact. Templated.
    :param since: A datetime or ISO-8601 string; messages created at or after it are new (SPP keeps whole
        seconds). Templated. When neither is given: when the sensor started, on SPP's clock (its ``Date``
        header, whole seconds: a message up to 2 s older can count), taken once and kept for every
        poke, reschedule and retry in Airflow's task state store (Airflow 3.3+; before 3.3 a retry
        takes it again, so a reply between two tries is missed: give ``after_message_id`` there).
    :param from_client: Only messages written by the order's client (or their team) count; SPP's own
        messages (``is_auto_generated``) never do.
    :param contains: Only messages containing this text (case-insensitive). Templated.
    :param pattern: Only messages matching this regular expression (``re.search``). Templated. Checked
        when the DAG is parsed (when not templated) and run in a child process for at most 5 s per
        look: a pattern that backtracks catastrophically fails the wait instead of stalling it.
    :param return_text: Also return the message text. Deferred, the text is read by the worker on
        resume: it is not in the trigger's event (which the triggerer logs and keeps in the metadata DB).
    :param spp_conn_id: The ``spp`` connection to use.
    :param api_version: Sent as ``X-Api-Version``.
    :param deferrable: Wait on the triggerer (async polling every ``poke_interval`` until ``timeout``)
        instead of in a worker slot (default: ``[operators] default_deferrable``).

    ``poke_interval`` must be a finite number of seconds, at least 0.1; ``timeout`` finite.
    """

    template_fields: Sequence[str] = ("order", "after_message_id", "since", "contains", "pattern")
    ui_color = "#e0f2fe"
    operator_extra_links = (WayfrontOrderLink(),)

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
        if "poke_interval" in kwargs:  # checked before Airflow's own check, whose errors are less clear
            kwargs["poke_interval"] = checked_interval("poke_interval", kwargs["poke_interval"])
        if "timeout" in kwargs:
            kwargs["timeout"] = checked_interval("timeout", kwargs["timeout"], minimum=0)
        super().__init__(**kwargs)
        self.deferrable = deferrable
        self._keep_reply_fields(
            spp_conn_id=spp_conn_id, api_version=api_version, order=order, after_message_id=after_message_id,
            since=since, from_client=from_client, contains=contains, pattern=pattern, return_text=return_text,
        )  # fmt: skip
        self.poke_interval = checked_interval("poke_interval", self.poke_interval)  # Airflow's default, too
        self.check_given()
        self._baseline: ReplyBaseline | None = None
        self._filter_on_server = True
        self._workspace_url: str | None = None  # known after the first look; then the link is kept
        self._link_kept = False

    def _rendered_filter(self) -> ReplyFilter:
        """The rendered filter and given baseline, checked before any request (a bad one fails the task)."""
        try:
            wanted = self.reply_filter()
            # None when neither given nor kept by an earlier try: the first look takes it on SPP's clock.
            self._baseline = self.reply_baseline(default_since=self._kept.load)
        except SppInputError as err:
            raise AirflowFailException(str(err)) from err
        return wanted

    def execute(self, context: Context) -> Any:
        """Check once; then wait deferred (``deferrable=True``) or poke in this worker."""
        self._started = self._started_at(context)
        self._kept = KeptBaseline(context, self.retries)
        self._wanted = self._rendered_filter()
        if not self.deferrable:
            return super().execute(context)
        found = self._check()
        self._keep_order_link(context)
        if found is not None:
            return found
        baseline = self._baseline or self._take_baseline(None)
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
                return_text=False,  # the text is read on resume: never in the event (triggerer log, metadata DB)
                poke_interval=self.poke_interval,
                end_time=end_time.isoformat(),
                api_version=self.api_version,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + max(60.0, self.poke_interval)),
        )

    def _started_at(self, context: Context) -> datetime:
        """When this sensor started waiting, on this worker's clock (the first poke of a rescheduled sensor)."""
        if self.reschedule:
            first = context["ti"].get_first_reschedule_date(context)
            if first is not None:
                return first
        return utcnow()

    def poke(self, context: Context) -> PokeReturnValue:
        """One look at the order's newest messages (worker mode)."""
        found = self._check()
        self._keep_order_link(context)
        return PokeReturnValue(is_done=found is not None, xcom_value=found)

    def _check(self) -> dict[str, Any] | None:
        """The matching new message's payload, or None; errors no wait can fix fail the task."""
        try:
            with SppHook(spp_conn_id=self.spp_conn_id, api_version=self.api_version) as hook:
                scan = self._scan(hook)
            found = pick_reply(scan, self._wanted)
            self._note_workspace(hook, found is not None)
        except SppError as err:
            if err.permanent:
                raise AirflowFailException(str(err)) from err
            self.log.warning("Looking for a reply on SPP order %s failed (%s); trying again", self.order, err)
            return None
        if found is None:
            return None
        self.log.info("SPP order %s has a new message: %d", self.order, found.id)
        return reply_payload(found, self.order, with_text=self.return_text)

    def _scan(self, hook: SppHook) -> ReplyScan:
        """Read the order's new messages; the first answer gives SPP's clock when the baseline is still to take."""
        filters = self._baseline.server_filters() if self._baseline is not None and self._filter_on_server else None
        try:
            messages = hook.list_order_messages(self.order, filters=filters)
            try:
                first = next(messages, None)
                scan = ReplyScan(self._baseline or self._take_baseline(hook.server_time), self._wanted)
                if first is not None and scan.feed(first):
                    for message in messages:
                        if not scan.feed(message):
                            break
            finally:
                messages.close()  # type: ignore[attr-defined]  # a generator: stop reading pages
        except SppValidationError as err:
            if filters is None:
                raise
            self.log.warning("SPP refused the message filter (%s); reading the order's messages unfiltered", err)
            self._filter_on_server = False
            return self._scan(hook)
        return scan

    def _note_workspace(self, hook: SppHook, read_a_reply: bool) -> None:
        """Remember the workspace for the extra link; report the order as read (lineage) once a reply is found."""
        self._workspace_url = hook.settings.base_url
        if read_a_reply:
            from airflow_provider_spp._internal.lineage import report_reply_lineage

            report_reply_lineage(hook, self._workspace_url, self.order)

    def _keep_order_link(self, context: Context) -> None:
        """Keep the "Open order in Wayfront" link's URL in XCom, once per process, after the first look."""
        if self._workspace_url is not None and not self._link_kept:
            self._link_kept = persist_order_link(context, self._workspace_url, self.order) is not None

    def _take_baseline(self, server_time: datetime | None) -> ReplyBaseline:
        """The default baseline, "when the sensor started" on SPP's clock, taken once and kept across tries."""
        if server_time is None:
            self.log.warning("SPP's clock is unknown (no Date header yet): the reply baseline is this worker's clock")
        self._baseline = ReplyBaseline(since=spp_clock(self._started, server_time, utcnow()))
        assert self._baseline.since is not None
        self._kept.save(self._baseline.since)
        return self._baseline

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: the reply, a timeout, or an error."""
        status = event.get("status")
        if status == "success":
            self.log.info("SPP order %s has a new message: %s", event.get("order"), event.get("message_id"))
            found = {k: v for k, v in event.items() if k != "status"}
            if self.return_text and "message" not in found:
                found["message"] = self._text_of(int(found["message_id"]))
            return found
        if status == "timeout":
            raise AirflowSensorTimeout(f"No new matching message on SPP order {self.order} within {self.timeout} s")
        raise AirflowException(f"Waiting for a message on SPP order {self.order} failed: {event.get('message')}")

    def _text_of(self, message_id: int) -> str | None:
        """The text of the message the trigger found, read here: it never travels in the trigger's event."""
        scan = ReplyScan(ReplyBaseline(after_message_id=message_id - 1), ReplyFilter())
        try:
            with SppHook(spp_conn_id=self.spp_conn_id, api_version=self.api_version) as hook:
                for message in hook.list_order_messages(self.order, filters=scan.baseline.server_filters()):
                    if not scan.feed(message):
                        break
        except SppError as err:
            if err.permanent:
                raise AirflowFailException(str(err)) from err
            raise AirflowException(f"Reading the reply on SPP order {self.order} failed: {err}") from err
        found = next((m for m in scan.candidates if m.id == message_id), None)
        if found is None:
            self.log.warning("SPP message %d is gone from order %s: no text to return", message_id, self.order)
        return found.message if found is not None else None
