"""What a Wayfront workspace answers besides the API: a moved host, an expired licence, a login page, a host
that is no workspace, a token without API access and validation errors; both hooks read them the same way."""

from __future__ import annotations

import asyncio

import pytest

from airflow_provider_spp.exceptions import (
    SppApiError,
    SppAuthError,
    SppUnexpectedResponseError,
    SppValidationError,
)
from airflow_provider_spp.hooks.spp import SppAsyncHook
from airflow_provider_spp.sandbox import SandboxServer
from tests.integration.hook.wire import CONN_ID, ORDER, HookFactory, logged

pytestmark = pytest.mark.integration


def _async_calls(conn_id: str = CONN_ID) -> tuple[BaseException | None, BaseException | None]:
    """A GET and a POST through SppAsyncHook on the same connection: the error each raised (None: none)."""

    async def both() -> tuple[BaseException | None, BaseException | None]:
        results: list[BaseException | None] = []
        async with SppAsyncHook(conn_id) as hook:
            for call in (lambda: hook.get_order(ORDER), lambda: hook.create_order_message(ORDER, "async post")):
                try:
                    await call()
                    results.append(None)
                except SppApiError as err:
                    results.append(err)
        return results[0], results[1]

    return asyncio.run(both())


def _paths(server: SandboxServer) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in logged(server)]


# -- an old host that moved -------------------------------------------------------------------------------


def test_a_moved_host_is_named_and_never_given_the_token(
    spp_sandbox: SandboxServer, spp_sandbox_other_host: SandboxServer, make_hook: HookFactory
) -> None:
    """nginx's 301 from an old *.spp.co host: GET and POST both say which URL to set; nothing follows, nothing
    is re-sent, and the other host never sees a request (so never the token)."""
    spp_sandbox.configure(moved_to=spp_sandbox_other_host.url)
    hook = make_hook()
    new_host = f"Set the connection's host to {spp_sandbox_other_host.url} "

    with pytest.raises(SppApiError) as got:
        hook.get_order(ORDER)
    with pytest.raises(SppApiError) as posted:
        hook.create_order_message(ORDER, "to the old host")
    ok, message = hook.test_connection()
    async_got, async_posted = _async_calls()

    for err in (got.value, posted.value, async_got, async_posted):
        assert isinstance(err, SppApiError)
        assert (err.status_code, err.permanent) == (301, True)
        assert new_host in str(err)
    assert ok is False
    assert new_host in message
    assert _paths(spp_sandbox) == [
        ("GET", f"/api/orders/{ORDER}"),
        ("POST", f"/api/order_messages/{ORDER}"),
        ("GET", "/api/orders"),
        ("GET", f"/api/orders/{ORDER}"),
        ("POST", f"/api/order_messages/{ORDER}"),
    ]
    assert logged(spp_sandbox_other_host) == []
    assert spp_sandbox.messages() == spp_sandbox_other_host.messages() == []


# -- licence expired, signed out -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "page", "meaning"),
    [
        ("expired", "/expired", "the Wayfront licence of this workspace has expired"),
        ("signed_out", "/login", "redirected to a login page: the token was not accepted"),
    ],
)
def test_an_expired_licence_or_a_login_page_says_so_and_stores_nothing(
    spp_sandbox: SandboxServer, make_hook: HookFactory, state: str, page: str, meaning: str
) -> None:
    spp_sandbox.configure(workspace_state=state)
    hook = make_hook()

    with pytest.raises(SppAuthError, match=meaning) as got:  # followed to the page: 200 HTML
        hook.get_order(ORDER)
    with pytest.raises(SppAuthError, match=meaning) as posted:  # never followed: the 302 itself
        hook.create_order_message(ORDER, "while the licence is expired")
    ok, message = hook.test_connection()
    async_got, async_posted = _async_calls()

    assert (got.value.permanent, posted.value.permanent, posted.value.status_code) == (True, True, 302)
    assert (ok, meaning in message) == (False, True), message
    for err in (async_got, async_posted):
        assert isinstance(err, SppAuthError)
        assert meaning in str(err)
    assert _paths(spp_sandbox) == [
        ("GET", f"/api/orders/{ORDER}"),
        ("GET", page),
        ("POST", f"/api/order_messages/{ORDER}"),
        ("GET", "/api/orders"),
        ("GET", page),
        ("GET", f"/api/orders/{ORDER}"),
        ("GET", page),
        ("POST", f"/api/order_messages/{ORDER}"),
    ]
    assert spp_sandbox.messages() == []


# -- a host that is no workspace -------------------------------------------------------------------------------


