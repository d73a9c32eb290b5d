"""SppOrderActivityTrigger reads SPP's listings as they really come: pages that shift under a write, a sort or
filter the server ignores or rejects, integer statuses, messages the service wrote itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
from structlog.testing import capture_logs

from airflow_provider_spp._internal.activity_cursor import ActivityCursor
from airflow_provider_spp.hooks.spp import SppAsyncHook
from airflow_provider_spp.sandbox import SandboxServer
from airflow_provider_spp.sandbox.store import SandboxStore
from airflow_provider_spp.triggers.order_activity import SppOrderActivityTrigger

pytestmark = pytest.mark.integration


class Clock:
    """SPP's clock, moved by the test: every write lands on a second of its own."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def spp(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    with SandboxServer(store=SandboxStore(clock=clock)) as server:
        monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", server.connection_json(timeout=2, retry_backoff=0.01))
        yield server


def poll(trigger: SppOrderActivityTrigger, cursor: ActivityCursor | None) -> tuple[list[int], ActivityCursor]:
    """One poll on a fresh hook: the events' message IDs and the cursor after them."""

    async def once() -> Any:
        async with SppAsyncHook() as hook:
            return await trigger.poll(hook, cursor)

    result = asyncio.run(once())
    return [event[0] for event in result.events], result.cursor


def client_posts(spp: SandboxServer, clock: Clock, *orders: str | int) -> list[int]:
    """One client message on each order, a second apart; their IDs."""
    written = []
    for order in orders:
        clock.tick()
        written.append(spp.post_as_client(order, f"client message on {order}").id)
    return written


def test_an_order_sliding_onto_the_next_page_is_not_read_twice(spp: SandboxServer, clock: Clock) -> None:
    spp.store.max_per_page = 2
    trigger = SppOrderActivityTrigger()
    _, cursor = poll(trigger, None)
    on_1001, *others = client_posts(spp, clock, 1001, 1002, 1003, 1004)  # newest first: 1004 1003 | 1002 1001
    clock.tick()
    # After page 1 is served, the client writes on 1001 (page 2): it jumps to the top, 1003 slides to page 2.
    spp.after_page("orders", 1001, page=1)
    first, cursor = poll(trigger, cursor)
    assert len(first) == len(set(first)), f"one message, two events: {first}"
    assert sorted(first) == sorted(others)
    shifted = spp.messages(1001)[-1].id
    second, cursor = poll(trigger, cursor)
    assert second == [on_1001, shifted]  # what the shift hid is caught by the next poll
    assert poll(trigger, cursor)[0] == []


def test_a_message_arriving_mid_listing_does_not_repeat_one_of_the_order(spp: SandboxServer, clock: Clock) -> None:
    spp.store.max_per_page = 2
    trigger = SppOrderActivityTrigger()
    _, cursor = poll(trigger, None)
    written = client_posts(spp, clock, 1001, 1001, 1001)  # more than a page of new messages
    clock.tick()
    spp.after_page("order_messages", page=1, listed_order=1001)  # another arrives between page 1 and 2
    first, cursor = poll(trigger, cursor)
    assert first == written, f"expected each message once: {first}"
    second, _ = poll(trigger, cursor)
    assert second == [spp.messages(1001)[-1].id]


def test_orders_unsorted_by_the_server_are_read_to_the_end(spp: SandboxServer, clock: Clock) -> None:
    spp.store.add_orders(150, last_message_at=clock.now - timedelta(days=3))
    spp.configure(ignore_filters_and_sort=True)  # no Purity: orders come oldest first, all of them
    trigger = SppOrderActivityTrigger()
    _, cursor = poll(trigger, None)
    last_order = spp.store.orders()[-1]["number"]
    written = client_posts(spp, clock, last_order)  # on page 2
    events, cursor = poll(trigger, cursor)
    assert events == written


def test_messages_listed_oldest_first_are_read_to_the_end(spp: SandboxServer, clock: Clock) -> None:
    clock.tick(-3600)
    spp.store.create_message(order_id=1001, message="an old staff note", user_id=3)  # older than the horizon
    clock.tick(3600)
    spp.configure(ignore_filters_and_sort=True)  # messages too come oldest first
    trigger = SppOrderActivityTrigger()
    _, cursor = poll(trigger, None)
    written = client_posts(spp, clock, 1001, 1001)
    events, _ = poll(trigger, cursor)
    assert events == written


