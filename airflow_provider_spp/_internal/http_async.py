"""SppAsyncHook's transport on httpx: sends an ApiRequest, returns an Answer, retries by the client's rule."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import AsyncExitStack
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from airflow_provider_spp._internal.attachments import FORM_FIELD
from airflow_provider_spp._internal.client import (
    Answer,
    ApiRequest,
    MultipartForm,
    authorization_header,
    default_headers,
    server_date,
    transport_failure,
)
from airflow_provider_spp._internal.retries import Retries
from airflow_provider_spp._internal.tls_trust import caused_by, trusted_cas
from airflow_provider_spp.exceptions import SppApiError, SppTransportError

if TYPE_CHECKING:
    import ssl

    import httpx

    from airflow_provider_spp._internal.connection import SppConnectionSettings


class HttpxTransport:
    """A pooled httpx client to one workspace; :meth:`send` makes one call, retries included."""

    #: The server's clock (its ``Date`` header) as of the latest answer, when it sent one.
    server_time: datetime | None = None

    def __init__(self, settings: SppConnectionSettings, log: Any, tls: ssl.SSLContext | bool) -> None:
        self._settings = settings
        self._log = log
        #: The CAs to trust (see :func:`tls_context`): built before, off the event loop, as it reads files.
        self._tls = tls
        self._authorization = authorization_header(settings.token)
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"HttpxTransport({self._settings.base_url!r})"

    @property
    def client(self) -> httpx.AsyncClient:
        """The pooled client, created on first use (again after :meth:`aclose`)."""
        if self._client is None:
            import httpx

            settings = self._settings
            self._client = httpx.AsyncClient(
                headers=default_headers(settings, f"python-httpx/{httpx.__version__}"),
                timeout=httpx.Timeout(
                    settings.timeout,
                    connect=settings.connect_timeout,
                    write=settings.connect_timeout,
                    pool=settings.connect_timeout,
                ),
                verify=self._tls,
                limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
            )
        return self._client

    async def aclose(self) -> None:
        """Close the pooled connections."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, request: ApiRequest) -> Answer:
        """Make one call: its answer, or the error of its last try (retried only by the client's rule)."""
        client = self.client
        retries = Retries(request, self._settings, self._log)
        while True:
            try:
                answer = await self._exchange(client, request)
                while (hop := retries.follow(answer)) is not None:  # within the workspace only
                    answer = await self._exchange(client, hop)
                return retries.checked(answer)
            except (SppTransportError, SppApiError) as err:
                wait = retries.wait_after(err)
                if wait is None:
                    raise
                await asyncio.sleep(wait)

    async def _exchange(self, client: httpx.AsyncClient, request: ApiRequest) -> Answer:
        """One HTTP exchange; a failure below HTTP becomes SppTransportError."""
        import httpx

        async with AsyncExitStack() as stack:
            headers, body = self._authorization, None
            if request.form is not None:
                form_headers, body = await streamed_form(request.form, stack)
                headers = {**headers, **form_headers}
            try:
                response = await client.request(
                    request.method,
                    request.url,
                    params=request.params or None,
                    json=request.json,
                    content=body,
                    headers=headers,
                    follow_redirects=False,  # followed by send(), never to another host
                )
            except (httpx.HTTPError, OSError) as err:  # httpcore lets some TLS read errors through unwrapped
                raise httpx_transport_error(err, request.method, request.path) from None
        answer = answer_from_httpx(response)
        self.server_time = server_date(answer) or self.server_time
        return answer


async def streamed_form(form: MultipartForm, stack: AsyncExitStack) -> tuple[dict[str, str], AsyncIterator[bytes]]:
    """A multipart body whose files are opened, measured, read and closed in worker threads, never on the loop.

    httpx encodes the form (the same bytes as before) but would read the files on the event loop; here each
    chunk of its encoder is produced by :func:`asyncio.to_thread`. Built afresh for each try of a call.
    """
    import httpx

    def encode() -> tuple[dict[str, str], Iterator[bytes]]:
        files = [(FORM_FIELD, (f.filename, stack_file(f.opener()), f.content_type)) for f in form.files]
        encoded = httpx.Request("POST", "http://form.invalid/", data=dict(form.fields), files=files)
        headers = {k: v for k, v in encoded.headers.items() if k.lower() in ("content-type", "content-length")}
        return headers, iter(cast("Iterable[bytes]", encoded.stream))

    def stack_file(stream: Any) -> Any:
        stack.push_async_callback(asyncio.to_thread, stream.close)
        return stream

    headers, chunks = await asyncio.to_thread(encode)

    async def body() -> AsyncIterator[bytes]:
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            yield chunk

    return headers, body()


def tls_context(verify: bool | str) -> ssl.SSLContext | bool:
    """The SSL context trusting exactly the CAs SppHook trusts (:func:`tls_trust.trusted_cas`); reads files.

    httpx alone would ignore REQUESTS_CA_BUNDLE and fail on a CA folder; run this in a worker thread.
    """
    trusted = trusted_cas(verify, os.environ)
    if trusted is False:
        return False
    import ssl

    if trusted is True:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    if os.path.isdir(trusted):
        return ssl.create_default_context(capath=trusted)
    return ssl.create_default_context(cafile=trusted)


def answer_from_httpx(response: Any) -> Answer:
    """An Answer from an ``httpx.Response`` (already read)."""
    return Answer(response.status_code, response.headers, response.content, str(response.url), response.reason_phrase)


def httpx_transport_error(err: Exception, method: str, path: str) -> SppTransportError:
    """Classify an httpx failure by whether the request can have reached the server (as for requests).

    Only failures while connecting (TCP, TLS handshake, pool) mean the request never left; anything else,
    including a bare ``ssl.SSLError`` or ``OSError`` that httpcore did not wrap, may follow a sent request.
    """
    import ssl

    import httpx

    tls_failed = caused_by(err, ssl.SSLError)
    not_sent = isinstance(
        err, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.UnsupportedProtocol
    )
    return transport_failure(
        err, method, path, timed_out=isinstance(err, httpx.ReadTimeout), tls_failed=tls_failed, not_sent=not_sent
    )
