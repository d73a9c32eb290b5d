"""Listings as a Wayfront workspace answers them: Purity filters and sorts, strict or ignored, a rejected sort,
oldest-first listings, and writes that land between two page requests (the page shift). Plain HTTP only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_spp.sandbox import SandboxServer, SandboxStore
from tests.support.sandbox_http import ORDER, admin, api, listed

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MESSAGES = f"/api/order_messages/{ORDER}"


class Clock:
    """SPP's clock, pinned so every timestamp is known."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: int) -> None:
        self.now = T0 + timedelta(seconds=seconds)


CLOCK = Clock()


@pytest.fixture(scope="module")
def running() -> Iterator[SandboxServer]:
    with SandboxServer(store=SandboxStore(clock=CLOCK)) as server:
        yield server


@pytest.fixture
def workspace(running: SandboxServer) -> SandboxServer:
    """The pinned-clock sandbox with five messages on E4A269FC and known ``last_message_at`` on the orders.

    Messages (id: seconds after T0, author, fields): 1: 0 client web; 2: 60 staff api staff_only;
    3: 120 client auto-generated; 4: 180 client email, seen at 200; 5: 180 client web.
    Orders' last_message_at: 1001 at 180 (its messages), 1002 at 90, 1004 at 30, 1003 never (null).
    """
    running.reset()
    store = running.store
    for seconds, order in ((30, 1004), (90, 1002)):
        CLOCK.at(seconds)
        store.create_message(order_id=order, message=f"on {order}", user_id=2)
    CLOCK.at(0)
    running.post_as_client(ORDER, "m1")
    CLOCK.at(60)
    store.create_message(order_id=1001, message="m2", user_id=1, staff_only=True, via="api")
    CLOCK.at(120)
    running.post_auto_generated(ORDER, "m3")
    CLOCK.at(180)
    running.post_as_client(ORDER, "m4", via="email", date_seen=T0 + timedelta(seconds=200))
    running.post_as_client(ORDER, "m5")
    CLOCK.at(300)
    return running


def _ids(server: SandboxServer, path: str = MESSAGES, **params: Any) -> list[int]:
    """The message IDs (numbered m1..m5 above, IDs 3..7) of one page, as m-numbers."""
    found = listed(server, path, params)
    return [i - 2 for i in found] if path == MESSAGES else found


def _at(seconds: int, style: str = "iso") -> str:
    """A timestamp ``seconds`` after T0 in one of the formats a client may send."""
    moment = T0 + timedelta(seconds=seconds)
    return {
        "iso": moment.isoformat(),
        "z": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sql": f"{moment:%Y-%m-%d %H:%M:%S}",
    }[style]


MESSAGE_QUERIES = [
    ({}, [5, 4, 3, 2, 1]),  # newest first; m4 and m5 share a second: the higher ID first
    ({"sort": "created_at:asc"}, [1, 2, 3, 4, 5]),
    ({"sort": "id:desc"}, [5, 4, 3, 2, 1]),
    ({"sort": "via:asc"}, [2, 4, 1, 3, 5]),
    ({"sort[0]": "staff_only:desc", "sort[1]": "created_at:asc"}, [2, 1, 3, 5, 4]),  # ties: IDs as the first sort
    ({"filters[created_at][$gt]": _at(60)}, [5, 4, 3]),
    ({"filters[created_at][$gt]": _at(60, "z")}, [5, 4, 3]),
    ({"filters[created_at][$gt]": _at(60, "sql")}, [5, 4, 3]),
    ({"filters[created_at][$gte]": _at(60)}, [5, 4, 3, 2]),
    ({"filters[created_at][$lt]": _at(120), "filters[created_at][$gte]": _at(60)}, [2]),
    ({"filters[created_at][$between][0]": _at(60), "filters[created_at][$between][1]": _at(120)}, [3, 2]),
    ({"filters[staff_only][$eq]": "0"}, [5, 4, 3, 1]),
    ({"filters[staff_only][$eq]": "true"}, [2]),
    ({"filters[is_auto_generated][$eq]": "1"}, [3]),
    ({"filters[is_auto_generated][$eq]": "0", "filters[user_id][$eq]": "2"}, [5, 4, 1]),
    ({"filters[via][$in][0]": "email", "filters[via][$in][1]": "API"}, [4, 2]),
    ({"filters[via][$notIn][]": "web"}, [4, 2]),
    ({"filters[via][$ne]": "web"}, [4, 2]),
    ({"filters[date_seen][$null]": "1"}, [5, 3, 2, 1]),
    ({"filters[date_seen][$notNull]": "1"}, [4]),
    ({"filters[date_seen][$gt]": _at(0)}, [4]),
    ({"filters[user_id][$in][]": "1"}, [2]),
    ({"filters[message][$eq]": "m1", "filters[via][$like]": "x", "sort": "message:asc"}, [5, 4, 3, 2, 1]),
]


