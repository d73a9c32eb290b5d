"""SppHook.create_order_messages and SppAsyncHook's: many posts, a few at once, 429 slowing every post down."""

from __future__ import annotations

import asyncio
import collections
import json
from datetime import datetime
from typing import Any

import pytest

from airflow_provider_spp._internal.client import order_message_request
from airflow_provider_spp.exceptions import SppServerError
from airflow_provider_spp.hooks.spp import SppAsyncHook
from airflow_provider_spp.sandbox import SandboxServer
from tests.integration.hook.wire import CONN_ID, HookFactory

pytestmark = pytest.mark.integration


def _posts(server: SandboxServer, count: int) -> list[Any]:
    orders = server.store.add_orders(count)
    return [order_message_request(o["number"], f"Reminder for {o['number']}") for o in orders]


def _arrivals(server: SandboxServer) -> list[tuple[float, int | None, str | None]]:
    """(arrival time, status, Retry-After) of every logged POST."""
    return [
        (datetime.fromisoformat(r["time"]).timestamp(), r["status"], None)
        for r in server.requests()
        if r["method"] == "POST"
    ]


def _sent_during_a_pause(server: SandboxServer, retry_after: float) -> list[float]:
    """POSTs that arrived after a 429 was answered (+50 ms for those already on the way) and before its Retry-After."""
    posts = _arrivals(server)
    pauses = [t for t, status, _ in posts if status == 429]
    return [t for t, _, _ in posts for p in pauses if p + 0.05 < t < p + retry_after - 0.1]


def test_a_429_pauses_every_post_for_its_retry_after_and_each_order_gets_one_message(
    spp_sandbox: SandboxServer, make_hook: HookFactory
) -> None:
    spp_sandbox.configure(rate_limit=10, rate_limit_window=1)
    posts = _posts(spp_sandbox, 30)
    announced: list[int] = []
    hook = make_hook()

    results = hook.create_order_messages(posts, concurrency=4, before_sending=lambda g: announced.append(len(g)))

    stored = collections.Counter(m.order_id for m in spp_sandbox.messages())
    assert sorted(stored.values()) == [1] * 30, "one message per order, none twice"
    assert {r.request.order for r in results if r.message is not None} == {p.order for p in posts}
    statuses = collections.Counter(status for _, status, _ in _arrivals(spp_sandbox))
    assert statuses[201] == 30
    assert 1 <= statuses[429] <= 12, f"every post waited for the 429's Retry-After, not each on its own: {statuses}"
    assert _sent_during_a_pause(spp_sandbox, 1.0) == [], "a POST went out while the workspace said to wait"
    assert announced == [30]


def test_an_unknown_outcome_is_final_for_that_post_only_and_never_re_sent(
    spp_sandbox: SandboxServer, make_hook: HookFactory
) -> None:
    posts = _posts(spp_sandbox, 6)
    for i, kind in ((2, "server_error_after_commit"), (4, "drop_before")):
        spp_sandbox.add_fault(kind, method="POST", path_prefix=f"/api/order_messages/{posts[i].order}")

    results = make_hook().create_order_messages(posts, concurrency=2)

    by_order = {r.request.order: r for r in results}
    assert isinstance(by_order[posts[2].order].error, SppServerError)
    assert all(by_order[posts[i].order].error.outcome_unknown for i in (2, 4))  # type: ignore[union-attr]
    assert all(by_order[p.order].message is not None for i, p in enumerate(posts) if i not in (2, 4))
    posted = collections.Counter(r["path"] for r in spp_sandbox.requests() if r["method"] == "POST")
    assert set(posted.values()) == {1}, f"a POST whose outcome is unknown was re-sent: {posted}"
    assert len(spp_sandbox.messages()) == 5  # the 500 came after the message was stored; the drop before


def test_a_429_on_one_post_is_sent_again_and_spends_no_retry(
    spp_sandbox: SandboxServer, make_hook: HookFactory
) -> None:
    posts = _posts(spp_sandbox, 3)
    spp_sandbox.add_fault(
        "rate_limit", times=3, retry_after=0, method="POST", path_prefix=f"/api/order_messages/{posts[1].order}"
    )

    results = make_hook(extra={"max_retries": 1}).create_order_messages(posts, concurrency=1)

    assert all(r.message is not None for r in results)
    assert len(spp_sandbox.messages()) == 3


def test_a_401_stops_the_batch(spp_sandbox: SandboxServer, make_hook: HookFactory) -> None:
    posts = _posts(spp_sandbox, 20)

    results = make_hook(password="wrong").create_order_messages(posts, concurrency=2)

    assert len(results) == 20
    assert all(r.error is not None and r.error.status_code == 401 for r in results)
    assert sum(1 for r in results if r.not_sent) >= 17
    assert sum(1 for r in spp_sandbox.requests() if r["method"] == "POST") <= 3


def test_the_async_hook_posts_by_the_same_rules(spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "spp", "host": spp_sandbox.url, "password": spp_sandbox.token, "extra": {"timeout": 2}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    spp_sandbox.configure(rate_limit=8, rate_limit_window=1)
    posts = _posts(spp_sandbox, 20)
    seen: list[int] = []

    async def on_sent(sent: Any) -> None:
        seen.append(sent.message.id)

    async def run() -> list[Any]:
        async with SppAsyncHook(CONN_ID) as hook:
            return await hook.create_order_messages(posts, concurrency=3, on_sent=on_sent)

    results = asyncio.run(run())

    assert sorted(seen) == sorted(m.id for m in spp_sandbox.messages())
    assert collections.Counter(m.order_id for m in spp_sandbox.messages()).most_common(1)[0][1] == 1
    assert len(results) == 20
    assert all(r.message is not None for r in results)
    assert any(status == 429 for _, status, _ in _arrivals(spp_sandbox))
    assert _sent_during_a_pause(spp_sandbox, 1.0) == []
