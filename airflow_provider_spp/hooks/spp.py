"""SppHook and SppAsyncHook: the Wayfront (formerly SPP) connection and its API calls; a POST is never duplicated.

Both hooks offer the same calls. Each builds an :class:`~airflow_provider_spp._internal.client.ApiRequest`,
hands it to its transport (requests, or httpx on asyncio), and reads the answer; what happens on a call
is in :mod:`airflow_provider_spp._internal.client`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import aclosing
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_spp._internal import client
from airflow_provider_spp._internal.attachments import AttachmentLike, prepare_attachments
from airflow_provider_spp._internal.bulk_sending import (
    DEFAULT_CONCURRENCY,
    BulkSending,
    Sent,
    Ticket,
    called,
    checked_concurrency,
    outcome_of,
    post_request,
)
from airflow_provider_spp._internal.connection import SppConnectionSettings, settings_from_connection
from airflow_provider_spp._internal.connection_form import DISPLAY_NAME, UI_FIELD_BEHAVIOUR, wtforms_widgets
from airflow_provider_spp._internal.host_answers import check_probe
from airflow_provider_spp._internal.paging import MessageSearch, Pager, same_post
from airflow_provider_spp._internal.watch_settings import status_matches
from airflow_provider_spp.exceptions import SppError
from airflow_provider_spp.models import (
    MessagePage,
    MessageResource,
    MessageSender,
    Order,
    OrderMessageRequest,
    OrderPage,
    OrderStatus,
)

if TYPE_CHECKING:
    import httpx
    import requests

    from airflow_provider_spp._internal.http_async import HttpxTransport
    from airflow_provider_spp._internal.http_sync import RequestsTransport

__all__ = ["SppAsyncHook", "SppHook"]

PageT = TypeVar("PageT", MessagePage, OrderPage)


class _SppHookBase(BaseHook):
    """What both SPP hooks take: the connection and the per-hook overrides of its settings."""

    conn_name_attr = "spp_conn_id"
    default_conn_name = "spp_default"
    conn_type = "spp"
    hook_name = DISPLAY_NAME

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

    def _settings_from(self, conn: Any, extra: dict[str, Any]) -> SppConnectionSettings:
        """Validate a connection with this hook's overrides; raises SppConfigError when it is unusable."""
        return settings_from_connection(
            host=conn.host,
            port=conn.port,
            password=conn.password,
            extra=extra,
            api_version=self.api_version,
            timeout=self.timeout,
            max_retries=self.max_retries,
        )

    @property
    def server_time(self) -> datetime | None:
        """The server's clock (its ``Date`` header) as of the latest answer, when it sent one."""
        http = getattr(self, "_http", None)
        return http.server_time if http is not None else None

    def _note_gone(self, message_id: int, answer: client.Answer) -> None:
        """Log a delete's 404 that followed a lost answer: the lost try did the deleting."""
        if answer.status == 404:
            self.log.info(
                "SPP message %d is gone (404) after a try whose answer was lost: that try deleted it", message_id
            )


