"""The SPP sandbox over real HTTP: endpoints, admin API, every fault kind, the CLI and the pytest plugin."""

from __future__ import annotations

import hashlib
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.client import HTTPConnection
from typing import Any

import pytest
import requests

from airflow_provider_spp.sandbox import Fault, FaultKind, SandboxServer, SandboxStore, parse_fault_spec
from airflow_provider_spp.sandbox.faults import FaultPlan, RandomFaults

TOKEN = "test-sandbox-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ORDER = "E4A269FC"
ORDER_ID = 1001

pytestmark = pytest.mark.integration
pytest_plugins = ["pytester"]


class Clock:
    """A clock the tests can pin; real UTC time otherwise."""

    def __init__(self) -> None:
        self.fixed: datetime | None = None

    def __call__(self) -> datetime:
        return self.fixed or datetime.now(UTC)


CLOCK = Clock()


class Http:
    """``requests`` with a timeout on every call, so no test can hang."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout

    def request(self, method: str, url: str, **kw: Any) -> requests.Response:
        timeout = kw.pop("timeout", self.timeout)
        return requests.request(method, url, timeout=timeout, **kw)

    def get(self, url: str, **kw: Any) -> requests.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> requests.Response:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> requests.Response:
        return self.request("PUT", url, **kw)

    def delete(self, url: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", url, **kw)


http = Http()


@pytest.fixture(scope="module")
def running() -> Iterator[SandboxServer]:
    with SandboxServer(TOKEN, store=SandboxStore(clock=CLOCK)) as server:
        yield server


@pytest.fixture(scope="module")
def other_running() -> Iterator[SandboxServer]:
    with SandboxServer(TOKEN) as server:
        yield server


@pytest.fixture
def sandbox(running: SandboxServer) -> Iterator[SandboxServer]:
    running.reset()
    CLOCK.fixed = None
    yield running
    CLOCK.fixed = None


@pytest.fixture
def other(other_running: SandboxServer) -> SandboxServer:
    other_running.reset()
    return other_running


def post_message(server: SandboxServer, text: str = "Hello world!", order: str = ORDER, **kw: Any) -> requests.Response:
    return http.post(f"{server.url}/api/order_messages/{order}", json={"message": text}, headers=AUTH, **kw)


# -- the connection ---------------------------------------------------------------------------------


def test_accepted_connections_send_small_writes_at_once(sandbox: SandboxServer) -> None:
    """TCP_NODELAY on every accepted socket, as nginx in front of SPP sets it on keep-alive connections.

    The server writes a response as two segments (headers, then body); without TCP_NODELAY the body
    waits for the client's delayed ACK, about 40 ms on every request after a connection's first.
    """
    client = HTTPConnection("127.0.0.1", sandbox.port, timeout=10)
    try:
        client.request("GET", "/_sandbox/health")
        client.getresponse().read()
        assert client.sock is not None
        client_port = client.sock.getsockname()[1]
        assert sandbox._server is not None
        accepted = [
            sock
            for sock in (c.transport.get_extra_info("socket") for c in sandbox._server.server_state.connections)
            if sock is not None and sock.getpeername()[1] == client_port
        ]
        assert len(accepted) == 1
        assert accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        client.close()


def test_a_late_update_after_a_reset_does_not_touch_the_new_log() -> None:
    """A slow answer that finishes after a reset must not write its status onto a newer request's entry."""
    store = SandboxStore()
    slow = store.record_request({"method": "POST", "status": None})
    store.clear_requests()
    fresh = store.record_request({"method": "POST", "status": None})
    store.update_request(slow, status=201)
    assert [r["status"] for r in store.requests()] == [None]
    store.update_request(fresh, status=429)
    assert [(r["index"], r["status"]) for r in store.requests()] == [(0, 429)]


# -- auth, headers, errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["none", "wrong-token", "no-scheme", "basic"],
)
def test_requests_without_the_token_get_401(sandbox: SandboxServer, headers: dict[str, str]) -> None:
    r = http.post(f"{sandbox.url}/api/order_messages/{ORDER}", json={"message": "x"}, headers=headers)
    assert r.status_code == 401
    assert r.json() == {"message": "Unauthenticated."}
    assert r.headers["X-Api-Version"] == "2024-03-05"
    assert sandbox.messages() == []
    assert sandbox.requests()[-1]["status"] == 401


