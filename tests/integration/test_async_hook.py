"""SppAsyncHook against the sandbox over real HTTP: same wire, errors and retry rules as SppHook."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qs

import pytest
from structlog.testing import capture_logs

from airflow_provider_spp import __version__
from airflow_provider_spp.exceptions import SppInputError, SppNotFoundError, SppServerError, SppTransportError
from airflow_provider_spp.hooks.spp import SppAsyncHook, SppHook
from airflow_provider_spp.sandbox import SandboxServer

pytestmark = pytest.mark.integration

T = TypeVar("T")
ORDER = "E4A269FC"


def run(factory: Callable[[SppAsyncHook], Awaitable[T]], **hook_kwargs: Any) -> T:
    """Run one coroutine with a fresh async hook on its own event loop, closing the hook after."""

    async def main() -> T:
        async with SppAsyncHook(**hook_kwargs) as hook:
            return await factory(hook)

    return asyncio.run(main())


@pytest.fixture
def conn(spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=2, retry_backoff=0.01))
    return spp_sandbox


def test_reads_send_the_same_request_as_the_sync_hook(conn: SandboxServer) -> None:
    async def read(hook: SppAsyncHook) -> Any:
        order = await hook.get_order(ORDER)
        orders = [o.id async for o in hook.list_orders(sort="last_message_at:desc", per_page=2)]
        return order, orders

    order, orders = run(read)
    assert order.id == 1001
    assert sorted(orders) == [1001, 1002, 1003, 1004]
    async_log = conn.requests()
    conn.store.clear_requests()
    with SppHook() as hook:
        hook.get_order(ORDER)
        list(hook.list_orders(sort="last_message_at:desc", per_page=2))
    sync_log = conn.requests()
    assert [(r["method"], r["path"]) for r in async_log] == [(r["method"], r["path"]) for r in sync_log]
    for entry in async_log:
        assert entry["headers"]["authorization"] == f"Bearer {conn.token}"
        assert entry["headers"]["accept"] == "application/json"
        assert entry["headers"]["user-agent"].startswith(f"airflow-provider-spp/{__version__} python-httpx/")
    second_page = parse_qs(async_log[2]["query"])
    assert second_page == {"limit": ["2"], "sort": ["last_message_at:desc"], "page": ["2"]}


def test_messages_are_listed_newest_first_across_pages(conn: SandboxServer) -> None:
    for n in range(5):
        conn.post_as_client(ORDER, f"reply {n}")

    async def listing(hook: SppAsyncHook) -> list[str | None]:
        return [m.message async for m in hook.list_order_messages(ORDER, per_page=2)]

    assert run(listing) == [f"reply {n}" for n in reversed(range(5))]
    assert [parse_qs(r["query"]).get("page") for r in conn.requests()] == [None, ["2"], ["3"]]


def test_errors_are_mapped_with_the_request_id(conn: SandboxServer) -> None:
    with pytest.raises(SppNotFoundError) as caught:
        run(lambda hook: hook.get_order("NOPE0000"))
    assert caught.value.status_code == 404
    assert caught.value.request_id == conn.requests()[-1]["api_identifier"]


def test_reads_are_retried_on_rate_limit_and_unavailable(conn: SandboxServer) -> None:
    conn.add_fault("rate_limit", retry_after=0)
    conn.add_fault("unavailable")
    assert run(lambda hook: hook.get_order(ORDER)).id == 1001
    assert [r["status"] for r in conn.requests()] == [429, 503, 200]


def test_a_post_is_not_re_sent_after_a_server_error(conn: SandboxServer) -> None:
    conn.add_fault("server_error_after_commit", method="POST")
    with pytest.raises(SppServerError) as caught:
        run(lambda hook: hook.create_order_message(ORDER, "only once"))
    assert caught.value.outcome_unknown
    assert len([r for r in conn.requests() if r["method"] == "POST"]) == 1
    assert [m.message for m in conn.messages()] == ["only once"]


def test_a_post_that_never_left_is_retried(conn: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    conn.add_fault("rate_limit", retry_after=0, method="POST")
    created = run(lambda hook: hook.create_order_message(ORDER, "after a 429", staff_only=True))
    assert created.staff_only is True
    assert [m.message for m in conn.messages()] == ["after a 429"]


def test_attachments_are_uploaded_as_multipart(conn: SandboxServer, tmp_path: Any) -> None:
    report = tmp_path / "report.csv"
    report.write_bytes(b"a,b\n1,2\n")
    created = run(lambda hook: hook.create_order_message(ORDER, "with a file", attachments=[report]))
    (stored,) = conn.messages()
    assert created.id == stored.id
    assert [(f.filename, f.data) for f in stored.files] == [("report.csv", b"a,b\n1,2\n")]


def test_an_unreachable_workspace_is_a_transport_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPP_DEFAULT",
        f'{{"conn_type": "spp", "host": "http://127.0.0.1:{port}", "password": "t", '
        '"extra": {"max_retries": 1, "retry_backoff": 0.01}}',
    )
    with pytest.raises(SppTransportError) as caught:
        run(lambda hook: hook.get_order(ORDER))
    assert caught.value.request_sent is False
    assert "t" not in str(caught.value).split()


def test_tls_uses_the_connections_ca_and_a_bad_certificate_is_not_retried(
    spp_sandbox_tls: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox_tls.connection_json(timeout=2, retry_backoff=0.01))
    assert run(lambda hook: hook.get_order(ORDER)).id == 1001
    assert spp_sandbox_tls.url.startswith("https://")
    spp_sandbox_tls.store.clear_requests()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPP_DEFAULT", json.dumps({"conn_type": "spp", "host": spp_sandbox_tls.url, "password": "t"})
    )
    with pytest.raises(SppTransportError) as caught:
        run(lambda hook: hook.get_order(ORDER))  # the system CAs do not trust the sandbox's certificate
    assert caught.value.request_sent is False
    assert caught.value.retryable is False
    assert "TLS handshake" in str(caught.value)
    assert spp_sandbox_tls.requests() == []


def test_a_post_whose_tls_stream_breaks_after_sending_is_not_re_sent(
    spp_sandbox_tls: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox_tls.connection_json(timeout=2, retry_backoff=0.01))
    spp_sandbox_tls.add_fault("break_stream_after", times=None, method="POST")
    with pytest.raises(SppTransportError) as caught:
        run(lambda hook: hook.create_order_message(ORDER, "stored before the stream broke"))
    assert caught.value.outcome_unknown
    assert len([r for r in spp_sandbox_tls.requests() if r["method"] == "POST"]) == 1
    assert [m.message for m in spp_sandbox_tls.messages()] == ["stored before the stream broke"]


def test_find_order_message_reads_only_as_far_as_it_must(conn: SandboxServer) -> None:
    """Same look-up as SppHook's: newest match since a moment; an older message in a newest-first list ends it."""
    since = datetime.now(UTC) - timedelta(seconds=5)
    with SppHook() as hook:
        target = hook.create_order_message(ORDER, "Deploy done\nall green", user_id=3, staff_only=True)
        hook.create_order_message(ORDER, "Something else", user_id=3, staff_only=True)
        hook.create_order_message(1002, "Deploy done\nall green", user_id=3, staff_only=True)  # another order
    conn.store.clear_requests()

    def find(text: str = "  Deploy done\r\nall green \n", **kwargs: Any) -> Any:
        return run(lambda hook: hook.find_order_message(ORDER, text, **{"created_since": since, **kwargs}))

    assert find().id == target.id
    assert find(user_id="3", staff_only=True).id == target.id
    assert find(user_id=2) is None
    assert find(staff_only=False) is None
    assert find("Deploy done all green") is None
    assert find(created_since=datetime.now(UTC) + timedelta(hours=1)) is None
    assert {(r["method"], r["path"]) for r in conn.requests()} == {("GET", f"/api/order_messages/{ORDER}")}

    for n in range(120):  # two pages of 100 older than the moment below
        conn.store.create_message(order_id=1001, message=f"old {n}")
    conn.store.clear_requests()
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert run(lambda hook: hook.find_order_message_where(ORDER, lambda m: True, created_since=later)) is None
    assert [r["query"] for r in conn.requests()] == ["limit=100"]  # no second page fetched


