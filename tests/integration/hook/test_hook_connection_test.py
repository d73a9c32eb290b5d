"""SppHook.test_connection against the sandbox: one GET, clear messages, no retry."""

from __future__ import annotations

import pytest

from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.sandbox import SandboxServer
from tests.integration.hook.wire import (
    HookFactory,
    closed_port,
    logged,
)

pytestmark = pytest.mark.integration


# -- test_connection ---------------------------------------------------------------------------------------


def test_test_connection_success_is_one_get(spp_sandbox: SandboxServer, spp_sandbox_conn: str) -> None:
    ok, message = SppHook(spp_sandbox_conn).test_connection()
    assert ok is True
    assert message == f"Connected to the Wayfront workspace at {spp_sandbox.url}."
    (request,) = logged(spp_sandbox)
    assert (request["method"], request["path"], request["query"], request["status"]) == (
        "GET",
        "/api/orders",
        "limit=1",
        200,
    )
    assert spp_sandbox.messages() == []


def test_test_connection_with_a_wrong_token(spp_sandbox: SandboxServer, make_hook: HookFactory) -> None:
    ok, message = make_hook(password="not-the-right-token").test_connection()
    assert ok is False
    assert "401" in message
    assert "API token" in message
    assert "Unauthenticated." in message
    assert "not-the-right-token" not in message
    seen = logged(spp_sandbox)
    assert [r["method"] for r in seen] == ["GET"]
    assert seen[0]["status"] == 401


def test_test_connection_to_a_closed_port(make_hook: HookFactory) -> None:
    port = closed_port()
    ok, message = make_hook(host=f"http://127.0.0.1:{port}").test_connection()
    assert ok is False
    assert message.startswith(f"Could not reach http://127.0.0.1:{port}")
    assert "could not connect" in message


def test_test_connection_is_not_retried(spp_sandbox: SandboxServer, make_hook: HookFactory) -> None:
    spp_sandbox.add_fault("unavailable", times=None)
    ok, message = make_hook().test_connection()
    assert ok is False
    assert "503" in message
    assert [r["method"] for r in logged(spp_sandbox)] == ["GET"]
