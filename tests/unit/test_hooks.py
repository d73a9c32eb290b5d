"""Hook pieces that need no server: URL encoding, Retry-After, retry decisions, input checks, multipart."""

from __future__ import annotations

import email.utils
import io
import json
import time
from contextlib import ExitStack
from typing import Any

import pytest

from airflow_provider_spp._internal.attachments import multipart_encoder, prepare_attachments
from airflow_provider_spp._internal.client import (
    Answer,
    ApiRequest,
    order_message_request,
    parse_model,
    parse_retry_after,
    path_segment,
    raise_for_status,
)
from airflow_provider_spp._internal.http_sync import answer_from_requests
from airflow_provider_spp._internal.paging import next_page_number
from airflow_provider_spp._internal.retries import backoff_wait, retry_delay, should_retry
from airflow_provider_spp.exceptions import (
    SppApiError,
    SppAuthError,
    SppInputError,
    SppNotFoundError,
    SppRateLimitError,
    SppServerError,
    SppTransportError,
    SppUnexpectedResponseError,
    SppValidationError,
    api_error_class,
)
from airflow_provider_spp.hooks.spp import SppHook


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("E4A269FC", "E4A269FC"),
        (1001, "1001"),
        ("a/b", "a%2Fb"),
        ("../../admin", "..%2F..%2Fadmin"),
        ("a b?c#d", "a%20b%3Fc%23d"),
        ("é", "%C3%A9"),
    ],
)
def test_path_segment_is_exactly_one_segment(value: str | int, expected: str) -> None:
    assert path_segment(value) == expected


@pytest.mark.parametrize("value", ["..", ".", "...", ""])
def test_dot_only_segments_are_refused(value: str) -> None:
    with pytest.raises(SppInputError, match="cannot be a path segment"):
        path_segment(value)


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= parse_retry_after(in_ten) <= 10  # type: ignore[operator]


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, SppValidationError),
        (422, SppValidationError),
        (401, SppAuthError),
        (403, SppAuthError),
        (404, SppNotFoundError),
        (429, SppRateLimitError),
        (500, SppServerError),
        (503, SppServerError),
        (418, SppApiError),
        (201, SppUnexpectedResponseError),
    ],
)
def test_status_maps_to_exception_class(status: int, cls: type) -> None:
    assert api_error_class(status) is cls


def _api_error(status: int) -> SppApiError:
    return api_error_class(status)("x", status_code=status)


@pytest.mark.parametrize(
    ("error", "post_retried", "get_retried"),
    [
        (_api_error(429), True, True),
        (_api_error(503), False, True),
        (_api_error(502), False, True),
        (_api_error(504), False, True),
        (_api_error(500), False, True),
        (_api_error(400), False, False),
        (_api_error(401), False, False),
        (_api_error(403), False, False),
        (_api_error(404), False, False),
        (_api_error(422), False, False),
        (SppTransportError("connect refused", request_sent=False), True, True),
        (SppTransportError("read timeout", request_sent=True), False, True),
        (SppTransportError("tls handshake", request_sent=False, retryable=False), False, False),
        (SppUnexpectedResponseError("bad body", status_code=201), False, False),
    ],
)
def test_a_post_is_only_retried_when_nothing_can_have_been_created(
    error: Exception, post_retried: bool, get_retried: bool
) -> None:
    assert should_retry(error, idempotent=False) is post_retried
    assert should_retry(error, idempotent=True) is get_retried


def test_outcome_unknown_flags() -> None:
    for status in (500, 502, 503, 504):
        assert _api_error(status).outcome_unknown
    for status in (400, 401, 403, 404, 422, 429):
        assert not _api_error(status).outcome_unknown
    assert SppTransportError("x", request_sent=True).outcome_unknown
    assert not SppTransportError("x", request_sent=False).outcome_unknown
    assert SppUnexpectedResponseError("x", status_code=201).outcome_unknown


def test_request_validation_reports_every_problem_without_echoing_the_text() -> None:
    with pytest.raises(SppInputError) as caught:
        order_message_request("", "   ", user_id="abc", staff_only="maybe")
    text = str(caught.value)
    for field in ("order:", "message:", "user_id:", "staff_only:"):
        assert field in text
    assert "input_value" not in text


