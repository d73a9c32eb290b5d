"""SppHook: the Wayfront (formerly SPP) connection and its API calls over requests; a POST is never duplicated.

:class:`~airflow_provider_spp.hooks.spp_async.SppAsyncHook` offers the same calls on asyncio (httpx); it
is importable from here too. Each hook builds an :class:`~airflow_provider_spp._internal.client.ApiRequest`,
hands it to its transport, and reads the answer; what happens on a call is in
:mod:`airflow_provider_spp._internal.client`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Unpack

from airflow_provider_spp._internal import client
from airflow_provider_spp._internal.attachments import AttachmentLike, prepare_attachments
from airflow_provider_spp._internal.concurrency import DEFAULT_CONCURRENCY, checked_concurrency
from airflow_provider_spp._internal.connection import SppConnectionSettings
from airflow_provider_spp._internal.connection_form import UI_FIELD_BEHAVIOUR, wtforms_widgets
from airflow_provider_spp._internal.hook_base import PageT, SppHookBase
from airflow_provider_spp._internal.host_answers import check_probe
from airflow_provider_spp._internal.paging import MessageSearch, Pager, same_post
from airflow_provider_spp._internal.watch_settings import status_matches
from airflow_provider_spp.exceptions import SppError
from airflow_provider_spp.hooks.spp_async import SppAsyncHook
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
    import requests

    from airflow_provider_spp._internal.bulk_sending import Outcome
    from airflow_provider_spp._internal.http_sync import RequestsTransport

#: SppAsyncHook is re-exported: ``from airflow_provider_spp.hooks.spp import SppAsyncHook`` keeps working.
__all__ = ["SppAsyncHook", "SppHook"]


class SppHook(SppHookBase):
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
        from airflow_provider_spp._internal.bulk_sending import BulkSending, send_in_threads

        plan = BulkSending(list(posts), self.settings, self.log, concurrency=concurrency)
        return send_in_threads(plan, self._post_once, before_sending=before_sending, on_sent=on_sent)

    def _post_once(self, wanted: OrderMessageRequest) -> Outcome:
        """One POST of a bulk send, sent once: the message or the error, and SPP's clock from its answer."""
        from airflow_provider_spp._internal.bulk_sending import outcome_of, post_request

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
