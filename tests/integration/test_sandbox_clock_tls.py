"""SPP's clock (``clock_offset``) and a TLS handshake dropped mid-way (transient), over plain HTTP clients."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import pytest
import requests

from airflow_provider_spp.sandbox import SandboxServer
from tests.support.sandbox_http import AUTH, ORDER, admin, api

pytestmark = pytest.mark.integration


def _within(moment: datetime, before: datetime, after: datetime, offset: float) -> bool:
    """Whether ``moment`` (whole seconds) lies in [before, after] shifted by ``offset`` seconds."""
    shift = timedelta(seconds=offset)
    return (before + shift).replace(microsecond=0) <= moment <= after + shift


@pytest.mark.parametrize("offset", [0.0, -5.0, 90.0])
def test_the_clock_offset_moves_the_date_header_and_every_written_timestamp(
    spp_sandbox: SandboxServer, offset: float
) -> None:
    assert admin(spp_sandbox, "POST", "/settings", json={"clock_offset": offset}).status_code == 200
    before = datetime.now(UTC)
    created = api(spp_sandbox, "POST", f"/api/order_messages/{ORDER}", json={"message": "when?"})
    order = spp_sandbox.store.add_order("C10C0001", "Working")
    after = datetime.now(UTC)

    assert created.headers.get_list("date") == [created.headers["date"]]  # one Date, SPP's
    assert _within(parsedate_to_datetime(created.headers["date"]), before, after, offset)
    created_at = datetime.fromisoformat(created.json()["created_at"])
    assert _within(created_at, before, after, offset)
    assert created.json()["order"]["last_message_at"] == created.json()["created_at"]
    assert _within(datetime.fromisoformat(order["created_at"]), before, after, offset)
    listing = api(spp_sandbox, "GET", "/api/orders")
    assert _within(parsedate_to_datetime(listing.headers["date"]), before, datetime.now(UTC), offset)
    health = admin(spp_sandbox, "GET", "/health")
    assert _within(parsedate_to_datetime(health.headers["date"]), before, datetime.now(UTC), offset)


def test_host_answers_carry_spp_dates_too(spp_sandbox: SandboxServer) -> None:
    spp_sandbox.configure(clock_offset=-3600, workspace_state="expired")
    before = datetime.now(UTC)
    answer = api(spp_sandbox, "GET", "/api/orders")
    assert answer.status_code == 302
    assert _within(parsedate_to_datetime(answer.headers["date"]), before, datetime.now(UTC), -3600)


def _ca(server: SandboxServer) -> str:
    assert server.certificate is not None
    return str(server.certificate.ca_file)


def test_a_dropped_tls_handshake_is_an_eof_once_and_the_retry_succeeds(spp_sandbox_tls: SandboxServer) -> None:
    url = f"{spp_sandbox_tls.url}/api/orders"
    spp_sandbox_tls.drop_handshakes(1)

    with pytest.raises(requests.exceptions.SSLError) as first:
        requests.get(url, headers=AUTH, verify=_ca(spp_sandbox_tls), timeout=5)
    second = requests.get(url, headers=AUTH, verify=_ca(spp_sandbox_tls), timeout=5)

    assert "EOF occurred in violation of protocol" in str(first.value)
    assert "CERTIFICATE_VERIFY_FAILED" not in str(first.value)
    assert second.status_code == 200
    assert spp_sandbox_tls.store.handshake_drops.snapshot() == {"pending": 0, "dropped": 1}
    assert [entry["status"] for entry in spp_sandbox_tls.requests()] == [200]  # the dropped one never reached HTTP


def test_handshake_drops_over_the_admin_api_with_httpx(spp_sandbox_tls: SandboxServer) -> None:
    ca = ssl.create_default_context(cafile=_ca(spp_sandbox_tls))
    assert admin(spp_sandbox_tls, "POST", "/handshake_drops", json={"times": 2}, verify=ca).status_code == 201
    for _ in range(2):
        with pytest.raises(httpx.ConnectError) as failed:
            httpx.get(f"{spp_sandbox_tls.url}/api/orders", headers=AUTH, verify=ca, timeout=5)
        assert isinstance(_root(failed.value), ssl.SSLEOFError)
    assert httpx.get(f"{spp_sandbox_tls.url}/api/orders", headers=AUTH, verify=ca, timeout=5).status_code == 200
    assert admin(spp_sandbox_tls, "GET", "/handshake_drops", verify=ca).json() == {"pending": 0, "dropped": 2}


def test_an_unverified_certificate_is_another_error(spp_sandbox_tls: SandboxServer) -> None:
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        requests.get(f"{spp_sandbox_tls.url}/api/orders", headers=AUTH, timeout=5)


def test_a_plain_http_sandbox_closes_the_connection_without_an_answer(spp_sandbox: SandboxServer) -> None:
    spp_sandbox.drop_handshakes(1)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{spp_sandbox.url}/api/orders", headers=AUTH, timeout=5)
    assert requests.get(f"{spp_sandbox.url}/api/orders", headers=AUTH, timeout=5).status_code == 200


def _root(error: BaseException) -> BaseException:
    """The innermost cause or context of an exception."""
    while (inner := error.__cause__ or error.__context__) is not None:
        error = inner
    return error
