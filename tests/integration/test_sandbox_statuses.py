"""Integer order statuses with a workspace's code map ("Status is a number, not a label"), over plain HTTP."""

from __future__ import annotations

import pytest

from airflow_provider_spp.sandbox import DEFAULT_STATUS_CODES, SandboxServer
from tests.support.sandbox_http import ORDER, admin, api, listed

pytestmark = pytest.mark.integration

SEEDED_CODES = [(1003, 3), (1002, 1), (1001, 2), (1004, 2)]  # newest first: Complete, Submitted, Working, Working


def _statuses(server: SandboxServer, **params: str) -> list[tuple[int, object]]:
    """(id, status) of the orders a listing answers."""
    answer = api(server, "GET", "/api/orders", params=params)
    assert answer.status_code == 200, answer.text
    return [(o["id"], o["status"]) for o in answer.json()["data"]]


def test_labels_by_default(spp_sandbox: SandboxServer) -> None:
    assert _statuses(spp_sandbox) == [(1003, "Complete"), (1002, "Submitted"), (1001, "Working"), (1004, "Working")]
    assert admin(spp_sandbox, "GET", "/statuses").json()["status_style"] == "label"


def test_code_mode_carries_integers_everywhere_and_filters_by_code(spp_sandbox: SandboxServer) -> None:
    assert admin(spp_sandbox, "POST", "/settings", json={"status_style": "code"}).status_code == 200

    assert _statuses(spp_sandbox) == SEEDED_CODES
    assert api(spp_sandbox, "GET", f"/api/orders/{ORDER}").json()["status"] == 2
    created = api(spp_sandbox, "POST", f"/api/order_messages/{ORDER}", json={"message": "hi"}).json()
    assert created["order"]["status"] == 2
    assert api(spp_sandbox, "GET", f"/api/order_messages/{ORDER}").json()["data"][0]["order"]["status"] == 2
    assert _statuses(spp_sandbox, **{"filters[status][$eq]": "2"}) == [(1001, 2), (1004, 2)]
    assert _statuses(spp_sandbox, **{"filters[status][$ne]": "2"}) == [(1003, 3), (1002, 1)]
    in_query = {"filters[status][$in][0]": "1", "filters[status][$in][1]": "3"}
    assert _statuses(spp_sandbox, **in_query) == [(1003, 3), (1002, 1)]
    # A label compared with an integer column matches nothing (a client filtering by label sees no orders).
    assert _statuses(spp_sandbox, **{"filters[status][$eq]": "Working"}) == []
    assert _statuses(spp_sandbox, **{"sort": "status:asc"}) == [(1002, 1), (1001, 2), (1004, 2), (1003, 3)]


def test_the_code_map_is_listed_and_can_be_customised(spp_sandbox: SandboxServer) -> None:
    spp_sandbox.configure(status_style="code")
    table = admin(spp_sandbox, "GET", "/statuses").json()
    assert table["status_style"] == "code"
    assert table["statuses"] == [{"code": c, "label": label} for c, label in sorted(DEFAULT_STATUS_CODES.items())]

    custom = {"10": "Submitted", "20": "Working", "30": "Complete"}
    assert admin(spp_sandbox, "POST", "/settings", json={"status_codes": custom}).status_code == 200
    assert _statuses(spp_sandbox) == [(1003, 30), (1002, 10), (1001, 20), (1004, 20)]
    assert _statuses(spp_sandbox, **{"filters[status][$eq]": "20"}) == [(1001, 20), (1004, 20)]
    assert admin(spp_sandbox, "GET", "/statuses").json()["statuses"][0] == {"code": 10, "label": "Submitted"}
    spp_sandbox.reset()
    assert _statuses(spp_sandbox)[0] == (1003, "Complete")


def test_orders_are_added_with_a_label_or_a_code(spp_sandbox: SandboxServer) -> None:
    by_code = admin(spp_sandbox, "POST", "/orders", json={"count": 2, "status": 3})
    assert by_code.status_code == 201
    spp_sandbox.store.add_orders(1, status="Pending")
    spp_sandbox.store.add_order("C0DE0001", 5)
    newest_ids = {"filters[id][$gte]": "1005", "sort": "id:asc"}
    assert _statuses(spp_sandbox, **newest_ids) == [
        (1005, "Complete"),
        (1006, "Complete"),
        (1007, "Pending"),
        (1008, "On Hold"),
    ]
    spp_sandbox.configure(status_style="code")
    assert _statuses(spp_sandbox, **newest_ids) == [(1005, 3), (1006, 3), (1007, 6), (1008, 5)]
    assert listed(spp_sandbox, "/api/orders", {"filters[status][$eq]": "3", "sort": "id:asc"}) == [1003, 1005, 1006]
    assert admin(spp_sandbox, "POST", "/orders", json={"count": 1, "status": True}).status_code == 400
    assert admin(spp_sandbox, "POST", "/orders", json={"count": 1, "status": " "}).status_code == 400
