"""The sandbox's HTTP routes: the SPP endpoints under ``/api`` and the test-facing admin API under ``/_sandbox``.

SPP (Laravel) behaviour mirrored: ``Authorization: Bearer <token>`` or 401 ``{"message":
"Unauthenticated."}``; an unknown order is 404 ``No query results for model [App\\Models\\Order] …``;
validation is 422 ``{"message", "errors"}``; errors and unknown routes answer JSON, never HTML.
Path parameters are read from the raw (percent-encoded) path, one segment each, so an order key
containing ``%2F`` reaches the handler (and is a "no such order" 404) instead of missing the route.

Admin API (no auth): ``GET /_sandbox/health``, ``GET|DELETE /_sandbox/requests``,
``GET /_sandbox/messages``, ``GET /_sandbox/files/{message_id}/{filename}``, ``POST /_sandbox/reset``,
``POST /_sandbox/orders`` (``{"count": 1000, "status": "Pending"}`` adds generated orders until the next reset),
``POST /_sandbox/orders/{order}/client_messages`` ``{"message": ...}`` (a reply from the order's client),
``GET|POST|DELETE /_sandbox/faults``, ``GET|POST|… /_sandbox/redirect?to=<url>[&status=307]``.
"""

from __future__ import annotations

import hmac
import threading
from functools import partial
from typing import Annotated, Any, TypeVar
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from airflow_provider_spp.sandbox.bodies import (
    ParsedBody,
    ValidationFailed,
    laravel_input,
    parse_body,
    validate_message,
)
from airflow_provider_spp.sandbox.faults import Fault, RandomFaults
from airflow_provider_spp.sandbox.middleware import BODY_STATE_KEY, SandboxMiddleware, raw_path
from airflow_provider_spp.sandbox.resources import message_resource, order_resource, page_params, paginate
from airflow_provider_spp.sandbox.store import SandboxStore

T = TypeVar("T")

DEFAULT_API_VERSION = "2024-03-05"
_ORDER_MODEL = "App\\Models\\Order"
_MESSAGE_MODEL = "App\\Models\\OrderMessage"
_SORTABLE = ("id", "number", "status", "created_at", "updated_at", "last_message_at")
_REDIRECT_STATUSES = (301, 302, 303, 307, 308)


class LaravelError(Exception):
    """An error answered as Laravel does: ``{"message": ...}`` with a status code."""

    def __init__(self, status_code: int, message: str) -> None:
        """Remember the status and message."""
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def _not_found(model: str, key: str) -> LaravelError:
    """Laravel's ModelNotFoundException, as an API answers it."""
    return LaravelError(404, f"No query results for model [{model}] {key}".rstrip())


def _route_not_found(request: Request) -> LaravelError:
    """Laravel's NotFoundHttpException for a URL no route matches."""
    return LaravelError(404, f"The route {raw_path(request.scope).lstrip('/')} could not be found.")


def path_param(request: Request, position: int, *, last: int | None = None) -> str:
    """The percent-decoded raw path segment at ``position`` (``/api/orders/X`` → position 2 is X).

    The route must end at segment ``last`` (default: ``position``); a literal ``/`` inside a value
    (rather than ``%2F``) makes another URL, which no route matches.
    """
    segments = raw_path(request.scope).split("/")[1:]
    if len(segments) != (position if last is None else last) + 1 or not segments[position]:
        raise _route_not_found(request)
    return unquote(segments[position], errors="replace")


def _base_url(request: Request) -> str:
    """``scheme://host[:port]`` the client used."""
    return str(request.base_url).rstrip("/")


def _page_path(request: Request) -> str:
    """The absolute URL of this resource without its query (for paginator links)."""
    return f"{_base_url(request)}{raw_path(request.scope)}"


