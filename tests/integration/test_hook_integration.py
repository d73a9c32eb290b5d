"""SppHook against the real SPP sandbox over HTTP on 127.0.0.1: what goes over the wire, what is stored."""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import pytest
import requests
from structlog.testing import capture_logs

from airflow_provider_spp import __version__
from airflow_provider_spp.exceptions import (
    SppApiError,
    SppAuthError,
    SppError,
    SppInputError,
    SppNotFoundError,
    SppRateLimitError,
    SppServerError,
    SppTransportError,
    SppUnexpectedResponseError,
)
from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.models import MessageResource, Order
from airflow_provider_spp.sandbox import SandboxServer

pytestmark = pytest.mark.integration

ORDER = "E4A269FC"
ORDER_ID = 1001
CONN_ID = "spp_integration"

HookFactory = Callable[..., SppHook]


# -- helpers ----------------------------------------------------------------------------------------------


def logged(server: SandboxServer, method: str | None = None) -> list[dict[str, Any]]:
    """The sandbox's request log (client traffic only), optionally of one method."""
    return [r for r in server.requests() if method is None or r["method"] == method]


def closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, as a normalising proxy or web server applies it to the request path."""
    normalized = posixpath.normpath(path)
    return normalized + "/" if path.endswith("/") and not normalized.endswith("/") else normalized


def download(url: str) -> bytes:
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    return response.content


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def make_hook(spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[HookFactory]:
    """Build hooks on their own AIRFLOW_CONN_* JSON (fast retries by default), closed after the test."""
    hooks: list[SppHook] = []

    def make(
        *,
        host: str | None = None,
        password: str | None = None,
        conn_id: str = CONN_ID,
        **extra_and_kwargs: Any,
    ) -> SppHook:
        hook_kwargs = {
            k: extra_and_kwargs.pop(k) for k in ("api_version", "timeout", "max_retries") if k in extra_and_kwargs
        }
        extra = {"timeout": 2, "retry_backoff": 0.01, "max_retries": 2, **extra_and_kwargs.pop("extra", {})}
        assert not extra_and_kwargs, f"unknown arguments {extra_and_kwargs}"
        conn = {
            "conn_type": "spp",
            "host": host if host is not None else spp_sandbox.url,
            "password": password if password is not None else spp_sandbox.token,
            "extra": {k: v for k, v in extra.items() if v is not None},
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        hook = SppHook(conn_id, **hook_kwargs)
        hooks.append(hook)
        return hook

    yield make
    for hook in hooks:
        hook.close()


def _logger_name(logger: Any, method_name: str, event_dict: Any) -> Any:
    event_dict["logger"] = getattr(logger, "name", None)
    return event_dict


@pytest.fixture
def hook_warnings() -> Iterator[Callable[[], list[str]]]:
    """The hook's warnings so far, as text.

    Airflow 3 logs through structlog, which pytest's caplog does not see; capture its events instead and
    keep the warnings of loggers named ``airflow.task.hooks...`` (the hook's own logger).
    """
    with capture_logs(processors=[_logger_name]) as entries:

        def warnings() -> list[str]:
            return [
                str(e["event"])
                for e in entries
                if e.get("log_level") == "warning" and str(e.get("logger") or "").startswith("airflow.task.hooks")
            ]

        yield warnings


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


# -- multipart ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("staff_only", "user_id", "expected_form"),
    [
        (True, 2, {"message": "Here are the files", "user_id": "2", "staff_only": "1"}),
        (False, None, {"message": "Here are the files", "staff_only": "0"}),
    ],
)
def test_multipart_create_uploads_every_kind_of_attachment_byte_for_byte(
    spp_sandbox: SandboxServer,
    make_hook: HookFactory,
    tmp_path: Any,
    staff_only: bool,
    user_id: int | None,
    expected_form: dict[str, str],
) -> None:
    from airflow.sdk import ObjectStoragePath

    report_bytes = os.urandom(300 * 1024)
    chart_bytes = b"\x89PNG\r\n\x1a\n" + os.urandom(2048)
    csv_bytes = b"a,b\r\n1,2\r\n\x00\xff"
    notes_bytes = "caf\u00e9 \u2713\n".encode()
    blob_bytes = os.urandom(4096)
    report = tmp_path / "report.pdf"
    report.write_bytes(report_bytes)
    (tmp_path / "notes.txt").write_bytes(notes_bytes)
    (tmp_path / "blob.zzz").write_bytes(blob_bytes)
    csv_stream = io.BytesIO(csv_bytes)

    expected = [
        ("report.pdf", "application/pdf", report_bytes),
        ("chart.png", "image/png", chart_bytes),
        ("data.csv", "text/csv", csv_bytes),
        ("notes.txt", "text/plain", notes_bytes),
        ("blob.zzz", "application/octet-stream", blob_bytes),
    ]
    hook = make_hook()
    created = hook.create_order_message(
        ORDER,
        "Here are the files",
        user_id=user_id,
        staff_only=staff_only,
        attachments=[
            report,
            ("chart.png", chart_bytes),
            ("data.csv", csv_stream),
            ObjectStoragePath(f"file://{tmp_path}/notes.txt"),
            f"file://{tmp_path}/blob.zzz",
        ],
    )

    (request,) = logged(spp_sandbox)
    assert request["method"] == "POST"
    assert request["path"] == f"/api/order_messages/{ORDER}"
    assert request["status"] == 201
    assert request["body_kind"] == "multipart"
    assert request["body_error"] is None
    assert request["form"] == expected_form
    assert [(f["field"], f["filename"], f["content_type"], f["size"], f["sha256"]) for f in request["files"]] == [
        ("attachments[]", name, ctype, len(data), sha256(data)) for name, ctype, data in expected
    ]
    assert request["headers"]["authorization"] == f"Bearer {spp_sandbox.token}"
    assert request["headers"]["accept"] == "application/json"
    assert not csv_stream.closed  # the caller's file object stays theirs

    assert isinstance(created, MessageResource)
    assert type(created.id) is int
    assert created.staff_only is staff_only
    assert created.user_id == (user_id or 1)
    assert created.files == [
        f"{spp_sandbox.url}/_sandbox/files/{created.id}/{quote(n, safe='')}" for n, _, _ in expected
    ]
    for url, (_, _, data) in zip(created.files, expected, strict=True):
        assert download(url) == data

    (stored,) = spp_sandbox.messages()
    assert stored.id == created.id
    assert [(f.filename, f.content_type, f.data) for f in stored.files] == expected


def test_compressed_attachments_are_sent_as_the_compressed_type(
    spp_sandbox: SandboxServer, make_hook: HookFactory, tmp_path: Any
) -> None:
    """``data.csv.gz`` holds gzip bytes, not CSV text: its part says application/gzip, as the file is."""
    import gzip

    (tmp_path / "data.csv.gz").write_bytes(gzip.compress(b"id,total\n1,20\n"))
    names = {
        "backup.tar.gz": "application/gzip",
        "backup.tgz": "application/gzip",
        "rows.json.xz": "application/x-xz",
        "dump.sql.bz2": "application/x-bzip2",
        "legacy.Z": "application/x-compress",
        "page.html.br": "application/octet-stream",
        "plain.csv": "text/csv",
    }
    files = [str(tmp_path / "data.csv.gz"), *((name, b"\x1f\x8b compressed") for name in names)]

    make_hook().create_order_message(ORDER, "Compressed files", attachments=files)

    (request,) = logged(spp_sandbox, "POST")
    sent = {part["filename"]: part["content_type"] for part in request["files"]}
    assert sent == {"data.csv.gz": "application/gzip", **names}
    (stored,) = spp_sandbox.messages()
    assert {f.filename: f.content_type for f in stored.files} == sent


def test_multipart_body_is_streamed_with_a_content_length_not_chunked(
    spp_sandbox: SandboxServer, make_hook: HookFactory, tmp_path: Any
) -> None:
    from airflow.sdk import ObjectStoragePath

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(300 * 1024))
    (tmp_path / "o.txt").write_bytes(b"object storage")
    make_hook().create_order_message(
        ORDER,
        "streamed",
        attachments=[big, ("mem.bin", io.BytesIO(b"x" * 1000)), ObjectStoragePath(f"file://{tmp_path}/o.txt")],
    )

    (request,) = logged(spp_sandbox)
    headers = request["headers"]
    content_type = headers["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    boundary = content_type.split("boundary=", 1)[1]
    assert len(boundary) >= 16
    assert "transfer-encoding" not in headers
    assert int(headers["content-length"]) == request["body_size"]
    assert request["body_size"] > 300 * 1024
    assert [f["size"] for f in request["files"]] == [300 * 1024, 1000, len(b"object storage")]


@pytest.mark.parametrize("kind", ["bytesio", "object-storage-path", "file-url-string"])
def test_large_streamed_attachments_are_sent_whole(
    spp_sandbox: SandboxServer, make_hook: HookFactory, tmp_path: Any, kind: str
) -> None:
    from airflow.sdk import ObjectStoragePath

    data = os.urandom(100 * 1024)
    (tmp_path / "big.bin").write_bytes(data)
    attachment: Any = {
        "bytesio": ("big.bin", io.BytesIO(data)),
        "object-storage-path": ObjectStoragePath(f"file://{tmp_path}/big.bin"),
        "file-url-string": f"file://{tmp_path}/big.bin",
    }[kind]

    created = make_hook(extra={"timeout": 0.5}).create_order_message(ORDER, "big", attachments=[attachment])

    (request,) = logged(spp_sandbox)
    assert [(f["filename"], f["size"], f["sha256"]) for f in request["files"]] == [("big.bin", len(data), sha256(data))]
    assert download(created.files[0]) == data


# -- listing and finding -----------------------------------------------------------------------------------


def test_list_order_messages_follows_next_links_newest_first(
    spp_sandbox: SandboxServer, make_hook: HookFactory
) -> None:
    created = [spp_sandbox.store.create_message(order_id=ORDER_ID, message=f"message {i}") for i in range(25)]
    spp_sandbox.store.create_message(order_id=1002, message="another order")

    messages = list(make_hook().list_order_messages(ORDER, per_page=10))

    assert [m.id for m in messages] == [m.id for m in reversed(created)]
    assert [m.message for m in messages] == [f"message {i}" for i in reversed(range(25))]
    gets = logged(spp_sandbox)
    assert [(r["method"], r["path"]) for r in gets] == [("GET", f"/api/order_messages/{ORDER}")] * 3
    assert [r["query"] for r in gets] == ["limit=10", "limit=10&page=2", "limit=10&page=3"]
    assert all(r["status"] == 200 for r in gets)


def test_a_next_link_to_another_origin_is_refused(
    spp_sandbox: SandboxServer, spp_sandbox_other_host: SandboxServer, make_hook: HookFactory
) -> None:
    for i in range(3):
        spp_sandbox.store.create_message(order_id=ORDER_ID, message=f"m{i}")
    hook = make_hook()
    # The sandbox builds its paginator links from the Host header: make it point them at the other server.
    hook.get_conn().headers["Host"] = urlsplit(spp_sandbox_other_host.url).netloc

    pages = hook.list_order_messages(ORDER, per_page=2)
    first_page = [next(pages).id, next(pages).id]
    with pytest.raises(SppUnexpectedResponseError, match="points away from") as caught:
        next(pages)

    assert first_page == [3, 2]
    assert caught.value.status_code == 200
    (request,) = logged(spp_sandbox)
    assert caught.value.request_id == request["api_identifier"]
    assert logged(spp_sandbox_other_host) == []


def test_find_order_message(spp_sandbox: SandboxServer, make_hook: HookFactory) -> None:
    hook = make_hook()
    since = datetime.now(UTC) - timedelta(seconds=5)
    target = hook.create_order_message(ORDER, "Deploy done\nall green", user_id=3, staff_only=True)
    hook.create_order_message(ORDER, "Something else", user_id=3, staff_only=True)
    hook.create_order_message(1002, "Deploy done\nall green", user_id=3, staff_only=True)  # another order
    assert target.created_at is not None
    spp_sandbox.store.clear_requests()

    def find(text: str = "  Deploy done\r\nall green \n", **kwargs: Any) -> MessageResource | None:
        return hook.find_order_message(ORDER, text, **{"created_since": since, **kwargs})

    found = find()
    assert found is not None
    assert found.id == target.id
    assert find(user_id=3).id == target.id  # type: ignore[union-attr]
    assert find(user_id="3", staff_only=True).id == target.id  # type: ignore[union-attr]
    assert find(user_id=2) is None
    assert find(staff_only=False) is None
    assert find("Deploy done all green") is None
    assert find(created_since=target.created_at + timedelta(seconds=1)) is None
    assert find(created_since=datetime.now(UTC) + timedelta(hours=1)) is None
    assert find(created_since=since.replace(tzinfo=None)).id == target.id  # type: ignore[union-attr]  # naive = UTC
    assert find(created_since=(since + timedelta(hours=1)).replace(tzinfo=None)) is None

    seen = logged(spp_sandbox)
    assert seen
    assert {(r["method"], r["path"]) for r in seen} == {("GET", f"/api/order_messages/{ORDER}")}
    assert len(spp_sandbox.messages()) == 3


def test_find_order_message_stops_at_the_first_older_message(
    spp_sandbox: SandboxServer, make_hook: HookFactory
) -> None:
    for i in range(120):  # two pages of 100
        spp_sandbox.store.create_message(order_id=ORDER_ID, message=f"old {i}")
    hook = make_hook()

    assert hook.find_order_message(ORDER, "old 0", created_since=datetime.now(UTC) + timedelta(minutes=1)) is None
    assert [r["query"] for r in logged(spp_sandbox)] == ["limit=100"]  # no second page fetched

    spp_sandbox.store.clear_requests()
    found = hook.find_order_message(ORDER, "old 0", created_since=datetime.now(UTC) - timedelta(minutes=1))
    assert found is not None
    assert found.id == 1
    assert [r["query"] for r in logged(spp_sandbox)] == ["limit=100", "limit=100&page=2"]


def test_delete_order_message_then_404(spp_sandbox: SandboxServer, make_hook: HookFactory) -> None:
    hook = make_hook()
    keep = hook.create_order_message(ORDER, "keep me")
    doomed = hook.create_order_message(ORDER, "delete me")

    hook.delete_order_message(doomed.id)
    assert [m.id for m in spp_sandbox.messages()] == [keep.id]

    with pytest.raises(SppNotFoundError) as caught:
        hook.delete_order_message(doomed.id)
    assert caught.value.status_code == 404
    deletes = logged(spp_sandbox, "DELETE")
    assert [(r["path"], r["status"]) for r in deletes] == [
        (f"/api/order_messages/{doomed.id}", 204),
        (f"/api/order_messages/{doomed.id}", 404),
    ]
    assert caught.value.request_id == deletes[1]["api_identifier"]
    assert [m.id for m in spp_sandbox.messages()] == [keep.id]


@pytest.mark.parametrize("fault", ["drop_after", "gateway_timeout", "slow"])
def test_a_delete_retried_after_a_lost_answer_that_then_gets_404_has_succeeded(
    spp_sandbox: SandboxServer, make_hook: HookFactory, fault: str
) -> None:
    """SPP deleted the message but its answer was lost; the retry's 404 means it is gone, as asked."""
    hook = make_hook(timeout=0.5)
    keep = hook.create_order_message(ORDER, "keep me")
    doomed = hook.create_order_message(ORDER, "delete me")
    spp_sandbox.add_fault(fault, method="DELETE", delay=1.0)

    with capture_logs() as entries:
        assert hook.delete_order_message(doomed.id) is None

    deletes = logged(spp_sandbox, "DELETE")
    assert [r["path"] for r in deletes] == [f"/api/order_messages/{doomed.id}"] * 2
    assert deletes[1]["status"] == 404
    assert [m.id for m in spp_sandbox.messages()] == [keep.id]
    assert any(f"message {doomed.id} is gone (404) after a try whose answer was lost" in e["event"] for e in entries)
    with pytest.raises(SppNotFoundError):  # without a lost answer first, a 404 is still an error
        hook.delete_order_message(doomed.id)


def test_get_order_by_number_and_id(spp_sandbox: SandboxServer, make_hook: HookFactory) -> None:
    hook = make_hook()
    by_number = hook.get_order(ORDER)
    by_id = hook.get_order(1003)
    lower = hook.get_order("e4a269fc")

    assert isinstance(by_number, Order)
    assert (by_number.id, by_number.number, by_number.status) == (1001, ORDER, "Working")
    assert (by_id.id, by_id.number, by_id.status) == (1003, "9F8E7D6C", "Complete")
    assert lower.id == 1001
    assert by_number.client is not None
    assert by_number.client.id == 2
    assert [r["path"] for r in logged(spp_sandbox, "GET")] == [
        f"/api/orders/{ORDER}",
        "/api/orders/1003",
        "/api/orders/e4a269fc",
    ]
    with pytest.raises(SppNotFoundError):
        hook.get_order("NOPE1234")


def test_list_orders_with_and_without_status_filter(spp_sandbox: SandboxServer, make_hook: HookFactory) -> None:
    hook = make_hook()
    working = list(hook.list_orders(status="Working"))
    everything = list(hook.list_orders(per_page=3))
    oldest_first = list(hook.list_orders(sort="created_at:asc"))

    assert [(o.id, o.status) for o in working] == [(1004, "Working"), (1001, "Working")]
    assert [o.id for o in everything] == [1004, 1003, 1002, 1001]
    assert [o.id for o in oldest_first] == [1004, 1001, 1002, 1003]
    queries = [r["query"] for r in logged(spp_sandbox)]
    assert "filters%5Bstatus%5D%5B%24eq%5D=Working" in queries[0]
    assert "filters" not in queries[1]
    assert len(queries) == 4  # one page of "Working", two pages of three, one sorted page


def test_a_filtered_sorted_listing_keeps_its_query_on_every_page(
    spp_sandbox: SandboxServer, make_hook: HookFactory
) -> None:
    """Laravel's next links carry only ?page=N: pages 2.. must still be filtered and sorted as page 1."""
    for n in range(8):  # interleave: every other new order is Working
        spp_sandbox.store.add_order(f"NEW0000{n}", "Working" if n % 2 else "Complete")
    working = sorted(o["id"] for o in spp_sandbox.store.orders() if o["status"] == "Working")
    assert len(working) == 6  # three pages of two

    orders = list(make_hook().list_orders(status="Working", sort="id:asc", per_page=2))

    assert [(o.id, o.status) for o in orders] == [(order_id, "Working") for order_id in working]
    queries = [r["query"] for r in logged(spp_sandbox, "GET")]
    assert len(queries) == 3
    for page, query in enumerate(queries, start=1):
        params = dict(parse_qsl(query))
        assert params.pop("page", "1") == str(page)
        assert params == {"limit": "2", "sort": "id:asc", "filters[status][$eq]": "Working"}


def test_a_server_capped_page_size_is_followed_with_the_same_query(
    spp_sandbox: SandboxServer, make_hook: HookFactory
) -> None:
    """SPP's maximum ``limit`` "varies by endpoint": smaller pages than asked still keep filter and sort."""
    for n in range(5):
        spp_sandbox.store.add_order(f"CAP0000{n}", "Complete" if n % 2 else "Working")
    spp_sandbox.store.max_per_page = 1

    orders = list(make_hook().list_orders(status="complete", sort="id:desc", per_page=50))

    assert [o.number for o in orders] == ["CAP00003", "CAP00001", "9F8E7D6C"]
    assert {o.status for o in orders} == {"Complete"}
    assert [dict(parse_qsl(r["query"])).get("page", "1") for r in logged(spp_sandbox, "GET")] == ["1", "2", "3"]


def test_next_links_that_carry_the_query_or_are_relative_are_followed(
    spp_sandbox: SandboxServer, make_hook: HookFactory
) -> None:
    """withQueryString() links (the query repeated) and relative links name the same pages."""
    for i in range(5):
        spp_sandbox.store.create_message(order_id=ORDER_ID, message=f"m{i}")
    hook = make_hook()
    for style in ("with_query", "relative"):
        spp_sandbox.store.clear_requests()
        spp_sandbox.store.link_style = style
        assert [m.message for m in hook.list_order_messages(ORDER, per_page=2)] == ["m4", "m3", "m2", "m1", "m0"]
        assert [r["query"] for r in logged(spp_sandbox, "GET")] == ["limit=2", "limit=2&page=2", "limit=2&page=3"]


# -- test_connection ---------------------------------------------------------------------------------------


def test_test_connection_success_is_one_get(spp_sandbox: SandboxServer, spp_sandbox_conn: str) -> None:
    ok, message = SppHook(spp_sandbox_conn).test_connection()
    assert ok is True
    assert message == f"Connected to the SPP workspace at {spp_sandbox.url}."
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
    """What the README says ``timeout`` is: an answer that keeps arriving may take longer than it."""
    hook = make_hook(host=trickling_server, extra={"timeout": 0.6, "max_retries": 0})
    started = time.monotonic()
    assert [order.id for order in hook.list_orders()] == [1]
    assert time.monotonic() - started > 2 * hook.settings.timeout


def test_redirect_to_another_host_does_not_carry_the_token(
    spp_sandbox: SandboxServer, spp_sandbox_other_host: SandboxServer, make_hook: HookFactory
) -> None:
    hook = make_hook()
    same_host = f"{spp_sandbox.url}/_sandbox/redirect?{urlencode({'to': f'{spp_sandbox.url}/api/orders'})}"
    assert hook._request("GET", same_host).json()["data"]  # followed, still authenticated on the same origin

    other = f"{spp_sandbox.url}/_sandbox/redirect?{urlencode({'to': f'{spp_sandbox_other_host.url}/api/orders'})}"
    with pytest.raises(SppAuthError) as caught:
        hook._request("GET", other)

    assert caught.value.status_code == 401
    (leg,) = logged(spp_sandbox_other_host)
    assert leg["path"] == "/api/orders"
    assert "authorization" not in leg["headers"]
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
        make_hook()._request("POST", url, json={"message": "follow me"}, idempotent=False)

    assert type(caught.value) is SppApiError
    assert caught.value.status_code == status
    assert urlsplit(spp_sandbox_other_host.url).netloc in str(caught.value)
    assert [r["method"] for r in logged(spp_sandbox)] == ["POST"]
    assert logged(spp_sandbox_other_host) == []
    assert spp_sandbox.messages() == []
    assert spp_sandbox_other_host.messages() == []


# -- the token never leaks ---------------------------------------------------------------------------------


def test_the_token_never_shows_in_reprs_errors_or_logs(
    spp_sandbox: SandboxServer, spp_sandbox_other_host: SandboxServer, make_hook: HookFactory, tmp_path: Any
) -> None:
    token = spp_sandbox.token
    errors: list[BaseException] = []

    def expect_error(call: Callable[[], Any]) -> None:
        try:
            call()
        except SppError as err:
            errors.append(err)
        else:
            pytest.fail("expected an SppError")

    with capture_logs() as entries:
        hook = make_hook()
        other = f"{spp_sandbox.url}/_sandbox/redirect?{urlencode({'to': f'{spp_sandbox_other_host.url}/api/x'})}"
        expect_error(lambda: hook.create_order_message("NOPE", "x"))  # 404
        expect_error(lambda: hook._request("GET", other))  # 401 on the other host
        expect_error(lambda: hook._request("POST", other, idempotent=False))  # redirected
        for kind in ("rate_limit", "bad_gateway", "gateway_timeout", "server_error", "drop_after", "missing_id"):
            spp_sandbox.add_fault(kind, times=None, method="POST", retry_after=0)
            expect_error(lambda: hook.create_order_message(ORDER, "x"))
            spp_sandbox.clear_faults()
        spp_sandbox.add_fault("malformed_json", method="POST")
        expect_error(lambda: hook.create_order_message(ORDER, "x"))
        spp_sandbox.add_fault("slow", method="POST", delay=1)
        expect_error(lambda: make_hook(conn_id="spp_slow", extra={"timeout": 0.2}).create_order_message(ORDER, "x"))
        expect_error(lambda: hook.create_order_message(ORDER, "x", attachments=[tmp_path / "missing"]))
        expect_error(lambda: make_hook(conn_id="spp_closed", host=f"http://127.0.0.1:{closed_port()}").get_order(1))
        expect_error(lambda: make_hook(conn_id="spp_bad", api_version="bad version").settings)
        wrong = make_hook(conn_id="spp_wrong", password="wrong-token-value")
        expect_error(lambda: wrong.get_order(ORDER))
        texts = [wrong.test_connection()[1], hook.test_connection()[1]]

    assert len(errors) == 15
    texts += [repr(hook), str(hook), repr(hook.settings), str(hook.settings), repr(hook.get_conn().auth)]
    texts += [str(e) for e in errors] + [repr(e) for e in errors]
    texts += [json.dumps(e, default=str) for e in entries]
    for text in texts:
        assert token not in text
        assert "wrong-token-value" not in text
    # ...while the token did go to the sandbox, as a header, where it belongs.
    assert logged(spp_sandbox)[0]["headers"]["authorization"] == f"Bearer {token}"


def test_uri_form_connection_with_string_extras_works(
    spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from urllib.parse import quote

    uri = f"spp://:{spp_sandbox.token}@{quote(spp_sandbox.url, safe='')}?timeout=5&max_retries=1&api_version=2024-03-05"
    monkeypatch.setenv("AIRFLOW_CONN_SPP_URI_FORM", uri)
    hook = SppHook("spp_uri_form")
    created = hook.create_order_message("E4A269FC", "Sent through a URI connection")
    assert (hook.settings.base_url, hook.settings.timeout, hook.settings.max_retries) == (spp_sandbox.url, 5.0, 1)
    (request,) = logged(spp_sandbox, "POST")
    assert request["headers"]["x-api-version"] == "2024-03-05"
    assert [m.id for m in spp_sandbox.messages()] == [created.id]


def test_a_tls_failure_is_reported_once_and_not_retried(
    spp_sandbox: SandboxServer, make_hook: HookFactory, hook_warnings: Callable[[], list[str]]
) -> None:
    hook = make_hook(host=spp_sandbox.url.replace("http://", "https://"))
    with pytest.raises(SppTransportError, match="TLS handshake failed") as caught:
        hook.create_order_message("E4A269FC", "over https to a plain-http port")
    assert caught.value.request_sent is False
    assert caught.value.retryable is False
    assert hook_warnings() == []
    assert spp_sandbox.messages() == []


def test_an_error_after_a_followed_redirect_names_the_path_that_answered(
    spp_sandbox: SandboxServer, spp_sandbox_other_host: SandboxServer, make_hook: HookFactory
) -> None:
    hook = make_hook()
    target = f"{spp_sandbox_other_host.url}/api/orders"
    with pytest.raises(SppAuthError, match="GET /api/orders failed with 401"):
        hook._request("GET", f"{spp_sandbox.url}/_sandbox/redirect?to={target}")
