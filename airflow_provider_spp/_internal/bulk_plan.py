"""A bulk post without I/O: the posts a list of orders asks for, each order's exactly-once decision, the result.

Each order is decided by the single post's rule (:func:`airflow_provider_spp._internal.exactly_once.decide`)
on its own record: an earlier try's confirmed message is returned, a POST that may have landed is looked
for first, anything else is posted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_spp._internal.client import order_message_request
from airflow_provider_spp._internal.exactly_once import LookFirst, Post, ReturnExisting, ThisTry, decide
from airflow_provider_spp.exceptions import SppError, SppInputError

if TYPE_CHECKING:
    from airflow_provider_spp._internal.ledger import PostRecord
    from airflow_provider_spp.models import OrderMessageRequest

#: Longest failure reason kept per order in the result.
REASON_LENGTH = 300
#: Problems named in an input error, at most.
PROBLEMS_SHOWN = 10


def order_of(item: Any) -> Any:
    """The order an item of ``orders`` names: the item itself, or its ``"order"`` key."""
    return item.get("order") if isinstance(item, Mapping) else item


def bulk_requests(
    orders: Any, render: Callable[[Any], str], *, user_id: Any = None, staff_only: Any = None
) -> tuple[list[OrderMessageRequest], int]:
    """One validated post per distinct order, in list order, and how many repeated orders were left out.

    An item that is a mapping with a ``"message"`` is posted with that text as it is; otherwise
    ``render(item)`` gives the text. Every problem is reported at once (SppInputError), by position only.
    """
    if isinstance(orders, str | bytes | Mapping) or not isinstance(orders, Sequence):
        raise SppInputError(
            f"orders must be a list of orders or of {{'order': ...}} items, got {type(orders).__name__}"
        )
    requests: dict[str, OrderMessageRequest] = {}
    problems: list[str] = []
    repeated = 0
    for index, item in enumerate(orders):
        try:
            text = item["message"] if isinstance(item, Mapping) and "message" in item else render(item)
            request = order_message_request(order_of(item), text, user_id=user_id, staff_only=staff_only)
        except SppInputError as err:
            problems.append(f"item {index}: {str(err).removeprefix('Invalid SPP order message: ')}")
            continue
        if request.order in requests:
            repeated += 1
        else:
            requests[request.order] = request
    if problems:
        more = f" (and {len(problems) - PROBLEMS_SHOWN} more)" if len(problems) > PROBLEMS_SHOWN else ""
        raise SppInputError("Invalid orders to post to: " + "; ".join(problems[:PROBLEMS_SHOWN]) + more)
    return list(requests.values()), repeated


@dataclass
class BulkDecisions:
    """Each order's decision: already posted (its ID), look for an earlier try's message first, or post."""

    existing: dict[str, int] = field(default_factory=dict)
    looks: list[tuple[OrderMessageRequest, LookFirst]] = field(default_factory=list)
    posts: list[tuple[OrderMessageRequest, Post]] = field(default_factory=list)


def decide_each(
    records: Mapping[str, PostRecord], requests: Sequence[OrderMessageRequest], now: datetime, this_try: ThisTry
) -> BulkDecisions:
    """The single post's decision for every order, on that order's record."""
    decisions = BulkDecisions()
    for request in requests:
        action = decide(records.get(request.order), request, (), now, this_try)
        if isinstance(action, ReturnExisting):
            decisions.existing[request.order] = action.message_id
        elif isinstance(action, LookFirst):
            decisions.looks.append((request, action))
        else:
            decisions.posts.append((request, action))
    return decisions


def failure_reason(err: SppError) -> str:
    """Why an order's post failed, for the result: the error's class and text (never the message text)."""
    reason = f"{type(err).__name__}: {err}"
    if err.outcome_unknown:
        reason += " (SPP may have stored it: a retry looks for it before posting)"
    return reason[:REASON_LENGTH]


@dataclass
class BulkResult:
    """What the bulk post left: each order's message ID, and the orders that failed and why."""

    message_ids: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    #: Whether every failure is permanent (retrying cannot help).
    permanent_only: bool = True

    def posted(self, order: str, message_id: int) -> None:
        """An order has its message."""
        self.message_ids[order] = message_id
        self.failed.pop(order, None)

    def failed_with(self, order: str, err: SppError) -> None:
        """An order's post failed."""
        self.failed[order] = failure_reason(err)
        self.permanent_only = self.permanent_only and err.permanent

    def as_xcom(self) -> dict[str, Any]:
        """``{"message_ids": {order: id}, "failed": {order: reason}}``: JSON, no client text, no token."""
        return {"message_ids": dict(self.message_ids), "failed": dict(self.failed)}

    def summary(self) -> str:
        """One line for the log and the failure."""
        shown = "; ".join(f"{order}: {why}" for order, why in list(self.failed.items())[:3])
        return f"{len(self.message_ids)} orders have their message, {len(self.failed)} failed" + (
            f" ({shown}{'; ...' if len(self.failed) > 3 else ''})" if self.failed else ""
        )