def test_request_bodies() -> None:
    request = order_message_request(" E4A269FC ", "Hi", user_id="42", staff_only="false")
    assert request.order == "E4A269FC"
    assert request.json_body() == {"message": "Hi", "user_id": 42, "staff_only": False}
    assert request.form_fields() == [("message", "Hi"), ("user_id", "42"), ("staff_only", "0")]
    assert order_message_request(5, "Hi").json_body() == {"message": "Hi"}


def test_attachment_checks(tmp_path) -> None:
    with pytest.raises(SppInputError, match="not found"):
        prepare_attachments([tmp_path / "missing.pdf"])
    with pytest.raises(SppInputError, match="not a regular file"):
        prepare_attachments([tmp_path])
    with pytest.raises(SppInputError, match="must be a list"):
        prepare_attachments(str(tmp_path / "a.txt"))
    with pytest.raises(SppInputError, match="must be a path"):
        prepare_attachments([42])
    with pytest.raises(SppInputError, match="binary mode"):
        prepare_attachments([("a.txt", io.StringIO("text"))])
    with pytest.raises(SppInputError, match=r"\(filename, content\)"):
        prepare_attachments([("a.txt",)])
    report = tmp_path / "report.md"
    report.write_text("# {{ not rendered }}")
    prepared = prepare_attachments([report, ("../x/chart.png", b"\x89PNG"), ("raw.bin", io.BytesIO(b"abc"))])
    assert [(a.filename, a.content_type, a.size) for a in prepared] == [
        ("report.md", "text/markdown", 20),
        ("chart.png", "image/png", 4),
        ("raw.bin", "application/octet-stream", None),
    ]


def test_multipart_body_streams_instead_of_loading_the_file(tmp_path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (8 * 1024 * 1024))
    (attachment,) = prepare_attachments([big])
    with ExitStack() as stack:
        encoder = multipart_encoder([("message", "hello")], [attachment], stack)
        assert encoder.len > 8 * 1024 * 1024
        first = encoder.read(8192)
        assert b'name="message"' in first
        assert b'name="attachments[]"; filename="big.bin"' in first
        assert len(first) == 8192


def test_caller_file_objects_are_rewound_and_left_open() -> None:
    stream = io.BytesIO(b"payload")
    (attachment,) = prepare_attachments([("p.bin", stream)])
    for _ in range(2):
        with ExitStack() as stack:
            body = multipart_encoder([("message", "m")], [attachment], stack).to_string()
            assert b"payload" in body
    assert not stream.closed


def test_hook_repr_and_defaults() -> None:
    hook = SppHook()
    assert repr(hook) == "SppHook(spp_conn_id='spp_default')"
    assert SppHook.conn_type == "spp"
    assert SppHook.default_conn_name == "spp_default"
    behaviour = SppHook.get_ui_field_behaviour()
    assert behaviour["relabeling"] == {"host": "Workspace URL", "password": "API token"}


def _response(status: int, body: bytes, headers: dict[str, str] | None = None) -> Answer:
    """The Answer SppHook's transport makes of a requests.Response with this status, body and headers."""
    import requests

    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers.update({"Content-Type": "application/json", "X-Api-Identifier": "req-1", **(headers or {})})
    response.url = "https://example.spp.co/api/order_messages/E4A269FC"
    return answer_from_requests(response)


def test_a_data_wrapper_is_accepted_and_a_bare_body_too() -> None:
    from airflow_provider_spp.models import MessageResource

    wrapped = parse_model(MessageResource, _response(201, b'{"data": {"id": 9, "message": "hi"}}'))
    bare = parse_model(MessageResource, _response(201, b'{"id": 9, "message": "hi"}'))
    assert wrapped == bare
    assert wrapped.id == 9


