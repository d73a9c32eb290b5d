"""CreateOrderMessageOperator: post a templated message (and files) to an SPP order, exactly once."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator, conf

from airflow_provider_spp._internal.attachments import (
    Attachment,
    AttachmentLike,
    conceal_in_memory_content,
    prepare_attachments,
)
from airflow_provider_spp._internal.client import order_message_request
from airflow_provider_spp._internal.clock import utcnow
from airflow_provider_spp._internal.ledger import CLOCK_SKEW, PostLedger, PostRecord, file_stamps
from airflow_provider_spp._internal.templating import SppTemplating
from airflow_provider_spp.exceptions import (
    SppApiError,
    SppAttachmentUnavailableError,
    SppError,
    SppInputError,
    SppTransportError,
)
from airflow_provider_spp.hooks.spp import SppHook

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_spp.models import MessageResource, OrderMessageRequest


def grace_seconds(value: Any) -> float:
    """Validate ``lost_answer_wait`` when the DAG is parsed: a finite number of seconds, at least 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise SppInputError(f"lost_answer_wait must be a number of seconds >= 0, got {value!r}")
    return float(value)


class CreateOrderMessageOperator(SppTemplating, BaseOperator):
    """
    Post a message to an SPP order and return the new message's ID (an int) through XCom.

    :param order: Order ID or order number, e.g. ``"E4A269FC"``. Templated.
    :param message: The text, a Jinja template, or a template file ending in .txt/.md/.j2/.html. Templated.
    :param user_id: Post as this SPP user (default: the token's user). Templated; "42" is sent as 42.
    :param staff_only: True for an internal note the client never sees. Templated.
    :param attachments: Local paths, ObjectStoragePaths (``s3://...``), or ``(filename, bytes)`` tuples.
        Templated, but never read as template files: ``report.md`` is attached as it is.
    :param spp_conn_id: The ``spp`` connection to use.
    :param api_version: Sent as ``X-Api-Version``; overrides the connection's.
    :param deduplicate: On a retry, return the message an earlier try already posted instead of posting
        again (found through the task state store, else by looking at the order's recent messages).
    :param lost_answer_wait: Seconds to give SPP, after a POST whose answer was lost, to finish that
        request before a retry looks for its message (default 30).
    :param deferrable: Spend that wait deferred on the triggerer instead of sleeping in a worker slot
        (default: ``[operators] default_deferrable``).
    """

    TEMPLATE_FILE_FIELDS = ("message",)
    template_fields: Sequence[str] = ("order", "message", "user_id", "staff_only", "attachments")
    template_ext: Sequence[str] = (".txt", ".md", ".j2", ".html")
    template_fields_renderers: ClassVar[dict[str, str]] = {"message": "md"}
    ui_color = "#dbeafe"

    def __init__(
        self,
        *,
        order: str | int,
        message: str,
        user_id: int | str | None = None,
        staff_only: bool | str | None = None,
        attachments: Iterable[AttachmentLike] | None = None,
        spp_conn_id: str = SppHook.default_conn_name,
        api_version: str | None = None,
        deduplicate: bool = True,
        lost_answer_wait: float = 30.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.order = order
        self.message = message
        self.user_id = user_id
        self.staff_only = staff_only
        self.attachments = conceal_in_memory_content(attachments)  # bytes never land in rendered fields
        self.spp_conn_id = spp_conn_id
        self.api_version = api_version
        self.deduplicate = deduplicate
        self.lost_answer_wait = grace_seconds(lost_answer_wait)
        self.deferrable = deferrable

    def execute(self, context: Context) -> int:
        """Validate, post once (or find the earlier try's post), and return the message ID."""
        return self._execute(context, waited=False)

    def execute_after_wait(self, context: Context, event: Any = None) -> int:
        """Resume after the deferred wait for an earlier try's request: look, and post only if absent."""
        return self._execute(context, waited=True)

    def _execute(self, context: Context, *, waited: bool) -> int:
        try:
            request = order_message_request(self.order, self.message, user_id=self.user_id, staff_only=self.staff_only)
            attachments = prepare_attachments(self.attachments)
        except SppInputError as err:
            raise AirflowFailException(str(err)) from err
        hook = SppHook(spp_conn_id=self.spp_conn_id, api_version=self.api_version)
        try:
            message_id = self._post_once(hook, request, attachments, context, waited=waited)
        except SppError as err:
            if err.permanent:
                raise AirflowFailException(str(err)) from err
            raise
        finally:
            hook.close()
        self.log.info("Message %d is on SPP order %s", message_id, request.order)
        return message_id

    def _post_once(
        self,
        hook: SppHook,
        request: OrderMessageRequest,
        attachments: list[Attachment],
        context: Context,
        *,
        waited: bool,
    ) -> int:
        """Post unless an earlier try of this task instance already did; return the message ID."""
        ledger = PostLedger(context if self.deduplicate else {})
        files = file_stamps(attachments)
        record = ledger.load()
        if record is not None and not record.same_target(request, files):
            if record.may_have_landed:
                self.log.warning(
                    "This try posts to order %s as a different post (order, sender, visibility or files changed) "
                    "from an earlier try whose answer was lost; that earlier message may exist on order %s",
                    request.order,
                    record.order,
                )
            record = None
        if record is not None and record.message_id is not None:
            if record.describes(request, files):
                self.log.info(
                    "An earlier try already posted message %d to order %s; not posting it again",
                    record.message_id,
                    request.order,
                )
                return record.message_id
            self.log.info("The message differs from the one this task posted before; posting the new one")
            record = None
        if record is not None and record.may_have_landed:
            if record.in_flight:  # the try that sent it died before the answer: it gave up by now at the latest
                record = record.answer_lost(utcnow())
                ledger.save(record)
            earlier = self._find_earlier_post(hook, record)
            if earlier is not None:
                ledger.update(record.confirmed(earlier.id))
                return self._adopted(earlier, record.order)
        elif record is None and not ledger.available:
            earlier = self._find_without_ledger(hook, request, context, waited=waited)
            if earlier is not None:
                return self._adopted(earlier, request.order)
        now = utcnow()
        record = (
            record.sending_again(request, now) if record is not None else PostRecord.for_request(request, files, now)
        )
        ledger.save(record)
        try:
            created = hook.create_order_message(
                request.order,
                request.message,
                user_id=request.user_id,
                staff_only=request.staff_only,
                attachments=attachments,
            )
        except (SppTransportError, SppApiError, SppAttachmentUnavailableError) as err:
            if err.outcome_unknown:
                self.log.warning(
                    "SPP may have created the message although its answer was lost (%s); "
                    "a retry will look for it before posting",
                    err,
                )
                ledger.update(record.answer_lost(utcnow()))
            else:
                ledger.update(record.rejected())
            raise
        ledger.update(record.confirmed(created.id))
        return created.id

    def _adopted(self, earlier: MessageResource, order: str) -> int:
        """Return an earlier try's message found on SPP, saying so."""
        self.log.info(
            "Found message %d on order %s, posted by an earlier try whose answer was lost; not posting it again",
            earlier.id,
            order,
        )
        return earlier.id

    def _wait_for_spp(self, until: datetime) -> None:
        """Give SPP until ``until`` to finish an earlier try's request: deferred, or asleep in the worker."""
        wait = (until - utcnow()).total_seconds()
        if wait <= 0:
            return
        if self.deferrable:
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            self.log.info("Deferring %.1f s so SPP can finish the earlier try's request, then looking", wait)
            self.defer(trigger=DateTimeTrigger(moment=until), method_name="execute_after_wait")
        self.log.info("Giving SPP %.1f s to finish the earlier try's request before looking for its message", wait)
        time.sleep(wait)

    def _find_earlier_post(self, hook: SppHook, record: PostRecord) -> MessageResource | None:
        """Look for the message an earlier try sent, once SPP had time to finish that request."""
        self._wait_for_spp(record.look_after(self.lost_answer_wait))
        return hook.find_order_message_where(
            record.order, record.matches, created_since=record.first_sent_at - CLOCK_SKEW
        )

    def _find_without_ledger(
        self, hook: SppHook, request: OrderMessageRequest, context: Context, *, waited: bool
    ) -> MessageResource | None:
        """Without a task state store, a retry looks for its message among those since the run started.

        It cannot know when the earlier try gave up, only that it was before this try began: it waits
        ``lost_answer_wait`` from now (once; not again after a deferred wait) before looking.
        """
        since = self._earlier_try_window(context)
        if since is None:
            return None
        if not waited:
            self._wait_for_spp(utcnow() + timedelta(seconds=self.lost_answer_wait))
        return hook.find_order_message(
            request.order,
            request.message,
            created_since=since - CLOCK_SKEW,
            user_id=request.user_id,
            staff_only=request.staff_only,
        )

    def _earlier_try_window(self, context: Context) -> datetime | None:
        """Without a stored record, a retry looks for its message among those since the run started."""
        if not self.deduplicate:
            return None
        ti = context.get("ti") if hasattr(context, "get") else None
        if ti is None or (getattr(ti, "try_number", 1) or 1) <= 1:
            return None
        dag_run = context.get("dag_run")
        started = getattr(dag_run, "start_date", None) or getattr(ti, "start_date", None)
        return started if isinstance(started, datetime) else None
