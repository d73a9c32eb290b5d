"""SppHook reading over HTTP: listings across pages, look-ups, deletes and orders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from structlog.testing import capture_logs

from airflow_provider_spp.exceptions import (
    SppNotFoundError,
    SppUnexpectedResponseError,
)
from airflow_provider_spp.models import MessageResource, Order
from airflow_provider_spp.sandbox import SandboxServer
from tests.integration.hook.wire import (
    ORDER,
    ORDER_ID,
    HookFactory,
    logged,
)

pytestmark = pytest.mark.integration


# -- listing and finding -----------------------------------------------------------------------------------


def test_list_order_messages_follows_next_links_newest_first(
    spp_sandbox: SandboxServer, make_hook: HookFactory
) -> None:
    created = [spp_sandbox.store.create_message(order_id=ORDER_ID, message=f"message {i}") for i in range(25)]
    spp_sandbox.store.create_message(order_id=1002, message="another order")

    messages = list(make_hook().list_order_messages(ORDER, per_page=10))

    assert [m.id for m in messages] == [m.id for m in reversed(created)]
    assert [m.message for m in messages] == [f"message {i}" for i in reversed(range(25))]
    gets = logged(spp_sandbox)
    assert [(r["method"], r["path"]) for r in gets] == [("GET", f"/api/order_messages/{ORDER}")] * 3
    assert [r["query"] for r in gets] == ["limit=10", "limit=10&page=2", "limit=10&page=3"]
    assert all(r["status"] == 200 for r in gets)


def test_a_next_link_to_another_origin_is_refused(
    spp_sandbox: SandboxServer, spp_sandbox_other_host: SandboxServer, make_hook: HookFactory
) -> None:
    for i in range(3):
        spp_sandbox.store.create_message(order_id=ORDER_ID, message=f"m{i}")
    hook = make_hook()
    # The sandbox builds its paginator links from the Host header: make it point them at the other server.
    hook.get_conn().headers["Host"] = urlsplit(spp_sandbox_other_host.url).netloc

    pages = hook.list_order_messages(ORDER, per_page=2)
    first_page = [next(pages).id, next(pages).id]
    with pytest.raises(SppUnexpectedResponseError, match="points away from") as caught:
        next(pages)

    assert first_page == [3, 2]
    assert caught.value.status_code == 200
    (request,) = logged(spp_sandbox)
    assert caught.value.request_id == request["api_identifier"]
    assert logged(spp_sandbox_other_host) == []


def test_find_order_message(spp_sandbox: SandboxServer, make_hook: HookFactory) -> None:
    hook = make_hook()
    since = datetime.now(UTC) - timedelta(seconds=5)
    target = hook.create_order_message(ORDER, "Deploy done\nall green", user_id=3, staff_only=True)
    hook.create_order_message(ORDER, "Something else", user_id=3, staff_only=True)
    hook.create_order_message(1002, "Deploy done\nall green", user_id=3, staff_only=True)  # another order
    assert target.created_at is not None
    spp_sandbox.store.clear_requests()

    def find(text: str = "  Deploy done\r\nall green \n", **kwargs: Any) -> MessageResource | None:
        return hook.find_order_message(ORDER, text, **{"created_since": since, **kwargs})

    found = find()
    assert found is not None
    assert found.id == target.id
    assert find(user_id=3).id == target.id  # type: ignore[union-attr]
    assert find(user_id="3", staff_only=True).id == target.id  # type: ignore[union-attr]
    assert find(user_id=2) is None
    assert find(staff_only=False) is None
    assert find("Deploy done all green") is None
    assert find(created_since=target.created_at + timedelta(seconds=1)) is None
    assert find(created_since=datetime.now(UTC) + timedelta(hours=1)) is None
    assert find(created_since=since.replace(tzinfo=None)).id == target.id  # type: ignore[union-attr]  # naive = UTC
    assert find(created_since=(since + timedelta(hours=1)).replace(tzinfo=None)) is None

    seen = logged(spp_sandbox)
    assert seen
    assert {(r["method"], r["path"]) for r in seen} == {("GET", f"/api/order_messages/{ORDER}")}
    assert len(spp_sandbox.messages()) == 3


def test_find_order_message_stops_at_the_first_older_message(
    spp_sandbox: SandboxServer, make_hook: HookFactory
) -> None:
    for i in range(120):  # two pages of 100
        spp_sandbox.store.create_message(order_id=ORDER_ID, message=f"old {i}")
    hook = make_hook()

    assert hook.find_order_message(ORDER, "old 0", created_since=datetime.now(UTC) + timedelta(minutes=1)) is None
    assert [r["query"] for r in logged(spp_sandbox)] == ["limit=100"]  # no second page fetched

    spp_sandbox.store.clear_requests()
    found = hook.find_order_message(ORDER, "old 0", created_since=datetime.now(UTC) - timedelta(minutes=1))
    assert found is not None
    assert found.id == 1
    assert [r["query"] for r in logged(spp_sandbox)] == ["limit=100", "limit=100&page=2"]


def test_delete_order_message_then_404(spp_sandbox: SandboxServer, make_hook: HookFactory) -> None:
    hook = make_hook()
    keep = hook.create_order_message(ORDER, "keep me")
    doomed = hook.create_order_message(ORDER, "delete me")

    hook.delete_order_message(doomed.id)
    assert [m.id for m in spp_sandbox.messages()] == [keep.id]

    with pytest.raises(SppNotFoundError) as caught:
        hook.delete_order_message(doomed.id)
    assert caught.value.status_code == 404
    deletes = logged(spp_sandbox, "DELETE")
    assert [(r["path"], r["status"]) for r in deletes] == [
        (f"/api/order_messages/{doomed.id}", 204),
        (f"/api/order_messages/{doomed.id}", 404),
    ]
    assert caught.value.request_id == deletes[1]["api_identifier"]
    assert [m.id for m in spp_sandbox.messages()] == [keep.id]


@pytest.mark.parametrize("fault", ["drop_after", "gateway_timeout", "slow"])
def test_a_delete_retried_after_a_lost_answer_that_then_gets_404_has_succeeded(
    spp_sandbox: SandboxServer, make_hook: HookFactory, fault: str
) -> None:
    """SPP deleted the message but its answer was lost; the retry's 404 means it is gone, as asked."""
    hook = make_hook(timeout=0.5)
    keep = hook.create_order_message(ORDER, "keep me")
    doomed = hook.create_order_message(ORDER, "delete me")
    spp_sandbox.add_fault(fault, method="DELETE", delay=1.0)

    with capture_logs() as entries:
        assert hook.delete_order_message(doomed.id) is None

    deletes = logged(spp_sandbox, "DELETE")
    assert [r["path"] for r in deletes] == [f"/api/order_messages/{doomed.id}"] * 2
    assert deletes[1]["status"] == 404
    assert [m.id for m in spp_sandbox.messages()] == [keep.id]
    assert any(f"message {doomed.id} is gone (404) after a try whose answer was lost" in e["event"] for e in entries)
    with pytest.raises(SppNotFoundError):  # without a lost answer first, a 404 is still an error
        hook.delete_order_message(doomed.id)


