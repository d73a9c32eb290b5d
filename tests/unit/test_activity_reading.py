"""The activity trigger's pure decisions: where a listing read may stop, the filter value, the cursor's JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from airflow_provider_spp._internal.activity_cursor import ActivityCursor
from airflow_provider_spp._internal.activity_reading import ListingReader, purity_time
from airflow_provider_spp._internal.watch_settings import status_matches

NOW = datetime(2026, 12, 6, 12, 0, 0, 500000, tzinfo=UTC)
HORIZON = NOW - timedelta(minutes=2)


def read(times: list[datetime], *, trusted: bool) -> tuple[int, bool]:
    """How many items a reader takes before it stops, and whether it trusts the listing afterwards."""
    reader = ListingReader(trusted=trusted)
    for taken, moment in enumerate(times, 1):
        if reader.is_old(moment, HORIZON) and reader.done:
            return taken, reader.sorted
    return len(times), reader.sorted


def test_a_trusted_listing_stops_at_the_first_old_item_unless_it_steps_up() -> None:
    old = [NOW - timedelta(hours=h) for h in (1, 2, 3)]
    assert read([NOW, *old], trusted=True) == (2, True)
    assert read([old[0], NOW], trusted=True) == (1, True)  # trusted: the first old item ends the read
    step_up = [NOW - timedelta(seconds=5), NOW, *old]
    assert read(step_up, trusted=True) == (5, False)  # a step up: read to the end, trust withdrawn


def test_an_untrusted_listing_is_read_until_a_step_down_proves_it_and_ties_prove_nothing() -> None:
    old = NOW - timedelta(days=3)
    assert read([old, old, old], trusted=False) == (3, False)
    assert read([NOW, old, old - timedelta(seconds=1)], trusted=False) == (2, True)
    assert read([old, NOW], trusted=False) == (2, False)  # oldest first: the new one is reached


def test_purity_time_is_utc_whole_seconds_rounded_down() -> None:
    assert purity_time(NOW) == "2026-12-06 12:00:00"
    assert purity_time(NOW.astimezone(timezone(timedelta(hours=-5)))) == "2026-12-06 12:00:00"


def test_statuses_match_codes_as_codes_and_labels_without_case() -> None:
    assert status_matches(2, [2])
    assert status_matches("2", [2])
    assert status_matches(2, ["2"])
    assert status_matches("working", ["Working"])
    assert not status_matches(2, ["Working"])
    assert not status_matches(None, [2])
    assert not status_matches(True, [1])


def test_the_cursor_keeps_pending_events_and_the_sort_verdict_across_a_restart() -> None:
    cursor = ActivityCursor.empty(NOW).handing_over([(7, NOW.isoformat(), {"message_id": 7})], NOW)
    cursor = cursor.with_orders_sorted(True)
    again = ActivityCursor.from_json(cursor.as_json())
    assert again is not None
    assert again.pending_events() == [(7, NOW.isoformat(), {"message_id": 7})]
    assert again.orders_sorted is True
    assert again.seen() == {"7"}
    assert again.settled(NOW).pending == again.pending  # handed over at NOW: not before NOW
    settled = again.settled(NOW + timedelta(seconds=1))
    assert (settled.pending, settled.known) == ({}, {"7": NOW.isoformat()})
    v1 = {"v": 1, "polled_at": NOW.isoformat(), "orders": {}, "unsettled": [], "known": {"3": NOW.isoformat()}}
    old = ActivityCursor.from_json(v1)  # as 0.2 stored it
    assert old is not None
    assert (old.pending, old.orders_sorted, old.known) == ({}, None, {"3": NOW.isoformat()})
    assert ActivityCursor.from_json({**v1, "pending": {"3": {"payload": {}}}}) is None  # unreadable: a new baseline
