"""SppHook under faults: what is retried (never a POST that may have landed), how long it waits."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_spp.exceptions import (
    SppRateLimitError,
    SppServerError,
    SppTransportError,
    SppUnexpectedResponseError,
)
from airflow_provider_spp.sandbox import SandboxServer
from tests.integration.hook.wire import (
    ORDER,
    ORDER_ID,
    HookFactory,
    closed_port,
    logged,
    sha256,
)

pytestmark = pytest.mark.integration


# -- retries and faults ------------------------------------------------------------------------------------


def test_429_with_retry_after_is_waited_for_then_retried_once(
    spp_sandbox: SandboxServer, make_hook: HookFactory, hook_warnings: Callable[[], list[str]]
) -> None:
    spp_sandbox.add_fault("rate_limit", retry_after=1, method="POST")
    hook = make_hook()
    started = time.monotonic()
    created = hook.create_order_message(ORDER, "after the rate limit")
    elapsed = time.monotonic() - started

    posts = logged(spp_sandbox, "POST")
    assert [r["status"] for r in posts] == [429, 201]
    assert [m.id for m in spp_sandbox.messages()] == [created.id]
    assert elapsed >= 0.95
    (warning,) = hook_warnings()
    assert "answered 429" in warning
    assert posts[0]["api_identifier"] in warning
    assert "retry 1 of 2" in warning


def test_429_is_retried_and_the_multipart_body_is_sent_again_in_full(
    spp_sandbox: SandboxServer, make_hook: HookFactory, hook_warnings: Callable[[], list[str]], tmp_path: Any
) -> None:
    data = os.urandom(50_000)
    small = os.urandom(8_000)  # streams above ~16 KB hit a provider bug, see test_large_streamed_attachments...
    (tmp_path / "file.bin").write_bytes(data)
    spp_sandbox.add_fault("rate_limit", method="POST", retry_after=0)
    created = make_hook().create_order_message(
        ORDER, "retried", attachments=[tmp_path / "file.bin", ("stream.bin", io.BytesIO(small))]
    )

    posts = logged(spp_sandbox, "POST")
    assert [r["status"] for r in posts] == [429, 201]
    for post in posts:
        assert [(f["size"], f["sha256"]) for f in post["files"]] == [(len(data), sha256(data)), (8_000, sha256(small))]
    (stored,) = spp_sandbox.messages()
    assert stored.id == created.id
    assert [f.data for f in stored.files] == [data, small]
    (warning,) = hook_warnings()
    assert "answered 429" in warning
    assert posts[0]["api_identifier"] in warning


@pytest.mark.parametrize(
    ("kind", "status", "stored", "outcome_unknown"),
    [
        ("bad_gateway", 502, 0, True),
        ("gateway_timeout", 504, 1, True),
        ("server_error", 500, 0, True),
        ("server_error_after_commit", 500, 1, True),
        ("unavailable", 503, 0, True),
        ("unavailable_after_commit", 503, 1, True),
    ],
)
def test_post_is_not_retried_after_any_5xx(
    spp_sandbox: SandboxServer,
    make_hook: HookFactory,
    hook_warnings: Callable[[], list[str]],
    kind: str,
    status: int,
    stored: int,
    outcome_unknown: bool,
) -> None:
    spp_sandbox.add_fault(kind, times=None, method="POST")
    with pytest.raises(SppServerError) as caught:
        make_hook().create_order_message(ORDER, "maybe posted")

    posts = logged(spp_sandbox, "POST")
    assert [r["status"] for r in posts] == [status]
    err = caught.value
    assert err.status_code == status
    assert err.request_id == posts[0]["api_identifier"]
    assert err.outcome_unknown is outcome_unknown
    assert str(status) in str(err)
    assert len(spp_sandbox.messages()) == stored
    assert hook_warnings() == []


@pytest.mark.parametrize(("kind", "status"), [("bad_gateway", 502), ("gateway_timeout", 504), ("unavailable", 503)])
def test_get_list_is_retried_after_a_gateway_error(
    spp_sandbox: SandboxServer, make_hook: HookFactory, hook_warnings: Callable[[], list[str]], kind: str, status: int
) -> None:
    spp_sandbox.store.create_message(order_id=ORDER_ID, message="listed")
    spp_sandbox.add_fault(kind, method="GET")

    messages = list(make_hook().list_order_messages(ORDER))

    assert [m.message for m in messages] == ["listed"]
    assert [r["status"] for r in logged(spp_sandbox, "GET")] == [status, 200]
    (warning,) = hook_warnings()
    assert f"answered {status}" in warning


def test_get_is_retried_with_backoff_after_a_500(
    spp_sandbox: SandboxServer, make_hook: HookFactory, hook_warnings: Callable[[], list[str]]
) -> None:
    spp_sandbox.add_fault("server_error", method="GET")
    assert make_hook().get_order(ORDER).id == ORDER_ID
    assert [r["status"] for r in logged(spp_sandbox)] == [500, 200]
    (warning,) = hook_warnings()
    assert "answered 500" in warning


@pytest.mark.parametrize(("kind", "stored"), [("drop_before", 0), ("drop_after", 1)])
def test_dropped_post_is_never_sent_again(
    spp_sandbox: SandboxServer, make_hook: HookFactory, hook_warnings: Callable[[], list[str]], kind: str, stored: int
) -> None:
    hook = make_hook()
    hook.get_order(ORDER)  # a pooled keep-alive connection exists: the drop must still not cause a resend
    spp_sandbox.add_fault(kind, times=None, method="POST")
    with pytest.raises(SppTransportError) as caught:
        hook.create_order_message(ORDER, "dropped")

    posts = logged(spp_sandbox, "POST")
    assert len(posts) == 1
    assert posts[0]["dropped"] is True
    assert caught.value.request_sent is True
    assert caught.value.outcome_unknown is True
    assert f"POST /api/order_messages/{ORDER}" in str(caught.value)
    assert len(spp_sandbox.messages()) == stored
    assert hook_warnings() == []


def test_slow_answer_beyond_the_timeout_on_post(spp_sandbox: SandboxServer, make_hook: HookFactory) -> None:
    spp_sandbox.add_fault("slow", method="POST", delay=1.5)
    started = time.monotonic()
    with pytest.raises(SppTransportError, match="no answer within the timeout") as caught:
        make_hook(extra={"timeout": 0.4}).create_order_message(ORDER, "slow")
    elapsed = time.monotonic() - started

    assert caught.value.request_sent is True
    assert caught.value.outcome_unknown is True
    assert len(logged(spp_sandbox, "POST")) == 1
    assert len(spp_sandbox.messages()) == 1  # the server did act on it
    assert elapsed < 1.4


@pytest.mark.parametrize(
    ("kind", "fragment"), [("malformed_json", "not JSON"), ("missing_id", "not a MessageResource")]
)
def test_a_spoiled_201_is_an_unexpected_response_with_unknown_outcome(
    spp_sandbox: SandboxServer, make_hook: HookFactory, kind: str, fragment: str
) -> None:
    spp_sandbox.add_fault(kind, method="POST")
    with pytest.raises(SppUnexpectedResponseError, match=fragment) as caught:
        make_hook().create_order_message(ORDER, "spoiled")

    (post,) = logged(spp_sandbox, "POST")
    err = caught.value
    assert err.outcome_unknown is True
    assert err.status_code == 201
    assert err.request_id == post["api_identifier"]
    assert len(spp_sandbox.messages()) == 1
    assert "spoiled" not in str(err)  # the client's text is not echoed


def test_persistent_429_exhausts_max_retries(
    spp_sandbox: SandboxServer, make_hook: HookFactory, hook_warnings: Callable[[], list[str]]
) -> None:
    spp_sandbox.add_fault("rate_limit", times=None, retry_after=0)
    with pytest.raises(SppRateLimitError) as caught:
        make_hook(max_retries=3).create_order_message(ORDER, "never")

    posts = logged(spp_sandbox, "POST")
    assert [r["status"] for r in posts] == [429] * 4
    assert caught.value.status_code == 429
    assert caught.value.retry_after == 0.0
    assert caught.value.request_id == posts[-1]["api_identifier"]
    assert spp_sandbox.messages() == []
    assert len(hook_warnings()) == 3
    for number, (warning, post) in enumerate(zip(hook_warnings(), posts, strict=False), start=1):
        assert "answered 429" in warning
        assert post["api_identifier"] in warning
        assert f"retry {number} of 3" in warning


@pytest.mark.parametrize(
    ("retry_after", "posts_sent"),
    [(6, 1), (3, 2)],
    ids=["first-wait-too-long", "second-wait-would-pass-the-cap"],
)
def test_no_retry_waits_past_retry_max_time(
    spp_sandbox: SandboxServer,
    make_hook: HookFactory,
    hook_warnings: Callable[[], list[str]],
    retry_after: int,
    posts_sent: int,
) -> None:
    """A retry happens only if the time since the first try plus the wait stays under retry_max_time (5 s)."""
    hook = make_hook(max_retries=5, extra={"retry_max_time": 5})
    hook.get_conn()  # the connection lookup (imports on first use) is not part of the first try
    spp_sandbox.add_fault("rate_limit", times=None, retry_after=retry_after)
    with pytest.raises(SppRateLimitError):
        hook.create_order_message(ORDER, "never")

    assert [r["status"] for r in logged(spp_sandbox, "POST")] == [429] * posts_sent
    assert len(hook_warnings()) == posts_sent - 1
    assert spp_sandbox.messages() == []


def test_proxy_environment_is_honoured_and_read_per_request(
    spp_sandbox: SandboxServer, make_hook: HookFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY and NO_PROXY work as with requests' own lookup, and a change between calls takes effect."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    hook = make_hook(max_retries=0)
    with pytest.raises(SppTransportError, match="could not connect") as caught:
        hook.create_order_message(ORDER, "through a proxy that is down")
    assert caught.value.request_sent is False
    assert logged(spp_sandbox) == []  # it went to the proxy, not to the sandbox

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    created = hook.create_order_message(ORDER, "past the proxy")
    assert [m.id for m in spp_sandbox.messages()] == [created.id]


def test_connection_refused_is_retried_then_reported_as_not_sent(
    make_hook: HookFactory, hook_warnings: Callable[[], list[str]]
) -> None:
    port = closed_port()
    with pytest.raises(SppTransportError, match="could not connect") as caught:
        make_hook(host=f"http://127.0.0.1:{port}").create_order_message(ORDER, "nobody listens")

    assert caught.value.request_sent is False
    assert caught.value.outcome_unknown is False
    assert len(hook_warnings()) == 2  # max_retries=2: three attempts, two retries
    for warning in hook_warnings():
        assert "could not connect" in warning
        assert "request id none" in warning