_SANDBOX_LIKE_MESSAGE = {
    "id": 7,
    "user_id": 1,
    "created_at": "2026-12-01T20:46:42+00:00",
    "message": "hi",
    "staff_only": False,
    "files": [],
    "order": {
        "id": 1001,
        "number": "E4A269FC",
        "client": {"id": 2, "role": {"id": 2, "team": False}, "address": {"city": "Berlin"}, "balance": "0.00"},
    },
    "ticket": {"id": None, "tags": [], "employees": [{"id": 3}], "client": {"managers": [{"id": 3}]}},
}


@pytest.mark.parametrize(
    "payload",
    [
        _SANDBOX_LIKE_MESSAGE,
        {**_SANDBOX_LIKE_MESSAGE, "created_at": "yesterday", "files": None, "order": "E4A269FC"},
        {"id": "12", "staff_only": "yes", "ticket": {"client": {"team_owner_ids": None, "address": []}}},
        {"id": 9, "data": {"id": 10}},  # a top-level id: not a wrapper, as before
    ],
    ids=["sandbox-like", "unparsable-fields", "loose-types", "id-beside-data"],
)
def test_parsing_from_bytes_gives_what_parsing_the_decoded_json_gives(payload: dict[str, Any]) -> None:
    """The one-pass parse of the raw body (model_validate_json) equals the decode-then-validate path."""
    from airflow_provider_spp.models import MessageResource

    parsed = parse_model(MessageResource, _response(201, json.dumps(payload).encode()))
    assert parsed == MessageResource.model_validate(payload)


def test_an_order_in_a_data_wrapper_is_unwrapped() -> None:
    """Order's id is optional, so a wrapper would also validate as an empty Order: it must be unwrapped."""
    from airflow_provider_spp.models import Order

    order = parse_model(Order, _response(200, b'{"data": {"id": 5, "number": "E4A269FC"}}'))
    assert (order.id, order.number) == (5, "E4A269FC")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"<html>oops</html>", "body is not JSON"),
        (b'{"data": {"message": "no id"}}', "not a MessageResource"),
        (b"[]", "not a MessageResource"),
    ],
)
def test_a_2xx_that_is_not_a_message_is_a_clear_error(body: bytes, fragment: str) -> None:
    from airflow_provider_spp.models import MessageResource

    with pytest.raises(SppUnexpectedResponseError, match=fragment) as caught:
        parse_model(MessageResource, _response(201, body))
    assert caught.value.request_id == "req-1"
    assert "request id req-1" in str(caught.value)


def test_laravel_error_bodies_are_quoted_with_their_field_errors() -> None:
    body = b'{"message": "The message field is required.", "errors": {"message": ["The message field is required."]}}'
    with pytest.raises(SppValidationError) as caught:
        raise_for_status(_response(422, body), "POST", "/api/order_messages/E4A269FC")
    err = caught.value
    assert (err.status_code, err.request_id, err.server_message) == (422, "req-1", "The message field is required.")
    assert err.errors == {"message": ["The message field is required."]}
    assert "message: The message field is required." in str(err)


def test_rate_limit_carries_retry_after() -> None:
    with pytest.raises(SppRateLimitError) as caught:
        raise_for_status(_response(429, b"Too Many Attempts.", {"Retry-After": "7"}), "GET", "/api/orders")
    assert caught.value.retry_after == 7.0
    assert caught.value.server_message is None  # a non-JSON body is not quoted: it may carry anything


def test_an_ascending_message_list_is_read_to_the_end() -> None:
    from datetime import UTC, datetime, timedelta

    from airflow_provider_spp.models import MessageResource

    start = datetime(2026, 11, 1, tzinfo=UTC)
    oldest_first = [MessageResource(id=i, message=f"m{i}", created_at=start + timedelta(days=i)) for i in range(1, 6)]

    class ListedHook(SppHook):
        def list_order_messages(self, order: str | int, *, per_page: int = 100):  # type: ignore[override]
            yield from self.listing

    hook = ListedHook()
    hook.listing = oldest_first  # type: ignore[attr-defined]
    since = start + timedelta(days=4)
    assert hook.find_order_message_where("E4A269FC", lambda m: m.message == "m5", created_since=since).id == 5
    hook.listing = list(reversed(oldest_first))  # type: ignore[attr-defined]
    assert hook.find_order_message_where("E4A269FC", lambda m: m.message == "m1", created_since=since) is None
    seen: list[int] = []
    hook.find_order_message_where("E4A269FC", lambda m: seen.append(m.id) or False, created_since=since)
    assert seen == [5, 4]


