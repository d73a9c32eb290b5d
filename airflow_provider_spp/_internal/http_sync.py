"""SppHook's transport on requests: sends an ApiRequest, returns an Answer, retries by the client's rule.

Besides the pooled session, two things only requests needs: an adapter that streams bodies in large
blocks and notes whether a request's first byte went out (a failed POST that never left created
nothing), and the environment's proxies and CA bundle read per request (the session ignores them).
"""

from __future__ import annotations

import contextvars
import os
import time
from contextlib import ExitStack
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_spp._internal.attachments import multipart_encoder
from airflow_provider_spp._internal.client import (
    Answer,
    ApiRequest,
    authorization_header,
    default_headers,
    server_date,
    transport_failure,
)
from airflow_provider_spp._internal.retries import Retries
from airflow_provider_spp._internal.tls_trust import trusted_cas
from airflow_provider_spp.exceptions import SppApiError, SppTransportError

if TYPE_CHECKING:
    from datetime import datetime

    import requests

    from airflow_provider_spp._internal.connection import SppConnectionSettings

#: Bytes per write when streaming a request body.
UPLOAD_BLOCK_SIZE = 64 * 1024

#: Set while a request is sent: whether any of its bytes were handed to the socket (None: not tracked).
request_written: contextvars.ContextVar[bool | None] = contextvars.ContextVar("spp_request_written", default=None)


class RequestsTransport:
    """A pooled requests session to one workspace; :meth:`send` makes one call, retries included."""

    #: The server's clock (its ``Date`` header) as of the latest answer, when it sent one.
    server_time: datetime | None = None

    def __init__(self, settings: SppConnectionSettings, log: Any) -> None:
        self._settings = settings
        self._log = log
        self._authorization = authorization_header(settings.token)
        self._environment = RequestEnvironment(settings.base_url, settings.verify)
        self._session: requests.Session | None = None

    def __repr__(self) -> str:
        return f"RequestsTransport({self._settings.base_url!r})"

    @property
    def session(self) -> requests.Session:
        """The pooled session, created on first use (again after :meth:`close`)."""
        if self._session is None:
            import requests

            session = requests.Session()
            # The environment (proxies, CA bundle) is read per request by self._environment instead.
            session.trust_env = False
            session.verify = self._settings.verify
            session.headers.update(default_headers(self._settings, f"python-requests/{requests.__version__}"))
            adapter = streaming_adapter_class()(pool_connections=4, pool_maxsize=8, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            self._session = session
        return self._session

    def close(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def send(self, request: ApiRequest) -> Answer:
        """Make one call: its answer, or the error of its last try (retried only by the client's rule)."""
        session = self.session
        retries = Retries(request, self._settings, self._log)
        while True:
            try:
                answer = self._exchange(session, request)
                while (hop := retries.follow(answer)) is not None:  # within the workspace only
                    answer = self._exchange(session, hop)
                return retries.checked(answer)
            except (SppTransportError, SppApiError) as err:
                wait = retries.wait_after(err)
                if wait is None:
                    raise
                time.sleep(wait)

    def _exchange(self, session: requests.Session, request: ApiRequest) -> Answer:
        """One HTTP exchange; a failure below HTTP becomes SppTransportError."""
        import requests

        settings = self._settings
        with ExitStack() as stack:
            form = request.form
            data = multipart_encoder(form.fields, form.files, stack) if form is not None else None
            headers = (
                self._authorization if data is None else {**self._authorization, "Content-Type": data.content_type}
            )
            request_written.set(False)
            try:
                response = session.request(
                    request.method,
                    request.url,
                    params=request.params,
                    json=request.json,
                    data=data,
                    headers=headers,
                    timeout=(settings.connect_timeout, settings.timeout),
                    # Per request: a session's verify would lose to REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE.
                    **self._environment.request_settings(),
                    allow_redirects=False,  # followed by send(), never to another host
                )
            except requests.RequestException as err:
                raise transport_error(err, request.method, request.path, written=request_written.get()) from None
        answer = answer_from_requests(response)
        self.server_time = server_date(answer) or self.server_time
        return answer


def answer_from_requests(response: Any) -> Answer:
    """An Answer from a ``requests.Response``."""
    return Answer(response.status_code, response.headers, response.content, str(response.url), response.reason or "")


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

            verify = trusted_cas(self._verify, os.environ)
            self._settings = {"proxies": get_environ_proxies(self._base_url), "verify": verify}
            self._seen = seen
        return self._settings
