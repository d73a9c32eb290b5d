"""What the sandbox's routes share: the app class, its store, Laravel-style errors and path parameters."""

from __future__ import annotations

import hmac
import threading
from functools import partial
from typing import Annotated, Any, TypeVar
from urllib.parse import unquote

from fastapi import Depends, FastAPI, Request
from starlette.types import Receive, Scope, Send

from airflow_provider_spp.sandbox.bodies import ParsedBody, parse_body
from airflow_provider_spp.sandbox.middleware import BODY_STATE_KEY, SandboxMiddleware, raw_path
from airflow_provider_spp.sandbox.resources import page_params, paginate
from airflow_provider_spp.sandbox.store import SandboxStore

__all__ = [
    "LaravelError",
    "SandboxApp",
    "Store",
    "app_of",
    "base_url",
    "not_found",
    "page_of",
    "parsed_body",
    "path_param",
    "route_not_found",
    "store_of",
]

T = TypeVar("T")


class LaravelError(Exception):
    """An error answered as Laravel does: ``{"message": ...}`` with a status code."""

    def __init__(self, status_code: int, message: str) -> None:
        """Remember the status and message."""
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def not_found(model: str, key: str) -> LaravelError:
    """Laravel's ModelNotFoundException, as an API answers it."""
    return LaravelError(404, f"No query results for model [{model}] {key}".rstrip())


def route_not_found(request: Request) -> LaravelError:
    """Laravel's NotFoundHttpException for a URL no route matches."""
    return LaravelError(404, f"The route {raw_path(request.scope).lstrip('/')} could not be found.")


def path_param(request: Request, position: int, *, last: int | None = None) -> str:
    """The percent-decoded raw path segment at ``position`` (``/api/orders/X`` → position 2 is X).

    The route must end at segment ``last`` (default: ``position``); a literal ``/`` inside a value
    (rather than ``%2F``) makes another URL, which no route matches.
    """
    segments = raw_path(request.scope).split("/")[1:]
    if len(segments) != (position if last is None else last) + 1 or not segments[position]:
        raise route_not_found(request)
    return unquote(segments[position], errors="replace")


def base_url(request: Request) -> str:
    """``scheme://host[:port]`` the client used."""
    return str(request.base_url).rstrip("/")


def page_path(request: Request) -> str:
    """The absolute URL of this resource without its query (for paginator links)."""
    return f"{base_url(request)}{raw_path(request.scope)}"


def page_of(items: list[T], request: Request, store: SandboxStore) -> tuple[list[T], dict[str, Any], dict[str, Any]]:
    """The page the request asks for, with Laravel's ``links`` and ``meta`` (see ``resources.paginate``)."""
    page, per_page = page_params(request.query_params, store.max_per_page)
    return paginate(
        items,
        page=page,
        per_page=per_page,
        path=page_path(request),
        query=request.query_params.multi_items(),
        link_style=store.link_style,
    )


async def parsed_body(request: Request) -> ParsedBody:
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

    def without_api_access(self, supplied: str) -> bool:
        """Whether an ``Authorization`` header carries the ``no_api_token`` setting's token (a valid login, no API)."""
        token = self.store.settings.no_api_token
        return bool(token) and hmac.compare_digest(supplied.encode("latin-1", "replace"), f"Bearer {token}".encode())


def app_of(request: Request) -> SandboxApp:
    """The sandbox app serving this request."""
    app = request.app
    assert isinstance(app, SandboxApp)
    return app


def store_of(request: Request) -> SandboxStore:
    """The store of the sandbox app serving this request."""
    return app_of(request).store


#: A handler parameter that receives the app's store.
Store = Annotated[SandboxStore, Depends(store_of)]
