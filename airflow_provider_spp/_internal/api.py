"""The SPP API without I/O: what to send and what an answer means, shared by SppHook and SppAsyncHook.

Both hooks build their requests here (URL, headers, query), read answers here (error mapping, models,
the next page), and decide retries here; each hook only moves bytes (requests, or httpx on asyncio).
"""

from __future__ import annotations

import email.utils
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from airflow_provider_spp import __version__
from airflow_provider_spp._internal.transport import (
    backoff_wait,
    laravel_error,
    next_page_number,
    parse_retry_after,
    path_segment,
    should_retry,
    transport_failure,
)
from airflow_provider_spp.exceptions import (
    SppApiError,
    SppInputError,
    SppTransportError,
    SppUnexpectedResponseError,
    api_error_class,
)
from airflow_provider_spp.models import order_reference

if TYPE_CHECKING:
    from airflow_provider_spp._internal.connection import SppConnectionSettings

ModelT = TypeVar("ModelT", bound=BaseModel)

#: Response header carrying SPP's request ID (quote it to SPP support).
REQUEST_ID_HEADER = "X-Api-Identifier"
#: Stop following pages after this many: a server that loops must not hang a task or a trigger.
MAX_PAGES = 1000
#: Orders sorted by their latest message first (the event trigger's cheap "what moved" query).
SORT_BY_LAST_MESSAGE = "last_message_at:desc"


@dataclass(frozen=True)
class ApiRequest:
    """One API call to make: method, absolute URL, query and JSON body; ``idempotent`` steers retries."""

    method: str
    url: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    idempotent: bool = True

    @property
    def path(self) -> str:
        """The URL's path, for messages (never the query: it may hold client data)."""
        return urlsplit(self.url).path


@dataclass(frozen=True)
class Answer:
    """What came back, independent of the HTTP library: status, headers, body and the final URL."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    reason: str = ""

    @property
    def request_id(self) -> str | None:
        """SPP's ``X-Api-Identifier`` for this answer, if it sent one."""
        return self.headers.get(REQUEST_ID_HEADER)

    @property
    def path(self) -> str:
        """The final URL's path."""
        return urlsplit(self.url).path

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not JSON."""
        return json.loads(self.body)


def answer_from_requests(response: Any) -> Answer:
    """An Answer from a ``requests.Response``."""
    return Answer(response.status_code, response.headers, response.content, str(response.url), response.reason or "")


def answer_from_httpx(response: Any) -> Answer:
    """An Answer from an ``httpx.Response`` (already read)."""
    return Answer(response.status_code, response.headers, response.content, str(response.url), response.reason_phrase)


def validation_problems(err: ValidationError) -> str:
    """Pydantic's errors as 'field: problem' text, without echoing the input (it may be a client's text)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in err.errors()
    )


# -- building requests ----------------------------------------------------------------------------------


def api_url(base_url: str, *segments: str | int) -> str:
    """Absolute URL under the workspace, each segment percent-encoded on its own."""
    return "/".join([base_url, *(path_segment(s) for s in segments)])


def user_agent(http_library: str) -> str:
    """The User-Agent both hooks send, naming the provider version and the HTTP library."""
    return f"airflow-provider-spp/{__version__} {http_library}"


def default_headers(settings: SppConnectionSettings, http_library: str) -> dict[str, str]:
    """Headers of every call except Authorization (kept apart so header dicts can be logged safely)."""
    headers = {"Accept": "application/json", "User-Agent": user_agent(http_library)}
    if settings.api_version:
        headers["X-Api-Version"] = settings.api_version
    return headers


def authorization_header(token: str) -> dict[str, str]:
    """The bearer-token header."""
    return {"Authorization": f"Bearer {token}"}


def checked_order(order: str | int) -> str:
    """Validate an order ID or number on its own, as SppInputError."""
    try:
        return order_reference(order)
    except ValueError as err:
        raise SppInputError(str(err)) from None