def test_delete_order_message_then_404(conn: SandboxServer) -> None:
    with SppHook() as hook:
        keep = hook.create_order_message(ORDER, "keep me")
        doomed = hook.create_order_message(ORDER, "delete me")

    assert run(lambda hook: hook.delete_order_message(doomed.id)) is None
    assert [m.id for m in conn.messages()] == [keep.id]
    with pytest.raises(SppNotFoundError) as caught:
        run(lambda hook: hook.delete_order_message(doomed.id))
    deletes = [r for r in conn.requests() if r["method"] == "DELETE"]
    path = f"/api/order_messages/{doomed.id}"
    assert [(r["path"], r["status"]) for r in deletes] == [(path, 204), (path, 404)]
    assert caught.value.request_id == deletes[1]["api_identifier"]
    with pytest.raises(SppInputError):
        run(lambda hook: hook.delete_order_message(0))


@pytest.mark.parametrize("fault", ["drop_after", "gateway_timeout", "slow"])
def test_a_delete_retried_after_a_lost_answer_that_then_gets_404_has_succeeded(conn: SandboxServer, fault: str) -> None:
    """SPP deleted the message but its answer was lost; the retry's 404 means it is gone, as asked."""
    with SppHook() as hook:
        keep = hook.create_order_message(ORDER, "keep me")
        doomed = hook.create_order_message(ORDER, "delete me")
    conn.add_fault(fault, method="DELETE", delay=1.0)

    with capture_logs() as entries:
        assert run(lambda hook: hook.delete_order_message(doomed.id), timeout=0.5) is None

    deletes = [r for r in conn.requests() if r["method"] == "DELETE"]
    assert [r["path"] for r in deletes] == [f"/api/order_messages/{doomed.id}"] * 2
    assert deletes[1]["status"] == 404
    assert [m.id for m in conn.messages()] == [keep.id]
    assert any(f"message {doomed.id} is gone (404) after a try whose answer was lost" in e["event"] for e in entries)
    with pytest.raises(SppNotFoundError):  # without a lost answer first, a 404 is still an error
        run(lambda hook: hook.delete_order_message(doomed.id))