PAGE_URL = "https://x.spp.co/api/orders?limit=10&filters%5Bstatus%5D%5B%24eq%5D=Working&page=2"


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://x.spp.co/api/orders?page=3", 3),  # Laravel's default: the page alone
        ("https://x.spp.co/api/orders?limit=10&filters%5Bstatus%5D%5B%24eq%5D=Working&page=3", 3),  # withQueryString
        ("HTTPS://X.SPP.CO:443/api/orders?page=4", 4),  # same origin, written otherwise
        ("/api/orders?page=5", 5),
        ("?page=6", 6),
    ],
)
def test_a_next_link_gives_only_its_page_number(link: str, expected: int) -> None:
    assert next_page_number(link, PAGE_URL, "https://x.spp.co") == expected


@pytest.mark.parametrize(
    ("link", "problem"),
    [
        ("https://evil.example/api/orders?page=3", "points away from https://x.spp.co"),
        ("http://x.spp.co/api/orders?page=3", "points away from"),
        ("https://x.spp.co:8443/api/orders?page=3", "points away from"),
        ("//evil.example/api/orders?page=3", "points away from"),
        ("https://x.spp.co/api/orders?cursor=abc", "names no page number"),
        ("https://x.spp.co/api/orders?page=two", "names no page number"),
        ("https://x.spp.co/api/orders?page=0", "names no page number"),
        ("https://x.spp.co/api/orders?page=2&page=3", "names no page number"),
    ],
)
def test_a_next_link_elsewhere_or_without_a_page_is_refused(link: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        next_page_number(link, PAGE_URL, "https://x.spp.co")


def test_a_next_link_back_to_a_page_already_read_ends_the_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from airflow_provider_spp._internal.connection import SppConnectionSettings

    links = {1: "?page=2", 2: "https://example.spp.co/api/order_messages/E4A269FC?page=1"}  # 2 points back to 1
    asked: list[dict[str, Any]] = []

    def fake_send(request: ApiRequest) -> Answer:
        asked.append(dict(request.params))
        number = int(request.params.get("page", 1))
        body = {"data": [{"id": 10 - number, "message": f"p{number}"}], "links": {"next": links[number]}}
        return _response(200, json.dumps(body).encode())

    hook = SppHook()
    hook.__dict__["settings"] = SppConnectionSettings(base_url="https://example.spp.co", token="t")
    monkeypatch.setattr(hook, "_send", fake_send)

    assert [m.message for m in hook.list_order_messages("E4A269FC", per_page=1)] == ["p1", "p2"]
    assert asked == [{"limit": 1}, {"limit": 1, "page": 2}]


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (10, 15.0, 30.0)])
def test_backoff_grows_with_jitter_and_a_cap(attempt: int, low: float, high: float) -> None:
    waits = [backoff_wait(attempt, 1.0) for _ in range(200)]
    assert all(low <= wait <= high for wait in waits)
    assert len(set(waits)) > 1


def _retry_settings(**changes: Any) -> Any:
    from airflow_provider_spp._internal.connection import SppConnectionSettings

    base = {"base_url": "https://example.spp.co", "token": "t", "max_retries": 3, "retry_max_time": 10.0}
    return SppConnectionSettings(**{**base, "retry_backoff": 0.0, **changes})


