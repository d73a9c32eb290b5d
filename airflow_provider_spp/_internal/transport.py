"""HTTP details under SppHook: URL segments, Retry-After, error bodies, transport failures, retry rules."""

from __future__ import annotations

import contextvars
import email.utils
import os
import random
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urljoin, urlsplit

from airflow_provider_spp.exceptions import SppError, SppInputError, SppTransportError

if TYPE_CHECKING:
    import requests

#: Bytes per write when streaming a request body.
UPLOAD_BLOCK_SIZE = 64 * 1024
#: Longest single wait between retries when the server gives no Retry-After.
MAX_BACKOFF = 30.0


def backoff_wait(attempt: int, base: float) -> float:
    """Exponential backoff with jitter: between half and all of ``base * 2**(attempt-1)``, capped."""
    ceiling = min(MAX_BACKOFF, base * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def path_segment(value: str | int) -> str:
    """Percent-encode a value as exactly one URL path segment ('a/b' -> 'a%2Fb')."""
    text = str(value)
    if not text.strip("."):
        raise SppInputError(f"{text!r} cannot be a path segment: it would climb out of the API path")
    return quote(text, safe="")


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


def laravel_error(response: requests.Response) -> tuple[str | None, dict[str, Any]]:
    """The server's ``message`` and per-field ``errors`` from a Laravel-style JSON error body."""
    try:
        body = response.json()
    except ValueError:
        return None, {}
    if not isinstance(body, dict):
        return None, {}
    message = body.get("message") or body.get("error")
    errors = body.get("errors")
    return (str(message) if message else None), (errors if isinstance(errors, dict) else {})


#: Set while a request is sent: whether any of its bytes were handed to the socket (None: not tracked).
request_written: contextvars.ContextVar[bool | None] = contextvars.ContextVar("spp_request_written", default=None)


def transport_error(err: Exception, method: str, path: str, *, written: bool | None = None) -> SppTransportError:
    """Classify a requests failure by whether the request can have reached the server.

    ``written`` says whether any byte of the request went out (from :data:`request_written`); only a
    request that certainly never left the machine, or never got past the TLS handshake, created nothing.
    """
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    reason = err.args[0] if err.args else err
    if isinstance(err, requests.exceptions.ReadTimeout):
        not_sent = False
    elif written is not None:
        not_sent = not written
    else:
        before_sending = NewConnectionError | ConnectTimeoutError | NameResolutionError
        not_sent = isinstance(err, requests.exceptions.ConnectTimeout) or (
            isinstance(err, requests.exceptions.ConnectionError)
            and isinstance(getattr(reason, "reason", None), before_sending)
        )
    tls_failed = isinstance(err, requests.exceptions.SSLError)
    return transport_failure(
        err,
        method,
        path,
        timed_out=isinstance(err, requests.exceptions.ReadTimeout),
        tls_failed=tls_failed,
        not_sent=not_sent,
    )


def transport_failure(
    err: Exception, method: str, path: str, *, timed_out: bool, tls_failed: bool, not_sent: bool
) -> SppTransportError:
    """The SppTransportError for a failure both HTTP clients have classified: its text, outcome and retry."""
    if timed_out:
        detail = "no answer within the timeout"
    elif tls_failed and not_sent:
        detail = "the TLS handshake failed (check the certificate, or the connection's verify extra)"
    elif tls_failed:
        detail = "the TLS stream broke after the request was sent"
    elif not_sent:
        detail = "could not connect"
    else:
        detail = "the connection broke before the answer arrived"
    return SppTransportError(
        f"SPP {method} {path} failed: {detail} ({type(err).__name__})",
        request_sent=not not_sent,
        retryable=not (tls_failed and not_sent),
    )


class BearerAuth:
    """Adds the bearer token to each request; its repr never shows the token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(token=***)"


def streaming_adapter_class() -> type:
    """An HTTPAdapter that streams bodies in 64 KiB blocks and notes in :data:`request_written` when a
    request's first byte goes out (urllib3's 16 KiB blocks cost CPU; the note tells a POST that may have
    landed from one that never left)."""
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class NotesWrites:
        sock: Any
        auto_open: int

        def send(self, data: Any) -> None:
            if self.sock is None and self.auto_open:
                self.connect()  # type: ignore[attr-defined]
            request_written.set(True)
            super().send(data)  # type: ignore[misc]

    class NotingHTTPConnection(NotesWrites, HTTPConnection):
        pass

    class NotingHTTPSConnection(NotesWrites, HTTPSConnection):
        pass

    class NotingHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = NotingHTTPConnection

    class NotingHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = NotingHTTPSConnection

    class StreamingAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("blocksize", UPLOAD_BLOCK_SIZE)
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {
                "http": NotingHTTPConnectionPool,
                "https": NotingHTTPSConnectionPool,
            }

    return StreamingAdapter


def _origin(url: str) -> tuple[str, str | None, int | None]:
    """Scheme, host and port of a URL, with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, parts.hostname, parts.port or {"http": 80, "https": 443}.get(scheme)


def next_page_number(link: str, page_url: str, base_url: str) -> int:
    """The page number a ``links.next`` URL names (absolute or relative to ``page_url``).

    Laravel's paginator writes only ``?page=N`` into its links unless told to keep the query, so the
    number is all a caller should take from one. Raises ValueError when the link leaves the workspace's
    origin or names no page.
    """
    target = urljoin(page_url, link)
    if _origin(target) != _origin(base_url):
        raise ValueError(f"points away from {base_url}")
    pages = parse_qs(urlsplit(target).query).get("page", [])
    if len(pages) != 1 or not pages[0].isascii() or not pages[0].isdigit() or int(pages[0]) < 1:
        raise ValueError("names no page number")
    return int(pages[0])


def should_retry(err: BaseException, *, idempotent: bool) -> bool:
    """Retry what certainly created nothing; an idempotent call also after a lost answer or any 5xx."""
    return isinstance(err, SppError) and err.retryable and (idempotent or not err.outcome_unknown)


#: The environment variables requests reads for each request to an http(s) URL when ``trust_env`` is on.
_REQUEST_ENVIRONMENT = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "REQUEST_METHOD",  # under CGI, requests ignores HTTP_PROXY
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


class RequestEnvironment:
    """The proxies and CA bundle requests would take from the environment, for a session with trust_env off.

    requests walks the whole environment twice per request to find them (about 0.1 ms here, 5% of a
    post); this reads only the variables that matter, per request, and works the answer out again only
    when one of them changed. Same result for every request to the workspace's host.
    """

    def __init__(self, base_url: str, verify: bool | str) -> None:
        self._base_url = base_url
        self._verify = verify
        self._seen: tuple[str | None, ...] | None = None
        self._settings: dict[str, Any] = {}

    def request_settings(self) -> dict[str, Any]:
        """``proxies`` and ``verify`` for the next request (verify on trusts REQUESTS_CA_BUNDLE, as requests does)."""
        seen = tuple(os.environ.get(name) for name in _REQUEST_ENVIRONMENT)
        if seen != self._seen:
            from requests.utils import get_environ_proxies

            verify = self._verify
            if verify is True:
                verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            self._settings = {"proxies": get_environ_proxies(self._base_url), "verify": verify}
            self._seen = seen
        return self._settings