class _NotesThreads(io.BytesIO):
    """A binary file object that notes which thread did each read, seek or tell."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.threads: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.threads.append(threading.get_ident())
        return super().read(size)

    def readinto(self, buffer: Any) -> int:
        self.threads.append(threading.get_ident())
        return super().readinto(buffer)

    def seek(self, offset: int, whence: int = 0) -> int:
        self.threads.append(threading.get_ident())
        return super().seek(offset, whence)

    def tell(self) -> int:
        self.threads.append(threading.get_ident())
        return super().tell()


def test_the_async_notifier_never_reads_a_file_on_the_event_loop(conn: SandboxServer) -> None:
    """A large attachment is checked, measured and read in worker threads: the triggerer's loop stays free."""
    from airflow_provider_spp.notifications.spp import SppOrderMessageNotifier

    data = os.urandom(3 * 1024 * 1024 + 17)
    attachment = _NotesThreads(data)
    notifier = SppOrderMessageNotifier(order=ORDER, message="nightly export", attachments=[("export.bin", attachment)])
    loop_thread: list[int] = []
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.005)

    async def main() -> None:
        loop_thread.append(threading.get_ident())
        ticking = asyncio.create_task(ticker())
        await notifier.async_notify({})
        ticking.cancel()

    asyncio.run(main())

    (stored,) = conn.messages()
    assert [(f.filename, f.data) for f in stored.files] == [("export.bin", data)]
    (post,) = conn.requests()
    assert int(post["headers"]["content-length"]) > len(data)  # a length up front, not a chunked upload
    assert "transfer-encoding" not in post["headers"]
    assert attachment.threads, "the attachment was never read"
    on_loop = attachment.threads.count(loop_thread[0])
    assert on_loop == 0, f"{on_loop} of {len(attachment.threads)} reads/seeks of the file ran on the event loop"
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    assert max(gaps, default=0) < 2.0  # generous: a loop that stays responsive, not a benchmark


def test_an_async_upload_that_never_left_is_sent_again_with_the_whole_file(conn: SandboxServer) -> None:
    """The streamed body is built afresh for each try: a 429 before processing re-sends every byte."""
    conn.add_fault("rate_limit", retry_after=0, method="POST")
    data = os.urandom(300_000)
    created = run(lambda hook: hook.create_order_message(ORDER, "retried upload", attachments=[("a.bin", data)]))
    (stored,) = conn.messages()
    assert stored.id == created.id
    assert [(f.filename, f.data) for f in stored.files] == [("a.bin", data)]
    assert [r["method"] for r in conn.requests()] == ["POST", "POST"]
