"""CreateOrderMessageOperator: post a templated message (and files) to an SPP order, exactly once."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from airflow_provider_spp.attachments import Attachment, AttachmentLike, prepare_attachments
from airflow_provider_spp.exceptions import SppApiError, SppConfigError, SppInputError, SppTransportError
from airflow_provider_spp.hooks.spp import SppHook, order_message_request
from airflow_provider_spp.idempotency import CLOCK_SKEW, PostLedger, PostRecord, utcnow

if TYPE_CHECKING:
    from collections.abc import Iterator

    import jinja2
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_spp.models import MessageResource, OrderMessageRequest

#: The only field that may name a template file; attachments are sent as they are, never rendered.
TEMPLATE_FILE_FIELDS = ("message",)


class CreateOrderMessageOperator(BaseOperator):
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
    """

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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.order = order
        self.message = message
        self.user_id = user_id
        self.staff_only = staff_only
        self.attachments = attachments
        self.spp_conn_id = spp_conn_id
        self.api_version = api_version
        self.deduplicate = deduplicate

    @contextmanager
    def _template_files_disabled(self) -> Iterator[None]:
        """Within the block no value is read as a template file, whatever its extension."""
        self.template_ext = ()
        try:
            yield
        finally:
            del self.template_ext

    def resolve_template_files(self) -> None:
        """Load ``message`` from its template file; leave attachment paths alone."""
        self.template_fields = TEMPLATE_FILE_FIELDS
        try:
            super().resolve_template_files()
        finally:
            del self.template_fields

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Iterable[str],
        context: Context,
        jinja_env: jinja2.Environment,
        seen_oids: set[int],
    ) -> None:
        """Render each field in declared order; only ``message`` may name a template file."""
        if parent is not self:
            super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)
            return
        for field in template_fields:
            if field in TEMPLATE_FILE_FIELDS:
                super()._do_render_template_fields(parent, [field], context, jinja_env, seen_oids)
            else:
                with self._template_files_disabled():
                    super()._do_render_template_fields(parent, [field], context, jinja_env, seen_oids)

    def execute(self, context: Context) -> int:
        """Validate, post once (or find the earlier try's post), and return the message ID."""
        try:
            request = order_message_request(self.order, self.message, user_id=self.user_id, staff_only=self.staff_only)
            attachments = prepare_attachments(self.attachments)
        except SppInputError as err:
            raise AirflowFailException(str(err)) from err
        hook = SppHook(spp_conn_id=self.spp_conn_id, api_version=self.api_version)
        try:
            message_id = self._post_once(hook, request, attachments, context)
        except (SppConfigError, SppInputError) as err:
            raise AirflowFailException(str(err)) from err
        except SppApiError as err:
            if not err.retryable and not err.outcome_unknown:
                raise AirflowFailException(str(err)) from err
            raise
        finally:
            hook.close()
        self.log.info("Message %d is on SPP order %s", message_id, request.order)
        return message_id

    def _post_once(
        self, hook: SppHook, request: OrderMessageRequest, attachments: list[Attachment], context: Context
    ) -> int:
        """Post unless an earlier try of this task instance already did; return the message ID."""
        ledger = PostLedger(context) if self.deduplicate else PostLedger({})
        record = ledger.load()
        if record is not None and record.order != request.order:
            record = None
        if record is not None and record.message_id is not None:
            self.log.info(
                "An earlier try already posted message %d to order %s; not posting it again",
                record.message_id,
                request.order,
            )
            return record.message_id
        since = record.first_attempt_at if record else self._earlier_try_window(context)
        if since is not None:
            earlier = hook.find_order_message(
                request.order,
                request.message,
                created_since=since - CLOCK_SKEW,
                user_id=request.user_id,
                staff_only=request.staff_only,
            )
            if earlier is not None:
                self.log.info(
                    "Found message %d on order %s, posted by an earlier try whose answer was lost; "
                    "not posting it again",
                    earlier.id,
                    request.order,
                )
                self._remember(ledger, record, request, earlier.id)
                return earlier.id
        record = record or PostRecord(order=request.order, first_attempt_at=utcnow())
        ledger.save(record)
        created = self._create(hook, request, attachments)
        self._remember(ledger, record, request, created.id)
        return created.id

    def _create(self, hook: SppHook, request: OrderMessageRequest, attachments: list[Attachment]) -> MessageResource:
        """The POST itself; a lost answer is reported so the next try knows to look first."""
        try:
            return hook.create_order_message(
                request.order,
                request.message,
                user_id=request.user_id,
                staff_only=request.staff_only,
                attachments=attachments,
            )
        except (SppTransportError, SppApiError) as err:
            if err.outcome_unknown and self.deduplicate:
                self.log.warning(
                    "SPP may have created the message although the answer was lost (%s); "
                    "the next try will look for it before posting",
                    err,
                )
            raise

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

    @staticmethod
    def _remember(ledger: PostLedger, record: PostRecord | None, request: OrderMessageRequest, message_id: int) -> None:
        """Store the message ID so a later try of this task instance returns it without any request."""
        base = record or PostRecord(order=request.order, first_attempt_at=utcnow())
        ledger.save(dataclasses.replace(base, message_id=message_id))