def page_size(per_page: int) -> int:
    """SPP pages hold 1 to 100 items."""
    if isinstance(per_page, bool) or not isinstance(per_page, int) or not 1 <= per_page <= 100:
        raise SppInputError(f"per_page must be an integer from 1 to 100, got {per_page!r}")
    return per_page


def list_messages_request(base_url: str, order: str | int, *, per_page: int = 100) -> ApiRequest:
    """GET an order's messages (newest first)."""
    return ApiRequest(
        "GET", api_url(base_url, "api", "order_messages", checked_order(order)), {"limit": page_size(per_page)}
    )


def list_orders_request(
    base_url: str, *, status: str | None = None, sort: str = "id:desc", per_page: int = 100
) -> ApiRequest:
    """GET the workspace's orders, optionally of one status, in a ``field:direction`` order."""
    params: dict[str, Any] = {"limit": page_size(per_page), "sort": sort}
    if status is not None:
        params["filters[status][$eq]"] = status
    return ApiRequest("GET", api_url(base_url, "api", "orders"), params)


def get_order_request(base_url: str, order: str | int) -> ApiRequest:
    """GET one order by ID or order number."""
    return ApiRequest("GET", api_url(base_url, "api", "orders", checked_order(order)))


def create_message_request(base_url: str, order: str, body: dict[str, Any]) -> ApiRequest:
    """POST a message (JSON body); never idempotent, so never blindly re-sent."""
    return ApiRequest("POST", api_url(base_url, "api", "order_messages", order), json=body, idempotent=False)


class PageCursor:
    """Which page of a listing to ask for next: the first request's whole query, only ``page`` changed.

    Laravel's ``links.next`` (stock paginators write ``?page=N`` alone) says which page comes next,
    nothing more; a link that leaves the workspace is refused, and a page number seen before ends the
    listing. Both hooks follow pages with it.
    """

    def __init__(self, params: Mapping[str, Any], base_url: str) -> None:
        self.params = dict(params)
        self._base_url = base_url
        self._seen = {int(self.params.get("page", 1))}

    def after(self, page: Any, answer: Answer) -> dict[str, Any] | None:
        """The query of the page after ``page`` (which ``answer`` carried), or None at the end."""
        link = getattr(getattr(page, "links", None), "next", None)
        if not link:
            return None
        try:
            number = next_page_number(link, answer.url, self._base_url)
        except ValueError as err:
            raise SppUnexpectedResponseError(
                f"SPP's next-page link {err}; not following it",
                status_code=answer.status,
                request_id=answer.request_id,
            ) from None
        if number in self._seen:
            return None
        self._seen.add(number)
        return {**self.params, "page": number}


# -- reading answers --------------------------------------------------------------------------------------


def raise_for_status(answer: Answer, method: str, path: str) -> None:
    """Turn an unexpected status into the matching SppApiError, with the server's own message."""
    status = answer.status
    if 200 <= status < 300:
        return
    request_id = answer.request_id
    if 300 <= status < 400:
        target = urlsplit(answer.headers.get("Location", "")).netloc or "another address"
        raise SppApiError(
            f"SPP {method} {path} was redirected ({status}) to {target}; "
            "set the connection host to the workspace's final URL",
            status_code=status,
            request_id=request_id,
        )
    server_message, errors = laravel_error(answer)  # type: ignore[arg-type]
    detail = server_message or answer.reason or "no message"
    if errors:
        detail += " " + "; ".join(
            f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in errors.items()
        )
    raise api_error_class(status)(
        f"SPP {method} {path} failed with {status}: {detail} (request id {request_id or 'none'})",
        status_code=status,
        request_id=request_id,
        server_message=server_message,
        errors=errors,
        retry_after=parse_retry_after(answer.headers.get("Retry-After")),
    )


