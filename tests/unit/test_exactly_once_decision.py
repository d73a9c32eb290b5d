"""The exactly-once decision as a table: record, request, files, time and facts in; an action out.

No Airflow and no HTTP: the decision is a pure function, and so is what a POST's outcome does to a record.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_spp._internal.exactly_once import (
    CLOCK_SKEW,
    Action,
    LookFirst,
    Post,
    ReturnExisting,
    Superseded,
    ThisTry,
    Wanted,
    after_post,
    decide,
    record_to_send,
)
from airflow_provider_spp._internal.ledger import FileStamp, PostRecord
from airflow_provider_spp._internal.message_match import text_digest
from airflow_provider_spp.exceptions import (
    SppRateLimitError,
    SppServerError,
    SppTransportError,
    SppUnexpectedResponseError,
    SppValidationError,
)
from airflow_provider_spp.models import MessageResource, OrderMessageRequest

NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
SENT = NOW - timedelta(minutes=5)
RUN_STARTED = NOW - timedelta(minutes=10)
GRACE = 30.0
FILES: tuple[FileStamp, ...] = (("report.csv", 20, "mtime:1"),)
REQUEST = OrderMessageRequest(order="E4A269FC", message="Your report is ready")


def request(**changes: object) -> OrderMessageRequest:
    return REQUEST.model_copy(update=changes)


def sent(**changes: object) -> PostRecord:
    """A record whose POST of REQUEST went out at SENT, changed as asked."""
    return dataclasses.replace(PostRecord.for_request(REQUEST, FILES, SENT), **changes)  # type: ignore[arg-type]


def this_try(**changes: object) -> ThisTry:
    """Try 2 of a deduplicating task on an Airflow with a task state store, as default."""
    facts = ThisTry(
        deduplicate=True, has_state_store=True, try_number=2, run_started=RUN_STARTED, lost_answer_wait=GRACE
    )
    return dataclasses.replace(facts, **changes)  # type: ignore[arg-type]


def fresh(req: OrderMessageRequest = REQUEST, files: tuple[FileStamp, ...] = FILES) -> PostRecord:
    return PostRecord.for_request(req, files, NOW)


CONFIRMED = sent(in_flight=False, message_id=17)
LOST_JUST_NOW = sent(in_flight=False, lost_at=NOW - timedelta(seconds=10))
LOST_LONG_AGO = sent(in_flight=False, lost_at=NOW - timedelta(minutes=4))
REJECTED = sent(in_flight=False)
REJECTED_AFTER_A_LOST_ANSWER = sent(in_flight=False, lost_at=SENT)
IN_FLIGHT = sent()
NEW_TEXT = request(message="Your corrected report is ready")
OTHER_ORDER = request(order="B7C3D2A1")
OTHER_FILES: tuple[FileStamp, ...] = (("report.csv", 21, "mtime:2"),)

#: What a look for REQUEST's earlier POST wants: its text, any sender, any visibility.
ITS_TEXT = Wanted((text_digest("Your report is ready"),), None, None)


def look(record: PostRecord, wait_until: datetime, *, save_first: bool = False) -> LookFirst:
    """A look on the record's order for its POSTs since it first sent (clock skew included)."""
    return LookFirst("E4A269FC", ITS_TEXT, SENT - CLOCK_SKEW, wait_until, record=record, save_first=save_first)


def look_since_run_started(wait_until: datetime | None) -> LookFirst:
    """A look, without a record, for REQUEST's message since the DAG run started (clock skew included)."""
    return LookFirst("E4A269FC", ITS_TEXT, RUN_STARTED - CLOCK_SKEW, wait_until, record=None)


Case = tuple[PostRecord | None, OrderMessageRequest, tuple[FileStamp, ...], ThisTry, Action]


def case(
    record: PostRecord | None,
    expected: Action,
    req: OrderMessageRequest = REQUEST,
    files: tuple[FileStamp, ...] = FILES,
    **facts: object,
) -> Case:
    return (record, req, files, this_try(**facts), expected)