@pytest.mark.parametrize("status", [400, 422])
def test_a_rejected_sort_falls_back_to_a_plain_listing_with_one_warning(
    spp: SandboxServer, clock: Clock, status: int
) -> None:
    spp.configure(rejected_sorts=("last_message_at",), query_error_status=status)
    trigger = SppOrderActivityTrigger()
    with capture_logs() as entries:
        _, cursor = poll(trigger, None)
        written = client_posts(spp, clock, 1004, 1001)
        first, cursor = poll(trigger, cursor)
        written += client_posts(spp, clock, 1002)
        second, _ = poll(trigger, cursor)
    assert first + second == written
    warnings = [e for e in entries if "sort" in str(e.get("event")) and e.get("log_level") == "warning"]
    assert len(warnings) == 1, entries


def test_a_sort_answered_with_500_is_read_plain_meanwhile_and_dropped_once_the_500_repeats(
    spp: SandboxServer, clock: Clock
) -> None:
    # A stock Laravel app answers an unknown sort column with a QueryException: 500, not 400/422.
    spp.configure(rejected_sorts=("last_message_at",), query_error_status=500)
    trigger = SppOrderActivityTrigger()
    events: list[int] = []
    written: list[int] = []
    with capture_logs() as entries:
        _, cursor = poll(trigger, None)  # the baseline meets the first 500
        for order in (1004, 1001, 1002):
            written += client_posts(spp, clock, order)
            spp.store.clear_requests()
            got, cursor = poll(trigger, cursor)
            events += got
    assert events == written
    sorted_asks = [r for r in spp.requests() if r["path"] == "/api/orders" and "sort=" in r["query"]]
    assert sorted_asks == []  # the last poll no longer asks for the sort
    warnings = [e for e in entries if "sort" in str(e.get("event")) and e.get("log_level") == "warning"]
    assert len(warnings) == 1, entries
    assert "500" in str(warnings[0]), warnings


def test_orders_are_asked_only_since_the_horizon_and_read_as_if_the_filter_were_ignored(
    spp: SandboxServer, clock: Clock
) -> None:
    spp.store.add_orders(300, last_message_at=clock.now - timedelta(days=3))
    trigger = SppOrderActivityTrigger()
    _, cursor = poll(trigger, None)
    spp.store.clear_requests()
    written = client_posts(spp, clock, 1001)
    horizon = (cursor.polled_at - timedelta(seconds=trigger.lookback)).replace(microsecond=0)
    events, cursor = poll(trigger, cursor)
    assert events == written
    listing = [r for r in spp.requests() if r["path"] == "/api/orders"]
    assert len(listing) == 1
    query = dict(parse_qsl(listing[0]["query"]))
    assert query.get("filters[last_message_at][$gte]") == horizon.strftime("%Y-%m-%d %H:%M:%S"), query
    assert query.get("sort") == "last_message_at:desc"
    spp.configure(ignore_filters_and_sort=True)
    written = client_posts(spp, clock, spp.store.orders()[-1]["number"])
    assert poll(trigger, cursor)[0] == written


def test_statuses_are_integer_codes_or_labels_as_the_workspace_sends_them(spp: SandboxServer, clock: Clock) -> None:
    spp.configure(status_style="code")  # 1001 and 1004 are Working: code 2
    triggers = [SppOrderActivityTrigger(statuses=s) for s in (2, "2", [2, 5], "Working")]
    cursors = [poll(t, None)[1] for t in triggers]
    written = client_posts(spp, clock, 1001, 1002, 1004)
    got = [poll(t, c)[0] for t, c in zip(triggers, cursors, strict=True)]
    assert got[:3] == [[written[0], written[2]]] * 3
    assert got[3] == []  # a label never matches a code: the workspace's map is its own


def test_from_client_ignores_messages_the_service_wrote_and_the_payload_says_via(
    spp: SandboxServer, clock: Clock
) -> None:
    trigger = SppOrderActivityTrigger(from_client=True)
    _, cursor = poll(trigger, None)
    clock.tick()
    spp.post_auto_generated(1001)  # "Order status changed to ...", authored by the client's user
    clock.tick()
    email = spp.post_as_client(1004, "answered by email", via="email")

    async def once() -> Any:
        async with SppAsyncHook() as hook:
            return await trigger.poll(hook, cursor)

    result = asyncio.run(once())
    assert [(e[2]["message_id"], e[2]["via"]) for e in result.events] == [(email.id, "email")]