def test_retry_delay_follows_the_rules_both_hooks_share() -> None:
    """max_retries tries again, never past retry_max_time, only what cannot duplicate, Retry-After wins."""
    from airflow_provider_spp.exceptions import SppRateLimitError, SppServerError

    limited = SppRateLimitError("429", status_code=429, retry_after=2.0)
    settings = _retry_settings()
    post, get = {"idempotent": False, "retries": True}, {"idempotent": True, "retries": True}
    assert [retry_delay(limited, attempt, 0.0, settings, **post) for attempt in (1, 2, 3, 4)] == [2.0, 2.0, 2.0, None]
    assert retry_delay(limited, 1, 7.9, settings, **post) == 2.0
    assert retry_delay(limited, 1, 8.0, settings, **post) is None  # the wait would end at retry_max_time
    assert retry_delay(limited, 1, 0.0, settings, idempotent=False, retries=False) is None
    assert retry_delay(limited, 1, 0.0, _retry_settings(max_retries=0), **post) is None
    failed = SppServerError("500", status_code=500)
    assert retry_delay(failed, 1, 0.0, settings, **post) is None  # a 5xx POST may have landed
    assert retry_delay(failed, 1, 0.0, settings, **get) == 0.0
    assert retry_delay(SppInputError("bad"), 1, 0.0, settings, **get) is None


@pytest.mark.parametrize("status", [2, 0, "2", "Working"])
def test_an_order_status_filter_is_sent_as_given(status: int | str) -> None:
    from airflow_provider_spp._internal.client import list_orders_request

    request = list_orders_request("https://acme.wayfront.com", status=status)
    assert request.params["filters[status][$eq]"] == status
    assert type(request.params["filters[status][$eq]"]) is type(status)


@pytest.mark.parametrize("status", [True, 2.0, "", "  ", ["Working"]])
def test_an_order_status_filter_is_a_code_or_a_label(status: object) -> None:
    from airflow_provider_spp._internal.client import list_orders_request
    from airflow_provider_spp.exceptions import SppInputError

    with pytest.raises(SppInputError, match="status must be a status code"):
        list_orders_request("https://acme.wayfront.com", status=status)  # type: ignore[arg-type]


# -- redirects, HTML pages, the connection test's answer, TLS and CA rules ----------------------------------------

_BASE = "https://acme.wayfront.com"


def _answer(status: int, headers: dict[str, str] | None = None, body: bytes = b"", url: str = "") -> Any:
    from airflow_provider_spp._internal.client import Answer

    return Answer(status, headers or {}, body, url or f"{_BASE}/api/orders?limit=1")


@pytest.mark.parametrize(
    ("method", "idempotent", "status", "location", "followed"),
    [
        ("GET", True, 302, "/expired", f"{_BASE}/expired"),
        ("GET", True, 301, f"{_BASE}/api/orders?limit=1&page=2", f"{_BASE}/api/orders?limit=1&page=2"),
        ("GET", True, 301, "https://acme.spp.co/api/orders", None),  # another host: never with the token
        ("GET", True, 302, "http://acme.wayfront.com/expired", None),  # another scheme is another origin
        ("POST", False, 307, f"{_BASE}/api/orders", None),  # a POST is never re-sent anywhere
        ("GET", True, 304, "/api/orders", None),
        ("GET", True, 302, "", None),
    ],
)
def test_only_idempotent_calls_follow_and_only_within_the_workspace(
    method: str, idempotent: bool, status: int, location: str, followed: str | None
) -> None:
    from airflow_provider_spp._internal.client import ApiRequest
    from airflow_provider_spp._internal.host_answers import redirect_target

    request = ApiRequest(method, f"{_BASE}/api/orders", {"limit": 1}, idempotent=idempotent)
    target = redirect_target(request, _answer(status, {"Location": location} if location else {}), _BASE)
    assert (target.url if target else None) == followed
    if target is not None:
        assert (target.method, target.params) == (method, {})


@pytest.mark.parametrize(("status", "method"), [(301, "DELETE"), (302, "GET"), (303, "GET"), (307, "DELETE")])
def test_a_followed_delete_keeps_its_method_only_where_http_says_so(status: int, method: str) -> None:
    from airflow_provider_spp._internal.client import ApiRequest
    from airflow_provider_spp._internal.host_answers import redirect_target

    request = ApiRequest("DELETE", f"{_BASE}/api/order_messages/7", gone_is_done=True)
    target = redirect_target(request, _answer(status, {"Location": "/expired"}), _BASE)
    assert target is not None
    assert (target.method, target.url) == (method, f"{_BASE}/expired")