def _page_of(items: list[T], request: Request, store: SandboxStore) -> tuple[list[T], dict[str, Any], dict[str, Any]]:
    """The page the request asks for, with Laravel's ``links`` and ``meta`` (see ``resources.paginate``)."""
    page, per_page = page_params(request.query_params, store.max_per_page)
    return paginate(
        items,
        page=page,
        per_page=per_page,
        path=_page_path(request),
        query=request.query_params.multi_items(),
        link_style=store.link_style,
    )


async def _parsed_body(request: Request) -> ParsedBody:
    """The body the middleware parsed, or parse it now (when run without the middleware)."""
    parsed = request.scope.get("state", {}).get(BODY_STATE_KEY)
    if isinstance(parsed, ParsedBody):
        return parsed
    return await parse_body(request.headers, await request.body())


class SandboxApp(FastAPI):
    """FastAPI app whose outermost ASGI layer is :class:`SandboxMiddleware` (it needs uvicorn's raw ``send``)."""

    def __init__(self, store: SandboxStore, api_version: str, token: str, **kwargs: Any) -> None:
        """Create the app around a store, accepting ``Bearer <token>``; kwargs go to FastAPI."""
        super().__init__(docs_url=None, redoc_url=None, openapi_url=None, **kwargs)
        self.store = store
        self.api_version = api_version
        self._authorization = f"Bearer {token}".encode()
        #: Set when the server stops, so ``slow`` faults stop waiting.
        self.shutting_down = threading.Event()
        self._outer = SandboxMiddleware(partial(FastAPI.__call__, self), store, api_version, self.shutting_down)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Enter through the sandbox middleware."""
        await self._outer(scope, receive, send)

    def authorized(self, supplied: str) -> bool:
        """Whether an ``Authorization`` header carries this app's token (compared in constant time)."""
        return hmac.compare_digest(supplied.encode("latin-1", "replace"), self._authorization)


def _app(request: Request) -> SandboxApp:
    """The sandbox app serving this request."""
    app = request.app
    assert isinstance(app, SandboxApp)
    return app


def _store(request: Request) -> SandboxStore:
    """The store of the sandbox app serving this request."""
    return _app(request).store


#: A handler parameter that receives the app's store.
Store = Annotated[SandboxStore, Depends(_store)]


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
        return JSONResponse(exc.body(), status_code=422)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            message = _route_not_found(request).message
        elif exc.status_code == 405:
            message = f"The {request.method} method is not supported for route {raw_path(request.scope).lstrip('/')}."
        else:
            message = str(exc.detail)
        return JSONResponse({"message": message}, status_code=exc.status_code, headers=exc.headers)

    async def server_error(request: Request, exc: Exception) -> Response:
        return JSONResponse({"message": "Server Error"}, status_code=500)

    app.add_exception_handler(LaravelError, laravel_error)
    app.add_exception_handler(ValidationFailed, validation_failed)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, server_error)


def _authenticate(request: Request) -> None:
    """Laravel's 401 unless the request carries the sandbox's bearer token."""
    if not _app(request).authorized(request.headers.get("authorization", "")):
        raise LaravelError(401, "Unauthenticated.")


#: The SPP endpoints (all behind the bearer token).
api_router = APIRouter(prefix="/api", dependencies=[Depends(_authenticate)])


def _find_order(store: SandboxStore, key: str) -> dict[str, Any]:
    """The order with this ID or number, or Laravel's 404."""
    order = store.order(key)
    if order is None:
        raise _not_found(_ORDER_MODEL, key)
    return order


@api_router.get("/order_messages/{order:path}")
async def list_messages(request: Request, store: Store) -> Response:
    """An order's messages, newest first, one page."""
    order = _find_order(store, path_param(request, 2))
    newest_first = sorted(store.messages(order["id"]), key=lambda m: (m.created_at, m.id), reverse=True)
    chunk, links, meta = _page_of(newest_first, request, store)
    users, base = store.users(), _base_url(request)
    data = [message_resource(m, order, users, base) for m in chunk]
    return JSONResponse({"data": data, "links": links, "meta": meta})


