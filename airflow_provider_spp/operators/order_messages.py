"""CreateOrderMessageOperator: post a templated message (and files) to an SPP order, exactly once."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator, conf

from airflow_provider_spp._internal.attachments import (
    Attachment,
    AttachmentLike,
    ConcealedBytes,
    conceal_in_memory_content,
    prepare_attachments,
)
from airflow_provider_spp._internal.claims import DESCRIPTION, ClaimBook, claimer_of, claims_key
from airflow_provider_spp._internal.client import order_message_request
from airflow_provider_spp._internal.clock import utcnow
from airflow_provider_spp._internal.exactly_once import (
    LookFirst,
    Post,
    ReturnExisting,
    Superseded,
    ThisTry,
    after_post,
    decide,
    record_to_send,
)
from airflow_provider_spp._internal.ledger import PostLedger, PostRecord, file_stamps
from airflow_provider_spp._internal.links import WayfrontOrderLink, keep_order_link
from airflow_provider_spp._internal.templating import MESSAGE_TEMPLATE_EXT, SppTemplating
from airflow_provider_spp.exceptions import (
    SppApiError,
    SppAttachmentUnavailableError,
    SppError,
    SppInputError,
    SppStateStoreError,
    SppTransportError,
)
from airflow_provider_spp.hooks.spp import SppHook

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_spp.models import MessageResource, OrderMessageRequest

__all__ = ["ConcealedBytes", "CreateOrderMessageOperator"]


def grace_seconds(value: Any) -> float:
    """Validate ``lost_answer_wait`` when the DAG is parsed: a finite number of seconds, at least 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise SppInputError(f"lost_answer_wait must be a number of seconds >= 0, got {value!r}")
    return float(value)


class CreateOrderMessageOperator(SppTemplating, BaseOperator):
    """
    Post a message to a Wayfront (formerly Service Provider Pro, SPP) order; return its ID (an int) through XCom.

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
        A retry never takes a message that another task instance posted or adopted: each task instance
        claims its message in the Airflow Variable ``spp_message_claims_<ORDER>``.
    :param lost_answer_wait: Seconds to give SPP, after a POST whose answer was lost, to finish that
        request before a retry looks for its message (default 30).
    :param deferrable: Spend that wait deferred on the triggerer instead of sleeping in a worker slot
        (default: ``[operators] default_deferrable``).
    """

    TEMPLATE_FILE_FIELDS = ("message",)
    template_fields: Sequence[str] = ("order", "message", "user_id", "staff_only", "attachments")
    template_ext: Sequence[str] = MESSAGE_TEMPLATE_EXT
    template_fields_renderers: ClassVar[dict[str, str]] = {"message": "md"}
    ui_color = "#dbeafe"
    operator_extra_links = (WayfrontOrderLink(),)

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
        self.keep_message_fields(order, message, user_id, staff_only, spp_conn_id, api_version)
        self.attachments = conceal_in_memory_content(attachments)  # bytes never land in rendered fields
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
            _ = hook.settings  # the connection, checked before anything is recorded: a try without one sent nothing
            message_id = self._post_once(hook, request, attachments, context, waited=waited)
            _report_lineage(hook, request.order, self.attachments)
        except SppError as err:
            if err.permanent:
                raise AirflowFailException(str(err)) from err
            raise
        finally:
            keep_order_link(self, _workspace_url(hook), request.order)
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
        claims = _claim_book(context) if self.deduplicate else None
        files = file_stamps(attachments)
        this_try = self._this_try(context, ledger, waited=waited)
        record = _confirmed_by_own_claim(ledger, claims, ledger.load()) if this_try.may_find_a_record else None
        action = decide(record, request, files, utcnow(), this_try)
        if isinstance(action, ReturnExisting):
            self.log.info(
                "An earlier try already posted message %d to order %s; not posting it again",
                action.message_id,
                request.order,
            )
            return action.message_id
        if isinstance(action, LookFirst):
            found = self._look_first(hook, ledger, claims, action)
            if found is not None:
                return found
            action = Post(record_to_send(action.record, request, files, utcnow()))
        message_id, confirmed = self._post(hook, ledger, action, request, attachments)
        # The claim names the POST (its record's last_sent_at): it is the outcome's record unless it failed.
        if claims is None or self._claim(claims, request.order, message_id, sent=action.record) != claims.me:
            ledger.update(confirmed)
        return message_id

    def _this_try(self, context: Context, ledger: PostLedger, *, waited: bool) -> ThisTry:
        """The facts about this try that the exactly-once decision needs, read from the task's context."""
        return this_try_of(
            context,
            deduplicate=self.deduplicate,
            has_state_store=ledger.available,
            lost_answer_wait=self.lost_answer_wait,
            waited=waited,
        )

    def _look_first(self, hook: SppHook, ledger: PostLedger, claims: ClaimBook | None, look: LookFirst) -> int | None:
        """Wait for SPP to finish an earlier try's request, then look for its message; its ID if found."""
        if look.save_first and look.record is not None:
            ledger.save(look.record)
        if look.wait_until is not None:
            self._wait_for_spp(look.wait_until)
        earlier = self._find_unclaimed(hook, claims, look)
        if earlier is None:
            return None
        if look.record is not None:
            ledger.update(look.record.confirmed(earlier.id))
        self.log.info(
            "Found message %d on order %s, posted by an earlier try whose answer was lost; not posting it again",
            earlier.id,
            look.order,
        )
        return earlier.id

    def _find_unclaimed(self, hook: SppHook, claims: ClaimBook | None, look: LookFirst) -> MessageResource | None:
        """The newest message that looks like the earlier try's and no other task instance took; now this one's."""
        wanted = look.wanted.excluding(_claimed_by_others(claims, look.order))
        for _ in range(2):
            found = hook.find_order_message_where(look.order, wanted, created_since=look.since)
            if found is None or claims is None:
                return found
            holder = self._claim(claims, look.order, found.id)
            if holder in (None, claims.me):
                return found
            self.log.info("Message %d on order %s is %s's, not this task's", found.id, look.order, holder)
            wanted = wanted.excluding({found.id})
        return None

    def _claim(self, claims: ClaimBook, order: str, message_id: int, *, sent: PostRecord | None = None) -> str | None:
        """Claim a message for this task instance (``sent``: SPP created it for this POST); who holds it now."""
        try:
            if sent is not None:
                return claims.record(order, message_id, utcnow(), sent.last_sent_at)
            return claims.claim(order, message_id, utcnow())
        except Exception as err:
            self.log.warning(
                "Could not record message %d as this task's in the Variable %s (%s: %s); a sibling task instance "
                "retrying a lost post of the same text could take it for its own",
                message_id,
                claims_key(order),
                type(err).__name__,
                err,
            )
            return None

    def _post(
        self, hook: SppHook, ledger: PostLedger, post: Post, request: OrderMessageRequest, attachments: list[Attachment]
    ) -> tuple[int, PostRecord]:
        """Save the record, POST, record a failure's outcome; the new message's ID and the record confirming it."""
        self._say_why_posting_anew(post, request)
        ledger.save(post.record)
        clock_before = hook.server_time
        try:
            created = hook.create_order_message(
                request.order, request.message, attachments=attachments, **request.sender()
            )
        except (SppTransportError, SppApiError, SppAttachmentUnavailableError) as err:
            if err.outcome_unknown:
                self.log.warning(
                    "SPP may have created the message although its answer was lost (%s); "
                    "a retry will look for it before posting",
                    err,
                )
            ledger.update(after_post(post.record, err, utcnow(), _new_clock(hook, clock_before)))
            raise
        return created.id, after_post(post.record, created.id, utcnow(), _new_clock(hook, clock_before))

    def _say_why_posting_anew(self, post: Post, request: OrderMessageRequest) -> None:
        """Log why an earlier try's record does not stop this post, where that is worth saying."""
        if post.superseded is None:
            return
        earlier, why = post.superseded
        if why is Superseded.OTHER_TARGET:
            self.log.warning(
                "This try posts to order %s as a different post (order, sender, visibility or files changed) "
                "from an earlier try whose answer was lost; that earlier message may exist on order %s",
                request.order,
                earlier.order,
            )
        else:
            self.log.info("The message differs from the one this task posted before; posting the new one")

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