def parse_model(model: type[ModelT], answer: Answer, *, unwrap: bool = True) -> ModelT:
    """Parse a success body into a model, accepting a ``{"data": {...}}`` wrapper."""
    if not unwrap or _requires_id(model):
        # One pass from bytes to model. A body that fails it (a wrapper has no top-level id, or it is not
        # the model at all) takes the long way below, which unwraps or reports exactly as before.
        try:
            return model.model_validate_json(answer.body)
        except ValidationError:
            pass
    request_id = answer.request_id
    try:
        payload = answer.json()
    except ValueError:
        raise SppUnexpectedResponseError(
            f"SPP answered {answer.status} to {answer.path} but the body is not JSON "
            f"(request id {request_id or 'none'})",
            status_code=answer.status,
            request_id=request_id,
        ) from None
    if unwrap and isinstance(payload, dict) and "id" not in payload and isinstance(payload.get("data"), dict):
        payload = payload["data"]
    try:
        return model.model_validate(payload)
    except ValidationError as err:
        raise SppUnexpectedResponseError(
            f"SPP answered {answer.status} to {answer.path} with a body that is not a {model.__name__} "
            f"({validation_problems(err)}; request id {request_id or 'none'})",
            status_code=answer.status,
            request_id=request_id,
        ) from None


@functools.cache
def _requires_id(model: type[BaseModel]) -> bool:
    """Whether a body can only be this model if it has a top-level ``id`` (so it is never a wrapper)."""
    field = model.model_fields.get("id")
    return field is not None and field.is_required()


def server_date(answer: Answer) -> datetime | None:
    """The server's clock from its ``Date`` header (UTC), or None when absent or unreadable."""
    value = answer.headers.get("Date")
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def httpx_transport_error(err: Exception, method: str, path: str) -> SppTransportError:
    """Classify an httpx failure by whether the request can have reached the server (as for requests).

    Only failures while connecting (TCP, TLS handshake, pool) mean the request never left; anything else,
    including a bare ``ssl.SSLError`` or ``OSError`` that httpcore did not wrap, may follow a sent request.
    """
    import ssl

    import httpx

    tls_failed = _caused_by(err, ssl.SSLError)
    not_sent = isinstance(
        err, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.UnsupportedProtocol
    )
    return transport_failure(
        err, method, path, timed_out=isinstance(err, httpx.ReadTimeout), tls_failed=tls_failed, not_sent=not_sent
    )


def _caused_by(err: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is anywhere in the exception's cause/context chain (httpx wraps httpcore's errors)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


# -- retries ----------------------------------------------------------------------------------------------


def retry_wait(err: BaseException | None, attempt: int, backoff_base: float) -> float:
    """Seconds before the next try: Retry-After when the server gave one, else backoff with jitter."""
    retry_after = getattr(err, "retry_after", None)
    if retry_after is not None:
        return float(retry_after)
    return backoff_wait(attempt, backoff_base)


def retry_delay(
    err: BaseException,
    attempt: int,
    elapsed: float,
    settings: SppConnectionSettings,
    *,
    idempotent: bool,
    retries: bool,
) -> float | None:
    """Seconds to wait before trying a call again after ``err`` ended try number ``attempt``; None: give up.

    A call is tried again only when that cannot create a second copy of anything, at most ``max_retries``
    times, and never when the wait would end ``retry_max_time`` or more after the first try began
    (``elapsed`` is the time since then).
    """
    if not retries or attempt > settings.max_retries or not should_retry(err, idempotent=idempotent):
        return None
    wait = retry_wait(err, attempt, settings.retry_backoff)
    return wait if elapsed + wait < settings.retry_max_time else None


def describe_failure(err: BaseException | None) -> tuple[str, str]:
    """What failed ("answered 503" or "failed (...)") and the request id, for a retry warning."""
    what = f"answered {err.status_code}" if isinstance(err, SppApiError) else f"failed ({err})"
    return what, getattr(err, "request_id", None) or "none"


def log_retry(log: Any, method: str, path: str, attempt: int, max_retries: int, wait: float, err: Any) -> None:
    """One warning per retry: what failed, the request id, and how long we wait."""
    what, request_id = describe_failure(err)
    log.warning(
        "SPP %s %s %s (request id %s); retry %d of %d in %.1f s",
        method,
        path,
        what,
        request_id,
        attempt,
        max_retries,
        wait,
    )
