"""SppAsyncHook: the Wayfront (formerly SPP) API on asyncio (httpx), for triggers and async notifiers.

The same calls and rules as :class:`~airflow_provider_spp.hooks.spp.SppHook`; what happens on a call is
in :mod:`airflow_provider_spp._internal.client`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from datetime import datetime
from typing import TYPE_CHECKING, Unpack

from airflow_provider_spp._internal import client
from airflow_provider_spp._internal.attachments import AttachmentLike, prepare_attachments
from airflow_provider_spp._internal.concurrency import DEFAULT_CONCURRENCY, checked_concurrency
from airflow_provider_spp._internal.connection import SppConnectionSettings
from airflow_provider_spp._internal.hook_base import PageT, SppHookBase
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
    Sent,
)

if TYPE_CHECKING:
    import httpx

    from airflow_provider_spp._internal.bulk_sending import Outcome
    from airflow_provider_spp._internal.http_async import HttpxTransport

__all__ = ["SppAsyncHook"]


class SppAsyncHook(SppHookBase):
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
        from airflow_provider_spp._internal.bulk_sending import BulkSending, send_in_tasks

        plan = BulkSending(list(posts), await self.get_settings(), self.log, concurrency=concurrency)
        return await send_in_tasks(plan, self._post_once, before_sending=before_sending, on_sent=on_sent)

    async def _post_once(self, wanted: OrderMessageRequest) -> Outcome:
        """One POST of a bulk send, sent once: the message or the error, and SPP's clock from its answer."""
        from airflow_provider_spp._internal.bulk_sending import outcome_of, post_request

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
