"""SppHook timeouts and redirects: connect vs read timeout; the token never follows to another host."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit

import pytest

from airflow_provider_spp._internal.client import ApiRequest
from airflow_provider_spp.exceptions import (
    SppApiError,
    SppTransportError,
)
from airflow_provider_spp.sandbox import SandboxServer
from tests.integration.hook.wire import (
    ORDER,
    HookFactory,
    logged,
)

pytestmark = pytest.mark.integration


# -- redirects --------------------------------------------------------------------------------------------


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A 127.0.0.1 port whose accept queue is full: a new connection's SYN is dropped, so connect() hangs."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    filler = socket.create_connection(("127.0.0.1", port), timeout=2)  # takes the only place in the queue
    try:
        yield port
    finally:
        filler.close()
        listener.close()


def test_connecting_is_bounded_by_connect_timeout_not_timeout(unanswered_port: int, make_hook: HookFactory) -> None:
    extra = {"connect_timeout": 0.3, "timeout": 8, "max_retries": 0}
    hook = make_hook(host=f"http://127.0.0.1:{unanswered_port}", extra=extra)
    assert (hook.settings.connect_timeout, hook.settings.timeout) == (0.3, 8.0)
    started = time.monotonic()
    with pytest.raises(SppTransportError, match="could not connect") as caught:
        hook.create_order_message(ORDER, "never sent", user_id=None)
    elapsed = time.monotonic() - started
    assert caught.value.request_sent is False
    assert elapsed < 4, f"connect waited {elapsed:.1f} s: the 8 s read timeout applied, not connect_timeout"


@pytest.fixture
def trickling_server() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that sends an orders page one byte every 0.1 s (about 3 s in all)."""
    body = json.dumps({"data": [{"id": 1}], "links": {"next": None}, "meta": {}}).encode()
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            for i in range(0, len(answer), 4):
                if stop.wait(0.1):
                    return
                conn.sendall(answer[i : i + 4])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def test_timeout_is_the_longest_silence_not_a_limit_on_the_whole_answer(
    trickling_server: str, make_hook: HookFactory
) -> None:
    """What docs/connection.md says ``timeout`` is: an answer that keeps arriving may take longer than it."""
    hook = make_hook(host=trickling_server, extra={"timeout": 0.6, "max_retries": 0})
    started = time.monotonic()
    assert [order.id for order in hook.list_orders()] == [1]
    assert time.monotonic() - started > 2 * hook.settings.timeout


def test_a_redirect_to_another_host_is_reported_and_never_followed(
    spp_sandbox: SandboxServer, spp_sandbox_other_host: SandboxServer, make_hook: HookFactory
) -> None:
    """The token never reaches another host: a GET follows redirects within the workspace only."""
    hook = make_hook()
    same_host = f"{spp_sandbox.url}/_sandbox/redirect?{urlencode({'to': f'{spp_sandbox.url}/api/orders'})}"
    assert hook._send(ApiRequest("GET", same_host)).json()["data"]  # followed, still authenticated on the same origin

    other = f"{spp_sandbox.url}/_sandbox/redirect?{urlencode({'to': f'{spp_sandbox_other_host.url}/api/orders'})}"
    with pytest.raises(SppApiError) as caught:
        hook._send(ApiRequest("GET", other))

    assert caught.value.status_code == 307
    assert caught.value.permanent
    assert f"Set the connection's host to {spp_sandbox_other_host.url} " in str(caught.value)
    assert logged(spp_sandbox_other_host) == []
    first_legs = logged(spp_sandbox)
    assert [r["path"] for r in first_legs] == ["/_sandbox/redirect", "/api/orders", "/_sandbox/redirect"]
    assert all(r["headers"]["authorization"] == f"Bearer {spp_sandbox.token}" for r in first_legs)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_post_is_never_redirected(
    spp_sandbox: SandboxServer, spp_sandbox_other_host: SandboxServer, make_hook: HookFactory, status: int
) -> None:
    target = f"{spp_sandbox_other_host.url}/api/order_messages/{ORDER}"
    url = f"{spp_sandbox.url}/_sandbox/redirect?{urlencode({'to': target, 'status': status})}"
    with pytest.raises(SppApiError, match="redirected") as caught:
        make_hook()._send(ApiRequest("POST", url, json={"message": "follow me"}, idempotent=False))

    assert type(caught.value) is SppApiError
    assert caught.value.status_code == status
    assert urlsplit(spp_sandbox_other_host.url).netloc in str(caught.value)
    assert [r["method"] for r in logged(spp_sandbox)] == ["POST"]
    assert logged(spp_sandbox_other_host) == []
    assert spp_sandbox.messages() == []
    assert spp_sandbox_other_host.messages() == []
