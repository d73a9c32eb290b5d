"""Unit tests of the shared, I/O-free pieces: who wrote a message, reply filters and baselines, pages, answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from airflow_provider_spp._internal.client import Answer, server_date
from airflow_provider_spp._internal.http_async import httpx_transport_error
from airflow_provider_spp._internal.paging import PageCursor
from airflow_provider_spp._internal.pattern_search import first_match, pick_reply
from airflow_provider_spp._internal.replies import (
    SERVER_FILTER_MARGIN,
    ReplyBaseline,
    ReplyFilter,
    ReplyScan,
    author_kind,
    baseline_from_record,
    baseline_record,
    parse_message_id,
    spp_clock,
)
from airflow_provider_spp.exceptions import SppInputError, SppUnexpectedResponseError
from airflow_provider_spp.models import MessagePage, MessageResource, Order

ORDER = Order.model_validate(
    {"id": 1001, "user_id": 2, "client": {"id": 2, "team_member_ids": [7], "team_owner_ids": [8]}}
)
AT = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def msg(message_id: int, user_id: int | None = 2, text: str = "hello", at: datetime = AT) -> MessageResource:
    return MessageResource.model_validate(
        {"id": message_id, "user_id": user_id, "message": text, "created_at": at.isoformat()}
    )


@pytest.mark.parametrize(
    ("user_id", "kind"), [(2, "client"), (7, "client"), (8, "client"), (3, "staff"), (None, "unknown")]
)
def test_author_kind_from_the_orders_client_and_team(user_id: int | None, kind: str) -> None:
    assert author_kind(msg(1, user_id), ORDER) == kind


def test_author_kind_uses_the_embedded_order_and_is_unknown_without_one() -> None:
    embedded = MessageResource.model_validate({"id": 1, "user_id": 2, "order": {"id": 1001, "user_id": 2}})
    assert author_kind(embedded) == "client"
    assert author_kind(msg(1, 2)) == "unknown"


def test_a_message_spp_generated_is_the_services_whoever_it_names() -> None:
    auto = MessageResource.model_validate({"id": 1, "user_id": 2, "is_auto_generated": True, "via": "web"})
    assert author_kind(auto, ORDER) == "service"
    assert not ReplyFilter(from_client=True).matches(auto, ORDER)
    assert ReplyFilter().matches(auto, ORDER)  # a wait for any new message still sees it


def test_filter_checks_author_and_text_and_leaves_the_pattern_to_a_bounded_search() -> None:
    assert ReplyFilter(from_client=True).matches(msg(1, 2), ORDER)
    assert not ReplyFilter(from_client=True).matches(msg(1, 3), ORDER)
    assert ReplyFilter(contains="LOGIN").matches(msg(1, text="here is the login"))
    assert not ReplyFilter(contains="login").matches(msg(1, text="nothing"))
    with pytest.raises(SppInputError, match="regular expression"):
        ReplyFilter(pattern="(")
    scan = ReplyScan(ReplyBaseline(after_message_id=1), ReplyFilter(pattern=r"^ok\b"))
    for message in (msg(4, text="ok, done"), msg(3, text="okay"), msg(2, text="ok!"), msg(1)):
        scan.feed(message)
    assert scan.found is None  # with a pattern, the candidates go to the bounded search
    assert [m.id for m in scan.candidates] == [2, 3, 4]
    assert pick_reply(scan, scan.wanted) == scan.candidates[0]
    assert first_match(r"^ok\b", ["okay", "no", "ok then"]) == 2
    assert first_match(r"^ok\b", ["okay"]) is None


def test_baseline_on_spps_clock_is_kept_per_series_of_tries() -> None:
    server = AT - timedelta(seconds=5)
    started = AT - timedelta(seconds=30)
    assert spp_clock(started, server, local_now=AT) == started - timedelta(seconds=5)
    assert spp_clock(started, None, local_now=AT) == started
    record = baseline_record(started, series=0)
    assert baseline_from_record(record, series=0) == started
    assert baseline_from_record(record, series=2) is None  # the task was cleared: a new wait
    assert baseline_from_record({"since": "garbage", "series": 0}, series=0) is None
    assert baseline_from_record(None, series=0) is None


def test_server_filters_ask_for_new_messages_with_room_for_the_workspaces_time_zone() -> None:
    assert ReplyBaseline(after_message_id=41).server_filters() == {"filters[id][$gt]": "41"}
    (earliest,) = ReplyBaseline(since=AT.replace(microsecond=500)).server_filters().values()
    assert datetime.fromisoformat(earliest) == AT - SERVER_FILTER_MARGIN


def test_baseline_by_id_is_exact_and_by_time_ignores_the_fraction() -> None:
    assert ReplyBaseline(after_message_id=5).is_new(msg(6))
    assert not ReplyBaseline(after_message_id=5).is_new(msg(5))
    since = AT.replace(microsecond=700_000)
    assert ReplyBaseline(since=since).is_new(msg(1, at=AT))  # SPP stored 12:00:00 for 12:00:00.9
    assert not ReplyBaseline(since=since).is_new(msg(1, at=AT.replace(second=0, minute=59, hour=11)))
    with pytest.raises(SppInputError):
        ReplyBaseline()
    assert parse_message_id("42") == 42
    with pytest.raises(SppInputError):
        parse_message_id("x")


def test_scan_keeps_the_oldest_new_match_in_either_listing_order() -> None:
    newest_first = [msg(9, text="yes 2"), msg(8, text="yes 1"), msg(7, text="no"), msg(5, text="yes old")]
    scan = ReplyScan(ReplyBaseline(after_message_id=6), ReplyFilter(contains="yes"))
    fed = [scan.feed(m) for m in newest_first]
    assert fed == [True, True, True, False]  # stops at the first message before the baseline
    assert scan.found is not None
    assert scan.found.id == 8
    oldest_first = list(reversed(newest_first))
    scan = ReplyScan(ReplyBaseline(after_message_id=6), ReplyFilter(contains="yes"))
    assert all(scan.feed(m) for m in oldest_first)  # an ascending listing is read to its end
    assert scan.found is not None
    assert scan.found.id == 8


def test_next_page_keeps_the_first_query_and_takes_only_the_number() -> None:
    answer = Answer(200, {"X-Api-Identifier": "req-1"}, b"{}", "https://x.spp.co/api/orders?limit=100&page=2")
    cursor = PageCursor({"limit": 100, "sort": "last_message_at:desc"}, "https://x.spp.co")
    page = MessagePage.model_validate({"data": [], "links": {"next": "https://x.spp.co/api/orders?page=3"}})
    assert cursor.after(page, answer) == {"limit": 100, "sort": "last_message_at:desc", "page": 3}
    assert cursor.after(page, answer) is None  # a page number seen before ends the listing
    last = MessagePage.model_validate({"data": [], "links": {"next": None}})
    assert PageCursor({"limit": 1}, "https://x.spp.co").after(last, answer) is None
    away = MessagePage.model_validate({"links": {"next": "https://evil.example/api/orders?page=2"}})
    with pytest.raises(SppUnexpectedResponseError, match="not following it") as caught:
        PageCursor({}, "https://x.spp.co").after(away, answer)
    assert caught.value.request_id == "req-1"


def test_server_date_and_httpx_failures() -> None:
    answer = Answer(200, {"Date": "Tue, 01 Dec 2026 12:00:00 GMT"}, b"{}", "https://x/api")
    assert server_date(answer) == AT
    assert server_date(Answer(200, {}, b"", "u")) is None
    request = httpx.Request("POST", "https://x/api/order_messages/1")
    refused = httpx_transport_error(httpx.ConnectError("refused", request=request), "POST", "/api/order_messages/1")
    assert refused.request_sent is False
    assert refused.retryable
    timed_out = httpx_transport_error(httpx.ReadTimeout("slow", request=request), "POST", "/api/order_messages/1")
    assert timed_out.request_sent is True
    assert timed_out.outcome_unknown


def test_a_pattern_that_cannot_be_run_is_an_error_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import sys

    from airflow_provider_spp._internal.pattern_search import first_match_async

    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with pytest.raises(SppInputError, match="could not be run"):
        first_match("x", ["x"])
    with pytest.raises(SppInputError, match="could not be run"):
        asyncio.run(first_match_async("x", ["x"]))
