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

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from airflow_provider_spp.sandbox.arrivals import ArrivingMessage, status_changed_text
from airflow_provider_spp.sandbox.faults import Fault, RandomFaults
from airflow_provider_spp.sandbox.page_actions import AfterPage
from airflow_provider_spp.sandbox.routing import LaravelError, Store, base_url, path_param

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
        return JSONResponse({"message": str(err)}, status_code=400)
    return JSONResponse({"added": len(added), "ids": [added[0]["id"], added[-1]["id"]]}, status_code=201)


@admin_router.get("/faults")
async def faults(store: Store) -> dict[str, Any]:
    """The queued faults and the random mode."""
    return store.faults.snapshot()


@admin_router.post("/faults")
async def add_faults(request: Request, store: Store) -> Response:
    """Queue faults and/or set the random mode (``{"faults": [...], "random": {...} | null, "replace": bool}``)."""
    try:
        payload = await request.json()
        if not isinstance(payload, dict) or set(payload) - {"faults", "random", "replace"}:
            raise ValueError('expected {"faults": [...], "random": {...} | null, "replace": bool}')
        queued = [Fault.from_dict(item) for item in payload.get("faults") or []]
        random_faults = RandomFaults.from_dict(payload["random"]) if payload.get("random") else None
    except ValueError as err:
        return JSONResponse({"message": str(err)}, status_code=400)
    if payload.get("replace"):
        store.clear_faults()
    store.faults.add(*queued)
    if "random" in payload:
        store.faults.set_random(random_faults)
    return JSONResponse(store.faults.snapshot())


@admin_router.delete("/faults", status_code=204)
async def clear_faults(store: Store) -> Response:
    """Remove every fault."""
    store.clear_faults()
    return Response(status_code=204)


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


@admin_router.get("/settings")
async def settings(store: Store) -> dict[str, Any]:
    """The workspace switches in force (see ``workspace.WorkspaceSettings``)."""
    return store.settings.to_dict()


@admin_router.post("/settings")
async def configure(request: Request, store: Store) -> Response:
    """Change some switches until the next reset, e.g. ``{"status_style": "code", "clock_offset": -5}``."""
    try:
        return JSONResponse(store.configure(**await _json_object(request)).to_dict())
    except ValueError as err:
        return _bad_request(err)


@admin_router.delete("/settings")
async def restore_settings(store: Store) -> dict[str, Any]:
    """Back to the switches the sandbox was started with."""
    return store.restore_settings().to_dict()


@admin_router.get("/statuses")
async def statuses(store: Store) -> dict[str, Any]:
    """The workspace's status code map: ``{"status_style": "code", "statuses": [{"code": 2, "label": "Working"}]}``."""
    return store.settings.status_table()


@admin_router.get("/after_page")
async def after_pages(store: Store) -> list[dict[str, Any]]:
    """The pending after-page actions."""
    return store.after_pages.snapshot()


@admin_router.post("/after_page")
async def add_after_page(request: Request, store: Store) -> Response:
    """Register a write after a listing page, e.g. ``{"listing": "orders", "page": 1, "order": "00C0FFEE"}``."""
    try:
        store.add_after_page(AfterPage.from_dict(await _json_object(request)))
    except ValueError as err:
        return _bad_request(err)
    return JSONResponse(store.after_pages.snapshot(), status_code=201)


@admin_router.delete("/after_page", status_code=204)
async def clear_after_pages(store: Store) -> Response:
    """Forget the pending after-page actions."""
    store.after_pages.clear()
    return Response(status_code=204)


@admin_router.get("/handshake_drops")
async def handshake_drops(store: Store) -> dict[str, int]:
    """``{"pending": n, "dropped": m}``: new connections still to drop mid-handshake, and those dropped."""
    return store.handshake_drops.snapshot()


@admin_router.post("/handshake_drops")
async def add_handshake_drops(request: Request, store: Store) -> Response:
    """Close the next ``times`` new connections mid-TLS-handshake: ``{"times": 1}`` (the default)."""
    try:
        store.handshake_drops.add((await _json_object(request)).get("times", 1))
    except ValueError as err:
        return _bad_request(err)
    return JSONResponse(store.handshake_drops.snapshot(), status_code=201)


@admin_router.delete("/handshake_drops", status_code=204)
async def clear_handshake_drops(store: Store) -> Response:
    """Drop no more connections."""
    store.handshake_drops.clear()
    return Response(status_code=204)