def test_get_order_by_number_and_id(spp_sandbox: SandboxServer, make_hook: HookFactory) -> None:
    hook = make_hook()
    by_number = hook.get_order(ORDER)
    by_id = hook.get_order(1003)
    lower = hook.get_order("e4a269fc")

    assert isinstance(by_number, Order)
    assert (by_number.id, by_number.number, by_number.status) == (1001, ORDER, "Working")
    assert (by_id.id, by_id.number, by_id.status) == (1003, "9F8E7D6C", "Complete")
    assert lower.id == 1001
    assert by_number.client is not None
    assert by_number.client.id == 2
    assert [r["path"] for r in logged(spp_sandbox, "GET")] == [
        f"/api/orders/{ORDER}",
        "/api/orders/1003",
        "/api/orders/e4a269fc",
    ]
    with pytest.raises(SppNotFoundError):
        hook.get_order("NOPE1234")


def test_list_orders_with_and_without_status_filter(spp_sandbox: SandboxServer, make_hook: HookFactory) -> None:
    hook = make_hook()
    working = list(hook.list_orders(status="Working"))
    everything = list(hook.list_orders(per_page=3))
    oldest_first = list(hook.list_orders(sort="created_at:asc"))

    assert [(o.id, o.status) for o in working] == [(1004, "Working"), (1001, "Working")]
    assert [o.id for o in everything] == [1004, 1003, 1002, 1001]
    assert [o.id for o in oldest_first] == [1004, 1001, 1002, 1003]
    queries = [r["query"] for r in logged(spp_sandbox)]
    assert "filters%5Bstatus%5D%5B%24eq%5D=Working" in queries[0]
    assert "filters" not in queries[1]
    assert len(queries) == 4  # one page of "Working", two pages of three, one sorted page