def test_the_test_button_reports_a_host_that_answers_html_to_everything(
    spp_sandbox: SandboxServer, make_hook: HookFactory
) -> None:
    spp_sandbox.configure(workspace_state="not_a_workspace")
    hook = make_hook()

    ok, message = hook.test_connection()
    with pytest.raises(SppUnexpectedResponseError, match="with an HTML page, not the Wayfront API"):
        list(hook.list_orders())

    assert ok is False
    assert message == (
        f"{spp_sandbox.url}: Wayfront (SPP) GET /api/orders answered 200 with an HTML page, not the Wayfront API: "
        "check the workspace URL"
    )
    assert _paths(spp_sandbox) == [("GET", "/api/orders"), ("GET", "/api/orders")]


# -- 403: a token without API access; 422/400: validation -----------------------------------------------------


def test_a_token_without_api_access_says_why_with_the_servers_message(
    spp_sandbox: SandboxServer, make_hook: HookFactory
) -> None:
    spp_sandbox.configure(no_api_token="wf_no_api_access")
    hook = make_hook(password="wf_no_api_access")
    server_says = spp_sandbox.settings.no_api_message

    with pytest.raises(SppAuthError) as caught:
        hook.create_order_message(ORDER, "no API for this role")
    ok, message = hook.test_connection()

    assert (caught.value.status_code, caught.value.permanent, caught.value.server_message) == (403, True, server_says)
    assert "the token's role or the workspace's plan has no API access" in str(caught.value)
    assert server_says in str(caught.value)
    assert ok is False
    assert "the token's role or the workspace's plan has no API access" in message
    assert server_says in message
    assert "wf_no_api_access" not in message + str(caught.value)
    assert [m for m, _ in _paths(spp_sandbox)] == ["POST", "GET"]


@pytest.mark.parametrize("status", [422, 400])
def test_a_validation_error_is_certain_never_retried_and_carries_the_field_errors(
    spp_sandbox: SandboxServer, make_hook: HookFactory, status: int
) -> None:
    spp_sandbox.configure(validation_status=status)
    hook = make_hook(extra={"max_retries": 3})

    with pytest.raises(SppValidationError) as caught:
        hook.create_order_message(ORDER, "from nobody", user_id=99999)

    err = caught.value
    assert (err.status_code, err.retryable, err.outcome_unknown, err.permanent) == (status, False, False, True)
    assert set(err.errors) == {"user_id"}
    assert all(isinstance(text, str) and text for text in err.errors["user_id"])
    assert err.server_message
    assert [m for m, _ in _paths(spp_sandbox)] == ["POST"]
    assert spp_sandbox.messages() == []


# -- integer statuses; message fields ------------------------------------------------------------------------


def _async_orders(status: int | str) -> list[tuple[int | None, int | str | None]]:
    async def listing() -> list[tuple[int | None, int | str | None]]:
        async with SppAsyncHook(CONN_ID) as hook:
            return [(o.id, o.status) async for o in hook.list_orders(status=status, sort="id:asc")]

    return asyncio.run(listing())


@pytest.mark.parametrize("ignores_filters", [False, True], ids=["filtered", "filters-ignored"])
def test_orders_keep_integer_statuses_and_filter_by_a_code(
    spp_sandbox: SandboxServer, make_hook: HookFactory, ignores_filters: bool
) -> None:
    spp_sandbox.configure(status_style="code", ignore_filters_and_sort=ignores_filters)
    hook = make_hook()

    working = [(o.id, o.status) for o in hook.list_orders(status=2, sort="id:asc")]
    order = hook.get_order(ORDER)

    assert working == [(1001, 2), (1004, 2)]
    assert _async_orders(2) == working
    assert (order.status, type(order.status)) == (2, int)
    queries = [r["query"] for r in logged(spp_sandbox) if r["path"] == "/api/orders"]
    assert all("filters%5Bstatus%5D%5B%24eq%5D=2" in query for query in queries), queries


def test_messages_say_whether_the_service_wrote_them_how_they_came_and_when_they_were_seen(
    spp_sandbox: SandboxServer, make_hook: HookFactory
) -> None:
    from datetime import UTC, datetime

    seen = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    spp_sandbox.post_as_client(ORDER, "Here are the logins", via="email", date_seen=seen)
    spp_sandbox.post_auto_generated(ORDER)

    auto, reply = list(make_hook().list_order_messages(ORDER))[:2]

    assert (auto.is_auto_generated, reply.is_auto_generated) == (True, False)
    assert reply.via == "email"
    assert reply.date_seen == seen
    assert auto.date_seen is None
    assert (auto.message or "").startswith("Order status changed to")