@pytest.mark.parametrize(
    ("status", "location", "kind", "says"),
    [
        (302, f"{_BASE}/expired", "SppAuthError", "the Wayfront licence of this workspace has expired"),
        (302, "/login", "SppAuthError", "redirected to a login page: the token was not accepted"),
        (301, "https://acme.wayfront.com:8443/api/orders", "SppApiError", "host to https://acme.wayfront.com:8443 "),
        (308, "/somewhere", "SppApiError", "redirected (308) to /somewhere"),
    ],
)
def test_a_redirect_not_followed_says_what_it_means(status: int, location: str, kind: str, says: str) -> None:
    with pytest.raises(SppApiError) as caught:
        raise_for_status(_answer(status, {"Location": location}), "POST", "/api/order_messages/E4A269FC")
    assert type(caught.value).__name__ == kind
    assert says in str(caught.value)
    assert caught.value.permanent


@pytest.mark.parametrize(
    ("landed", "kind", "says"),
    [
        ("/expired", "SppAuthError", "the Wayfront licence of this workspace has expired"),
        ("/login", "SppAuthError", "the token was not accepted"),
        ("/api/orders", "SppUnexpectedResponseError", "answered 200 with an HTML page, not the Wayfront API"),
    ],
)
def test_an_html_page_is_never_an_api_answer(landed: str, kind: str, says: str) -> None:
    html = _answer(200, {"Content-Type": "text/html; charset=UTF-8"}, b"<html></html>", f"{_BASE}{landed}")
    with pytest.raises(SppApiError) as caught:
        raise_for_status(html, "GET", "/api/orders")
    assert (type(caught.value).__name__, says in str(caught.value)) == (kind, True)


@pytest.mark.parametrize("body", [b"{}", b"[]", b'{"data": {}}', b"not json", b""])
def test_the_connection_test_wants_the_apis_order_list(body: bytes) -> None:
    from airflow_provider_spp._internal.host_answers import check_probe

    check_probe(_answer(200, {}, b'{"data": [], "links": {}}'))
    with pytest.raises(SppUnexpectedResponseError, match="not the API's order list"):
        check_probe(_answer(200, {}, body))


def test_a_handshake_cut_short_is_transient_a_certificate_that_fails_is_not() -> None:
    import ssl

    from airflow_provider_spp._internal.tls_trust import handshake_cut_short

    def wrapped(inner: BaseException) -> Exception:
        try:
            try:
                raise inner
            except BaseException as err:
                raise OSError("connect failed") from err
        except OSError as outer:
            return outer

    assert handshake_cut_short(wrapped(ssl.SSLEOFError(8, "EOF occurred in violation of protocol")))
    assert handshake_cut_short(wrapped(ConnectionResetError(104, "reset")))
    assert not handshake_cut_short(wrapped(ssl.SSLCertVerificationError(1, "certificate verify failed")))
    assert not handshake_cut_short(wrapped(ssl.SSLError(1, "wrong version number")))


def test_both_hooks_take_their_cas_from_one_rule(tmp_path: Any) -> None:
    from airflow_provider_spp._internal.tls_trust import trusted_cas
    from airflow_provider_spp.exceptions import SppConfigError

    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    assert trusted_cas(True, {}) is True
    assert trusted_cas(True, {"CURL_CA_BUNDLE": str(tmp_path)}) == str(tmp_path)
    assert trusted_cas(True, {"REQUESTS_CA_BUNDLE": str(bundle), "CURL_CA_BUNDLE": str(tmp_path)}) == str(bundle)
    assert trusted_cas(False, {"REQUESTS_CA_BUNDLE": str(bundle)}) is False
    assert trusted_cas(str(tmp_path), {"REQUESTS_CA_BUNDLE": str(bundle)}) == str(tmp_path)
    with pytest.raises(SppConfigError, match="REQUESTS_CA_BUNDLE names a CA bundle that does not exist"):
        trusted_cas(True, {"REQUESTS_CA_BUNDLE": str(tmp_path / "gone.pem")})
