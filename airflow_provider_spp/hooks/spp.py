"""SppHook: the SPP connection and the HTTP calls of its API, with retries that never duplicate a POST."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator
from contextlib import ExitStack
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import BaseHook
from pydantic import BaseModel, ValidationError

from airflow_provider_spp._internal.api import (
    MAX_PAGES,
    Answer,
    ApiRequest,
    PageCursor,
    answer_from_httpx,
    answer_from_requests,
    api_url,
    authorization_header,
    checked_order,
    create_message_request,
    default_headers,
    get_order_request,
    httpx_transport_error,
    list_messages_request,
    list_orders_request,
    log_retry,
    page_size,
    parse_model,
    raise_for_status,
    retry_delay,
    server_date,
    validation_problems,
)
from airflow_provider_spp._internal.attachments import (
    FORM_FIELD,
    Attachment,
    AttachmentLike,
    multipart_encoder,
    prepare_attachments,
)
from airflow_provider_spp._internal.clock import as_utc
from airflow_provider_spp._internal.connection import SppConnectionSettings, settings_from_connection
from airflow_provider_spp._internal.listing_order import ListingOrder
from airflow_provider_spp._internal.message_match import is_same_post, text_digest
from airflow_provider_spp._internal.transport import (
    BearerAuth,
    RequestEnvironment,
    request_written,
    streaming_adapter_class,
    transport_error,
)
from airflow_provider_spp.exceptions import (
    SppApiError,
    SppError,
    SppInputError,
    SppTransportError,
)
from airflow_provider_spp.models import (
    MessagePage,
    MessageResource,
    Order,
    OrderMessageRequest,
    OrderPage,
)

if TYPE_CHECKING:
    import httpx
    import requests

ModelT = TypeVar("ModelT", bound=BaseModel)


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


_order = checked_order
_page_size = page_size


class _SppHookBase(BaseHook):
    """What both SPP hooks take: the connection and the per-hook overrides of its settings."""

    conn_name_attr = "spp_conn_id"
    default_conn_name = "spp_default"
    conn_type = "spp"
    hook_name = "Service Provider Pro (SPP)"

    def __init__(
        self,
        spp_conn_id: str = default_conn_name,
        *,
        api_version: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spp_conn_id = spp_conn_id
        self.api_version = api_version
        self.timeout = timeout
        self.max_retries = max_retries

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spp_conn_id={self.spp_conn_id!r})"


class SppHook(_SppHookBase):
    """
    Talk to a Service Provider Pro (SPP) workspace's REST API.

    :param spp_conn_id: Airflow connection of type ``spp``: host is the workspace URL, password the API token.
    :param api_version: Sent as ``X-Api-Version``; overrides the connection extra ``api_version``.
    :param timeout: Longest silence, in seconds, while waiting for SPP's answer (before its first byte
        and between reads); overrides the connection extra ``timeout`` (default 30). Not a limit on a
        whole call: the connection extra ``connect_timeout`` (default 10) bounds opening the connection.
    :param max_retries: Retries of rate-limited or unavailable calls; overrides the extra (default 3).
    """

    _session: requests.Session | None = None
    _environment: RequestEnvironment

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form layout for Airflow before 3.2 (3.2+ reads it from get_provider_info)."""
        from airflow_provider_spp._internal.provider_info import UI_FIELD_BEHAVIOUR

        return UI_FIELD_BEHAVIOUR

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra connection form fields for Airflow before 3.2 (needs wtforms, absent from 3.3)."""
        try:
            from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
            from flask_babel import lazy_gettext
            from wtforms import BooleanField, IntegerField, StringField
            from wtforms.validators import NumberRange, Optional
        except ImportError:
            return {}
        return {
            "api_version": StringField(lazy_gettext("API version"), widget=BS3TextFieldWidget()),
            "timeout": IntegerField(
                lazy_gettext("Read timeout (seconds)"),
                validators=[Optional(), NumberRange(min=1)],
                widget=BS3TextFieldWidget(),
                default=30,
            ),
            "connect_timeout": IntegerField(
                lazy_gettext("Connect timeout (seconds)"),
                validators=[Optional(), NumberRange(min=1)],
                widget=BS3TextFieldWidget(),
                default=10,
            ),
            "max_retries": IntegerField(
                lazy_gettext("Max retries"),
                validators=[Optional(), NumberRange(min=0)],
                widget=BS3TextFieldWidget(),
                default=3,
            ),
            "retry_max_time": IntegerField(
                lazy_gettext("Retry time cap (seconds)"),
                validators=[Optional(), NumberRange(min=0)],
                widget=BS3TextFieldWidget(),
                default=120,
            ),
            "retry_backoff": IntegerField(
                lazy_gettext("Retry backoff base (seconds)"),
                validators=[Optional(), NumberRange(min=0)],
                widget=BS3TextFieldWidget(),
                default=1,
            ),
            "verify": BooleanField(lazy_gettext("Verify TLS certificates"), default=True),
            "allow_insecure_http": BooleanField(lazy_gettext("Allow plain http to a remote host"), default=False),
        }

    @cached_property
    def settings(self) -> SppConnectionSettings:
        """The validated connection; raises SppConfigError (before any request) when it is unusable."""
        conn = self.get_connection(self.spp_conn_id)
        settings = settings_from_connection(
            host=conn.host,
            port=conn.port,
            password=conn.password,
            extra=conn.extra_dejson,
            api_version=self.api_version,
            timeout=self.timeout,
            max_retries=self.max_retries,
        )
        from airflow_provider_spp._internal.version_compat import mask_secret

        mask_secret(settings.token)
        return settings

    def get_conn(self) -> requests.Session:
        """The hook's pooled HTTP session, created on first use and reused for every call."""
        if self._session is None:
            import requests

            session = requests.Session()
            # The environment (proxies, CA bundle) is read per request by self._environment instead.
            session.trust_env = False
            self._environment = RequestEnvironment(self.settings.base_url, self.settings.verify)
            session.auth = BearerAuth(self.settings.token)
            session.verify = self.settings.verify
            session.headers.update(default_headers(self.settings, f"python-requests/{requests.__version__}"))
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

    def __enter__(self) -> SppHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- API calls ---------------------------------------------------------------------------------------

    def create_order_message(
        self,
        order: str | int,
        message: str,
        *,
        user_id: int | str | None = None,
        staff_only: bool | str | None = None,
        attachments: Iterable[AttachmentLike] | None = None,
    ) -> MessageResource:
        """Post a message (with optional files, streamed) to an order; the POST is never blindly re-sent."""
        request = order_message_request(order, message, user_id=user_id, staff_only=staff_only)
        files = prepare_attachments(attachments)
        url = self._url("api", "order_messages", request.order)
        if files:
            fields = request.form_fields()
            response = self._request(
                "POST", url, body=lambda stack: multipart_encoder(fields, files, stack), idempotent=False
            )
        else:
            response = self._request("POST", url, json=request.json_body(), idempotent=False)
        return self._parse(MessageResource, response)

    def list_order_messages(self, order: str | int, *, per_page: int = 100) -> Iterator[MessageResource]:
        """Yield an order's messages newest first, following ``links.next`` across pages."""
        request = list_messages_request(self.settings.base_url, order, per_page=per_page)
        for page in self._pages(request.url, request.params, MessagePage):
            yield from page.data

    def find_order_message(
        self,
        order: str | int,
        message: str,
        *,
        created_since: datetime,
        user_id: int | str | None = None,
        staff_only: bool | str | None = None,
    ) -> MessageResource | None:
        """Find a message with this text (and sender/visibility, when given) created since a moment."""
        wanted = order_message_request(order, message, user_id=user_id, staff_only=staff_only)
        digest = text_digest(wanted.message)
        return self.find_order_message_where(
            wanted.order,
            lambda candidate: is_same_post(candidate, digest, wanted.user_id, wanted.staff_only),
            created_since=created_since,
        )

    def find_order_message_where(
        self, order: str | int, matches: Callable[[MessageResource], bool], *, created_since: datetime
    ) -> MessageResource | None:
        """The newest message of an order, created since a moment, for which ``matches`` is true.

        Pages are read until a message older than the moment shows up in a list seen to be newest
        first; a list in any other order is read to its end.
        """
        since = as_utc(created_since)
        listing = ListingOrder()
        for candidate in self.list_order_messages(order):
            listing.feed(candidate.id)
            if candidate.created_at is not None and as_utc(candidate.created_at) < since:
                if listing.newest_first:
                    return None
                continue
            if matches(candidate):
                return candidate
        return None

    def delete_order_message(self, message_id: int) -> None:
        """Delete one message by its ID (not the order's); a 404 after a lost answer means it is deleted."""
        if isinstance(message_id, bool) or not isinstance(message_id, int) or message_id <= 0:
            raise SppInputError(f"message_id must be a positive integer, got {message_id!r}")
        response = self._request("DELETE", self._url("api", "order_messages", message_id), gone_is_done=True)
        if response.status_code == 404:
            self.log.info(
                "SPP message %d is gone (404) after a try whose answer was lost: that try deleted it", message_id
            )

    def get_order(self, order: str | int) -> Order:
        """Retrieve one order by ID or order number."""
        request = get_order_request(self.settings.base_url, order)
        return self._parse(Order, self._request("GET", request.url))

    def list_orders(self, *, status: str | None = None, sort: str = "id:desc", per_page: int = 100) -> Iterator[Order]:
        """Yield the workspace's orders (optionally of one status), across pages."""
        request = list_orders_request(self.settings.base_url, status=status, sort=sort, per_page=per_page)
        for page in self._pages(request.url, request.params, OrderPage):
            yield from page.data

    def test_connection(self) -> tuple[bool, str]:
        """For the UI's Test button: one cheap, side-effect-free authenticated GET."""
        try:
            base_url = self.settings.base_url
            self._request("GET", self._url("api", "orders"), params={"limit": 1}, retries=False)
        except SppApiError as err:
            if err.status_code in (401, 403):
                return False, (
                    f"{base_url} rejected the API token ({err.status_code}"
                    f"{': ' + err.server_message if err.server_message else ''}). "
                    "Check the API token field and that the token's user may read orders."
                )
            return False, f"{base_url} answered {err.status_code}: {err}"
        except SppTransportError as err:
            return False, f"Could not reach {self.settings.base_url}: {err}. Check the workspace URL."
        except SppError as err:
            return False, str(err)
        return True, f"Connected to the SPP workspace at {base_url}."

    # -- HTTP plumbing -------------------------------------------------------------------------------------

    def _url(self, *segments: str | int) -> str:
        """Absolute URL under the workspace, each segment percent-encoded on its own."""
        return api_url(self.settings.base_url, *segments)

    def _pages(self, url: str, params: dict[str, Any], model: type[ModelT]) -> Iterator[ModelT]:
        """Follow Laravel pagination: every page with the first request's query, only the page number changed.

        A ``next`` link (Laravel's carries ``?page=N`` alone) says which page comes next, nothing more; one
        that leaves the workspace is refused, and a page number seen before ends the listing.
        """
        cursor = PageCursor(params, self.settings.base_url)
        query: dict[str, Any] | None = params
        for _ in range(MAX_PAGES):
            if query is None:
                return
            response = self._request("GET", url, params=query)
            page = self._parse(model, response, unwrap=False)
            yield page
            query = cursor.after(page, answer_from_requests(response))

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        body: Callable[[ExitStack], Any] | None = None,
        idempotent: bool = True,
        retries: bool = True,
        gone_is_done: bool = False,
    ) -> requests.Response:
        """Send one API call, retrying only what cannot create a second copy of anything.

        With ``gone_is_done`` (a DELETE), a 404 on a retry after an answer that was lost is returned
        rather than raised: the lost try may have removed the resource.
        """
        settings = self.settings
        path = urlsplit(url).path
        #: Whether an earlier attempt of this call may have been acted on although its answer was lost.
        answer_lost = False

        def send_once() -> requests.Response:
            import requests

            session = self.get_conn()
            with ExitStack() as stack:
                data = body(stack) if body else None
                headers = {"Content-Type": data.content_type} if data is not None else None
                request_written.set(False)
                try:
                    response = session.request(
                        method,
                        url,
                        params=params,
                        json=json,
                        data=data,
                        headers=headers,
                        timeout=(settings.connect_timeout, settings.timeout),
                        # Per request: a session's verify would lose to REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE.
                        **self._environment.request_settings(),
                        allow_redirects=idempotent,
                    )
                except requests.RequestException as err:
                    raise transport_error(err, method, path, written=request_written.get()) from None
            if not 200 <= response.status_code < 300 and not (
                gone_is_done and answer_lost and response.status_code == 404
            ):
                self._raise_for_status(response, method, urlsplit(response.url).path or path)
            return response

        started, attempt = time.monotonic(), 0
        while True:
            attempt += 1
            try:
                return send_once()
            except (SppTransportError, SppApiError) as err:
                answer_lost = answer_lost or err.outcome_unknown
                elapsed = time.monotonic() - started
                wait = retry_delay(err, attempt, elapsed, settings, idempotent=idempotent, retries=retries)
                if wait is None:
                    raise
                log_retry(self.log, method, path, attempt, settings.max_retries, wait, err)
                time.sleep(wait)

    @staticmethod
    def _raise_for_status(response: requests.Response, method: str, path: str) -> None:
        """Turn an unexpected status into the matching SppApiError, with the server's own message."""
        raise_for_status(answer_from_requests(response), method, path)

    @staticmethod
    def _parse(model: type[ModelT], response: requests.Response, *, unwrap: bool = True) -> ModelT:
        """Parse a success body into a model, accepting a ``{"data": {...}}`` wrapper."""
        return parse_model(model, answer_from_requests(response), unwrap=unwrap)


