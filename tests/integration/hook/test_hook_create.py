"""SppHook creating a message over HTTP: the documented JSON request, headers, the order as one path segment."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_spp import __version__
from airflow_provider_spp.exceptions import (
    SppInputError,
    SppNotFoundError,
)
from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.models import MessageResource
from airflow_provider_spp.sandbox import SandboxServer
from tests.integration.hook.wire import (
    ORDER,
    ORDER_ID,
    HookFactory,
    logged,
    remove_dot_segments,
)

pytestmark = pytest.mark.integration


# -- creating a message (JSON) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_id", "staff_only", "expected_body"),
    [
        (None, None, {"message": "Build 42 passed"}),
        (2, None, {"message": "Build 42 passed", "user_id": 2}),
        ("3", True, {"message": "Build 42 passed", "user_id": 3, "staff_only": True}),
        (None, "false", {"message": "Build 42 passed", "staff_only": False}),
    ],
)
def test_json_create_sends_the_documented_request(
    spp_sandbox: SandboxServer,
    spp_sandbox_conn: str,
    user_id: Any,
    staff_only: Any,
    expected_body: dict[str, Any],
) -> None:
    with SppHook(spp_sandbox_conn) as hook:
        created = hook.create_order_message(ORDER, "Build 42 passed", user_id=user_id, staff_only=staff_only)

    assert isinstance(created, MessageResource)
    assert type(created.id) is int
    assert created.message == "Build 42 passed"
    assert created.order is not None
    assert created.order.id == ORDER_ID
    assert created.files == []

    (request,) = logged(spp_sandbox)
    assert request["method"] == "POST"
    assert request["path"] == f"/api/order_messages/{ORDER}"
    assert request["query"] == ""
    assert request["status"] == 201
    headers = request["headers"]
    assert headers["authorization"] == f"Bearer {spp_sandbox.token}"
    assert headers["accept"] == "application/json"
    assert headers["user-agent"].startswith(f"airflow-provider-spp/{__version__} ")
    assert "x-api-version" not in headers
    assert headers["content-type"] == "application/json"
    assert request["body_kind"] == "json"
    assert request["json"] == expected_body
    assert set(request["json"]) == set(expected_body)

    (stored,) = spp_sandbox.messages()
    assert stored.id == created.id
    assert stored.order_id == ORDER_ID
    assert stored.message == "Build 42 passed"
    assert stored.user_id == (expected_body.get("user_id") or 1)  # the token's user by default
    assert stored.staff_only is expected_body.get("staff_only", False)
    assert created.user_id == stored.user_id
    assert created.staff_only is stored.staff_only


@pytest.mark.parametrize(
    ("hook_arg", "extra", "sent"),
    [
        (None, None, None),
        (None, "2023-12-14", "2023-12-14"),
        ("2024-03-05", None, "2024-03-05"),
        ("2024-03-05", "2023-12-14", "2024-03-05"),
    ],
    ids=["absent", "from-extra", "from-hook-arg", "hook-arg-overrides-extra"],
)
def test_x_api_version_header_only_when_configured(
    spp_sandbox: SandboxServer, make_hook: HookFactory, hook_arg: str | None, extra: str | None, sent: str | None
) -> None:
    hook = make_hook(api_version=hook_arg, extra={"api_version": extra})
    hook.create_order_message(ORDER, "versioned")
    list(hook.list_order_messages(ORDER))

    requests_seen = logged(spp_sandbox)
    assert [r["method"] for r in requests_seen] == ["POST", "GET"]
    for request in requests_seen:
        assert request["headers"].get("x-api-version") == sent


# -- order path encoding ----------------------------------------------------------------------------------


def test_order_with_a_slash_is_one_encoded_path_segment(spp_sandbox: SandboxServer, make_hook: HookFactory) -> None:
    hook = make_hook()
    with pytest.raises(SppNotFoundError) as caught:
        hook.create_order_message("a/b", "hello")

    (request,) = logged(spp_sandbox)
    assert request["path"] == "/api/order_messages/a%2Fb"
    assert request["status"] == 404
    err = caught.value
    assert err.status_code == 404
    assert err.request_id == request["api_identifier"]
    assert "No query results for model [App\\Models\\Order] a/b" in str(err)
    assert err.server_message == "No query results for model [App\\Models\\Order] a/b"
    assert err.request_id is not None
    assert err.request_id in str(err)
    assert spp_sandbox.messages() == []


@pytest.mark.parametrize(
    "order",
    [
        "..",
        ".",
        "../orders",
        "../../_sandbox/reset",
        "%2E%2E",
    ],
)
def test_dot_orders_never_reach_another_path(spp_sandbox: SandboxServer, make_hook: HookFactory, order: str) -> None:
    hook = make_hook()
    with pytest.raises((SppNotFoundError, SppInputError)) as caught:
        hook.create_order_message(order, "hello")
    assert spp_sandbox.messages() == []
    if isinstance(caught.value, SppInputError):  # refusing such an order outright is fine too
        assert logged(spp_sandbox) == []
        return
    assert isinstance(caught.value, SppNotFoundError)
    assert caught.value.status_code == 404

    (request,) = logged(spp_sandbox)
    # Exactly one segment under /api/order_messages/, and one a normalising proxy cannot resolve elsewhere.
    assert request["path"].startswith("/api/order_messages/")
    segment = request["path"].removeprefix("/api/order_messages/")
    assert segment
    assert "/" not in segment
    assert remove_dot_segments(request["path"]) == request["path"]


def test_the_sync_hook_reads_spp_clock_from_the_date_header_even_of_an_error(
    spp_sandbox: SandboxServer, spp_sandbox_conn: str
) -> None:
    import pendulum

    from airflow_provider_spp.exceptions import SppServerError

    hook = SppHook()
    assert hook.server_time is None
    spp_sandbox.add_fault("bad_gateway", method="POST")
    with pytest.raises(SppServerError):
        hook.create_order_message("E4A269FC", "Hello")
    assert hook.server_time is not None
    assert abs((pendulum.now("UTC") - hook.server_time).total_seconds()) < 3
