"""The sandbox's HTTP app: the SPP (Wayfront) endpoints under ``/api``; the admin API lives in ``admin.py``.

SPP (Laravel) behaviour mirrored: ``Authorization: Bearer <token>`` or 401 ``{"message":
"Unauthenticated."}``; the ``no_api_token`` setting's token is a valid login without API access (403 with
the ``no_api_message``); an unknown order is 404 ``No query results for model [App\\Models\\Order] …``;
validation is 422 ``{"message", "errors"}`` (400 with the ``validation_status`` setting); errors and unknown
routes answer JSON, never HTML. Lists take Purity filters and sorts (see ``purity.py``), and orders carry
their status as the ``status_style`` setting says. Path parameters are read from the raw (percent-encoded)
path, one segment each, so an order key containing ``%2F`` reaches the handler (and is a "no such order"
404) instead of missing the route. What a host answers before the API (licence expired, login redirect,
not a workspace, moved) is in ``host.py``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_provider_spp.sandbox.admin import admin_router
from airflow_provider_spp.sandbox.bodies import ValidationFailed, laravel_input, validate_message
from airflow_provider_spp.sandbox.middleware import raw_path
from airflow_provider_spp.sandbox.page_actions import Listing, run_after_page
from airflow_provider_spp.sandbox.purity import MESSAGE_MODEL, ORDER_MODEL, QueryRejected, apply_query
from airflow_provider_spp.sandbox.resources import message_resource, order_resource
from airflow_provider_spp.sandbox.routing import (
    LaravelError,
    SandboxApp,
    Store,
    app_of,
    base_url,
    not_found,
    page_of,
    parsed_body,
    path_param,
    route_not_found,
    store_of,
)
from airflow_provider_spp.sandbox.store import SandboxStore
from airflow_provider_spp.sandbox.workspace import WorkspaceSettings

__all__ = [
    "DEFAULT_API_VERSION",
    "create_app",
]

DEFAULT_API_VERSION = "2024-03-05"


def create_app(token: str, api_version: str = DEFAULT_API_VERSION, store: SandboxStore | None = None) -> SandboxApp:
    """Build the sandbox ASGI app accepting ``Bearer <token>``; a fresh seeded store unless one is given."""
    if not token:
        raise ValueError("the sandbox needs a non-empty token")
    app = SandboxApp(store if store is not None else SandboxStore(), api_version, token)
    _install_error_handlers(app)
    app.include_router(api_router)
    app.include_router(admin_router)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    """Answer every error as Laravel JSON."""

    async def laravel_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LaravelError)
        return JSONResponse({"message": exc.message}, status_code=exc.status_code)

    async def validation_failed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ValidationFailed)
        return JSONResponse(exc.body(), status_code=store_of(request).settings.validation_status)

    async def query_rejected(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, QueryRejected)
        return JSONResponse(exc.body(), status_code=exc.status)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            message = route_not_found(request).message
        elif exc.status_code == 405:
            message = f"The {request.method} method is not supported for route {raw_path(request.scope).lstrip('/')}."
        else:
            message = str(exc.detail)
        return JSONResponse({"message": message}, status_code=exc.status_code, headers=exc.headers)

    async def server_error(request: Request, exc: Exception) -> Response:
        return JSONResponse({"message": "Server Error"}, status_code=500)

    app.add_exception_handler(LaravelError, laravel_error)
    app.add_exception_handler(ValidationFailed, validation_failed)
    app.add_exception_handler(QueryRejected, query_rejected)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, server_error)


def _authenticate(request: Request) -> None:
    """Laravel's 401 unless the request carries the sandbox's bearer token; 403 for a token without API access."""
    supplied = request.headers.get("authorization", "")
    app = app_of(request)
    if app.without_api_access(supplied):
        raise LaravelError(403, app.store.settings.no_api_message)
    if not app.authorized(supplied):
        raise LaravelError(401, "Unauthenticated.")


#: The SPP endpoints (all behind the bearer token).
api_router = APIRouter(prefix="/api", dependencies=[Depends(_authenticate)])


def _find_order(store: SandboxStore, key: str) -> dict[str, Any]:
    """The order with this ID or number, or Laravel's 404."""
    order = store.order(key)
    if order is None:
        raise not_found(ORDER_MODEL.name, key)
    return order


def shown_order(order: dict[str, Any], settings: WorkspaceSettings) -> dict[str, Any]:
    """An order as the API shows it: its status a label or a code, as the ``status_style`` setting says."""
    return {**order, "status": settings.render_status(order.get("status"))}


def _message_field(message: Any, name: str) -> Any:
    """A filterable field of a stored message."""
    return getattr(message, name, None)


def _order_field(order: Any, name: str) -> Any:
    """A filterable field of a shown order."""
    return order.get(name)


@api_router.get("/order_messages/{order:path}")
async def list_messages(request: Request, store: Store) -> Response:
    """An order's messages, newest first unless ``sort`` says otherwise, filtered as asked, one page."""
    order = _find_order(store, path_param(request, 2))
    settings = store.settings
    query = request.query_params.multi_items()
    listed = apply_query(store.messages(order["id"]), query, MESSAGE_MODEL, settings, _message_field)
    chunk, links, meta = page_of(listed, request, store)
    users, base, shown = store.users(), base_url(request), shown_order(order, settings)
    data = [message_resource(m, shown, users, base) for m in chunk]
    run_after_page(store, Listing.ORDER_MESSAGES, meta["current_page"], order)
    return JSONResponse({"data": data, "links": links, "meta": meta})


@api_router.post("/order_messages/{order:path}")
async def create_message(request: Request, store: Store) -> Response:
    """Post a message (JSON, form or multipart with attachments) on an order; it is stored ``via`` "api"."""
    order = _find_order(store, path_param(request, 2))
    body = await parsed_body(request)
    valid = validate_message(laravel_input(body, request.query_params.multi_items()), store.has_user)
    created = store.create_message(
        order_id=order["id"],
        message=valid.message,
        user_id=valid.user_id,
        staff_only=bool(valid.staff_only),
        files=valid.attachments,
        via="api",
    )
    current = shown_order(store.order(str(order["id"])) or order, store.settings)
    resource = message_resource(created, current, store.users(), base_url(request))
    return JSONResponse(resource, status_code=201)


@api_router.delete("/order_messages/{message:path}")
async def delete_message(request: Request, store: Store) -> Response:
    """Delete a message by ID."""
    key = path_param(request, 2)
    if not (key.isascii() and key.isdigit() and store.delete_message(int(key))):
        raise not_found(MESSAGE_MODEL.name, key)
    return Response(status_code=204)


@api_router.get("/orders")
async def list_orders(request: Request, store: Store) -> Response:
    """Orders, filtered and sorted as the query asks (newest first by default), one page."""
    settings = store.settings
    shown = [shown_order(o, settings) for o in store.orders()]
    orders = apply_query(shown, request.query_params.multi_items(), ORDER_MODEL, settings, _order_field)
    chunk, links, meta = page_of(orders, request, store)
    users = store.users()
    data = [order_resource(o, users) for o in chunk]
    run_after_page(store, Listing.ORDERS, meta["current_page"], None)
    return JSONResponse({"data": data, "links": links, "meta": meta})


@api_router.get("/orders/{order:path}")
async def get_order(request: Request, store: Store) -> Response:
    """One order by ID or number."""
    order = _find_order(store, path_param(request, 2))
    return JSONResponse(order_resource(shown_order(order, store.settings), store.users()))
