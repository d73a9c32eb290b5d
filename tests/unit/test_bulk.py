"""The bulk post's pure parts: its input, each order's decision, the chunked record, the sending plan."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_spp._internal.bulk_ledger import BULK_KEY, ORDERS_PER_CHUNK, BulkLedger, packed, unpacked
from airflow_provider_spp._internal.bulk_plan import BulkResult, bulk_requests, decide_each
from airflow_provider_spp._internal.bulk_sending import BulkSending, checked_concurrency
from airflow_provider_spp._internal.client import order_message_request
from airflow_provider_spp._internal.connection import SppConnectionSettings
from airflow_provider_spp._internal.exactly_once import LookFirst, Post, ThisTry, after_post
from airflow_provider_spp._internal.ledger import PostRecord
from airflow_provider_spp.exceptions import SppInputError, SppNotFoundError, SppRateLimitError, SppServerError
from airflow_provider_spp.models import MessageResource

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
RETRY = ThisTry(deduplicate=True, has_state_store=True, try_number=2, run_started=NOW, lost_answer_wait=30)


class Store:
    """A task state store in memory that counts its round trips."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.calls = 0

    def get(self, key: str) -> Any:
        self.calls += 1
        return self.values.get(key)

    def set(self, key: str, value: Any) -> None:
        self.calls += 1
        self.values[key] = value


def test_requests_render_per_item_keep_given_messages_and_skip_repeated_orders() -> None:
    items = ["A1", {"order": "A2", "name": "Dana"}, {"order": "A3", "message": "{{ not rendered }}"}, "A1"]

    requests, repeated = bulk_requests(items, lambda item: f"for {item}", user_id="7", staff_only="true")

    assert [(r.order, r.message) for r in requests] == [
        ("A1", "for A1"),
        ("A2", "for {'order': 'A2', 'name': 'Dana'}"),
        ("A3", "{{ not rendered }}"),
    ]
    assert repeated == 1
    assert {(r.user_id, r.staff_only) for r in requests} == {(7, True)}


def test_every_bad_item_is_named_by_position_without_its_text() -> None:
    with pytest.raises(SppInputError) as caught:
        bulk_requests(["A1", "", {"order": "A3", "message": " "}], lambda item: "secret client text")
    assert "item 1: order" in str(caught.value)
    assert "item 2: message" in str(caught.value)
    assert "secret" not in str(caught.value)
    with pytest.raises(SppInputError):
        bulk_requests("A1,A2", str)


def test_each_order_is_decided_on_its_own_record() -> None:
    done, lost, fresh = (order_message_request(o, f"text {o}") for o in ("A1", "A2", "A3"))
    records = {
        "A1": PostRecord.for_request(done, (), NOW).confirmed(11),
        "A2": PostRecord.for_request(lost, (), NOW),  # in flight: its worker died
    }

    decisions = decide_each(records, [done, lost, fresh], NOW + timedelta(seconds=5), RETRY)

    assert decisions.existing == {"A1": 11}
    ((looked, look),) = decisions.looks
    assert looked is lost
    assert isinstance(look, LookFirst)
    assert look.save_first
    ((posted, post),) = decisions.posts
    assert posted is fresh
    assert isinstance(post, Post)


def test_records_survive_their_packed_form() -> None:
    request = order_message_request("A1", "hello", user_id=3, staff_only=False)
    record = after_post(PostRecord.for_request(request, (), NOW), SppServerError("500", status_code=500), NOW, NOW)
    assert unpacked("A1", packed(record)) == record
    assert unpacked("A1", ["bad"]) is None


def test_the_ledger_writes_only_changed_chunks_and_reads_them_all_back() -> None:
    store = Store()
    ledger = BulkLedger({"task_state_store": store})
    requests = [order_message_request(f"O{n}", f"text {n}") for n in range(250)]
    ledger.put(PostRecord.for_request(r, (), NOW) for r in requests)
    ledger.save()
    assert sorted(store.values) == [f"{BULK_KEY}.{n}" for n in range(3)]
    assert len(store.values[f"{BULK_KEY}.0"]["orders"]) == ORDERS_PER_CHUNK
    writes = store.calls
    ledger.put([PostRecord.for_request(requests[120], (), NOW).confirmed(5)])
    ledger.checkpoint(force=True)
    assert store.calls == writes + 1, "one changed order rewrites one chunk"

    store.calls = 0
    loaded = BulkLedger({"task_state_store": store}).load()
    assert len(loaded) == 250
    assert loaded["O120"].message_id == 5
    assert store.calls == 4, "three chunks and the probe that finds no fourth"


def test_without_a_task_state_store_the_ledger_keeps_nothing() -> None:
    ledger = BulkLedger({})
    ledger.put([PostRecord.for_request(order_message_request("A1", "x"), (), NOW)])
    ledger.save()
    assert not ledger.available
    assert ledger.load() == {}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _plan(count: int, **kwargs: Any) -> tuple[BulkSending, Clock]:
    clock = Clock()
    settings = SppConnectionSettings(base_url="https://acme.wayfront.com", token="t")
    requests = [order_message_request(f"O{n}", "x") for n in range(count)]
    return BulkSending(requests, settings, logging.getLogger("test"), clock=clock, **kwargs), clock


def _message(n: int) -> MessageResource:
    return MessageResource(id=n)


def test_a_429_pauses_every_post_and_halves_how_many_go_at_once() -> None:
    plan, clock = _plan(10, concurrency=4)
    tickets = [plan.next_due()[0] for _ in range(4)]
    assert plan.next_due() == (None, 0.5)  # four in flight

    assert plan.settle(tickets[0], SppRateLimitError("429", status_code=429, retry_after=2), None) is None
    assert plan.settle(tickets[1], _message(1), None) is not None
    ticket, wait = plan.next_due()
    assert ticket is None
    assert wait == 0.5  # two still in flight, and only two allowed now
    plan.settle(tickets[2], _message(2), None)
    plan.settle(tickets[3], _message(3), None)
    assert plan.next_due()[0] is None, "nothing goes out during the pause"
    clock.now += 2
    assert plan.next_due()[0] is tickets[0], "the rate-limited post goes first after the pause"
    assert plan.rate_limited == 1


def test_an_unknown_outcome_is_final_a_404_too_and_groups_are_announced_once() -> None:
    plan, _ = _plan(150, concurrency=2, group_size=100)
    first = plan.next_due()[0]
    assert first is not None
    assert len(plan.announce(first)) == 100
    assert plan.announce(first) == []
    sent = plan.settle(first, SppServerError("502", status_code=502), None)
    assert sent is not None
    assert sent.error is not None
    assert sent.error.outcome_unknown
    second = plan.next_due()[0]
    assert second is not None
    assert plan.settle(second, SppNotFoundError("404", status_code=404), None) is not None
    result = BulkResult()
    result.failed_with("O1", SppNotFoundError("404", status_code=404))
    assert result.permanent_only
    result.failed_with("O0", SppServerError("502", status_code=502))
    assert not result.permanent_only
    assert "a retry looks for it" in result.as_xcom()["failed"]["O0"]


@pytest.mark.parametrize("value", [0, 9, True, "4", 2.0])
def test_concurrency_is_a_whole_number_from_1_to_8(value: Any) -> None:
    with pytest.raises(SppInputError):
        checked_concurrency(value)