@pytest.mark.parametrize(("params", "expected"), MESSAGE_QUERIES, ids=[str(q) for q, _ in MESSAGE_QUERIES])
def test_message_filters_and_sorts(workspace: SandboxServer, params: dict[str, str], expected: list[int]) -> None:
    assert _ids(workspace, **params) == expected


ORDER_QUERIES = [
    ({}, [1003, 1002, 1001, 1004]),  # newest created first
    ({"sort": "last_message_at:desc"}, [1001, 1002, 1004, 1003]),  # the never-written order (null) last
    ({"sort": "last_message_at:asc"}, [1003, 1004, 1002, 1001]),
    ({"sort": "last_message_at:desc", "filters[last_message_at][$gt]": _at(30)}, [1001, 1002]),
    ({"filters[last_message_at][$null]": "1"}, [1003]),
    ({"filters[created_at][$lt]": "2026-10-02"}, [1001, 1004]),
    ({"filters[number][$eq]": "e4a269fc"}, [1001]),
    ({"filters[id][$in][]": ["1002", "1003"]}, [1003, 1002]),
    ({"filters[id][$notIn][]": ["1002", "1003"], "sort": "id:asc"}, [1001, 1004]),
    ({"filters[status][$eq]": "working"}, [1001, 1004]),
    ({"sort": "number:asc"}, [1004, 1003, 1002, 1001]),
    ({"sort[]": ["status:asc", "id:desc"]}, [1003, 1002, 1004, 1001]),
    ({"filters[client][email][$eq]": "x", "filters[service][$eq]": "x", "sort": "price:asc"}, [1003, 1002, 1001, 1004]),
]


@pytest.mark.parametrize(("params", "expected"), ORDER_QUERIES, ids=[str(q) for q, _ in ORDER_QUERIES])
def test_order_filters_and_sorts(workspace: SandboxServer, params: dict[str, Any], expected: list[int]) -> None:
    assert _ids(workspace, "/api/orders", **params) == expected


STRICT = [
    (
        "/api/orders",
        {"filters[service][$eq]": "x"},
        "filters.service",
        "The field 'service' is not supported for model App\\Models\\Order.",
    ),
    (
        "/api/orders",
        {"filters[client][email][$eq]": "x"},
        "filters.client.email",
        "The field 'client.email' is not supported",
    ),
    ("/api/orders", {"filters[status][$like]": "x"}, "filters.status", "No operator matches your request."),
    ("/api/orders", {"filters[status]": "x"}, "filters.status", "No operator matches your request."),
    ("/api/orders", {"sort": "price:asc"}, "sort", "The field 'price' is not supported for model App\\Models\\Order."),
    (
        MESSAGES,
        {"filters[message][$eq]": "x"},
        "filters.message",
        "model App\\Models\\OrderMessage. Supported fields : id, user_id,",
    ),
    (MESSAGES, {"sort": "message:asc"}, "sort", "The field 'message' is not supported"),
]


@pytest.mark.parametrize(("path", "params", "parameter", "text"), STRICT, ids=[str(p) for _, p, _, _ in STRICT])
def test_strict_workspaces_reject_undeclared_fields(
    workspace: SandboxServer, path: str, params: dict[str, str], parameter: str, text: str
) -> None:
    assert admin(workspace, "POST", "/settings", json={"unknown_fields": "error"}).status_code == 200
    rejected = api(workspace, "GET", path, params=params)
    assert rejected.status_code == 400
    assert text in rejected.json()["message"]
    workspace.configure(query_error_status=422)
    unprocessable = api(workspace, "GET", path, params=params).json()
    assert unprocessable["errors"] == {parameter: [unprocessable["message"]]}
    workspace.configure(query_error_status=500)
    assert api(workspace, "GET", path, params=params).json() == {"message": "Server Error"}
    assert api(workspace, "GET", path).status_code == 200  # nothing undeclared: fine


def test_a_rejected_sort_fails_while_the_unsorted_listing_works(workspace: SandboxServer) -> None:
    assert admin(workspace, "POST", "/settings", json={"rejected_sorts": ["last_message_at"]}).status_code == 200
    rejected = api(workspace, "GET", "/api/orders", params={"sort": "last_message_at:desc", "limit": 100})
    assert rejected.status_code == 400
    assert rejected.json()["message"].startswith("The field 'last_message_at' is not supported for model")
    assert "last_message_at" not in rejected.json()["message"].split("Supported fields : ")[1]
    assert _ids(workspace, "/api/orders", limit=100) == [1003, 1002, 1001, 1004]
    assert _ids(workspace, "/api/orders", sort="id:desc") == [1004, 1003, 1002, 1001]
    assert _ids(workspace, "/api/orders", **{"filters[last_message_at][$gt]": _at(100)}) == [1001]  # filters still work
    workspace.configure(query_error_status=422)
    assert api(workspace, "GET", "/api/orders", params={"sort": "last_message_at:desc"}).status_code == 422


