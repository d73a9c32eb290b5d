"""What happens on a call to SPP's API, without I/O: the request to send, and what its answer means.

A call, start to end: a hook builds an :class:`ApiRequest` here (every endpoint; JSON or a streamed
multipart form) and hands it to its transport (requests in ``http_sync``, httpx in ``http_async``),
which sends it, turns its library's failures into SppTransportError (:func:`transport_failure`) and
returns an :class:`Answer`. The transport's retry loop asks ``retries.Retries`` what the answer means
(:func:`raise_for_status`) and, after a failure, how long to wait or whether to give up. The hook
reads the body here (:func:`parse_model`); a listing's next request comes from ``paging``. What a host
answers besides the API (redirects, licence and login pages) is read in ``host_answers``; which CAs are
trusted and which TLS failures are transient, in ``tls_trust``.
"""

from __future__ import annotations

import email.utils
import functools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ValidationError

from airflow_provider_spp import __version__
from airflow_provider_spp._internal.host_answers import html_error, is_html, redirect_error
from airflow_provider_spp._internal.tls_trust import handshake_cut_short
from airflow_provider_spp.exceptions import (
    SppApiError,
    SppError,
    SppInputError,
    SppTransportError,
    SppUnexpectedResponseError,
    api_error_class,
)
from airflow_provider_spp.models import OrderMessageRequest, OrderStatus, order_reference

if TYPE_CHECKING:
    from airflow_provider_spp._internal.attachments import Attachment
    from airflow_provider_spp._internal.connection import SppConnectionSettings

ModelT = TypeVar("ModelT", bound=BaseModel)

#: Response header carrying SPP's request ID (quote it to SPP support).
REQUEST_ID_HEADER = "X-Api-Identifier"
#: Orders sorted by their latest message first (the event trigger's cheap "what moved" query).
SORT_BY_LAST_MESSAGE = "last_message_at:desc"


@dataclass(frozen=True)
class MultipartForm:
    """A multipart body to stream: the text fields, then one ``attachments[]`` part per file."""

    fields: list[tuple[str, str]]
    files: list[Attachment]


@dataclass(frozen=True)
class ApiRequest:
    """One API call to make, and how it may be retried.

    ``idempotent`` calls may be re-sent after a lost answer and follow redirects; ``retries`` off sends
    once; with ``gone_is_done`` (a DELETE), a 404 after a try whose answer was lost is an answer, not an
    error: that try may have removed the resource.
    """

    method: str
    url: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    form: MultipartForm | None = None
    idempotent: bool = True
    retries: bool = True
    gone_is_done: bool = False

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


# -- building requests ----------------------------------------------------------------------------------


def path_segment(value: str | int) -> str:
    """Percent-encode a value as exactly one URL path segment ('a/b' -> 'a%2Fb')."""
    text = str(value)
    if not text.strip("."):
        raise SppInputError(f"{text!r} cannot be a path segment: it would climb out of the API path")
    return quote(text, safe="")


def api_url(base_url: str, *segments: str | int) -> str:
    """Absolute URL under the workspace, each segment percent-encoded on its own."""
    return "/".join([base_url, *(path_segment(s) for s in segments)])


def default_headers(settings: SppConnectionSettings, http_library: str) -> dict[str, str]:
    """Headers of every call except Authorization (kept apart so header dicts can be logged safely)."""
    headers = {"Accept": "application/json", "User-Agent": f"airflow-provider-spp/{__version__} {http_library}"}
    if settings.api_version:
        headers["X-Api-Version"] = settings.api_version
    return headers


def authorization_header(token: str) -> dict[str, str]:
    """The bearer-token header, which each transport sends with every request (and only there)."""
    return {"Authorization": f"Bearer {token}"}


def validation_problems(err: ValidationError) -> str:
    """Pydantic's errors as 'field: problem' text, without echoing the input (it may be a client's text)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in err.errors()
    )


def order_message_request(
    order: str | int, message: str, *, user_id: int | str | None = None, staff_only: bool | str | None = None
) -> OrderMessageRequest:
    """Validate what a caller asks to post, raising SppInputError with every problem at once."""
    try:
        return OrderMessageRequest.model_validate(
            {"order": order, "message": message, "user_id": user_id, "staff_only": staff_only}
        )
    except ValidationError as err:
        raise SppInputError(f"Invalid SPP order message: {validation_problems(err)}") from None


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


def create_message_request(base_url: str, wanted: OrderMessageRequest, files: list[Attachment]) -> ApiRequest:
    """POST a message, as JSON or (with files) as a streamed multipart form; never blindly re-sent."""
    url = api_url(base_url, "api", "order_messages", wanted.order)
    if files:
        return ApiRequest("POST", url, form=MultipartForm(wanted.form_fields(), files), idempotent=False)
    return ApiRequest("POST", url, json=wanted.json_body(), idempotent=False)


def list_messages_request(
    base_url: str, order: str | int, *, per_page: int = 100, filters: Mapping[str, str] | None = None
) -> ApiRequest:
    """GET an order's messages (newest first), with Purity ``filters`` (a server may ignore them)."""
    params: dict[str, Any] = {"limit": page_size(per_page), **(filters or {})}
    return ApiRequest("GET", api_url(base_url, "api", "order_messages", checked_order(order)), params)


def checked_message_id(message_id: int) -> int:
    """Validate a message ID (a positive integer), as SppInputError."""
    if isinstance(message_id, bool) or not isinstance(message_id, int) or message_id <= 0:
        raise SppInputError(f"message_id must be a positive integer, got {message_id!r}")
    return message_id


