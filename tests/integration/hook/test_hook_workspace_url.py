"""The workspace URL as users paste it: with Wayfront's ``/api`` path, the calls still reach ``/api/...`` once."""

from __future__ import annotations

import pytest

from airflow_provider_spp.sandbox import SandboxServer
from tests.integration.hook.wire import ORDER, HookFactory, logged

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("suffix", ["/api", "/api/"])
def test_a_host_pasted_with_the_api_path_reaches_the_api_once(
    spp_sandbox: SandboxServer, make_hook: HookFactory, suffix: str
) -> None:
    hook = make_hook(host=spp_sandbox.url + suffix)

    created = hook.create_order_message(ORDER, "Host pasted with /api")
    listed = [m.id for m in hook.list_order_messages(ORDER)]
    ok, _ = hook.test_connection()

    assert ok is True
    assert created.id in listed
    assert [m.message for m in spp_sandbox.messages()] == ["Host pasted with /api"]
    assert [(r["method"], r["path"]) for r in logged(spp_sandbox)] == [
        ("POST", f"/api/order_messages/{ORDER}"),
        ("GET", f"/api/order_messages/{ORDER}"),
        ("GET", "/api/orders"),
    ]