def test_a_filtered_sorted_listing_keeps_its_query_on_every_page(
    spp_sandbox: SandboxServer, make_hook: HookFactory
) -> None:
    """Laravel's next links carry only ?page=N: pages 2.. must still be filtered and sorted as page 1."""
    for n in range(8):  # interleave: every other new order is Working
        spp_sandbox.store.add_order(f"NEW0000{n}", "Working" if n % 2 else "Complete")
    working = sorted(o["id"] for o in spp_sandbox.store.orders() if o["status"] == "Working")
    assert len(working) == 6  # three pages of two

    orders = list(make_hook().list_orders(status="Working", sort="id:asc", per_page=2))

    assert [(o.id, o.status) for o in orders] == [(order_id, "Working") for order_id in working]
    queries = [r["query"] for r in logged(spp_sandbox, "GET")]
    assert len(queries) == 3
    for page, query in enumerate(queries, start=1):
        params = dict(parse_qsl(query))
        assert params.pop("page", "1") == str(page)
        assert params == {"limit": "2", "sort": "id:asc", "filters[status][$eq]": "Working"}


def test_a_server_capped_page_size_is_followed_with_the_same_query(
    spp_sandbox: SandboxServer, make_hook: HookFactory
) -> None:
    """SPP's maximum ``limit`` "varies by endpoint": smaller pages than asked still keep filter and sort."""
    for n in range(5):
        spp_sandbox.store.add_order(f"CAP0000{n}", "Complete" if n % 2 else "Working")
    spp_sandbox.store.max_per_page = 1

    orders = list(make_hook().list_orders(status="complete", sort="id:desc", per_page=50))

    assert [o.number for o in orders] == ["CAP00003", "CAP00001", "9F8E7D6C"]
    assert {o.status for o in orders} == {"Complete"}
    assert [dict(parse_qsl(r["query"])).get("page", "1") for r in logged(spp_sandbox, "GET")] == ["1", "2", "3"]


def test_next_links_that_carry_the_query_or_are_relative_are_followed(
    spp_sandbox: SandboxServer, make_hook: HookFactory
) -> None:
    """withQueryString() links (the query repeated) and relative links name the same pages."""
    for i in range(5):
        spp_sandbox.store.create_message(order_id=ORDER_ID, message=f"m{i}")
    hook = make_hook()
    for style in ("with_query", "relative"):
        spp_sandbox.store.clear_requests()
        spp_sandbox.store.link_style = style
        assert [m.message for m in hook.list_order_messages(ORDER, per_page=2)] == ["m4", "m3", "m2", "m1", "m0"]
        assert [r["query"] for r in logged(spp_sandbox, "GET")] == ["limit=2", "limit=2&page=2", "limit=2&page=3"]
