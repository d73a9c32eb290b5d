"""Which order messages count as a reply: who wrote them, what they say, and whether they are new.

Shared by the sensor (poking in a worker), its trigger and the activity trigger (both on asyncio), so
every path decides the same way. No I/O here.

Who wrote a message: SPP's message resource carries only the author's ``user_id`` and the order it
belongs to (with the order's client). A message is the **client's** when its author is the order's
client (``order.user_id`` / ``order.client.id``) or a member of that client's team
(``client.team_member_ids`` / ``team_owner_ids``); any other author is **staff**; a message without
an author is **unknown** (never counted as the client's). A message the service wrote itself
(``is_auto_generated``: a status change, a reminder) is **service**, whatever its ``user_id`` says: it
is never the client's reply.

A user's ``pattern`` is compiled here (a bad one fails when the DAG is parsed) but never run here:
:mod:`airflow_provider_spp._internal.pattern_search` runs it in a child process with a time limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_spp._internal.clock import as_utc
from airflow_provider_spp._internal.listing_order import ListingOrder
from airflow_provider_spp._internal.watch_settings import non_negative_seconds
from airflow_provider_spp.exceptions import SppInputError
from airflow_provider_spp.models import order_reference

if TYPE_CHECKING:
    from airflow_provider_spp.models import MessageResource, Order

AuthorKind = Literal["client", "staff", "service", "unknown"]

#: The shortest poll interval, in seconds: SPP asks API clients to avoid tight loops of calls.
MIN_POKE_INTERVAL = 0.1

#: How far before a time baseline the server is asked for messages (``filters[created_at][$gte]``): the
#: workspace may compare in its own time zone (UTC-12 to UTC+14), and a too-late filter would hide replies.
SERVER_FILTER_MARGIN = timedelta(days=1)


def author_kind(message: MessageResource, order: Order | None = None) -> AuthorKind:
    """Whether the service itself, the order's client (or their team) or a staff member wrote the message."""
    if message.is_auto_generated:
        return "service"
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


def checked_pattern(pattern: str | None) -> str | None:
    """A regular expression that compiles (SppInputError otherwise), or None."""
    if pattern is not None:
        try:
            re.compile(pattern)
        except (re.error, TypeError, OverflowError) as err:
            raise SppInputError(f"pattern is not a valid regular expression: {err}") from None
    return pattern


@dataclass(frozen=True)
class ReplyFilter:
    """What a message must be to count: from the client (optionally), containing text or matching a regex.

    :meth:`matches` checks the author and ``contains``; the ``pattern`` is checked apart, on the messages
    that passed, by :mod:`airflow_provider_spp._internal.pattern_search` (bounded in time).
    """

    from_client: bool = False
    contains: str | None = None
    pattern: str | None = None

    def __post_init__(self) -> None:
        checked_pattern(self.pattern)

    def matches(self, message: MessageResource, order: Order | None = None) -> bool:
        """Whether the message passes the author and ``contains`` conditions (the pattern is checked apart)."""
        if self.from_client and author_kind(message, order) != "client":
            return False
        text = message.message or ""
        return self.contains is None or self.contains.casefold() in text.casefold()


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

    def server_filters(self) -> dict[str, str]:
        """Purity filters asking SPP for the new messages only; the answer is read as if they were ignored.

        By ID where there is one (exact); by time with :data:`SERVER_FILTER_MARGIN` to spare, so a
        workspace comparing in another time zone still returns every new message.
        """
        if self.after_message_id is not None:
            return {"filters[id][$gt]": str(self.after_message_id)}
        assert self.since is not None
        earliest = as_utc(self.since).replace(microsecond=0) - SERVER_FILTER_MARGIN
        return {"filters[created_at][$gte]": earliest.isoformat()}


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

    def reply_baseline(self, default_since: Callable[[], datetime | None] | None = None) -> ReplyBaseline | None:
        """After which message or moment a message is new; ``default_since()`` when neither is set, else None."""
        after = parse_message_id(self.after_message_id)
        since = parse_moment(self.since)
        if after is None and since is None and default_since is not None:
            since = default_since()
        return ReplyBaseline(after, since) if after is not None or since is not None else None

    def reply_filter(self) -> ReplyFilter:
        """Which new messages count."""
        return ReplyFilter(self.from_client, self.contains, self.pattern)

    def check_given(self) -> None:
        """Check what is not a template now (when the DAG is parsed); templates are checked once rendered."""
        if not is_template(self.order):
            try:
                order_reference(self.order)
            except ValueError as err:
                raise SppInputError(str(err)) from None
        if not is_template(self.after_message_id):
            parse_message_id(self.after_message_id)
        if not is_template(self.since):
            parse_moment(self.since)
        if not is_template(self.pattern):
            checked_pattern(self.pattern)