CASES: dict[str, Case] = {
    "no record: a first post": case(None, Post(fresh()), try_number=1),
    "no record on a retry with a state store: nothing was sent": case(None, Post(fresh())),
    "message ID and the same text: return it": case(CONFIRMED, ReturnExisting(17)),
    "the same text with other line endings: return it": case(
        CONFIRMED, ReturnExisting(17), request(message="Your report is ready\r\n")
    ),
    "message ID and a different text: post the new one, and say so": case(
        CONFIRMED, Post(fresh(NEW_TEXT), (CONFIRMED, Superseded.NEW_TEXT)), NEW_TEXT
    ),
    "message ID, other files: another post, nothing to say": case(
        CONFIRMED, Post(fresh(files=OTHER_FILES)), files=OTHER_FILES
    ),
    "other order while the earlier POST may have landed: post, and warn": case(
        LOST_JUST_NOW, Post(fresh(OTHER_ORDER), (LOST_JUST_NOW, Superseded.OTHER_TARGET)), OTHER_ORDER
    ),
    "other sender while in flight: post, and warn": case(
        IN_FLIGHT, Post(fresh(request(user_id=3)), (IN_FLIGHT, Superseded.OTHER_TARGET)), request(user_id=3)
    ),
    "other visibility after a certain rejection: post, nothing to say": case(
        REJECTED, Post(fresh(request(staff_only=True))), request(staff_only=True)
    ),
    "in flight (killed worker): mark the answer lost now, save, wait the grace, look": case(
        IN_FLIGHT, look(sent(in_flight=False, lost_at=NOW), NOW + timedelta(seconds=GRACE), save_first=True)
    ),
    "answer lost within the grace: wait until the grace is over, then look": case(
        LOST_JUST_NOW, look(LOST_JUST_NOW, NOW + timedelta(seconds=20))
    ),
    "answer lost after the grace: look at once": case(
        LOST_LONG_AGO, look(LOST_LONG_AGO, NOW - timedelta(minutes=4) + timedelta(seconds=GRACE))
    ),
    "answer lost, text reworded since: look for the text that was sent": case(
        LOST_JUST_NOW, look(LOST_JUST_NOW, NOW + timedelta(seconds=20)), NEW_TEXT
    ),
    "a later certain rejection keeps the lost answer: still look": case(
        REJECTED_AFTER_A_LOST_ANSWER, look(REJECTED_AFTER_A_LOST_ANSWER, SENT + timedelta(seconds=GRACE))
    ),
    "certainly rejected before: post again on the same record": case(
        REJECTED, Post(REJECTED.sending_again(NEW_TEXT, NOW)), NEW_TEXT
    ),
    "no state store, try 1: post": case(None, Post(fresh()), has_state_store=False, try_number=1),
    "no state store, a retry: wait the grace from now, look since the run started": case(
        None, look_since_run_started(NOW + timedelta(seconds=GRACE)), has_state_store=False
    ),
    "no state store, a retry resumed after its deferred wait: look without waiting again": case(
        None, look_since_run_started(None), has_state_store=False, resumed_after_wait=True
    ),
    "no state store, a retry that does not know when the run started: post": case(
        None, Post(fresh()), has_state_store=False, run_started=None
    ),
    "deduplicate=False with a confirmed record: post": case(CONFIRMED, Post(fresh()), deduplicate=False),
    "deduplicate=False on a retry without a state store: post, no look": case(
        None, Post(fresh()), deduplicate=False, has_state_store=False
    ),
}


@pytest.mark.parametrize(("record", "req", "files", "facts", "expected"), CASES.values(), ids=CASES.keys())
def test_the_decision(
    record: PostRecord | None, req: OrderMessageRequest, files: tuple[FileStamp, ...], facts: ThisTry, expected: Action
) -> None:
    assert decide(record, req, files, NOW, facts) == expected


def message(text: str, **fields: object) -> MessageResource:
    return MessageResource.model_validate({"id": 5, "message": text, **fields})