class SppHook(_SppHookBase):
    """
    Talk to a Wayfront (formerly Service Provider Pro, SPP) workspace's REST API.

    :param spp_conn_id: Airflow connection of type ``spp``: host is the workspace URL (e.g.
        ``https://acme.wayfront.com``), password the API token.
    :param api_version: Sent as ``X-Api-Version``; overrides the connection extra ``api_version``.
    :param timeout: Longest silence, in seconds, while waiting for SPP's answer (before its first byte
        and between reads); overrides the connection extra ``timeout`` (default 30). Not a limit on a
        whole call: the connection extra ``connect_timeout`` (default 10) bounds opening the connection.
    :param max_retries: Retries of rate-limited or unavailable calls; overrides the extra (default 3).
    """

    _http: RequestsTransport | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form layout for Airflow before 3.2 (3.2+ reads it from get_provider_info)."""
        return UI_FIELD_BEHAVIOUR

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra connection form fields for Airflow before 3.2 (needs wtforms, absent from 3.3)."""
        return wtforms_widgets()

    @cached_property
    def settings(self) -> SppConnectionSettings:
        """The validated connection; raises SppConfigError (before any request) when it is unusable."""
        conn = self.get_connection(self.spp_conn_id)
        settings = self._settings_from(conn, conn.extra_dejson)
        from airflow_provider_spp._internal.version_compat import mask_secret

        mask_secret(settings.token)
        return settings

    def get_conn(self) -> requests.Session:
        """The hook's pooled HTTP session, created on first use and reused for every call."""
        return self._transport().session

    def close(self) -> None:
        """Close the pooled connections."""
        if self._http is not None:
            self._http.close()

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
        attachments: Iterable[AttachmentLike] | None = None,
        **sender: Unpack[MessageSender],
    ) -> MessageResource:
        """Post a message (with optional files, streamed) to an order; the POST is never blindly re-sent."""
        wanted = client.order_message_request(order, message, **sender)
        files = prepare_attachments(attachments)
        request = client.create_message_request(self.settings.base_url, wanted, files)
        return client.parse_model(MessageResource, self._send(request))

    def create_order_messages(
        self,
        posts: Iterable[OrderMessageRequest],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        before_sending: Callable[[list[OrderMessageRequest]], object] | None = None,
        on_sent: Callable[[Sent], object] | None = None,
    ) -> list[Sent]:
        """Post many messages (text only), a few at once; each POST's :class:`Sent` outcome, in the order they ended.

        At most ``concurrency`` (1 to 8) POSTs are in flight; a 429 slows every post down (its
        ``Retry-After``). A POST is never re-sent after an unknown outcome. ``before_sending`` gets each
        group of posts before the first of them goes out (to record them), ``on_sent`` each outcome;
        both run in the calling thread. A progress line is logged every few seconds.
        """
        import time
        from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

        plan = BulkSending(list(posts), self.settings, self.log, concurrency=concurrency)
        running: dict[Future[tuple[MessageResource | SppError, datetime | None]], Ticket] = {}
        with ThreadPoolExecutor(plan.concurrency, thread_name_prefix="spp-bulk") as pool:
            while not plan.finished:
                ticket, pause = plan.next_due()
                if ticket is not None:
                    if before_sending is not None and (group := plan.announce(ticket)):
                        before_sending(group)
                    running[pool.submit(self._post_once, ticket.request)] = ticket
                    continue
                if not running:
                    time.sleep(pause)  # everything waits (a 429's pause, a backoff)
                    continue
                done, _ = wait(running, timeout=pause, return_when=FIRST_COMPLETED)
                for future in done:
                    sent = plan.settle(running.pop(future), *future.result())
                    if sent is not None and on_sent is not None:
                        on_sent(sent)
                if (line := plan.progress()) is not None:
                    self.log.info("%s", line)
        self.log.info("%s", plan.progress(force=True))
        return plan.results

    def _post_once(self, wanted: OrderMessageRequest) -> tuple[MessageResource | SppError, datetime | None]:
        """One POST of a bulk send, sent once: the message or the error, and SPP's clock from its answer."""
        try:
            return outcome_of(self._send(post_request(self.settings.base_url, wanted)))
        except SppError as err:
            return err, None

    def list_order_messages(
        self, order: str | int, *, per_page: int = 100, filters: Mapping[str, str] | None = None
    ) -> Iterator[MessageResource]:
        """Yield an order's messages newest first, following ``links.next`` across pages.

        ``filters`` are Purity query parameters (``{"filters[id][$gt]": "42"}``); a server may ignore them.
        """
        request = client.list_messages_request(self.settings.base_url, order, per_page=per_page, filters=filters)
        for page in self._pages(request, MessagePage):
            yield from page.data

    def find_order_message(
        self,
        order: str | int,
        message: str,
        *,
        created_since: datetime,
        **sender: Unpack[MessageSender],
    ) -> MessageResource | None:
        """Find a message with this text (and sender/visibility, when given) created since a moment."""
        wanted = client.order_message_request(order, message, **sender)
        return self.find_order_message_where(wanted.order, same_post(wanted), created_since=created_since)

    def find_order_message_where(
        self, order: str | int, matches: Callable[[MessageResource], bool], *, created_since: datetime
    ) -> MessageResource | None:
        """The newest message of an order, created since a moment, for which ``matches`` is true.

        Pages are read until a message older than the moment shows up in a list seen to be newest
        first; a list in any other order is read to its end.
        """
        search = MessageSearch(matches, created_since)
        for candidate in self.list_order_messages(order):
            if search.done_after(candidate):
                break
        return search.found

    def find_order_messages_where(
        self,
        searches: Sequence[tuple[str, Callable[[MessageResource], bool], datetime]],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> list[MessageResource | None]:
        """Several ``find_order_message_where`` calls, ``(order, matches, created_since)`` each, a few at once."""
        from concurrent.futures import ThreadPoolExecutor

        def find(search: tuple[str, Callable[[MessageResource], bool], datetime]) -> MessageResource | None:
            return self.find_order_message_where(search[0], search[1], created_since=search[2])

        with ThreadPoolExecutor(checked_concurrency(concurrency), thread_name_prefix="spp-find") as pool:
            return list(pool.map(find, searches))

    def delete_order_message(self, message_id: int) -> None:
        """Delete one message by its ID (not the order's); a 404 after a lost answer means it is deleted."""
        message_id = client.checked_message_id(message_id)
        request = client.delete_message_request(self.settings.base_url, message_id)
        self._note_gone(message_id, self._send(request))

    def get_order(self, order: str | int) -> Order:
        """Retrieve one order by ID or order number."""
        return client.parse_model(Order, self._send(client.get_order_request(self.settings.base_url, order)))

    def list_orders(
        self,
        *,
        status: OrderStatus | None = None,
        sort: str | None = "id:desc",
        per_page: int = 100,
        filters: Mapping[str, str] | None = None,
    ) -> Iterator[Order]:
        """Yield the workspace's orders (optionally of one status: a code or a label; more Purity ``filters``)."""
        request = client.list_orders_request(
            self.settings.base_url, status=status, sort=sort, per_page=per_page, filters=filters
        )
        for page in self._pages(request, OrderPage):
            yield from (found for found in page.data if status is None or status_matches(found.status, [status]))

    def test_connection(self) -> tuple[bool, str]:
        """For the UI's Test button: one cheap, side-effect-free authenticated GET whose answer must be an order list.

        A 200 is not enough: a marketing site, a proxy's page or an expired licence's page answer 200 too.
        """
        try:
            base_url = self.settings.base_url
        except SppError as err:
            return False, str(err)
        try:
            check_probe(self._send(client.probe_request(base_url)))
        except SppError as err:
            return False, client.connection_test_failure(err, base_url)
        return True, f"Connected to the Wayfront workspace at {base_url}."

    # -- requests and answers ----------------------------------------------------------------------------

    def _transport(self) -> RequestsTransport:
        """The hook's transport (requests), created on first use."""
        if self._http is None:
            from airflow_provider_spp._internal.http_sync import RequestsTransport

            self._http = RequestsTransport(self.settings, self.log)
        return self._http

    def _send(self, request: client.ApiRequest) -> client.Answer:
        """Make one API call (retries included) and return its answer."""
        return self._transport().send(request)

    def _pages(self, first: client.ApiRequest, model: type[PageT]) -> Iterator[PageT]:
        """Every page of a listing: each request carries the first one's query with the next page number."""
        pager = Pager(first, self.settings.base_url)
        request: client.ApiRequest | None = first
        while request is not None:
            answer = self._send(request)
            page = client.parse_model(model, answer, unwrap=False)
            yield page
            request = pager.after(page, answer)


class SppAsyncHook(_SppHookBase):
    """
    The Wayfront (formerly Service Provider Pro, SPP) API on asyncio (httpx), for triggers and async notifiers.

    Same calls and rules as :class:`SppHook`.

    The connection is resolved the async-safe way (``get_async_connection``), so a trigger never blocks
    the triggerer's event loop on it.

    :param spp_conn_id: Airflow connection of type ``spp``.
    :param api_version: Sent as ``X-Api-Version``; overrides the connection extra.
    :param timeout: Seconds to wait for SPP; overrides the connection extra.
    :param max_retries: Retries of rate-limited or unavailable calls; overrides the extra.
    """

    _settings: SppConnectionSettings | None = None
    _http: HttpxTransport | None = None

    async def get_settings(self) -> SppConnectionSettings:
        """The validated connection, resolved without blocking the event loop."""
        if self._settings is None:
            from airflow_provider_spp._internal.version_compat import get_async_connection, get_async_extra_dejson

            conn = await get_async_connection(self.spp_conn_id, hook=self)
            self._settings = self._settings_from(conn, await get_async_extra_dejson(conn))
        return self._settings

    async def get_async_conn(self) -> httpx.AsyncClient:
        """The hook's pooled httpx client, created on first use."""
        return (await self._transport()).client

    async def aclose(self) -> None:
        """Close the pooled connections."""
        if self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> SppAsyncHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- API calls ---------------------------------------------------------------------------------------

    async def create_order_message(
        self,
        order: str | int,
        message: str,
        *,
        attachments: Iterable[AttachmentLike] | None = None,
        **sender: Unpack[MessageSender],
    ) -> MessageResource:
        """Post a message (files streamed); like SppHook's, the POST is never blindly re-sent.

        Files are checked, opened and read in worker threads: no file or object-storage I/O on the event loop.
        """
        import asyncio

        wanted = client.order_message_request(order, message, **sender)
        files = await asyncio.to_thread(prepare_attachments, attachments) if attachments is not None else []
        request = client.create_message_request((await self.get_settings()).base_url, wanted, files)
        return client.parse_model(MessageResource, await self._send(request))

    async def create_order_messages(
        self,
        posts: Iterable[OrderMessageRequest],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        before_sending: Callable[[list[OrderMessageRequest]], object] | None = None,
        on_sent: Callable[[Sent], object] | None = None,
    ) -> list[Sent]:
        """Post many messages, a few at once, by SppHook's rules; the callbacks may be coroutine functions."""
        import asyncio

        plan = BulkSending(list(posts), await self.get_settings(), self.log, concurrency=concurrency)
        running: dict[asyncio.Task[tuple[MessageResource | SppError, datetime | None]], Ticket] = {}
        try:
            while not plan.finished:
                ticket, pause = plan.next_due()
                if ticket is not None:
                    if before_sending is not None and (group := plan.announce(ticket)):
                        await called(before_sending, group)
                    running[asyncio.ensure_future(self._post_once(ticket.request))] = ticket
                    continue
                if not running:
                    await asyncio.sleep(pause)  # everything waits (a 429's pause, a backoff)
                    continue
                done, _ = await asyncio.wait(running, timeout=pause, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    sent = plan.settle(running.pop(task), *task.result())
                    if sent is not None and on_sent is not None:
                        await called(on_sent, sent)
                if (line := plan.progress()) is not None:
                    self.log.info("%s", line)
        finally:
            for task in running:
                task.cancel()
        self.log.info("%s", plan.progress(force=True))
        return plan.results

    async def _post_once(self, wanted: OrderMessageRequest) -> tuple[MessageResource | SppError, datetime | None]:
        """One POST of a bulk send, sent once: the message or the error, and SPP's clock from its answer."""
        request = post_request((await self.get_settings()).base_url, wanted)
        try:
            return outcome_of(await self._send(request))
        except SppError as err:
            return err, None

    async def list_order_messages(
        self, order: str | int, *, per_page: int = 100, filters: Mapping[str, str] | None = None
    ) -> AsyncGenerator[MessageResource, None]:
        """Yield an order's messages newest first, page after page (stop iterating to stop reading); ``filters``
        as SppHook's."""
        base_url = (await self.get_settings()).base_url
        request = client.list_messages_request(base_url, order, per_page=per_page, filters=filters)
        async for page in self._pages(request, MessagePage):
            for message in page.data:
                yield message

    async def find_order_message(
        self,
        order: str | int,
        message: str,
        *,
        created_since: datetime,
        **sender: Unpack[MessageSender],
    ) -> MessageResource | None:
        """Find a message with this text (and sender/visibility, when given) created since a moment."""
        wanted = client.order_message_request(order, message, **sender)
        return await self.find_order_message_where(wanted.order, same_post(wanted), created_since=created_since)

    async def find_order_message_where(
        self, order: str | int, matches: Callable[[MessageResource], bool], *, created_since: datetime
    ) -> MessageResource | None:
        """The newest message of an order, created since a moment, for which ``matches`` is true (as SppHook's)."""
        search = MessageSearch(matches, created_since)
        async with aclosing(self.list_order_messages(order)) as listing:
            async for candidate in listing:
                if search.done_after(candidate):
                    break
        return search.found

    async def find_order_messages_where(
        self,
        searches: Sequence[tuple[str, Callable[[MessageResource], bool], datetime]],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> list[MessageResource | None]:
        """Several ``find_order_message_where`` calls, ``(order, matches, created_since)`` each, a few at once."""
        import asyncio

        gate = asyncio.Semaphore(checked_concurrency(concurrency))

        async def find(search: tuple[str, Callable[[MessageResource], bool], datetime]) -> MessageResource | None:
            async with gate:
                return await self.find_order_message_where(search[0], search[1], created_since=search[2])

        return list(await asyncio.gather(*(find(search) for search in searches)))

    async def delete_order_message(self, message_id: int) -> None:
        """Delete one message by its ID (not the order's); a 404 after a lost answer means it is deleted."""
        message_id = client.checked_message_id(message_id)
        request = client.delete_message_request((await self.get_settings()).base_url, message_id)
        self._note_gone(message_id, await self._send(request))

    async def get_order(self, order: str | int) -> Order:
        """Retrieve one order by ID or order number."""
        request = client.get_order_request((await self.get_settings()).base_url, order)
        return client.parse_model(Order, await self._send(request))

    async def list_orders(
        self,
        *,
        status: OrderStatus | None = None,
        sort: str | None = "id:desc",
        per_page: int = 100,
        filters: Mapping[str, str] | None = None,
    ) -> AsyncGenerator[Order, None]:
        """Yield the workspace's orders (optionally of one status: a code or a label; more Purity ``filters``)."""
        settings = await self.get_settings()
        request = client.list_orders_request(
            settings.base_url, status=status, sort=sort, per_page=per_page, filters=filters
        )
        async for page in self._pages(request, OrderPage):
            for found in page.data:
                if status is None or status_matches(found.status, [status]):  # as if the server ignored it
                    yield found

    # -- requests and answers ----------------------------------------------------------------------------

    async def _transport(self) -> HttpxTransport:
        """The hook's transport (httpx), created on first use."""
        if self._http is None:
            import asyncio

            from airflow_provider_spp._internal.http_async import HttpxTransport, tls_context

            settings = await self.get_settings()
            tls = await asyncio.to_thread(tls_context, settings.verify)  # reads CA files: not on the loop
            if self._http is None:
                self._http = HttpxTransport(settings, self.log, tls)
        return self._http

    async def _send(self, request: client.ApiRequest) -> client.Answer:
        """Make one API call (retries included) and return its answer."""
        return await (await self._transport()).send(request)

    async def _pages(self, first: client.ApiRequest, model: type[PageT]) -> AsyncGenerator[PageT, None]:
        """Every page of a listing: each request carries the first one's query with the next page number."""
        pager = Pager(first, (await self.get_settings()).base_url)
        request: client.ApiRequest | None = first
        while request is not None:
            answer = await self._send(request)
            page = client.parse_model(model, answer, unwrap=False)
            yield page
            request = pager.after(page, answer)
