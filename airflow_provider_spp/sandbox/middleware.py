"""The outermost ASGI layer: API headers, the request log and fault injection.

It must be outermost (no Starlette middleware in front of it) because dropping a connection needs
the server's own ``send``: under uvicorn that is a bound method of the connection's
``RequestResponseCycle``, whose ``transport`` can be closed so the client sees the socket close
without any response (``requests`` raises ``ConnectionError``). Raising instead would only make
uvicorn answer 500. Under a server without a reachable transport (e.g. Starlette's ``TestClient``)
a drop raises :class:`ConnectionDropped` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import partial
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider_spp.sandbox.bodies import ParsedBody, parse_body
from airflow_provider_spp.sandbox.faults import (
    BEFORE_KINDS,
    DEFAULT_RETRY_AFTER,
    DEFAULT_SLOW_DELAY,
    ERROR_AFTER_COMMIT_KINDS,
    AppliedFault,
    FaultKind,
)
from airflow_provider_spp.sandbox.host import NGINX_PAGE, host_answer
from airflow_provider_spp.sandbox.store import SandboxStore, iso
from airflow_provider_spp.sandbox.throttle import Verdict

__all__ = [
    "BODY_STATE_KEY",
    "SandboxMiddleware",
    "raw_path",
]

#: Where the parsed body is left for the routes (``request.scope["state"]``).
BODY_STATE_KEY = "spp_sandbox_body"
ADMIN_PREFIX = "/_sandbox/"
#: Admin paths that still count as client traffic (logged; they model "another endpoint").
TRAFFIC_ADMIN_PATHS = ("/_sandbox/redirect",)


#: Laravel's ThrottleRequestsException body.
TOO_MANY = b'{"message":"Too Many Attempts."}'


class ConnectionDropped(Exception):
    """A drop fault fired where the server's transport could not be reached (not under uvicorn)."""


def raw_path(scope: Scope) -> str:
    """The request path as sent, still percent-encoded."""
    raw = scope.get("raw_path")
    if isinstance(raw, bytes | bytearray) and raw:
        return bytes(raw).split(b"?", 1)[0].decode("latin-1")
    return str(scope.get("path", "/"))


def _query(scope: Scope) -> str:
    """The raw query string (without ``?``)."""
    query = scope.get("query_string", b"")
    return query.decode("latin-1") if isinstance(query, bytes) else str(query)


def _base_url(scope: Scope, headers: Headers) -> str:
    """``scheme://host[:port]`` as the client addressed this server (its Host header)."""
    host = headers.get("host")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


def is_traffic(path: str) -> bool:
    """Whether a request is client traffic (logged, subject to faults) rather than an admin call."""
    return not path.startswith(ADMIN_PREFIX) or path.startswith(TRAFFIC_ADMIN_PATHS)


def _header_dict(headers: Headers) -> dict[str, str]:
    """Lower-case header names; repeated headers joined with ", "."""
    result: dict[str, str] = {}
    for name, value in headers.items():
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands out the already-read body once, then defers to the server."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def drop_connection(send: Send) -> None:
    """Close the client's TCP connection without a response (uvicorn's transport, reached via ``send``)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionDropped("the sandbox dropped the connection (fault injection)")
    transport.close()
    # Let the event loop run connection_lost(), which marks the cycle disconnected, so uvicorn does not
    # try to answer "500: ASGI callable returned without starting response" on the closed socket.
    for _ in range(20):
        if getattr(cycle, "disconnected", True):
            break
        await asyncio.sleep(0)


async def break_stream(send: Send) -> None:
    """Write bytes that are no part of HTTP or TLS straight to the socket, then abort the connection."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if transport is None or sock is None:
        raise ConnectionDropped("the sandbox broke the stream (fault injection)")
    with contextlib.suppress(OSError):
        os.write(sock.fileno(), b"\x00\xffNOT-A-RECORD\r\n" * 4)
    transport.abort()
    for _ in range(20):
        if getattr(cycle, "disconnected", True):
            break
        await asyncio.sleep(0)