def is_template(value: object) -> bool:
    """Whether Airflow resolves the value before the task runs: a Jinja template, or an ``XComArg`` and the like."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    return callable(getattr(value, "resolve", None))  # XComArg and other values Airflow resolves at run time


def checked_interval(name: str, value: object, minimum: float = MIN_POKE_INTERVAL) -> float:
    """Seconds between polls: a finite number of at least ``minimum`` (0 would poll SPP in a tight loop)."""
    seconds = non_negative_seconds(value.total_seconds() if isinstance(value, timedelta) else value, name)
    if seconds < minimum:
        raise SppInputError(f"{name} must be at least {minimum} seconds, got {value!r}")
    return seconds


class ReplyScan:
    """Feed an order's messages as listed; keeps the new ones that pass the filter and says when to stop.

    SPP lists newest first, so reading stops at the first message before the baseline; a listing seen
    to run the other way (IDs growing) is read to its end instead. The same message listed twice (a
    page shift) is kept once.
    """

    def __init__(self, baseline: ReplyBaseline, wanted: ReplyFilter, order: Order | None = None) -> None:
        self.baseline = baseline
        self.wanted = wanted
        self.order = order
        self._passed: dict[int, MessageResource] = {}
        self._listing = ListingOrder()

    def feed(self, message: MessageResource) -> bool:
        """Take the next listed message; False once the rest can only be older than the baseline."""
        self._listing.feed(message.id)
        if not self.baseline.is_new(message):
            return self._listing.newest_first is not True
        if self.wanted.matches(message, self.order):
            self._passed.setdefault(message.id, message)
        return True

    @property
    def candidates(self) -> list[MessageResource]:
        """The new messages that passed (author, ``contains``), oldest first: the pattern is checked on these."""
        return [self._passed[key] for key in sorted(self._passed)]

    @property
    def found(self) -> MessageResource | None:
        """The oldest new message that passed, when the filter has no pattern (else see ``candidates``)."""
        candidates = self.candidates
        return candidates[0] if candidates and self.wanted.pattern is None else None


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
        "via": message.via,
    }
    if with_text:
        payload["message"] = message.message
    return payload


def spp_clock(local_moment: datetime, server_time: datetime | None, local_now: datetime) -> datetime:
    """A moment of this machine's clock on SPP's clock, from SPP's time (``Date``) seen at ``local_now``.

    ``Date`` keeps whole seconds, so the result is up to a second early: a reply is never missed for it.
    Without a server time the local moment is kept.
    """
    if server_time is None:
        return as_utc(local_moment)
    return as_utc(local_moment) + (as_utc(server_time) - as_utc(local_now))


def baseline_record(since: datetime, series: int) -> dict[str, Any]:
    """What the task state store keeps: the default baseline, and which series of tries took it."""
    return {"since": as_utc(since).isoformat(), "series": series}


def baseline_from_record(record: Any, series: int) -> datetime | None:
    """The kept baseline, when the record is one this series of tries wrote (a cleared task starts anew)."""
    if not isinstance(record, dict) or record.get("series") != series:
        return None
    try:
        return parse_moment(record.get("since"))
    except SppInputError:
        return None


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