def test_every_response_has_a_fresh_api_identifier_and_echoes_the_version(sandbox: SandboxServer) -> None:
    first = http.get(f"{sandbox.url}/api/orders", headers={**AUTH, "X-Api-Version": "2023-12-14"})
    second = http.get(f"{sandbox.url}/api/orders", headers=AUTH)
    admin = http.get(f"{sandbox.url}/_sandbox/faults")
    assert first.headers["X-Api-Version"] == "2023-12-14"
    assert second.headers["X-Api-Version"] == "2024-03-05"
    ids = {r.headers["X-Api-Identifier"] for r in (first, second, admin)}
    assert len(ids) == 3
    assert all(uuid.UUID(i).version == 4 for i in ids)
    assert [r["api_identifier"] for r in sandbox.requests()] == [
        first.headers["X-Api-Identifier"],
        second.headers["X-Api-Identifier"],
    ]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_order_is_a_laravel_404(sandbox: SandboxServer, method: str) -> None:
    r = http.request(method, f"{sandbox.url}/api/order_messages/NOPE1234", json={"message": "x"}, headers=AUTH)
    assert r.status_code == 404
    assert r.json() == {"message": "No query results for model [App\\Models\\Order] NOPE1234"}
    assert sandbox.messages() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/order_messages/a%2Fb"),
        ("POST", "/api/order_messages/a%2Fb"),
        ("GET", "/api/orders/a%2Fb"),
        ("DELETE", "/api/order_messages/1%2F2"),
    ],
)
def test_percent_encoded_slash_reaches_the_handler_as_a_json_404(
    sandbox: SandboxServer, method: str, path: str
) -> None:
    r = http.request(method, f"{sandbox.url}{path}", json={"message": "x"}, headers=AUTH)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert r.json()["message"].startswith("No query results for model [App\\Models\\")
    assert r.json()["message"].endswith(("a/b", "1/2"))
    assert sandbox.requests()[-1]["path"] == path


def test_unknown_routes_and_methods_answer_json(sandbox: SandboxServer) -> None:
    missing = http.get(f"{sandbox.url}/api/order_messages/{ORDER}/extra", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json() == {"message": f"The route api/order_messages/{ORDER}/extra could not be found."}
    wrong_method = http.put(f"{sandbox.url}/api/order_messages/{ORDER}", headers=AUTH)
    assert wrong_method.status_code == 405
    assert "PUT method is not supported" in wrong_method.json()["message"]
    assert "X-Api-Identifier" in wrong_method.headers


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"message": ["The message field is required."]}),
        ({"message": ""}, {"message": ["The message field is required."]}),
        ({"message": "   \n"}, {"message": ["The message field is required."]}),
        ({"message": 5}, {"message": ["The message field must be a string."]}),
        ({"message": "x", "user_id": 99}, {"user_id": ["The selected user id is invalid."]}),
        ({"message": "x", "user_id": "two"}, {"user_id": ["The user id field must be an integer."]}),
        ({"message": "x", "staff_only": "yes"}, {"staff_only": ["The staff only field must be true or false."]}),
        ({"message": "x", "attachments": ["a.txt"]}, {"attachments.0": ["The attachments.0 field must be a file."]}),
    ],
)
def test_invalid_json_bodies_get_laravel_422(sandbox: SandboxServer, body: dict[str, Any], errors: Any) -> None:
    r = http.post(f"{sandbox.url}/api/order_messages/{ORDER}", json=body, headers=AUTH)
    assert r.status_code == 422
    assert r.json() == {"message": next(iter(errors.values()))[0], "errors": errors}
    assert sandbox.messages() == []


def test_several_validation_errors_are_summarised_like_laravel(sandbox: SandboxServer) -> None:
    r = http.post(
        f"{sandbox.url}/api/order_messages/{ORDER}",
        data={"message": "", "user_id": "99", "staff_only": "true"},
        files=[("attachments[]", ("a.txt", b"a", "text/plain"))],
        headers=AUTH,
    )
    assert r.status_code == 422
    assert r.json()["message"] == "The message field is required. (and 2 more errors)"
    assert set(r.json()["errors"]) == {"message", "user_id", "staff_only"}


# -- creating, listing, deleting ---------------------------------------------------------------------