def test_a_look_for_a_lost_post_matches_any_of_its_texts_from_its_sender() -> None:
    record = REJECTED.sending_again(NEW_TEXT, NOW)
    wanted = Wanted.for_record(dataclasses.replace(record, user_id=3))
    assert wanted(message("Your report is ready", user_id=3))
    assert wanted(message("Your corrected report is ready"))  # a listing that does not say the sender
    assert not wanted(message("Your report is ready", user_id=4))
    assert not wanted(message("Something else", user_id=3))


def test_a_look_without_a_record_matches_the_request_text_sender_and_visibility() -> None:
    wanted = Wanted.for_request(request(staff_only=True))
    assert wanted(message(" Your report is ready\n", staff_only=True))
    assert not wanted(message("Your report is ready", staff_only=False))


def test_a_fruitless_look_posts_on_the_record_it_looked_for_or_a_fresh_one() -> None:
    later = NOW + timedelta(seconds=31)
    again = record_to_send(LOST_JUST_NOW, NEW_TEXT, FILES, later)
    assert again == LOST_JUST_NOW.sending_again(NEW_TEXT, later)
    assert (again.in_flight, again.lost_at, again.first_sent_at, again.last_sent_at) == (
        True,
        NOW - timedelta(seconds=10),
        SENT,
        later,
    )
    assert again.digests == (text_digest(REQUEST.message), text_digest(NEW_TEXT.message))
    assert record_to_send(None, REQUEST, FILES, later) == PostRecord.for_request(REQUEST, FILES, later)


OUTCOMES = {
    "confirmed": (17, sent(in_flight=False, message_id=17)),
    "answer lost (no answer)": (
        SppTransportError("read timed out", request_sent=True),
        sent(in_flight=False, lost_at=NOW),
    ),
    "answer lost (5xx)": (SppServerError("bad gateway", status_code=502), sent(in_flight=False, lost_at=NOW)),
    "answer lost (2xx that is no message)": (
        SppUnexpectedResponseError("not JSON", status_code=200),
        sent(in_flight=False, lost_at=NOW),
    ),
    "rejected (never connected)": (SppTransportError("refused", request_sent=False), sent(in_flight=False)),
    "rejected (429)": (SppRateLimitError("slow down", status_code=429), sent(in_flight=False)),
    "rejected (422)": (SppValidationError("invalid", status_code=422), sent(in_flight=False)),
}


@pytest.mark.parametrize(("outcome", "expected"), OUTCOMES.values(), ids=OUTCOMES.keys())
def test_what_a_posts_outcome_does_to_its_record(outcome: object, expected: PostRecord) -> None:
    assert after_post(sent(), outcome, NOW) == expected  # type: ignore[arg-type]


def test_a_certain_rejection_keeps_an_earlier_lost_answer_and_a_confirmation_clears_it() -> None:
    record = LOST_JUST_NOW.sending_again(REQUEST, NOW)
    rejected = after_post(record, SppRateLimitError("slow down", status_code=429), NOW)
    assert (rejected.in_flight, rejected.lost_at, rejected.may_have_landed) == (False, LOST_JUST_NOW.lost_at, True)
    confirmed = after_post(record, 17, NOW)
    assert (confirmed.lost_at, confirmed.message_id, confirmed.may_have_landed) == (None, 17, False)


def test_a_record_reads_back_as_it_was_written() -> None:
    for record in (IN_FLIGHT, CONFIRMED, LOST_JUST_NOW, sent(user_id=3, staff_only=False, files=())):
        assert PostRecord.from_json(record.as_json()) == record


@pytest.mark.parametrize(
    "change",
    [
        {"digests": None, "digest": text_digest("Your report is ready")},  # an unreleased draft's single digest
        {"in_flight": None, "maybe_created": True},  # an unreleased draft's flag
        {"files": None},
        {"digests": []},
        {"first_sent_at": "yesterday"},
    ],
    ids=["digest", "maybe_created", "no files", "no texts", "bad time"],
)
def test_a_record_in_any_other_shape_is_not_read(change: dict[str, object]) -> None:
    value = IN_FLIGHT.as_json()
    for key, new in change.items():
        if new is None:
            value.pop(key)
        else:
            value[key] = new
    assert PostRecord.from_json(value) is None