def this_try_of(
    context: Any, *, deduplicate: bool, has_state_store: bool, lost_answer_wait: float, waited: bool = False
) -> ThisTry:
    """The facts about this try that an exactly-once decision needs: its number and when the run started."""
    ti = context.get("ti") if hasattr(context, "get") else None
    try_number = (getattr(ti, "try_number", 1) or 1) if ti is not None else 1
    dag_run = context.get("dag_run") if ti is not None else None
    started = getattr(dag_run, "start_date", None) or getattr(ti, "start_date", None)
    return ThisTry(
        deduplicate=deduplicate,
        has_state_store=has_state_store,
        try_number=try_number,
        run_started=started if isinstance(started, datetime) else None,
        lost_answer_wait=lost_answer_wait,
        resumed_after_wait=waited,
    )


def _claim_book(context: Any) -> ClaimBook | None:
    """This task instance's claims on messages, in Airflow Variables (the Task SDK's); None outside a task."""
    me = claimer_of(context)
    if me is None:
        return None
    from airflow.sdk import Variable

    return ClaimBook(
        me,
        lambda key: Variable.get(key, default=None, deserialize_json=True),
        lambda key, value: Variable.set(key, value, description=DESCRIPTION, serialize_json=True),
    )


def _confirmed_by_own_claim(
    ledger: PostLedger, claims: ClaimBook | None, record: PostRecord | None
) -> PostRecord | None:
    """The record, confirmed (and saved so) when this task instance's claim names its last POST's message.

    A successful POST leaves its record in flight and says the outcome in the claim only; a claim that
    cannot be read leaves the record as it is (the look-up that follows reads the claims again, or fails).
    """
    if record is None or claims is None or not record.in_flight or record.message_id is not None:
        return record
    try:
        message_id = claims.load(record.order).posted_by(claims.me, record.last_sent_at)
    except Exception:
        return record
    if message_id is None:
        return record
    confirmed = record.confirmed(message_id)
    ledger.update(confirmed)
    return confirmed


def _claimed_by_others(claims: ClaimBook | None, order: str) -> frozenset[int]:
    """The messages of an order that other task instances claimed; a failure to read fails the try (retried)."""
    if claims is None:
        return frozenset()
    try:
        return claims.load(order).held_by_others(claims.me)
    except Exception as err:
        raise SppStateStoreError(
            f"Could not read which messages other task instances claimed ({type(err).__name__}: {err}); not "
            "looking for this task's message without knowing. The task will be retried."
        ) from None


def _new_clock(hook: SppHook, before: datetime | None) -> datetime | None:
    """SPP's clock from the answer to the request just made, or None when that answer brought no ``Date``."""
    after = hook.server_time
    return after if after is not before else None


def _report_lineage(hook: SppHook, order: str, attachments: Any) -> None:
    """Report the attachment files as read and the order as written to Airflow's hook lineage collector."""
    from airflow_provider_spp._internal.lineage import report_message_lineage

    report_message_lineage(hook, _workspace_url(hook), order, attachments)


def _workspace_url(hook: SppHook) -> str | None:
    """The connection's workspace URL, or None when the connection is unusable (the post's error says why)."""
    try:
        return hook.settings.base_url
    except Exception:
        return None
