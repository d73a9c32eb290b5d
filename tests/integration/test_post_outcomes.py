"""What a POST's outcome is, against a sandbox that fails the way a Laravel app behind a gateway does.

A POST certainly created nothing only when the request was never sent, or SPP rejected it before
processing (400, 401, 403, 404, 422, 429). Everything else (5xx, a lost or broken answer, a 2xx that is
not a message) is unknown, and the hook never sends that POST again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_spp.exceptions import SppApiError, SppTransportError
from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.sandbox import SandboxServer

pytestmark = pytest.mark.integration

ORDER = "E4A269FC"


def _hook(server: SandboxServer, monkeypatch: pytest.MonkeyPatch, **extra: Any) -> SppHook:
    settings = {"timeout": 2, "retry_backoff": 0.01, "max_retries": 3, **extra}
    monkeypatch.setenv("AIRFLOW_CONN_SPP_OUTCOMES", server.connection_json(**settings))
    return SppHook("spp_outcomes")


@pytest.fixture
def hook(spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[SppHook]:
    with _hook(spp_sandbox, monkeypatch) as made:
        yield made


def _posts(server: SandboxServer) -> list[dict[str, Any]]:
    return [r for r in server.requests() if r["method"] == "POST"]


@pytest.mark.parametrize(("status", "user_id"), [(422, 99999), (404, None)])
def test_client_errors_are_certain_failures(
    spp_sandbox: SandboxServer, hook: SppHook, status: int, user_id: int | None
) -> None:
    order = ORDER if status != 404 else "NOPE0000"
    with pytest.raises(SppApiError) as caught:
        hook.create_order_message(order, "Rejected", user_id=user_id)
    assert caught.value.status_code == status
    assert caught.value.outcome_unknown is False
    assert spp_sandbox.messages() == []


def test_a_tls_stream_broken_after_the_request_is_unknown_and_not_sent_again(
    spp_sandbox_tls: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    spp_sandbox_tls.add_fault("break_stream_after", times=None, method="POST")
    with _hook(spp_sandbox_tls, monkeypatch) as hook, pytest.raises(SppTransportError) as caught:
        hook.create_order_message(ORDER, "Stored before the stream broke")
    assert caught.value.request_sent is True
    assert caught.value.outcome_unknown is True
    assert len(_posts(spp_sandbox_tls)) == 1
    assert [m.message for m in spp_sandbox_tls.messages()] == ["Stored before the stream broke"]


def test_a_tls_sandbox_answers_over_https_with_its_own_ca(
    spp_sandbox_tls: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _hook(spp_sandbox_tls, monkeypatch) as hook:
        created = hook.create_order_message(ORDER, "Over TLS")
    assert spp_sandbox_tls.url.startswith("https://127.0.0.1:")
    assert json.loads(spp_sandbox_tls.connection_json())["extra"]["verify"].endswith("ca.pem")
    assert [m.id for m in spp_sandbox_tls.messages()] == [created.id]


def test_a_certificate_the_connection_does_not_trust_is_certain_and_not_retried(
    spp_sandbox_tls: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _hook(spp_sandbox_tls, monkeypatch, verify=True) as hook, pytest.raises(SppTransportError) as caught:
        hook.create_order_message(ORDER, "Untrusted certificate")
    assert caught.value.request_sent is False
    assert caught.value.retryable is False
    assert spp_sandbox_tls.requests() == []