def test_json_create_returns_an_unwrapped_message_resource(sandbox: SandboxServer) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    r = post_message(sandbox, "  Hello world!  ")
    assert r.status_code == 201
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    documented = {"id", "user_id", "created_at", "message", "staff_only", "files", "order", "ticket"}
    assert set(body) == documented | {"is_auto_generated", "via", "date_seen"}  # Wayfront's message fields
    assert (body["is_auto_generated"], body["via"], body["date_seen"]) == (False, "api", None)
    assert body["id"] == 1
    assert body["user_id"] == 1  # the token's user
    assert body["message"] == "Hello world!"  # Laravel's TrimStrings
    assert body["staff_only"] is False
    assert body["files"] == []
    created = datetime.fromisoformat(body["created_at"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", body["created_at"])
    assert before <= created <= datetime.now(UTC)
    assert body["order"]["id"] == ORDER_ID
    assert body["order"]["number"] == ORDER
    assert body["order"]["last_message_at"] == body["created_at"]
    ticket = body["ticket"]
    assert {"id", "subject", "status", "source", "order_id", "client", "employees", "tags", "form_data"} <= set(ticket)
    assert ticket["order_id"] == ORDER_ID
    client = ticket["client"]
    assert client["email"] == "cleo@client.example.org"
    assert client["address"]["city"] == "Berlin"
    assert client["role"]["name"] == "Client"
    assert client["managers"][0]["id"] == 3
    second = post_message(sandbox, "again", order=str(ORDER_ID))
    assert second.json()["id"] == 2
    stored = sandbox.messages()
    assert [(m.id, m.order_id, m.message) for m in stored] == [(1, ORDER_ID, "Hello world!"), (2, ORDER_ID, "again")]
    handled = [entry["handling_ms"] for entry in sandbox.requests()]
    assert len(handled) == 2
    assert all(isinstance(ms, float) and ms > 0 for ms in handled)  # what benchmarks/per_post.py reports


def test_json_create_with_user_and_staff_only_by_order_id(sandbox: SandboxServer) -> None:
    r = http.post(
        f"{sandbox.url}/api/order_messages/1002",
        json={"message": "internal", "user_id": 2, "staff_only": True},
        headers=AUTH,
    )
    assert r.status_code == 201
    assert (r.json()["user_id"], r.json()["staff_only"], r.json()["order"]["number"]) == (2, True, "B7C3D2A1")


def test_urlencoded_create_is_accepted_like_a_laravel_form(sandbox: SandboxServer) -> None:
    r = http.post(
        f"{sandbox.url}/api/order_messages/{ORDER}",
        data={"message": "Größe & Maß = ok", "staff_only": "0", "user_id": "2"},
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    assert (r.json()["message"], r.json()["staff_only"], r.json()["user_id"]) == ("Größe & Maß = ok", False, 2)
    logged = sandbox.requests()[0]
    assert logged["content_type"] == "application/x-www-form-urlencoded"
    assert logged["form"] == {"message": "Größe & Maß = ok", "staff_only": "0", "user_id": "2"}


def test_multipart_create_stores_both_files_byte_for_byte(sandbox: SandboxServer) -> None:
    binary = bytes(range(256)) * 40
    text = "Zeile 1\r\nZeile 2 äöü\n".encode()
    r = http.post(
        f"{sandbox.url}/api/order_messages/{ORDER}",
        data={"message": "See attached", "staff_only": "1", "user_id": "2"},
        files=[
            ("attachments[]", ("report.bin", binary, "application/octet-stream")),
            ("attachments[]", ("notes ü.txt", text, "text/plain")),
        ],
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["message"], body["staff_only"], body["user_id"]) == ("See attached", True, 2)
    assert len(body["files"]) == 2
    assert body["files"][0] == f"{sandbox.url}/_sandbox/files/{body['id']}/report.bin"
    for url, expected in zip(body["files"], (binary, text), strict=True):
        download = http.get(url)
        assert download.status_code == 200
        assert download.content == expected
    admin = http.get(f"{sandbox.url}/_sandbox/messages").json()
    assert [(f["filename"], f["size"], f["sha256"], f["content_type"]) for f in admin[0]["files"]] == [
        ("report.bin", len(binary), hashlib.sha256(binary).hexdigest(), "application/octet-stream"),
        ("notes ü.txt", len(text), hashlib.sha256(text).hexdigest(), "text/plain"),
    ]
    logged = sandbox.requests()[0]
    assert logged["content_type"].startswith("multipart/form-data; boundary=")
    assert logged["form"] == {"message": "See attached", "staff_only": "1", "user_id": "2"}
    assert [(f["field"], f["filename"], f["sha256"]) for f in logged["files"]] == [
        ("attachments[]", "report.bin", hashlib.sha256(binary).hexdigest()),
        ("attachments[]", "notes ü.txt", hashlib.sha256(text).hexdigest()),
    ]
    assert sandbox.messages()[0].files[0].data == binary


def test_duplicate_and_pathlike_file_names_are_made_safe(sandbox: SandboxServer) -> None:
    r = http.post(
        f"{sandbox.url}/api/order_messages/{ORDER}",
        data={"message": "files"},
        files=[
            ("attachments[]", ("a.txt", b"1", "text/plain")),
            ("attachments[]", ("../x/a.txt", b"2", "text/plain")),
        ],
        headers=AUTH,
    )
    assert r.status_code == 201
    assert [f.filename for f in sandbox.messages()[0].files] == ["a.txt", "a (2).txt"]
    assert http.get(r.json()["files"][1]).content == b"2"


def test_multipart_staff_only_accepts_only_laravel_booleans(sandbox: SandboxServer) -> None:
    url = f"{sandbox.url}/api/order_messages/{ORDER}"
    ok = http.post(url, data={"message": "m", "staff_only": "0"}, files={"x": ("", b"")}, headers=AUTH)
    assert ok.status_code == 201
    assert ok.json()["staff_only"] is False
    words = http.post(url, data={"message": "m", "staff_only": "false"}, files={"x": ("", b"")}, headers=AUTH)
    assert words.status_code == 422


def test_listing_is_newest_first_and_paginated_with_links(sandbox: SandboxServer) -> None:
    start = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    for minute, text in [(0, "m1"), (2, "m2"), (1, "m3"), (2, "m4"), (3, "m5")]:
        CLOCK.fixed = start + timedelta(minutes=minute)
        assert post_message(sandbox, text).status_code == 201
    post_message(sandbox, "other order", order="B7C3D2A1")
    url = f"{sandbox.url}/api/order_messages/{ORDER}"
    page1 = http.get(url, params={"limit": 2}, headers=AUTH)
    assert page1.status_code == 200
    body = page1.json()
    assert [m["message"] for m in body["data"]] == ["m5", "m4"]  # m4 and m2 share a time: higher id first
    # Laravel's default paginator: each link is the path and ?page=N, without the request's other parameters.
    assert body["links"] == {
        "first": f"{url}?page=1",
        "last": f"{url}?page=3",
        "prev": None,
        "next": f"{url}?page=2",
    }
    assert body["meta"] == {
        "current_page": 1,
        "from": 1,
        "last_page": 3,
        "path": url,
        "per_page": 2,
        "to": 2,
        "total": 5,
    }
    seen = [m["message"] for m in body["data"]]
    next_url = body["links"]["next"]
    while next_url:
        page = http.get(next_url, params={"limit": 2}, headers=AUTH).json()
        seen += [m["message"] for m in page["data"]]
        next_url = page["links"]["next"]
    assert seen == ["m5", "m4", "m2", "m3", "m1"]
    assert page["links"]["prev"] == f"{url}?page=2"
    assert page["meta"]["to"] == 5
    verbatim = http.get(body["links"]["next"], headers=AUTH).json()  # the link alone: the default 20 a page
    assert (verbatim["meta"]["per_page"], verbatim["data"]) == (20, [])
    default = http.get(url, headers=AUTH).json()
    assert default["meta"]["per_page"] == 20
    assert default["links"]["next"] is None
    assert http.get(url, params={"limit": 1000}, headers=AUTH).json()["meta"]["per_page"] == 100
    beyond = http.get(url, params={"page": 9}, headers=AUTH).json()
    assert (beyond["data"], beyond["meta"]["from"], beyond["links"]["next"]) == ([], None, None)


def test_order_links_leave_out_filters_and_sort_and_pages_can_be_capped(sandbox: SandboxServer) -> None:
    for n in range(3):
        sandbox.store.add_order(f"DONE000{n}", "Complete")
    sandbox.store.max_per_page = 2
    url = f"{sandbox.url}/api/orders"
    query = {"filters[status][$eq]": "Working", "sort": "id:asc", "limit": 50}

    first = http.get(url, params=query, headers=AUTH).json()

    assert [(o["id"], o["status"]) for o in first["data"]] == [(1001, "Working"), (1004, "Working")]
    assert first["meta"]["per_page"] == 2  # the server's cap, not the limit asked for
    assert first["links"]["next"] is None  # only two orders are Working
    unfiltered = http.get(url, params={"sort": "id:asc", "limit": 50}, headers=AUTH).json()
    assert unfiltered["links"]["next"] == f"{url}?page=2"
    following = http.get(unfiltered["links"]["next"], headers=AUTH).json()  # the link alone: no sort, no filter
    assert {o["status"] for o in following["data"]} == {"Complete"}  # newest first by default: the new orders
    sandbox.store.link_style = "with_query"  # Laravel's withQueryString()
    kept = http.get(url, params={"sort": "id:asc", "limit": 50, "page": 1}, headers=AUTH).json()["links"]
    assert kept["next"] == f"{url}?sort=id%3Aasc&limit=50&page=2"
    sandbox.store.link_style = "relative"
    assert http.get(url, params={"limit": 50}, headers=AUTH).json()["links"]["next"] == "/api/orders?page=2"
    sandbox.reset()
    assert (sandbox.store.max_per_page, sandbox.store.link_style) == (100, "laravel")
    assert [o["id"] for o in sandbox.store.orders()] == [1001, 1002, 1003, 1004]


def test_delete_removes_a_message_by_its_id(sandbox: SandboxServer) -> None:
    created = post_message(sandbox).json()
    r = http.delete(f"{sandbox.url}/api/order_messages/{created['id']}", headers=AUTH)
    assert r.status_code == 204
    assert r.content == b""
    assert sandbox.messages() == []
    assert http.get(f"{sandbox.url}/api/order_messages/{ORDER}", headers=AUTH).json()["data"] == []
    again = http.delete(f"{sandbox.url}/api/order_messages/{created['id']}", headers=AUTH)
    assert again.status_code == 404
    assert again.json()["message"] == f"No query results for model [App\\Models\\OrderMessage] {created['id']}"
    assert http.delete(f"{sandbox.url}/api/order_messages/{created['id']}").status_code == 401


def test_orders_list_and_get(sandbox: SandboxServer) -> None:
    url = f"{sandbox.url}/api/orders"
    params: dict[str, str | int] = {"limit": 2, "page": 1, "sort": "id:desc"}
    page = http.get(url, params=params, headers=AUTH).json()
    assert [o["id"] for o in page["data"]] == [1004, 1003]
    assert page["links"]["next"] == f"{url}?page=2"
    assert page["meta"]["total"] == 4
    assert [o["id"] for o in http.get(url, params={"sort": "id:asc"}, headers=AUTH).json()["data"]] == [
        1001,
        1002,
        1003,
        1004,
    ]
    newest = http.get(url, headers=AUTH).json()["data"]
    assert [o["id"] for o in newest] == [1003, 1002, 1001, 1004]  # by creation date
    working = http.get(url, params={"filters[status][$eq]": "Working"}, headers=AUTH).json()["data"]
    assert sorted(o["id"] for o in working) == [1001, 1004]
    by_number = http.get(f"{url}/{ORDER}", headers=AUTH)
    by_id = http.get(f"{url}/{ORDER_ID}", headers=AUTH)
    assert by_number.status_code == by_id.status_code == 200
    assert by_number.json() == by_id.json()
    assert by_id.json()["client"]["name"] == "Cleo Client"
    assert http.get(f"{url}/{ORDER.lower()}", headers=AUTH).json()["id"] == ORDER_ID
    assert http.get(f"{url}/999", headers=AUTH).status_code == 404
    assert http.get(url).status_code == 401


def test_generated_orders_are_listed_across_pages_until_the_next_reset(sandbox: SandboxServer) -> None:
    answer = http.post(f"{sandbox.url}/_sandbox/orders", json={"count": 1000, "status": "Pending"})
    assert answer.status_code == 201
    assert answer.json() == {"added": 1000, "ids": [1005, 2004]}
    url = f"{sandbox.url}/api/orders"
    pending = {"filters[status][$eq]": "Pending", "limit": 100, "sort": "id:asc"}
    first = http.get(url, params=pending, headers=AUTH).json()
    assert first["meta"]["total"] == 1000
    assert [o["number"] for o in first["data"][:2]] == ["B0000001", "B0000002"]
    last = http.get(url, params={**pending, "page": 10}, headers=AUTH).json()
    assert (last["data"][-1]["id"], last["data"][-1]["number"], last["links"]["next"]) == (2004, "B00003E8", None)
    assert http.get(f"{url}/b00003e8", headers=AUTH).json()["id"] == 2004
    assert http.post(f"{sandbox.url}/_sandbox/orders", json={"count": 0}).status_code == 400
    assert http.post(f"{sandbox.url}/_sandbox/orders", json={"count": 2, "colour": "red"}).status_code == 400
    sandbox.reset()
    assert http.get(url, params=pending, headers=AUTH).json()["meta"]["total"] == 0


# -- faults -----------------------------------------------------------------------------------------

REJECTING = [
    ("rate_limit", 429),
    ("server_error", 500),
    ("unavailable", 503),
    ("bad_gateway", 502),
]


@pytest.mark.parametrize(("kind", "status"), REJECTING)
def test_rejecting_faults_store_nothing(sandbox: SandboxServer, kind: str, status: int) -> None:
    sandbox.add_fault(kind, method="POST")
    r = post_message(sandbox)
    assert r.status_code == status
    assert "X-Api-Identifier" in r.headers
    assert sandbox.messages() == []
    assert (sandbox.requests()[-1]["fault"], sandbox.requests()[-1]["status"]) == (kind, status)
    assert post_message(sandbox).status_code == 201  # consumed: the next request is fine
    if kind == "rate_limit":
        assert r.headers["Retry-After"] == "1"
        assert r.json() == {"message": "Too Many Attempts."}
    if kind == "bad_gateway":
        assert r.headers["content-type"].startswith("text/html")


def test_rate_limit_retry_after_and_times(sandbox: SandboxServer) -> None:
    sandbox.add_faults("rate_limit:2:retry_after=7")
    assert [post_message(sandbox).headers.get("Retry-After") for _ in range(3)] == ["7", "7", None]
    assert len(sandbox.messages()) == 1


def test_gateway_timeout_stores_then_answers_504(sandbox: SandboxServer) -> None:
    sandbox.add_fault(FaultKind.GATEWAY_TIMEOUT)
    r = post_message(sandbox, "upstream got it")
    assert r.status_code == 504
    assert "504 Gateway Time-out" in r.text
    assert [m.message for m in sandbox.messages()] == ["upstream got it"]


@pytest.mark.parametrize(("kind", "stored"), [("drop_before", False), ("drop_after", True)])
def test_drops_close_the_connection_without_a_response(sandbox: SandboxServer, kind: str, stored: bool) -> None:
    sandbox.add_fault(kind)
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        post_message(sandbox, "dropped?")
    assert "Remote end closed connection without response" in str(caught.value)
    assert [m.message for m in sandbox.messages()] == (["dropped?"] if stored else [])
    entry = sandbox.requests()[-1]
    assert (entry["fault"], entry["dropped"], entry["status"]) == (kind, True, None)
    assert post_message(sandbox, "after").status_code == 201  # the server is fine


def test_the_request_log_says_how_long_the_server_took_to_answer(sandbox: SandboxServer) -> None:
    assert post_message(sandbox, "quick").status_code == 201
    sandbox.add_fault("slow_commit", delay=0.4)
    assert post_message(sandbox, "held").status_code == 201
    quick, held = sandbox.requests()
    assert 0 <= quick["handling_ms"] < 300
    assert held["handling_ms"] >= 400


def test_slow_stores_then_answers_after_the_client_gave_up(sandbox: SandboxServer) -> None:
    sandbox.add_fault("slow", delay=1.0)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        post_message(sandbox, "slowly", timeout=0.5)
    assert time.monotonic() - started < 0.9
    assert [m.message for m in sandbox.messages()] == ["slowly"]
    assert sandbox.requests()[-1]["fault"] == "slow"


def test_slow_answers_normally_after_the_delay(sandbox: SandboxServer) -> None:
    sandbox.add_fault("slow", delay=0.2)
    started = time.monotonic()
    r = post_message(sandbox)
    assert time.monotonic() - started >= 0.2
    assert r.status_code == 201
    assert r.json()["id"] == 1


def test_malformed_json_is_a_truncated_201(sandbox: SandboxServer) -> None:
    sandbox.add_fault("malformed_json")
    r = post_message(sandbox)
    assert r.status_code == 201
    assert r.headers["content-type"] == "application/json"
    assert r.text == '{"id": 1,'
    with pytest.raises(requests.exceptions.JSONDecodeError):
        r.json()
    assert len(sandbox.messages()) == 1


def test_missing_id_is_a_valid_201_without_id(sandbox: SandboxServer) -> None:
    sandbox.add_fault("missing_id")
    r = post_message(sandbox, "no id")
    assert r.status_code == 201
    assert "id" not in r.json()
    assert r.json()["message"] == "no id"
    assert len(sandbox.messages()) == 1


def test_faults_match_method_and_path_and_skip_the_admin_api(sandbox: SandboxServer) -> None:
    sandbox.add_fault("server_error", method="POST", path_prefix="/api/order_messages/B7C3D2A1")
    sandbox.add_fault("unavailable", times=None, path_prefix="/api/orders")
    assert http.get(f"{sandbox.url}/_sandbox/messages").status_code == 200
    assert http.get(f"{sandbox.url}/api/order_messages/B7C3D2A1", headers=AUTH).status_code == 200
    assert post_message(sandbox).status_code == 201
    assert post_message(sandbox, order="B7C3D2A1").status_code == 500
    assert post_message(sandbox, order="B7C3D2A1").status_code == 201
    assert [http.get(f"{sandbox.url}/api/orders", headers=AUTH).status_code for _ in range(3)] == [503] * 3
    remaining = http.get(f"{sandbox.url}/_sandbox/faults").json()
    assert remaining["faults"] == [
        {
            "kind": "unavailable",
            "times": None,
            "method": None,
            "path_prefix": "/api/orders",
            "retry_after": None,
            "delay": None,
        }
    ]


def test_faults_over_http_queue_and_random_mode(sandbox: SandboxServer) -> None:
    admin = f"{sandbox.url}/_sandbox/faults"
    r = http.post(
        admin,
        json={"faults": [{"kind": "rate_limit", "times": 1, "method": "POST", "path_prefix": "/api/order_messages"}]},
    )
    assert r.status_code == 200
    assert r.json()["faults"][0]["kind"] == "rate_limit"
    assert post_message(sandbox).status_code == 429
    assert http.get(admin).json() == {"faults": [], "random": None}

    def run(seed: int) -> list[int]:
        sandbox.reset()
        spec = {"rate": 0.5, "kinds": ["server_error", "rate_limit"], "seed": seed, "method": "POST"}
        assert http.post(admin, json={"random": spec}).json()["random"]["seed"] == seed
        return [post_message(sandbox).status_code for _ in range(12)]

    first, again = run(42), run(42)
    assert first == again
    assert set(first) == {201, 500, 429}
    assert http.get(f"{sandbox.url}/api/orders", headers=AUTH).status_code == 200  # POST only
    assert [e["fault_source"] for e in sandbox.requests() if e["fault"]] == ["random"] * first.count(500) + [
        "random"
    ] * first.count(429)
    assert http.post(admin, json={"faults": [{"kind": "nope"}]}).status_code == 400
    assert http.post(admin, json={"random": {"rate": 2, "kinds": ["slow"]}}).status_code == 400
    assert http.delete(admin).status_code == 204
    assert http.get(admin).json() == {"faults": [], "random": None}


def test_random_faults_at_full_rate_hit_every_request(sandbox: SandboxServer) -> None:
    sandbox.set_random_faults(1.0, ["drop_after"], seed=1)
    for _ in range(3):
        with pytest.raises(requests.exceptions.ConnectionError):
            post_message(sandbox)
    assert len(sandbox.messages()) == 3


# -- admin API --------------------------------------------------------------------------------------


def test_request_log_records_rejected_requests_but_not_admin_calls(sandbox: SandboxServer) -> None:
    http.post(f"{sandbox.url}/api/order_messages/{ORDER}", json={"message": "x"})
    post_message(sandbox, "ok", params={"trace": "1"})
    http.post(f"{sandbox.url}/api/order_messages/{ORDER}", data=b"plain text", headers=AUTH)
    http.get(f"{sandbox.url}/_sandbox/messages")
    log = http.get(f"{sandbox.url}/_sandbox/requests").json()
    assert [(e["method"], e["status"]) for e in log] == [("POST", 401), ("POST", 201), ("POST", 422)]
    assert "authorization" not in log[0]["headers"]
    assert log[1]["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert (log[1]["json"], log[1]["query"], log[1]["content_type"]) == (
        {"message": "ok"},
        "trace=1",
        "application/json",
    )
    assert (log[2]["body_kind"], log[2]["body_preview"], log[2]["json"]) == ("other", "plain text", None)


def test_reset_clears_everything_and_reseeds(sandbox: SandboxServer) -> None:
    post_message(sandbox)
    sandbox.add_fault("server_error", times=5)
    assert http.post(f"{sandbox.url}/_sandbox/reset").status_code == 200
    assert http.get(f"{sandbox.url}/_sandbox/messages").json() == []
    assert http.get(f"{sandbox.url}/_sandbox/requests").json() == []
    assert http.get(f"{sandbox.url}/_sandbox/faults").json() == {"faults": [], "random": None}
    assert post_message(sandbox).json()["id"] == 1
    assert http.get(f"{sandbox.url}/_sandbox/files/1/nothing.txt").status_code == 404


def test_redirect_to_another_host_shows_whether_authorization_followed(
    sandbox: SandboxServer, other: SandboxServer
) -> None:
    assert other.url != sandbox.url
    target = f"{other.url}/api/order_messages/{ORDER}"
    r = http.post(f"{sandbox.url}/_sandbox/redirect", params={"to": target}, json={"message": "m"}, headers=AUTH)
    assert [h.status_code for h in r.history] == [307]
    assert r.status_code == 401  # requests strips Authorization when the port (host) changes
    arrived = other.requests()
    assert len(arrived) == 1
    assert "authorization" not in arrived[0]["headers"]
    assert arrived[0]["json"] == {"message": "m"}
    assert sandbox.requests()[0]["path"] == "/_sandbox/redirect"
    same_host = f"{sandbox.url}/api/order_messages/{ORDER}"
    kept = http.post(f"{sandbox.url}/_sandbox/redirect", params={"to": same_host}, json={"message": "m"}, headers=AUTH)
    assert kept.status_code == 201
    assert http.get(f"{sandbox.url}/_sandbox/redirect", params={"to": "/relative"}).status_code == 400


def test_server_stops_quickly_with_a_slow_response_pending() -> None:
    server = SandboxServer("t").start()
    server.add_fault("slow", delay=30)
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.post(
            f"{server.url}/api/order_messages/{ORDER}",
            json={"message": "x"},
            headers={"Authorization": "Bearer t"},
            timeout=0.2,
        )
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    assert not server.running
    with pytest.raises(RuntimeError):
        _ = server.url


# -- fault specs -------------------------------------------------------------------------------------


def test_fault_specs() -> None:
    assert parse_fault_spec("rate_limit") == Fault(FaultKind.RATE_LIMIT)
    assert parse_fault_spec("rate_limit:2") == Fault(FaultKind.RATE_LIMIT, times=2)
    assert parse_fault_spec("slow:1:delay=5") == Fault(FaultKind.SLOW, delay=5.0)
    assert parse_fault_spec("server_error:*:method=post:path_prefix=/api/orders") == Fault(
        FaultKind.SERVER_ERROR, times=None, method="POST", path_prefix="/api/orders"
    )
    for bad in ("", "nope", "rate_limit:0", "rate_limit:x", "slow:1:speed=2", "slow:delay=-1"):
        with pytest.raises(ValueError):  # noqa: PT011
            parse_fault_spec(bad)
    assert Fault.from_dict({"kind": "slow", "times": None}).times is None
    assert RandomFaults.from_dict({"rate": 0.2, "kinds": "drop_after"}).kinds == (FaultKind.DROP_AFTER,)


def test_fault_plan_consumes_the_first_matching_fault() -> None:
    plan = FaultPlan()
    plan.add(Fault(FaultKind.SLOW, method="GET"), Fault(FaultKind.RATE_LIMIT, times=2))
    assert plan.take("POST", "/_sandbox/reset") is None
    taken = [plan.take("POST", "/api/order_messages/1") for _ in range(3)]
    assert [t.kind if t else None for t in taken] == [FaultKind.RATE_LIMIT, FaultKind.RATE_LIMIT, None]
    assert [f.kind for f in plan.pending()] == [FaultKind.SLOW]


def test_a_fault_with_after_lets_that_many_matching_requests_through_first() -> None:
    plan = FaultPlan()
    plan.add(Fault(FaultKind.BAD_GATEWAY, method="POST", after=1))
    assert plan.take("GET", "/api/order_messages/1") is None  # not matching: does not count
    taken = [plan.take("POST", "/api/order_messages/1") for _ in range(3)]
    assert [t.kind if t else None for t in taken] == [None, FaultKind.BAD_GATEWAY, None]
    assert Fault.from_dict({"kind": "bad_gateway", "after": 2}).after == 2
    with pytest.raises(ValueError, match="after must be a whole number"):
        Fault(FaultKind.BAD_GATEWAY, after=-1)


# -- CLI --------------------------------------------------------------------------------------------


def _read_until(proc: subprocess.Popen[str], pattern: str, timeout: float = 10.0) -> tuple[re.Match[str], str]:
    assert proc.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stderr, selectors.EVENT_READ)
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if selector.select(timeout=0.1):
            line = proc.stderr.readline()
            if not line:
                break
            seen += line
            match = re.search(pattern, line)
            if match:
                return match, seen
    raise AssertionError(f"no {pattern!r} in the CLI output:\n{seen}")


def test_cli_serves_with_faults_and_stops_on_sigterm() -> None:
    token = "cli-secret-token-42"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "airflow_provider_spp.sandbox.cli", "--port", "0", "--token", token),
            *("--fault", "rate_limit:1:retry_after=2", "--fault-rate", "0", "--fault-kinds", "server_error"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        match, seen = _read_until(proc, r"listening on (http://127\.0\.0\.1:\d+)")
        url = match.group(1)
        headers = {"Authorization": f"Bearer {token}"}
        first = http.post(f"{url}/api/order_messages/{ORDER}", json={"message": "cli"}, headers=headers)
        second = http.post(f"{url}/api/order_messages/{ORDER}", json={"message": "cli"}, headers=headers)
        assert (first.status_code, first.headers["Retry-After"], second.status_code) == (429, "2", 201)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert token not in seen + out + err


def test_cli_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    from airflow_provider_spp.sandbox.cli import main

    for argv in (
        ["--token", "t", "--fault", "nope"],
        ["--token", "t", "--fault-rate", "0.5"],
        ["--port", "1"],
        ["--token", "t", "--host", "192.0.2.1"],
    ):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
    assert "unknown fault kind" in capsys.readouterr().err


# -- pytest plugin ----------------------------------------------------------------------------------


def test_pytest_plugin_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["airflow_provider_spp.sandbox.pytest_plugin"]')
    pytester.makepyfile(
        """
        import json, os
        import requests

        AUTH = {"Authorization": "Bearer spp-sandbox-test-token"}

        def test_dirty(spp_sandbox):
            url = spp_sandbox.url + "/api/order_messages/E4A269FC"
            assert requests.post(url, json={"message": "x"}, headers=AUTH, timeout=5).status_code == 201
            spp_sandbox.add_fault("server_error")

        def test_clean_again(spp_sandbox, spp_sandbox_session):
            assert spp_sandbox is spp_sandbox_session
            assert spp_sandbox.messages() == []
            assert spp_sandbox.store.faults.pending() == []

        def test_conn(spp_sandbox_conn, spp_sandbox):
            assert spp_sandbox_conn == "spp_default"
            conn = json.loads(os.environ["AIRFLOW_CONN_SPP_DEFAULT"])
            assert conn == {"conn_type": "spp", "host": spp_sandbox.url, "password": "spp-sandbox-test-token"}

        def test_other_host(spp_sandbox, spp_sandbox_other_host):
            assert spp_sandbox.url != spp_sandbox_other_host.url
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=4)