def test_the_decision_imports_neither_airflow_nor_an_http_client() -> None:
    code = (
        "import sys, airflow_provider_spp._internal.exactly_once; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'airflow', 'requests', 'httpx'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# SPP's clock and sibling task instances


def test_the_first_posts_answer_tells_spps_clock_and_the_window_starts_at_that_post() -> None:
    from airflow_provider_spp._internal.exactly_once import CLOCK_MARGIN, window_start

    record = sent()
    spp_behind = SENT - timedelta(minutes=5)  # the 502's Date: SPP's clock runs 5 minutes behind the worker
    lost = after_post(record, SppServerError("bad gateway", status_code=502), SENT, spp_now=spp_behind)
    assert lost.clock_offset == -300.0
    assert window_start(lost) == spp_behind - CLOCK_MARGIN
    assert window_start(record) == SENT - CLOCK_SKEW  # no answer told SPP's clock: the wide window
    look = decide(lost, REQUEST, FILES, NOW, this_try())
    assert isinstance(look, LookFirst)
    assert look.since == spp_behind - CLOCK_MARGIN


def test_only_the_first_posts_answer_sets_the_clock() -> None:
    first = after_post(sent(), SppServerError("bad gateway", status_code=502), SENT, spp_now=SENT)
    assert after_post(first, 17, NOW, spp_now=NOW + timedelta(hours=1)).clock_offset == 0.0
    again = sent().sending_again(REQUEST, NOW)  # a later POST: another worker's clock, maybe
    assert after_post(again, 17, NOW, spp_now=NOW + timedelta(hours=1)).clock_offset is None


@pytest.mark.parametrize("offset", ["soon", float("nan"), True, [1]])
def test_a_record_with_an_unreadable_clock_offset_is_read_without_it(offset: object) -> None:
    value = sent(clock_offset=1.5).as_json()
    assert PostRecord.from_json(value) == sent(clock_offset=1.5)
    value["clock_offset"] = offset
    assert PostRecord.from_json(value) == sent()
    del value["clock_offset"]  # a record written before the field existed
    assert PostRecord.from_json(value) == sent()


def test_a_message_claimed_by_another_task_instance_is_never_wanted() -> None:
    mine = MessageResource(id=7, message="Your report is ready", user_id=None, staff_only=False)
    wanted = Wanted.for_record(sent())
    assert wanted(mine)
    assert not wanted.excluding({7})(mine)
    assert wanted.excluding({8})(mine)


def test_claims_keep_who_took_which_message_and_forget_old_ones() -> None:
    from airflow_provider_spp._internal.claims import MAX_CLAIMS, RETENTION, Claims

    claims = Claims().with_claim(1, "d/r/t/0", NOW - RETENTION - timedelta(seconds=1)).with_claim(2, "d/r/t/1", NOW)
    assert Claims.from_json(claims.as_json()) == claims
    newer = claims.with_claim(3, "d/r/t/0", NOW)
    assert (newer.holder(1), newer.holder(2), newer.holder(3)) == (None, "d/r/t/1", "d/r/t/0")
    assert newer.held_by_others("d/r/t/0") == {2}
    many = Claims()
    for message_id in range(MAX_CLAIMS + 5):
        many = many.with_claim(message_id, "me", NOW + timedelta(seconds=message_id))
    assert len(many.held) == MAX_CLAIMS
    assert many.holder(MAX_CLAIMS + 4) == "me"
    assert many.holder(0) is None


@pytest.mark.parametrize(
    "value", [None, "garbage", [1, 2], {"x": {"by": "a", "at": NOW.isoformat()}, "5": {"by": "b"}}]
)
def test_claims_in_any_other_shape_are_skipped(value: object) -> None:
    from airflow_provider_spp._internal.claims import Claims

    assert Claims.from_json(value) == Claims()


def test_a_claim_that_another_task_instance_wrote_first_is_not_taken_over() -> None:
    from airflow_provider_spp._internal.claims import ClaimBook, claims_key

    variables: dict[str, object] = {}
    first = ClaimBook("d/r/t/0", variables.get, variables.__setitem__)
    second = ClaimBook("d/r/t/1", variables.get, variables.__setitem__)
    assert first.claim("e4a269fc", 7, NOW) == "d/r/t/0"
    assert second.claim("E4A269FC", 7, NOW) == "d/r/t/0"
    assert second.claim("E4A269FC", 8, NOW) == "d/r/t/1"
    assert set(variables) == {claims_key("E4A269FC")}
    assert first.load("E4A269FC").held_by_others("d/r/t/0") == {8}


def test_a_claim_lost_to_concurrent_writers_is_written_again_then_given_up() -> None:
    from airflow_provider_spp._internal.claims import CLAIM_ROUNDS, ClaimBook

    writes: list[object] = []
    book = ClaimBook("d/r/t/0", lambda key: None, lambda key, value: writes.append(value))  # every write lost
    assert book.claim("E4A269FC", 7, NOW) is None
    assert len(writes) == CLAIM_ROUNDS


def test_recording_a_posted_message_reads_once_writes_once_and_keeps_the_others_claims() -> None:
    from airflow_provider_spp._internal.claims import ClaimBook, claims_key

    variables: dict[str, object] = {}
    calls: list[str] = []

    def get(key: str) -> object:
        calls.append("get")
        return variables.get(key)

    def put(key: str, value: object) -> None:
        calls.append("set")
        variables[key] = value

    sibling = ClaimBook("d/r/t/1", get, put)
    mine = ClaimBook("d/r/t/0", get, put)
    assert sibling.record("E4A269FC", 7, NOW, NOW) == "d/r/t/1"
    calls.clear()
    assert mine.record("e4a269fc", 8, NOW, NOW) == "d/r/t/0"
    assert calls == ["get", "set"]
    assert mine.record("E4A269FC", 7, NOW, NOW) == "d/r/t/1"  # a sibling's claim is never taken over
    assert mine.load("E4A269FC").held_by_others("d/r/t/0") == {7}
    assert set(variables) == {claims_key("E4A269FC")}


def test_a_posted_claim_names_the_post_it_answers_and_only_its_claimer_reads_it_as_its_outcome() -> None:
    from airflow_provider_spp._internal.claims import RETENTION, Claims

    sent_at = NOW - timedelta(seconds=1)
    claims = Claims().with_claim(7, "d/r/t/0", NOW, sent_at).with_claim(8, "d/r/t/1", NOW, NOW)
    again = Claims.from_json(claims.as_json())
    assert again == claims
    assert again.posted_by("d/r/t/0", sent_at) == 7
    assert again.posted_by("d/r/t/0", NOW) is None  # another POST of this task instance: not this one's answer
    assert again.posted_by("d/r/t/1", sent_at) is None  # the sibling's POST went out at another moment
    assert again.with_claim(7, "d/r/t/0", NOW).posted_by("d/r/t/0", sent_at) is None  # adopted: no POST named
    pruned = again.with_claim(9, "d/r/t/2", NOW + RETENTION + timedelta(seconds=1))
    assert (pruned.held.keys(), pruned.sent.keys()) == ({9}, set())


def test_a_task_instance_is_named_by_dag_run_task_and_map_index() -> None:
    from types import SimpleNamespace

    from airflow_provider_spp._internal.claims import claimer_of

    ti = SimpleNamespace(dag_id="d", run_id="r", task_id="t", map_index=3)
    assert claimer_of({"ti": ti}) == "d/r/t/3"
    assert claimer_of({"ti": SimpleNamespace(dag_id="d", run_id="r", task_id="t")}) == "d/r/t/-1"
    assert claimer_of({}) is None
    assert claimer_of(None) is None