def _canned(fault: AppliedFault) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of the error a fault answers with."""
    json_type = [(b"content-type", b"application/json")]
    html_type = [(b"content-type", b"text/html")]
    if fault.kind is FaultKind.RATE_LIMIT:
        retry_after = fault.retry_after if fault.retry_after is not None else DEFAULT_RETRY_AFTER
        headers = [
            *json_type,
            (b"retry-after", str(retry_after).encode()),
            (b"x-ratelimit-limit", b"60"),
            (b"x-ratelimit-remaining", b"0"),
        ]
        return 429, headers, b'{"message":"Too Many Attempts."}'
    if fault.kind in (FaultKind.SERVER_ERROR, FaultKind.SERVER_ERROR_AFTER_COMMIT):
        return 500, json_type, b'{"message":"Server Error"}'
    if fault.kind is FaultKind.UNAVAILABLE_AFTER_COMMIT:
        return 503, html_type, NGINX_PAGE.format("503 Service Temporarily Unavailable").encode()
    if fault.kind is FaultKind.UNAVAILABLE:
        headers = list(json_type)
        if fault.retry_after is not None:
            headers.append((b"retry-after", str(fault.retry_after).encode()))
        return 503, headers, b'{"message":"Service Unavailable"}'
    if fault.kind is FaultKind.BAD_GATEWAY:
        return 502, html_type, NGINX_PAGE.format("502 Bad Gateway").encode()
    if fault.kind is FaultKind.GATEWAY_TIMEOUT:
        return 504, html_type, NGINX_PAGE.format("504 Gateway Time-out").encode()
    raise ValueError(f"fault {fault.kind} has no canned response")


def _spoil_json(kind: FaultKind, body: bytes) -> bytes:
    """The body a ``malformed_json`` or ``missing_id`` fault sends instead of the real one."""
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    if kind is FaultKind.MISSING_ID:
        if isinstance(payload, dict):
            payload.pop("id", None)
            return json.dumps(payload).encode()
        return body
    if isinstance(payload, dict) and "id" in payload:
        return f'{{"id": {json.dumps(payload["id"])},'.encode()
    return body[: max(1, len(body) // 2)] if body else b"{"


class _Captured:
    """A response the application produced, held back so a fault can change or withhold it."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()

    async def send(self, message: Message) -> None:
        """Collect ``http.response.*`` messages."""
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body.extend(message.get("body", b""))