def test_a_rejected_filter_fails_while_the_unfiltered_listing_works(workspace: SandboxServer) -> None:
    workspace.configure(rejected_filters=("id",))
    path = "/api/order_messages/E4A269FC"
    rejected = api(workspace, "GET", path, params={"filters[id][$gt]": "0"})
    assert rejected.status_code == 400
    assert rejected.json()["message"].startswith("The field 'id' is not supported for model")
    assert api(workspace, "GET", path).status_code == 200
    assert api(workspace, "GET", path, params={"filters[created_at][$gte]": _at(-100)}).status_code == 200


def test_a_workspace_without_purity_ignores_filters_and_sorts_and_lists_oldest_first(workspace: SandboxServer) -> None:
    workspace.configure(ignore_filters_and_sort=True)
    query = {"sort": "last_message_at:desc", "filters[status][$eq]": "Complete", "limit": 3}
    page = api(workspace, "GET", "/api/orders", params=query).json()
    assert [o["id"] for o in page["data"]] == [1001, 1002, 1003]  # primary-key order, unfiltered
    assert page["links"]["next"] == f"{workspace.url}/api/orders?page=2"  # Laravel's default links
    assert page["meta"]["total"] == 4
    newest_first = {"sort": "created_at:desc", "filters[created_at][$gt]": _at(100)}
    assert _ids(workspace, **newest_first) == [1, 2, 3, 4, 5]  # oldest first, whatever was asked
    assert _ids(workspace, limit=2, page=3) == [5]


def test_limit_is_capped_at_100(workspace: SandboxServer) -> None:
    workspace.store.add_orders(150)
    answer = api(workspace, "GET", "/api/orders", params={"limit": 500}).json()
    assert (answer["meta"]["per_page"], len(answer["data"])) == (100, 100)


def test_the_page_shift_a_client_write_between_two_order_pages_repeats_an_order(workspace: SandboxServer) -> None:
    registered = admin(workspace, "POST", "/after_page", json={"listing": "orders", "page": 1, "order": "00C0FFEE"})
    assert registered.status_code == 201
    query = {"sort": "last_message_at:desc", "limit": 2}

    page1 = listed(workspace, "/api/orders", query)
    page2 = listed(workspace, "/api/orders", {**query, "page": 2})

    assert page1 == [1001, 1002]
    assert page2 == [1002, 1003]  # 1004 jumped to the top: 1002 slid onto page 2 and is read twice
    assert admin(workspace, "GET", "/after_page").json() == []  # used once
    written = workspace.messages(1004)[-1]
    assert (written.user_id, written.via, written.is_auto_generated) == (2, "web", False)
    assert listed(workspace, "/api/orders", query) == [1004, 1001]


def test_the_page_shift_inside_one_orders_messages(workspace: SandboxServer) -> None:
    workspace.after_page(
        "order_messages", listed_order="e4a269fc", write="auto_message", message="Order status changed"
    )
    workspace.after_page("order_messages", listed_order="B7C3D2A1")  # another order's listing: not triggered here

    page1 = _ids(workspace, limit=2)
    page2 = _ids(workspace, limit=2, page=2)

    assert (page1, page2) == ([5, 4], [4, 3])  # m6 arrived after page 1: m4 is read twice
    assert workspace.messages(1001)[-1].is_auto_generated
    assert [a["listed_order"] for a in admin(workspace, "GET", "/after_page").json()] == ["B7C3D2A1"]


def test_after_page_can_touch_an_order_on_a_later_page(workspace: SandboxServer) -> None:
    workspace.after_page("orders", order=1003, page=2, write="touch", times=2)
    query = {"sort": "last_message_at:desc", "limit": 2}
    assert listed(workspace, "/api/orders", query) == [1001, 1002]  # page 1: nothing happens
    assert listed(workspace, "/api/orders", {**query, "page": 2}) == [1004, 1003]
    assert listed(workspace, "/api/orders", query) == [1003, 1001]  # 1003's last_message_at is now
    assert workspace.store.order(1003)["last_message_at"] == _at(300)
    assert workspace.messages(1003) == []
    assert workspace.store.after_pages.pending()[0].times == 1


@pytest.mark.parametrize(
    "body",
    [
        {"listing": "tickets", "order": ORDER},
        {"listing": "orders"},
        {"listing": "orders", "order": "NOPE"},
        {"listing": "orders", "order": ORDER, "page": 0},
        {"listing": "orders", "order": ORDER, "write": "delete"},
        {"listing": "orders", "order": ORDER, "colour": "red"},
    ],
)
def test_bad_after_page_actions_are_refused(workspace: SandboxServer, body: dict[str, Any]) -> None:
    answer = admin(workspace, "POST", "/after_page", json=body)
    assert answer.status_code == 400
    assert answer.json()["message"]
    assert admin(workspace, "GET", "/after_page").json() == []
