"""Reading a listing page after page, without I/O: which request comes next, and where a look-up stops.

Both hooks drive the same :class:`Pager` (each with its own loop, sync or async), and look messages up
with the same :class:`MessageSearch`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urljoin, urlsplit

from airflow_provider_spp._internal.clock import as_utc
from airflow_provider_spp._internal.host_answers import origin
from airflow_provider_spp._internal.listing_order import ListingOrder
from airflow_provider_spp._internal.message_match import is_same_post, text_digest
from airflow_provider_spp.exceptions import SppUnexpectedResponseError

if TYPE_CHECKING:
    from airflow_provider_spp._internal.client import Answer, ApiRequest
    from airflow_provider_spp.models import MessageResource, OrderMessageRequest

#: Stop following pages after this many: a server that loops must not hang a task or a trigger.
MAX_PAGES = 1000


def next_page_number(link: str, page_url: str, base_url: str) -> int:
    """The page number a ``links.next`` URL names (absolute or relative to ``page_url``).

    Laravel's paginator writes only ``?page=N`` into its links unless told to keep the query, so the
    number is all a caller should take from one. Raises ValueError when the link leaves the workspace's
    origin or names no page.
    """
    target = urljoin(page_url, link)
    if origin(target) != origin(base_url):
        raise ValueError(f"points away from {base_url}")
    pages = parse_qs(urlsplit(target).query).get("page", [])
    if len(pages) != 1 or not pages[0].isascii() or not pages[0].isdigit() or int(pages[0]) < 1:
        raise ValueError("names no page number")
    return int(pages[0])


class PageCursor:
    """Which page of a listing to ask for next: the first request's whole query, only ``page`` changed.

    Laravel's ``links.next`` (stock paginators write ``?page=N`` alone) says which page comes next,
    nothing more; a link that leaves the workspace is refused, and a page number seen before ends the
    listing.
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


class Pager:
    """The requests of one listing: the first, then each next page's, at most :data:`MAX_PAGES` in all.

    A hook sends :attr:`first`, reads the page from the answer, then asks :meth:`after` for the next
    request (None: the listing ends).
    """

    def __init__(self, first: ApiRequest, base_url: str) -> None:
        self.first = first
        self._cursor = PageCursor(first.params, base_url)
        self._read = 0

    def after(self, page: Any, answer: Answer) -> ApiRequest | None:
        """The request for the page after ``page`` (which ``answer`` carried), or None at the end."""
        self._read += 1
        params = self._cursor.after(page, answer)
        if params is None or self._read >= MAX_PAGES:
            return None
        return dataclasses.replace(self.first, params=params)


def same_post(wanted: OrderMessageRequest) -> Callable[[MessageResource], bool]:
    """Whether a listed message is the post described: same text, and sender/visibility where given."""
    digest = text_digest(wanted.message)
    return lambda candidate: is_same_post(candidate, digest, wanted.user_id, wanted.staff_only)


class MessageSearch:
    """The newest message of a listing, created since a moment, that matches; fed message by message.

    Pages are read until a message older than the moment shows up in a list seen to be newest first;
    a list in any other order is read to its end.
    """

    def __init__(self, matches: Callable[[MessageResource], bool], created_since: datetime) -> None:
        self._matches = matches
        self._since = as_utc(created_since)
        self._listing = ListingOrder()
        #: The message found, once :meth:`done_after` said the search is over (None: none matched).
        self.found: MessageResource | None = None

    def done_after(self, candidate: MessageResource) -> bool:
        """Take the next listed message; whether the search is over (``found`` then says with what)."""
        self._listing.feed(candidate.id)
        if candidate.created_at is not None and as_utc(candidate.created_at) < self._since:
            return bool(self._listing.newest_first)
        if self._matches(candidate):
            self.found = candidate
            return True
        return False