class SandboxMiddleware:
    """Adds ``X-Api-Identifier``/``X-Api-Version``, logs client traffic and applies faults."""

    def __init__(
        self,
        app: ASGIApp,
        store: SandboxStore,
        default_api_version: str,
        shutting_down: threading.Event | None = None,
    ) -> None:
        """Wrap ``app``; ``shutting_down`` cuts ``slow`` delays short when the server stops."""
        self.app = app
        self.store = store
        self.default_api_version = default_api_version
        self.shutting_down = shutting_down or threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = Headers(scope=scope)
        identifier, api_headers = self._api_headers(headers)
        path = raw_path(scope)
        if not is_traffic(path):
            await self.app(scope, receive, self._decorating(send, api_headers, None))
            return

        body = await _read_body(receive)
        if body is None:
            return
        parsed = await parse_body(headers, body)
        scope.setdefault("state", {})[BODY_STATE_KEY] = parsed
        method = str(scope["method"]).upper()
        answer = host_answer(self.store.settings, method, path, _query(scope), _base_url(scope, headers))
        fault = self.store.faults.take(method, path) if answer is None else None
        handle = self.store.record_request(self._record(scope, headers, path, parsed, identifier, fault))
        if answer is not None:  # the host answered before the API: nothing stored, no fault used
            await self._answer(send, handle, answer.status, list(answer.headers), answer.body, api_headers[-1:])
            return
        verdict = self._throttled(path, headers) if fault is None else None
        if verdict is not None:
            api_headers = [*verdict.headers(), *api_headers]
            if not verdict.allowed:
                await self._answer(send, handle, 429, [(b"content-type", b"application/json")], TOO_MANY, api_headers)
                return
        replay = _replay(body, receive)

        if fault is None:
            # Log the status as the response starts: a test may read the log as soon as it has the answer.
            on_status = partial(self._log_status, handle, started)
            await self.app(scope, replay, self._decorating(send, api_headers, on_status))
            return
        if fault.kind is FaultKind.DROP_BEFORE:
            self.store.update_request(handle, dropped=True)
            await drop_connection(send)
            return
        if fault.kind in BEFORE_KINDS:
            await self._answer(send, handle, *_canned(fault), api_headers)
            return

        if fault.kind is FaultKind.SLOW_COMMIT:
            await self._sleep(fault.delay if fault.delay is not None else DEFAULT_SLOW_DELAY)
            on_status = partial(self._log_status, handle, started)
            await self.app(scope, replay, self._decorating(send, api_headers, on_status))
            return
        await self._after_commit(scope, replay, send, handle, fault, api_headers)

    async def _after_commit(
        self,
        scope: Scope,
        replay: Receive,
        send: Send,
        handle: int,
        fault: AppliedFault,
        api_headers: list[tuple[bytes, bytes]],
    ) -> None:
        """Let the app process the request (side effects happen), then spoil its answer as ``fault`` says."""
        captured = _Captured()
        await self.app(scope, replay, captured.send)
        if fault.kind is FaultKind.DROP_AFTER:
            self.store.update_request(handle, dropped=True)
            await drop_connection(send)
        elif fault.kind is FaultKind.BREAK_STREAM_AFTER:
            self.store.update_request(handle, dropped=True)
            await break_stream(send)
        elif fault.kind in ERROR_AFTER_COMMIT_KINDS:
            await self._answer(send, handle, *_canned(fault), api_headers)
        elif fault.kind is FaultKind.SLOW:
            await self._sleep(fault.delay if fault.delay is not None else DEFAULT_SLOW_DELAY)
            await self._answer(send, handle, captured.status, captured.headers, bytes(captured.body), api_headers)
        else:
            spoiled = _spoil_json(fault.kind, bytes(captured.body))
            await self._answer(send, handle, captured.status, captured.headers, spoiled, api_headers)

    def _throttled(self, path: str, headers: Headers) -> Verdict | None:
        """The rate limit's verdict on an API request (None: no limit set, or not an API path)."""
        settings = self.store.settings
        if not path.startswith("/api/"):
            return None
        return self.store.throttle.hit(headers.get("authorization"), settings.rate_limit, settings.rate_limit_window)

    def _api_headers(self, headers: Headers) -> tuple[str, list[tuple[bytes, bytes]]]:
        """A fresh API identifier, and the headers every answer gets: X-Api-Identifier, X-Api-Version, Date (last).

        Date is SPP's clock (the ``clock_offset`` setting); uvicorn's own Date header is turned off.
        """
        identifier = str(uuid.uuid4())
        version = headers.get("x-api-version") or self.default_api_version
        date = format_datetime(self.store.spp_clock(), usegmt=True)
        return identifier, [
            (b"x-api-identifier", identifier.encode()),
            (b"x-api-version", version.encode("latin-1")),
            (b"date", date.encode()),
        ]

    def _record(
        self,
        scope: Scope,
        headers: Headers,
        path: str,
        parsed: ParsedBody,
        identifier: str,
        fault: AppliedFault | None,
    ) -> dict[str, Any]:
        """The request-log entry for one request (status filled in later)."""
        return {
            "time": iso(datetime.now(UTC)),
            "api_identifier": identifier,
            "method": str(scope["method"]).upper(),
            "path": path,
            "query": _query(scope),
            "headers": _header_dict(headers),
            "content_type": headers.get("content-type"),
            "body_kind": parsed.kind,
            "body_size": parsed.size,
            "body_error": parsed.error,
            "body_preview": parsed.preview,
            "json": parsed.json,
            "form": parsed.form_dict(),
            "files": [
                {
                    "field": part.field,
                    "filename": part.filename,
                    "content_type": part.content_type,
                    "size": len(part.data),
                    "sha256": hashlib.sha256(part.data).hexdigest(),
                }
                for part in parsed.files
            ],
            "fault": fault.kind.value if fault else None,
            "fault_source": fault.source if fault else None,
            "status": None,
            # ms from the app receiving the request (headers parsed) to its response starting; None under a fault
            "handling_ms": None,
            "dropped": False,
        }

    def _log_status(self, handle: int, started: float, status: int) -> None:
        """Record the status a logged request was answered with, and how long the sandbox took to start it."""
        self.store.update_request(handle, status=status, handling_ms=(time.perf_counter() - started) * 1000)

    def _decorating(
        self, send: Send, api_headers: list[tuple[bytes, bytes]], on_status: Callable[[int], None] | None
    ) -> Callable[[Message], Awaitable[None]]:
        """A ``send`` that adds the API headers to the response start (and reports the status)."""

        async def decorated(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in api_headers}
                kept = [(n, v) for n, v in message.get("headers", []) if n.lower() not in names]
                message = {**message, "headers": [*kept, *api_headers]}
                if on_status is not None:
                    on_status(int(message["status"]))
            await send(message)

        return decorated

    async def _answer(
        self,
        send: Send,
        handle: int,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        api_headers: list[tuple[bytes, bytes]],
    ) -> None:
        """Send a complete response with a correct Content-Length and log its status."""
        skip = {b"content-length", *(name for name, _ in api_headers)}
        kept = [(n, v) for n, v in headers if n.lower() not in skip]
        final = [*kept, (b"content-length", str(len(body)).encode()), *api_headers]
        self.store.update_request(handle, status=status)
        await send({"type": "http.response.start", "status": status, "headers": final})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _sleep(self, seconds: float) -> None:
        """Wait, but stop early when the server is shutting down."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self.shutting_down.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await asyncio.sleep(min(0.05, remaining))
