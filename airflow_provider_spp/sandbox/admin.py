"""The test-facing admin API under ``/_sandbox`` (no auth; never logged as traffic, never faulted).

``GET /_sandbox/health``, ``GET|DELETE /_sandbox/requests``, ``GET /_sandbox/messages``,
``GET /_sandbox/files/{message_id}/{filename}``, ``POST /_sandbox/reset`` (messages, faults, actions and
switches back to the start), ``POST /_sandbox/orders`` (``{"count": 1000, "status": "Pending" | 6}`` adds
generated orders until the next reset), ``POST /_sandbox/orders/{order}/client_messages`` (a reply from the
order's client, ``{"message": ..., "via": "email"}``), ``POST /_sandbox/orders/{order}/auto_messages`` (a
message the service writes), ``GET|POST|DELETE /_sandbox/faults``, ``GET|POST|… /_sandbox/redirect?to=<url>
[&status=307]``, ``GET|POST|DELETE /_sandbox/settings`` (the workspace switches), ``GET /_sandbox/statuses``
(the status code map), ``GET|POST|DELETE /_sandbox/after_page`` (writes between two page requests) and
``GET|POST|DELETE /_sandbox/handshake_drops`` (connections closed mid-TLS-handshake).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from airflow_provider_spp.sandbox.arrivals import ArrivingMessage, status_changed_text
from airflow_provider_spp.sandbox.faults import Fault, RandomFaults
from airflow_provider_spp.sandbox.page_actions import AfterPage
from airflow_provider_spp.sandbox.routing import LaravelError, Store, base_url, path_param
from airflow_provider_spp.sandbox.store import SandboxStore

__all__ = [
    "admin_router",
]

REDIRECT_STATUSES = (301, 302, 303, 307, 308)


#: The ``/_sandbox`` admin API for tests (no auth).
admin_router = APIRouter(prefix="/_sandbox")


@admin_router.get("/health")
async def health() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}


@admin_router.get("/requests")
async def requests_log(store: Store) -> list[dict[str, Any]]:
    """The request log."""
    return store.requests()


@admin_router.delete("/requests", status_code=204)
async def clear_requests(store: Store) -> Response:
    """Empty the request log."""
    store.clear_requests()
    return Response(status_code=204)


@admin_router.get("/messages")
async def messages(request: Request, store: Store) -> list[dict[str, Any]]:
    """Every stored message, oldest first."""
    base = base_url(request)
    return [m.to_dict(base) for m in store.messages()]


@admin_router.post("/orders/{order}/client_messages")
async def client_message(request: Request, store: Store) -> Response:
    """A message from the order's client arriving (the portal's or email's side, which the API cannot do).

    Body: :class:`ArrivingMessage`'s fields, ``{"message": ..., "via": "email", "date_seen": null, ...}``.
    """
    return await _arriving(request, store, auto=False)


@admin_router.post("/orders/{order}/auto_messages")
async def auto_message(request: Request, store: Store) -> Response:
    """A message the service writes itself (``is_auto_generated``), authored by the order's client by default.

    Body (all optional): :class:`ArrivingMessage`'s fields; the text defaults to "Order status changed to <status>".
    """
    return await _arriving(request, store, auto=True)


async def _arriving(request: Request, store: Store, *, auto: bool) -> Response:
    """Store an arriving message on the order named in the path (422 for a bad order or body)."""
    order = store.order(path_param(request, 2, last=3))
    try:
        payload = await request.json()
        if order is None:
            raise ValueError("no such order")
        label = store.settings.status_label(order["status"])
        defaults = {"is_auto_generated": True, "message": status_changed_text(label)} if auto else {}
        created = ArrivingMessage.from_dict(payload, **defaults).store_on(store, order["id"])
    except ValueError as err:
        return JSONResponse({"message": f"need an existing order and a valid message: {err}"}, status_code=422)
    return JSONResponse(created.to_dict(base_url(request)), status_code=201)


@admin_router.get("/files/{message_id}/{filename:path}")
async def file(request: Request, store: Store) -> Response:
    """The bytes of a stored attachment."""
    message_id, filename = path_param(request, 2, last=3), path_param(request, 3)
    stored = store.file(int(message_id), filename) if message_id.isascii() and message_id.isdigit() else None
    if stored is None:
        raise LaravelError(404, f"No file {filename!r} on message {message_id}")
    return Response(stored.data, media_type=stored.content_type)


@admin_router.post("/reset")
async def reset(store: Store) -> dict[str, str]:
    """Back to the seeded state."""
    store.reset()
    return {"status": "reset"}


@admin_router.post("/orders")
async def add_orders(request: Request, store: Store) -> Response:
    """Add generated orders (``{"count": N, "status": "Pending"}``) until the next reset."""
    try:
        payload = await request.json()
        if not isinstance(payload, dict) or set(payload) - {"count", "status"}:
            raise ValueError('expected {"count": int, "status": str | int}')
        added = store.add_orders(payload.get("count", 0), status=payload.get("status", "Pending"))
    except ValueError as err:
        return _bad_request(err)
    return JSONResponse({"added": len(added), "ids": [added[0]["id"], added[-1]["id"]]}, status_code=201)


@admin_router.api_route("/redirect", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def redirect(request: Request) -> Response:
    """Answer a redirect to ``to`` (an absolute http(s) URL) with ``status`` (default 307)."""
    target = request.query_params.get("to", "")
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return JSONResponse({"message": "'to' must be an absolute http(s) URL"}, status_code=400)
    try:
        status = int(request.query_params.get("status", "307"))
    except ValueError:
        status = 0
    if status not in REDIRECT_STATUSES:
        return JSONResponse({"message": f"'status' must be one of {REDIRECT_STATUSES}"}, status_code=400)
    return Response(status_code=status, headers={"location": target})


async def _json_object(request: Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``), else ValueError."""
    body = await request.body()
    payload = await request.json() if body.strip() else {}
    if not isinstance(payload, dict):
        raise ValueError(f"expected a JSON object, got {payload!r}")
    return payload


