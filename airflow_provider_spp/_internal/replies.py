"""Which order messages count as a reply: who wrote them, what they say, and whether they are new.

Shared by the sensor (poking in a worker), its trigger and the activity trigger (both on asyncio), so
every path decides the same way. No I/O here.

Who wrote a message: SPP's message resource carries only the author's ``user_id`` and the order it
belongs to (with the order's client). A message is the **client's** when its author is the order's
client (``order.user_id`` / ``order.client.id``) or a member of that client's team
(``client.team_member_ids`` / ``team_owner_ids``); any other author is **staff**; a message without
an author is **unknown** (never counted as the client's).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_spp._internal.clock import as_utc
from airflow_provider_spp._internal.listing_order import ListingOrder
from airflow_provider_spp.exceptions import SppInputError

if TYPE_CHECKING:
    from airflow_provider_spp.models import MessageResource, Order

AuthorKind = Literal["client", "staff", "unknown"]


def author_kind(message: MessageResource, order: Order | None = None) -> AuthorKind:
    """Whether the order's client (or their team) or a staff member wrote the message."""
    if message.user_id is None:
        return "unknown"
    known = order or message.order
    if known is None:
        return "unknown"
    client_ids = {known.user_id}
    if known.client is not None:
        client_ids |= {known.client.id, *known.client.team_member_ids, *known.client.team_owner_ids}
    client_ids.discard(None)
    if not client_ids:
        return "unknown"
    return "client" if message.user_id in client_ids else "staff"


@dataclass(frozen=True)
class ReplyFilter:
    """What a message must be to count: from the client (optionally), containing text or matching a regex."""

    from_client: bool = False
    contains: str | None = None
    pattern: str | None = None

    def __post_init__(self) -> None:
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as err:
                raise SppInputError(f"pattern is not a valid regular expression: {err}") from None

    def matches(self, message: MessageResource, order: Order | None = None) -> bool:
        """Whether the message passes every condition set."""
        if self.from_client and author_kind(message, order) != "client":
            return False
        text = message.message or ""
        if self.contains is not None and self.contains.casefold() not in text.casefold():
            return False
        return self.pattern is None or re.search(self.pattern, text) is not None


@dataclass(frozen=True)
class ReplyBaseline:
    """The moment after which a message is new: after a message ID (exact), or since a time.

    SPP stores ``created_at`` in whole seconds, so a time is compared after dropping its fraction: a
    reply in the same second as the moment counts (prefer ``after_message_id`` where there is one).
    """

    after_message_id: int | None = None
    since: datetime | None = None

    def __post_init__(self) -> None:
        if self.after_message_id is None and self.since is None:
            raise SppInputError("a reply baseline needs after_message_id or since")

    def is_new(self, message: MessageResource) -> bool:
        """Whether the message came after the baseline."""
        if self.after_message_id is not None:
            return message.id > self.after_message_id
        assert self.since is not None
        return message.created_at is not None and as_utc(message.created_at) >= as_utc(self.since).replace(
            microsecond=0
        )


class ReplyWaitFields:
    """What the sensor and its trigger both take: where to look, what counts as new, which messages count.

    Kept as given (the sensor renders templates into them before use), checked when read.
    """

    spp_conn_id: str
    api_version: str | None
    order: str | int
    after_message_id: int | str | None
    since: datetime | str | None
    from_client: bool
    contains: str | None
    pattern: str | None
    return_text: bool

    def _keep_reply_fields(
        self,
        *,
        spp_conn_id: str,
        api_version: str | None,
        order: str | int,
        after_message_id: int | str | None,
        since: datetime | str | None,
        from_client: bool,
        contains: str | None,
        pattern: str | None,
        return_text: bool,
    ) -> None:
        """Keep the arguments as given."""
        self.spp_conn_id, self.api_version = spp_conn_id, api_version
        self.order, self.after_message_id, self.since = order, after_message_id, since
        self.from_client, self.contains, self.pattern = from_client, contains, pattern
        self.return_text = return_text

    def reply_baseline(self, default_since: Callable[[], datetime] | None = None) -> ReplyBaseline:
        """After which message or moment a message is new; ``default_since()`` when neither is set."""
        after = parse_message_id(self.after_message_id)
        since = parse_moment(self.since)
        if after is None and since is None and default_since is not None:
            since = default_since()
        return ReplyBaseline(after, since)

    def reply_filter(self) -> ReplyFilter:
        """Which new messages count."""
        return ReplyFilter(self.from_client, self.contains, self.pattern)


class ReplyScan:
    """Feed an order's messages as listed; keeps the oldest new match and says when reading can stop.

    SPP lists newest first, so reading stops at the first message before the baseline; a listing seen
    to run the other way (IDs growing) is read to its end instead.
    """

    def __init__(self, baseline: ReplyBaseline, wanted: ReplyFilter, order: Order | None = None) -> None:
        self.baseline = baseline
        self.wanted = wanted
        self.order = order
        self.found: MessageResource | None = None
        self._listing = ListingOrder()

    def feed(self, message: MessageResource) -> bool:
        """Take the next listed message; False once the rest can only be older than the baseline."""
        self._listing.feed(message.id)
        newest_first = self._listing.newest_first
        if not self.baseline.is_new(message):
            return newest_first is not True
        if self.wanted.matches(message, self.order) and (self.found is None or newest_first is not False):
            self.found = message
        return True


def reply_payload(
    message: MessageResource, order: str | int, *, with_text: bool, order_resource: Order | None = None
) -> dict[str, Any]:
    """The small JSON a sensor returns and a trigger emits; the text only when asked (it is client data)."""
    payload: dict[str, Any] = {
        "order": str(order),
        "message_id": message.id,
        "created_at": as_utc(message.created_at).isoformat() if message.created_at else None,
        "author": author_kind(message, order_resource),
        "user_id": message.user_id,
    }
    if with_text:
        payload["message"] = message.message
    return payload


def parse_moment(value: datetime | str | None) -> datetime | None:
    """A datetime from a datetime or an ISO-8601 string (as templates render), UTC when it has no offset."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    try:
        return as_utc(datetime.fromisoformat(str(value).strip().replace("Z", "+00:00")))
    except ValueError:
        raise SppInputError(f"since must be a datetime or an ISO-8601 string, got {value!r}") from None


def parse_message_id(value: int | str | None) -> int | None:
    """A positive message ID from an int or a string of digits (an XCom rendered by a template)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise SppInputError(f"after_message_id must be a positive message ID, got {value!r}")