def delete_message_request(base_url: str, message_id: int) -> ApiRequest:
    """DELETE one message by its (checked) ID; a 404 after a lost answer means it is deleted."""
    return ApiRequest("DELETE", api_url(base_url, "api", "order_messages", message_id), gone_is_done=True)


def list_orders_request(
    base_url: str,
    *,
    status: OrderStatus | None = None,
    sort: str | None = "id:desc",
    per_page: int = 100,
    filters: Mapping[str, str] | None = None,
) -> ApiRequest:
    """GET the workspace's orders, optionally of one status (a code or a label, sent as given), sorted.

    ``sort`` None leaves the order to the server; ``filters`` are more Purity conditions,
    ``{"filters[field][$op]": value}``, sent as given.
    """
    params: dict[str, Any] = {"limit": page_size(per_page)}
    if sort is not None:
        params["sort"] = sort
    if status is not None:
        params["filters[status][$eq]"] = checked_status(status)
    params.update(filters or {})
    return ApiRequest("GET", api_url(base_url, "api", "orders"), params)


def checked_status(status: OrderStatus) -> OrderStatus:
    """An order status to filter by: a workspace's integer code or a label, as SppInputError otherwise."""
    if (
        isinstance(status, bool)
        or not isinstance(status, int | str)
        or (isinstance(status, str) and not status.strip())
    ):
        raise SppInputError(f"status must be a status code (int) or label (str), got {status!r}")
    return status


def get_order_request(base_url: str, order: str | int) -> ApiRequest:
    """GET one order by ID or order number."""
    return ApiRequest("GET", api_url(base_url, "api", "orders", checked_order(order)))


def probe_request(base_url: str) -> ApiRequest:
    """The connection test: one cheap, side-effect-free authenticated GET, sent once."""
    return ApiRequest("GET", api_url(base_url, "api", "orders"), {"limit": 1}, retries=False)


# -- reading answers --------------------------------------------------------------------------------------


def laravel_error(answer: Answer) -> tuple[str | None, dict[str, Any]]:
    """The server's ``message`` and per-field ``errors`` from a Laravel-style JSON error body."""
    try:
        body = answer.json()
    except ValueError:
        return None, {}
    if not isinstance(body, dict):
        return None, {}
    message = body.get("message") or body.get("error")
    errors = body.get("errors")
    return (str(message) if message else None), (errors if isinstance(errors, dict) else {})


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header given in seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


#: What a 403 means on Wayfront: the token is valid, but its user may not use the API.
NO_API_ACCESS = "the token's role or the workspace's plan has no API access"


def raise_for_status(answer: Answer, method: str, path: str) -> None:
    """Turn an unexpected status into the matching SppApiError, with the server's own message."""
    status = answer.status
    if 200 <= status < 300:
        if is_html(answer):
            raise html_error(answer, method, path)
        return
    request_id = answer.request_id
    if 300 <= status < 400:
        raise redirect_error(answer, method, path)
    server_message, errors = laravel_error(answer)
    detail = server_message or answer.reason or "no message"
    if status == 403:
        detail += f" ({NO_API_ACCESS})"
    if errors:
        detail += " " + "; ".join(
            f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in errors.items()
        )
    raise api_error_class(status)(
        f"Wayfront (SPP) {method} {path} failed with {status}: {detail} (request id {request_id or 'none'})",
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
            f"Wayfront (SPP) answered {answer.status} to {answer.path} but the body is not JSON "
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
            f"Wayfront (SPP) answered {answer.status} to {answer.path} with a body that is not a {model.__name__} "
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


def connection_test_failure(err: SppError, base_url: str) -> str:
    """What the UI's Test button says when the test call failed: what went wrong and what to check."""
    if isinstance(err, SppApiError):
        said = f": {err.server_message}" if err.server_message else ""
        if err.status_code == 401:
            return f"{base_url} rejected the API token (401{said}). Check the API token field."
        if err.status_code == 403:
            return f"{base_url} accepted the API token, but {NO_API_ACCESS} (403{said})."
        return f"{base_url}: {err}"
    if isinstance(err, SppTransportError):
        return f"Could not reach {base_url}: {err}. Check the workspace URL."
    return str(err)


def transport_failure(
    err: Exception, method: str, path: str, *, timed_out: bool, tls_failed: bool, not_sent: bool
) -> SppTransportError:
    """The SppTransportError for a failure a transport has classified: its text, outcome and retry.

    A handshake cut short (EOF, reset) is tried again; a certificate that does not verify is permanent.
    """
    rejected = tls_failed and not_sent and not handshake_cut_short(err)
    if timed_out:
        detail = "no answer within the timeout"
    elif rejected:
        detail = (
            "the TLS handshake failed: the certificate did not verify or the server does not speak TLS "
            "(check the workspace URL, the certificate, or the connection's verify extra)"
        )
    elif tls_failed and not_sent:
        detail = "the TLS handshake failed: the connection was cut before the request was sent"
    elif tls_failed:
        detail = "the TLS stream broke after the request was sent"
    elif not_sent:
        detail = "could not connect"
    else:
        detail = "the connection broke before the answer arrived"
    return SppTransportError(
        f"Wayfront (SPP) {method} {path} failed: {detail} ({type(err).__name__})",
        request_sent=not not_sent,
        retryable=not rejected,
    )