def _bad_request(err: ValueError) -> Response:
    """A 400 naming what was wrong with an admin call."""
    return JSONResponse({"message": str(err)}, status_code=400)


def _resource(
    path: str,
    read: Callable[[SandboxStore], Any],
    change: Callable[[SandboxStore, dict[str, Any]], object],
    clear: Callable[[SandboxStore], object],
    *,
    changed_status: int = 200,
) -> None:
    """Register ``GET path`` (``read``), ``POST path`` (``change`` with the JSON body; 400 when it raises
    ValueError; answers ``read`` with ``changed_status``) and ``DELETE path`` (``clear``; 204)."""

    async def get(store: Store) -> Any:
        """The resource's state."""
        return read(store)

    async def post(request: Request, store: Store) -> Response:
        """Change it with the JSON body."""
        try:
            change(store, await _json_object(request))
        except ValueError as err:
            return _bad_request(err)
        return JSONResponse(read(store), status_code=changed_status)

    async def delete(store: Store) -> Response:
        """Clear it."""
        clear(store)
        return Response(status_code=204)

    for method, endpoint, doc in (("GET", get, "read"), ("POST", post, "change"), ("DELETE", delete, "clear")):
        admin_router.add_api_route(path, endpoint, methods=[method], name=f"{doc} {path}")


def _change_faults(store: SandboxStore, payload: dict[str, Any]) -> None:
    """Queue faults and/or set the random mode from ``{"faults": [...], "random": {...} | null, "replace": bool}``."""
    if set(payload) - {"faults", "random", "replace"}:
        raise ValueError('expected {"faults": [...], "random": {...} | null, "replace": bool}')
    queued = [Fault.from_dict(item) for item in payload.get("faults") or []]
    random_faults = RandomFaults.from_dict(payload["random"]) if payload.get("random") else None
    if payload.get("replace"):
        store.clear_faults()
    store.faults.add(*queued)
    if "random" in payload:
        store.faults.set_random(random_faults)


#: ``/_sandbox/faults``: the queued faults and the random mode (see ``faults.py``).
_resource("/faults", lambda store: store.faults.snapshot(), _change_faults, SandboxStore.clear_faults)
#: ``/_sandbox/settings``: the workspace switches (see ``workspace.WorkspaceSettings``); DELETE: back to the start.
_resource(
    "/settings",
    lambda store: store.settings.to_dict(),
    lambda store, changes: store.configure(**changes),
    SandboxStore.restore_settings,
)
#: ``/_sandbox/after_page``: writes after a listing page, e.g. ``{"listing": "orders", "order": "00C0FFEE"}``.
_resource(
    "/after_page",
    lambda store: store.after_pages.snapshot(),
    lambda store, body: store.add_after_page(AfterPage.from_dict(body)),
    lambda store: store.after_pages.clear(),
    changed_status=201,
)
#: ``/_sandbox/handshake_drops``: ``{"times": n}`` closes the next n new connections mid-TLS-handshake.
_resource(
    "/handshake_drops",
    lambda store: store.handshake_drops.snapshot(),
    lambda store, body: store.handshake_drops.add(body.get("times", 1)),
    lambda store: store.handshake_drops.clear(),
    changed_status=201,
)


@admin_router.get("/statuses")
async def statuses(store: Store) -> dict[str, Any]:
    """The workspace's status code map: ``{"status_style": "code", "statuses": [{"code": 2, "label": "Working"}]}``."""
    return store.settings.status_table()
