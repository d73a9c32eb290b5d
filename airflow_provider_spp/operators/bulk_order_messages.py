"""CreateOrderMessagesInBulkOperator: one rendered message per order of a list, from one task, each exactly once."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, BaseOperator

from airflow_provider_spp._internal.bulk_ledger import BulkLedger
from airflow_provider_spp._internal.bulk_plan import BulkResult, bulk_requests, decide_each, order_of
from airflow_provider_spp._internal.bulk_sending import DEFAULT_CONCURRENCY, checked_concurrency
from airflow_provider_spp._internal.claims import ClaimBook
from airflow_provider_spp._internal.clock import utcnow
from airflow_provider_spp._internal.exactly_once import LookFirst, Post, ThisTry, after_post, record_to_send
from airflow_provider_spp._internal.templating import MESSAGE_TEMPLATE_EXT, names_a_template_file
from airflow_provider_spp.exceptions import SppError, SppInputError
from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.operators.order_messages import _claim_book, _claimed_by_others, grace_seconds, this_try_of

if TYPE_CHECKING:
    import jinja2
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_spp._internal.ledger import PostRecord
    from airflow_provider_spp.models import OrderMessageRequest, Sent

__all__ = ["CreateOrderMessagesInBulkOperator"]

log = logging.getLogger(__name__)


class CreateOrderMessagesInBulkOperator(BaseOperator):
    """
    Post one message to each order of a list, from one task; return each order's message ID through XCom.

    For thousands of orders in seconds (a mapped ``CreateOrderMessageOperator`` gives one task per
    order instead: each in the UI, each retried on its own). Each order still gets its message
    exactly once across retries and killed workers: a retry posts only what is not yet posted.

    :param orders: The orders: IDs or numbers, or mappings with an ``"order"`` key (and optionally a
        ``"message"``, posted as it is). Templated; an ``XComArg`` such as an upstream task's output
        is taken as it is, never rendered again (it may hold client text).
    :param message: The text for each order, a Jinja template (inline, or a .txt/.md/.j2/.html file)
        rendered per order with the task's context plus ``order`` (the order, as text) and ``item``
        (the list's item). Not rendered by Airflow before that. Needed unless every item has a message.
    :param user_id: Post as this SPP user (default: the token's user). Templated.
    :param staff_only: True for internal notes the clients never see. Templated.
    :param concurrency: POSTs in flight at once, 1 to 8 (default 4). A 429 slows every post down.
    :param spp_conn_id: The ``spp`` connection to use.
    :param api_version: Sent as ``X-Api-Version``; overrides the connection's.
    :param deduplicate: On a retry, post only to the orders that do not have their message yet
        (the records live in the task state store; see ``CreateOrderMessageOperator``).
    :param lost_answer_wait: Seconds SPP gets, after a POST whose answer was lost, before a retry
        looks for its message (default 30).

    XCom ``return_value``: ``{"message_ids": {order: id}, "failed": {order: reason}}``, also pushed
    when some orders fail. Then the task fails, and its retry posts only to the orders left; it fails
    without retries when every failure is permanent (a 404 order, a 422).
    """

    template_fields: Sequence[str] = ("orders", "user_id", "staff_only")
    template_fields_renderers: ClassVar[dict[str, str]] = {"orders": "json"}
    ui_color = "#bfdbfe"

    def __init__(
        self,
        *,
        orders: Any,
        message: str | None = None,
        user_id: int | str | None = None,
        staff_only: bool | str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        spp_conn_id: str = SppHook.default_conn_name,
        api_version: str | None = None,
        deduplicate: bool = True,
        lost_answer_wait: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.orders = orders
        self.message = message
        self.user_id = user_id
        self.staff_only = staff_only
        try:
            self.concurrency = checked_concurrency(concurrency)
        except SppInputError as err:
            raise ValueError(str(err)) from None
        self.spp_conn_id = spp_conn_id
        self.api_version = api_version
        self.deduplicate = deduplicate
        self.lost_answer_wait = grace_seconds(lost_answer_wait)

    def execute(self, context: Context) -> dict[str, Any]:
        """Render and check every post, post what earlier tries did not, and return the result."""
        try:
            requests, repeated = bulk_requests(
                self.orders, self._renderer(context), user_id=self.user_id, staff_only=self.staff_only
            )
        except SppInputError as err:
            raise AirflowFailException(str(err)) from err
        if repeated:
            self.log.warning("%d orders are in the list more than once; each gets one message", repeated)
        hook = SppHook(spp_conn_id=self.spp_conn_id, api_version=self.api_version)
        result = BulkResult()
        try:
            self._post_each_once(hook, requests, context, result)
        except SppError as err:
            raise (AirflowFailException(str(err)) if err.permanent else err) from err.__cause__
        finally:
            hook.close()
        return self._finish(context, result)

    def _renderer(self, context: Context) -> Any:
        """A function rendering the message template for one item (compiled once)."""
        if self.message is None:
            return _no_message
        env = self.get_template_env()
        template = _template(env, self.message)

        def render(item: Any) -> str:
            order = order_of(item)
            return template.render({**context, "order": "" if order is None else str(order), "item": item})

        return render

    def _post_each_once(
        self, hook: SppHook, requests: list[OrderMessageRequest], context: Context, result: BulkResult
    ) -> None:
        """Decide each order from the records earlier tries left, look where a POST may have landed, post the rest."""
        ledger = BulkLedger(context if self.deduplicate else {})
        decisions = decide_each(ledger.load(), requests, utcnow(), self._this_try(context, ledger))
        for order, message_id in decisions.existing.items():
            result.posted(order, message_id)
        if decisions.existing:
            self.log.info(
                "%d orders already have the message an earlier try posted; not posting them again",
                len(decisions.existing),
            )
        posts = decisions.posts
        if decisions.looks:
            posts = posts + self._look_first(hook, ledger, context, decisions.looks, result)
        if posts:
            self._post(hook, ledger, posts, result)

    def _this_try(self, context: Context, ledger: BulkLedger) -> ThisTry:
        """The facts about this try that each order's exactly-once decision needs."""
        return this_try_of(
            context,
            deduplicate=self.deduplicate,
            has_state_store=ledger.available,
            lost_answer_wait=self.lost_answer_wait,
        )

    def _look_first(
        self,
        hook: SppHook,
        ledger: BulkLedger,
        context: Context,
        looks: list[tuple[OrderMessageRequest, LookFirst]],
        result: BulkResult,
    ) -> list[tuple[OrderMessageRequest, Post]]:
        """Find the messages earlier tries may have posted (after SPP had time to finish); the posts still due."""
        ledger.put(look.record for _, look in looks if look.save_first and look.record is not None)
        ledger.save()
        _sleep_until(self, max((look.wait_until for _, look in looks if look.wait_until), default=None), len(looks))
        claims = _claim_book(context) if self.deduplicate else None
        searches = [
            (look.order, look.wanted.excluding(_claimed_by_others(claims, look.order)), look.since) for _, look in looks
        ]
        found = hook.find_order_messages_where(searches, concurrency=self.concurrency)
        due: list[tuple[OrderMessageRequest, Post]] = []
        for (request, look), earlier in zip(looks, found, strict=True):
            if earlier is not None and _claimed(claims, look.order, earlier.id):
                result.posted(request.order, earlier.id)
                if look.record is not None:
                    ledger.put([look.record.confirmed(earlier.id)])
            else:
                due.append((request, Post(record_to_send(look.record, request, (), utcnow()))))
        ledger.checkpoint(force=True)
        self.log.info(
            "Looked for %d posts of earlier tries whose answers were lost: %d found, %d to post",
            len(looks),
            len(looks) - len(due),
            len(due),
        )
        return due

    def _post(
        self, hook: SppHook, ledger: BulkLedger, posts: list[tuple[OrderMessageRequest, Post]], result: BulkResult
    ) -> None:
        """POST each order's message, recording each group before it goes out and each outcome after.

        Fresh records carry SPP's clock, read just before: a retry then looks for a lost post only among
        messages created since the batch began on SPP's clock, never at an earlier post of the same text.
        """
        offset = _spp_clock_offset(hook)
        records: dict[str, PostRecord] = {request.order: _on_spp_clock(post.record, offset) for request, post in posts}

        def before_sending(group: list[OrderMessageRequest]) -> None:
            ledger.put(records[request.order] for request in group)
            ledger.save()

        def on_sent(sent: Sent) -> None:
            order = sent.request.order
            outcome: int | SppError = sent.message.id if sent.message is not None else sent.error  # type: ignore[assignment]
            ledger.put([after_post(records[order], outcome, utcnow(), sent.spp_time)])
            ledger.checkpoint()
            if isinstance(outcome, int):
                result.posted(order, outcome)
            else:
                result.failed_with(order, outcome)

        try:
            hook.create_order_messages(
                [request for request, _ in posts],
                concurrency=self.concurrency,
                before_sending=before_sending,
                on_sent=on_sent,
            )
        finally:
            ledger.checkpoint(force=True)

    def _finish(self, context: Context, result: BulkResult) -> dict[str, Any]:
        """Return the result; with failures, push it and fail the task (retryable unless all are permanent)."""
        value = result.as_xcom()
        self.log.info("Bulk post finished: %s", result.summary())
        if not result.failed:
            return value
        ti = context.get("ti") if hasattr(context, "get") else None
        if ti is not None:
            ti.xcom_push(key="return_value", value=value)
        if result.permanent_only:
            raise AirflowFailException(f"Bulk post: {result.summary()}; retrying cannot help")
        raise AirflowException(f"Bulk post: {result.summary()}; a retry posts only to the orders left")


def _spp_clock_offset(hook: SppHook) -> float | None:
    """SPP's clock minus this worker's, in seconds, from the ``Date`` of one cheap GET (None without one)."""
    next(iter(hook.list_orders(per_page=1, sort=None)), None)
    spp_now = hook.server_time
    return (spp_now - utcnow()).total_seconds() if spp_now is not None else None


def _on_spp_clock(record: PostRecord, offset: float | None) -> PostRecord:
    """A record first sent by this try, with SPP's clock as this worker measured it (earlier tries' kept)."""
    if offset is None or record.clock_offset is not None or record.last_sent_at != record.first_sent_at:
        return record
    return dataclasses.replace(record, clock_offset=offset)


def _no_message(item: Any) -> str:
    """Without a message template, every item must bring its own message."""
    raise SppInputError("Invalid SPP order message: no 'message' in the item and no message template")


def _template(env: jinja2.Environment, message: str) -> jinja2.Template:
    """The message template: a file when it names one (a template ending, no spaces), else inline."""
    if names_a_template_file(message, MESSAGE_TEMPLATE_EXT):
        return env.get_template(message)
    return env.from_string(message)


def _claimed(claims: ClaimBook | None, order: str, message_id: int) -> bool:
    """Claim an earlier try's message for this task instance; False when another one holds it."""
    if claims is None:
        return True
    try:
        holder = claims.claim(order, message_id, utcnow())
    except Exception as err:  # the look excluded what others claimed: a claim not written is a warning only
        log.warning(
            "Could not record message %d on order %s as this task's (%s)", message_id, order, type(err).__name__
        )
        return True
    return holder in (None, claims.me)


def _sleep_until(operator: BaseOperator, until: datetime | None, looks: int) -> None:
    """Give SPP until ``until`` to finish earlier tries' requests before looking for their messages."""
    wait = (until - utcnow()).total_seconds() if until is not None else 0.0
    if wait > 0 and math.isfinite(wait):
        operator.log.info(
            "Giving SPP %.1f s to finish %d requests of earlier tries before looking for them", wait, looks
        )
        time.sleep(wait)