@api_router.post("/order_messages/{order:path}")
async def create_message(request: Request, store: Store) -> Response:
    """Post a message (JSON, form or multipart with attachments) on an order."""
    order = _find_order(store, path_param(request, 2))
    body = await _parsed_body(request)
    valid = validate_message(laravel_input(body, request.query_params.multi_items()), store.has_user)
    created = store.create_message(
        order_id=order["id"],
        message=valid.message,
        user_id=valid.user_id,
        staff_only=bool(valid.staff_only),
        files=valid.attachments,
    )
    current = store.order(str(order["id"])) or order
    resource = message_resource(created, current, store.users(), _base_url(request))
    return JSONResponse(resource, status_code=201)


@api_router.delete("/order_messages/{message:path}")
async def delete_message(request: Request, store: Store) -> Response:
    """Delete a message by ID."""
    key = path_param(request, 2)
    if not (key.isascii() and key.isdigit() and store.delete_message(int(key))):
        raise _not_found(_MESSAGE_MODEL, key)
    return Response(status_code=204)


@api_router.get("/orders")
async def list_orders(request: Request, store: Store) -> Response:
    """Orders, filtered and sorted as the query asks, one page."""
    orders = _filter_orders(store.orders(), request.query_params.multi_items())
    orders = _sort_orders(orders, request.query_params.get("sort"))
    chunk, links, meta = _page_of(orders, request, store)
    users = store.users()
    return JSONResponse({"data": [order_resource(o, users) for o in chunk], "links": links, "meta": meta})


@api_router.get("/orders/{order:path}")
async def get_order(request: Request, store: Store) -> Response:
    """One order by ID or number."""
    order = _find_order(store, path_param(request, 2))
    return JSONResponse(order_resource(order, store.users()))


def _filter_orders(orders: list[dict[str, Any]], query: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Apply ``filters[field][$eq]`` / ``filters[field][$ne]`` (case-insensitive, like MySQL)."""
    for name, value in query:
        if not (name.startswith("filters[") and name.endswith("]")):
            continue
        field, _, operator = name[len("filters[") : -1].partition("][")
        if field not in _SORTABLE or operator not in ("$eq", "$ne"):
            continue
        wanted = value.casefold()

        def equal(order: dict[str, Any], field: str = field, wanted: str = wanted) -> bool:
            return str(order.get(field)).casefold() == wanted

        orders = [o for o in orders if equal(o) == (operator == "$eq")]
    return orders


def _sort_orders(orders: list[dict[str, Any]], sort: str | None) -> list[dict[str, Any]]:
    """``sort=field:asc|desc``; by default newest first (created_at, then id)."""
    field, _, direction = (sort or "").partition(":")
    if field not in _SORTABLE:
        return sorted(orders, key=lambda o: (o["created_at"], o["id"]), reverse=True)
    return sorted(
        orders,
        key=lambda o: (o.get(field) is not None, o.get(field) if o.get(field) is not None else "", o["id"]),
        reverse=direction.lower() != "asc",
    )


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
    base = _base_url(request)
    return [m.to_dict(base) for m in store.messages()]


@admin_router.post("/orders/{order}/client_messages")
async def client_message(request: Request, store: Store) -> Response:
    """A reply from the order's client arriving (the portal's side, which the API cannot do)."""
    order = store.order(path_param(request, 2, last=3))
    payload = await request.json()
    if order is None or not isinstance(payload, dict) or not str(payload.get("message") or "").strip():
        return JSONResponse({"message": "need an existing order and a non-empty 'message'"}, status_code=422)
    created = store.create_message(
        order_id=order["id"], message=str(payload["message"]), user_id=store.client_of(order["id"])
    )
    return JSONResponse(created.to_dict(_base_url(request)), status_code=201)


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
            raise ValueError('expected {"count": int, "status": str}')
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
    if status not in _REDIRECT_STATUSES:
        return JSONResponse({"message": f"'status' must be one of {_REDIRECT_STATUSES}"}, status_code=400)
    return Response(status_code=status, headers={"location": target})