class SppAsyncHook(_SppHookBase):
    """
    The SPP API on asyncio (httpx), for triggers and async notifiers; same rules as :class:`SppHook`.

    Everything but the I/O (URLs, headers, errors, models, pages, retry rules) comes from
    :mod:`airflow_provider_spp._internal.api`, which SppHook uses too. The connection is resolved the async-safe
    way (``get_async_connection``), so a trigger never blocks the triggerer's event loop on it.

    :param spp_conn_id: Airflow connection of type ``spp``.
    :param api_version: Sent as ``X-Api-Version``; overrides the connection extra.
    :param timeout: Seconds to wait for SPP; overrides the connection extra.
    :param max_retries: Retries of rate-limited or unavailable calls; overrides the extra.
    """

    _settings: SppConnectionSettings | None = None
    _client: httpx.AsyncClient | None = None
    #: The server's clock (its ``Date`` header) as of the latest answer, when it sent one.
    server_time: datetime | None = None

    async def get_settings(self) -> SppConnectionSettings:
        """The validated connection, resolved without blocking the event loop."""
        if self._settings is None:
            from airflow_provider_spp._internal.version_compat import get_async_connection, get_async_extra_dejson

            conn = await get_async_connection(self.spp_conn_id, hook=self)
            self._settings = settings_from_connection(
                host=conn.host,
                port=conn.port,
                password=conn.password,
                extra=await get_async_extra_dejson(conn),
                api_version=self.api_version,
                timeout=self.timeout,
                max_retries=self.max_retries,
            )
        return self._settings

    async def get_async_conn(self) -> httpx.AsyncClient:
        """The hook's pooled httpx client, created on first use."""
        if self._client is None:
            import httpx

            settings = await self.get_settings()
            verify: Any = settings.verify
            if isinstance(verify, str):
                import ssl

                verify = ssl.create_default_context(cafile=verify)
            self._client = httpx.AsyncClient(
                headers=default_headers(settings, f"python-httpx/{httpx.__version__}"),
                timeout=httpx.Timeout(
                    settings.timeout,
                    connect=settings.connect_timeout,
                    write=settings.connect_timeout,
                    pool=settings.connect_timeout,
                ),
                verify=verify,
                limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
            )
        return self._client

    async def aclose(self) -> None:
        """Close the pooled connections."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> SppAsyncHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- API calls ---------------------------------------------------------------------------------------

    async def list_order_messages(
        self, order: str | int, *, per_page: int = 100
    ) -> AsyncGenerator[MessageResource, None]:
        """Yield an order's messages newest first, page after page (stop iterating to stop reading)."""
        request = list_messages_request((await self.get_settings()).base_url, order, per_page=per_page)
        async for page in self._pages(request, MessagePage):
            for message in page.data:
                yield message

    async def list_orders(
        self, *, status: str | None = None, sort: str = "id:desc", per_page: int = 100
    ) -> AsyncGenerator[Order, None]:
        """Yield the workspace's orders (optionally of one status) in ``sort`` order, page after page."""
        settings = await self.get_settings()
        request = list_orders_request(settings.base_url, status=status, sort=sort, per_page=per_page)
        async for page in self._pages(request, OrderPage):
            for found in page.data:
                yield found

    async def get_order(self, order: str | int) -> Order:
        """Retrieve one order by ID or order number."""
        request = get_order_request((await self.get_settings()).base_url, order)
        return parse_model(Order, await self._request(request))

    async def create_order_message(
        self,
        order: str | int,
        message: str,
        *,
        user_id: int | str | None = None,
        staff_only: bool | str | None = None,
        attachments: Iterable[AttachmentLike] | None = None,
    ) -> MessageResource:
        """Post a message (files streamed); like SppHook's, the POST is never blindly re-sent."""
        request = order_message_request(order, message, user_id=user_id, staff_only=staff_only)
        files = prepare_attachments(attachments)
        settings = await self.get_settings()
        api_request = create_message_request(settings.base_url, request.order, request.json_body())
        if not files:
            return parse_model(MessageResource, await self._request(api_request))
        return parse_model(MessageResource, await self._request(api_request, form=(request.form_fields(), files)))

    # -- HTTP plumbing -------------------------------------------------------------------------------------

    async def _pages(self, first: ApiRequest, model: type[ModelT]) -> AsyncIterator[ModelT]:
        """Every page of a list: each request carries the first one's query with the next page number."""
        cursor = PageCursor(first.params, (await self.get_settings()).base_url)
        params: dict[str, Any] | None = first.params
        for _ in range(MAX_PAGES):
            if params is None:
                return
            answer = await self._request(dataclasses.replace(first, params=params))
            page = parse_model(model, answer, unwrap=False)
            yield page
            params = cursor.after(page, answer)

    async def _request(
        self,
        request: ApiRequest,
        *,
        form: tuple[list[tuple[str, str]], list[Attachment]] | None = None,
        retries: bool = True,
    ) -> Answer:
        """Send one API call with the shared retry rules, sleeping with asyncio between tries."""
        settings = await self.get_settings()
        started, attempt = time.monotonic(), 0
        while True:
            attempt += 1
            try:
                return await self._send_once(request, settings, form)
            except (SppTransportError, SppApiError) as err:
                elapsed = time.monotonic() - started
                wait = retry_delay(err, attempt, elapsed, settings, idempotent=request.idempotent, retries=retries)
                if wait is None:
                    raise
                log_retry(self.log, request.method, request.path, attempt, settings.max_retries, wait, err)
                await asyncio.sleep(wait)

    async def _send_once(
        self,
        request: ApiRequest,
        settings: SppConnectionSettings,
        form: tuple[list[tuple[str, str]], list[Attachment]] | None,
    ) -> Answer:
        """One HTTP exchange; failures below HTTP become SppTransportError, error statuses SppApiError."""
        import httpx

        client = await self.get_async_conn()
        with ExitStack() as stack:
            files: list[Any] | None = (
                [(FORM_FIELD, (f.filename, stack.enter_context(f.opener()), f.content_type)) for f in form[1]]
                if form is not None
                else None
            )
            try:
                response = await client.request(
                    request.method,
                    request.url,
                    params=request.params or None,
                    json=request.json if form is None else None,
                    data=dict(form[0]) if form is not None else None,
                    files=files,
                    headers=authorization_header(settings.token),
                    follow_redirects=request.idempotent,
                )
            except (httpx.HTTPError, OSError) as err:  # httpcore lets some TLS read errors through unwrapped
                raise httpx_transport_error(err, request.method, request.path) from None
        answer = answer_from_httpx(response)
        self.server_time = server_date(answer) or self.server_time
        raise_for_status(answer, request.method, answer.path or request.path)
        return answer
