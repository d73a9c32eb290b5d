"""The sandbox's rate limit, as Laravel's throttle middleware answers: N requests per window, then 429 + Retry-After."""

from __future__ import annotations

import time

import pytest

from airflow_provider_spp.sandbox import SandboxServer
from tests.support.sandbox_http import ORDER, admin, api

pytestmark = pytest.mark.integration


def test_requests_beyond_the_limit_get_429_with_retry_after_until_the_window_ends(spp_sandbox: SandboxServer) -> None:
    assert admin(spp_sandbox, "POST", "/settings", json={"rate_limit": 3, "rate_limit_window": 2}).status_code == 200

    answers = [api(spp_sandbox, "POST", f"/api/order_messages/{ORDER}", json={"message": f"n{i}"}) for i in range(5)]

    assert [a.status_code for a in answers] == [201, 201, 201, 429, 429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0", "0"]
    assert {a.headers["x-ratelimit-limit"] for a in answers} == {"3"}
    assert answers[3].json() == {"message": "Too Many Attempts."}
    assert 1 <= int(answers[3].headers["retry-after"]) <= 2
    assert "retry-after" not in answers[0].headers
    assert [m.message for m in spp_sandbox.messages()] == ["n0", "n1", "n2"]  # a throttled POST stores nothing
    assert [r["status"] for r in spp_sandbox.requests()] == [201, 201, 201, 429, 429]
    time.sleep(int(answers[4].headers["retry-after"]))
    assert api(spp_sandbox, "GET", f"/api/order_messages/{ORDER}").status_code == 200  # a new window


def test_no_limit_by_default_and_a_reset_forgets_the_window(spp_sandbox: SandboxServer) -> None:
    answers = [api(spp_sandbox, "GET", "/api/orders?limit=1") for _ in range(20)]
    assert {a.status_code for a in answers} == {200}
    assert "x-ratelimit-limit" not in answers[0].headers
    admin(spp_sandbox, "POST", "/settings", json={"rate_limit": 1})
    assert api(spp_sandbox, "GET", "/api/orders?limit=1").status_code == 200
    assert api(spp_sandbox, "GET", "/api/orders?limit=1").status_code == 429
    assert admin(spp_sandbox, "POST", "/settings", json={"rate_limit": -1}).status_code == 400
    spp_sandbox.store.throttle.clear()
    assert api(spp_sandbox, "GET", "/api/orders?limit=1").status_code == 200
