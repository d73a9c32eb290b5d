"""SppHook never shows the token; URI-form connections; TLS failures; errors name the path that answered."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from structlog.testing import capture_logs

from airflow_provider_spp._internal.client import ApiRequest
from airflow_provider_spp.exceptions import (
    SppError,
    SppNotFoundError,
    SppTransportError,
)
from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.sandbox import SandboxServer
from tests.integration.hook.wire import (
    ORDER,
    HookFactory,
    closed_port,
    logged,
)

pytestmark = pytest.mark.integration


# -- the token never leaks ---------------------------------------------------------------------------------


def test_the_token_never_shows_in_reprs_errors_or_logs(
    spp_sandbox: SandboxServer, spp_sandbox_other_host: SandboxServer, make_hook: HookFactory, tmp_path: Any
) -> None:
    token = spp_sandbox.token
    errors: list[BaseException] = []

    def expect_error(call: Callable[[], Any]) -> None:
        try:
            call()
        except SppError as err:
            errors.append(err)
        else:
            pytest.fail("expected an SppError")

    with capture_logs() as entries:
        hook = make_hook()
        other = f"{spp_sandbox.url}/_sandbox/redirect?{urlencode({'to': f'{spp_sandbox_other_host.url}/api/x'})}"
        expect_error(lambda: hook.create_order_message("NOPE", "x"))  # 404
        expect_error(lambda: hook._send(ApiRequest("GET", other)))  # 401 on the other host
        expect_error(lambda: hook._send(ApiRequest("POST", other, idempotent=False)))  # redirected
        for kind in ("rate_limit", "bad_gateway", "gateway_timeout", "server_error", "drop_after", "missing_id"):
            spp_sandbox.add_fault(kind, times=None, method="POST", retry_after=0)
            expect_error(lambda: hook.create_order_message(ORDER, "x"))
            spp_sandbox.clear_faults()
        spp_sandbox.add_fault("malformed_json", method="POST")
        expect_error(lambda: hook.create_order_message(ORDER, "x"))
        spp_sandbox.add_fault("slow", method="POST", delay=1)
        expect_error(lambda: make_hook(conn_id="spp_slow", extra={"timeout": 0.2}).create_order_message(ORDER, "x"))
        expect_error(lambda: hook.create_order_message(ORDER, "x", attachments=[tmp_path / "missing"]))
        expect_error(lambda: make_hook(conn_id="spp_closed", host=f"http://127.0.0.1:{closed_port()}").get_order(1))
        expect_error(lambda: make_hook(conn_id="spp_bad", api_version="bad version").settings)
        wrong = make_hook(conn_id="spp_wrong", password="wrong-token-value")
        expect_error(lambda: wrong.get_order(ORDER))
        texts = [wrong.test_connection()[1], hook.test_connection()[1]]

    assert len(errors) == 15
    texts += [repr(hook), str(hook), repr(hook.settings), str(hook.settings), repr(hook.get_conn().auth)]
    texts += [str(e) for e in errors] + [repr(e) for e in errors]
    texts += [json.dumps(e, default=str) for e in entries]
    for text in texts:
        assert token not in text
        assert "wrong-token-value" not in text
    # ...while the token did go to the sandbox, as a header, where it belongs.
    assert logged(spp_sandbox)[0]["headers"]["authorization"] == f"Bearer {token}"


def test_uri_form_connection_with_string_extras_works(
    spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:

    uri = f"spp://:{spp_sandbox.token}@{quote(spp_sandbox.url, safe='')}?timeout=5&max_retries=1&api_version=2024-03-05"
    monkeypatch.setenv("AIRFLOW_CONN_SPP_URI_FORM", uri)
    hook = SppHook("spp_uri_form")
    created = hook.create_order_message("E4A269FC", "Sent through a URI connection")
    assert (hook.settings.base_url, hook.settings.timeout, hook.settings.max_retries) == (spp_sandbox.url, 5.0, 1)
    (request,) = logged(spp_sandbox, "POST")
    assert request["headers"]["x-api-version"] == "2024-03-05"
    assert [m.id for m in spp_sandbox.messages()] == [created.id]


def test_a_tls_failure_is_reported_once_and_not_retried(
    spp_sandbox: SandboxServer, make_hook: HookFactory, hook_warnings: Callable[[], list[str]]
) -> None:
    hook = make_hook(host=spp_sandbox.url.replace("http://", "https://"))
    with pytest.raises(SppTransportError, match="TLS handshake failed") as caught:
        hook.create_order_message("E4A269FC", "over https to a plain-http port")
    assert caught.value.request_sent is False
    assert caught.value.retryable is False
    assert hook_warnings() == []
    assert spp_sandbox.messages() == []


def test_an_error_after_a_followed_redirect_names_the_path_that_answered(
    spp_sandbox: SandboxServer, make_hook: HookFactory
) -> None:
    hook = make_hook()
    target = f"{spp_sandbox.url}/api/orders/NOPE0000"
    with pytest.raises(SppNotFoundError, match="GET /api/orders/NOPE0000 failed with 404"):
        hook._send(ApiRequest("GET", f"{spp_sandbox.url}/_sandbox/redirect?to={target}"))
