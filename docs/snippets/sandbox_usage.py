"""The sandbox page's Python examples: a user's own pytest test with the opt-in fixtures (tests/docs runs it)."""

from __future__ import annotations

from typing import Any


# [START sandbox_pytest_test]
def test_the_follow_up_reaches_the_order(spp_sandbox: Any, spp_sandbox_conn: str) -> None:
    """spp_sandbox is a clean SPP server; spp_sandbox_conn points spp_default at it."""
    from airflow_provider_spp.hooks.spp import SppHook

    spp_sandbox.add_fault("rate_limit", times=1, retry_after=0)  # the first POST gets a 429
    with SppHook(spp_sandbox_conn) as hook:
        created = hook.create_order_message("E4A269FC", "Your report is ready")

    stored = spp_sandbox.messages()
    assert [m.id for m in stored] == [created.id]  # retried after the 429, stored once
    assert [r["fault"] for r in spp_sandbox.requests() if r["method"] == "POST"] == ["rate_limit", None]


# [END sandbox_pytest_test]
