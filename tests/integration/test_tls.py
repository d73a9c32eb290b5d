"""TLS against the sandbox on https (127.0.0.1, a throw-away CA): the connection's ``verify`` wins over the env."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_spp.exceptions import SppTransportError
from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.sandbox import SandboxServer
from airflow_provider_spp.sandbox.tls import make_certificate

pytestmark = pytest.mark.integration

CA_ENV_VARS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture(scope="module")
def wrong_ca(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A CA bundle that does not vouch for the sandbox's certificate."""
    return make_certificate(tmp_path_factory.mktemp("other-ca"), "Some other").ca_file


@pytest.fixture
def tls_hook(spp_sandbox_tls: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., SppHook]]:
    """Hooks on a connection to the https sandbox with the given ``verify`` extra (left out when None)."""
    for name in CA_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    hooks: list[SppHook] = []

    def make(verify: Any = None) -> SppHook:
        extra: dict[str, Any] = {"timeout": 5, "max_retries": 0}
        if verify is not None:
            extra["verify"] = verify
        conn = {"conn_type": "spp", "host": spp_sandbox_tls.url, "password": spp_sandbox_tls.token, "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_SPP_TLS", json.dumps(conn))
        hooks.append(SppHook("spp_tls"))
        return hooks[-1]

    yield make
    for hook in hooks:
        hook.close()


def _sandbox_ca(server: SandboxServer) -> str:
    assert server.certificate is not None
    return str(server.certificate.ca_file)


@pytest.mark.parametrize("env_var", CA_ENV_VARS)
def test_a_ca_bundle_in_the_connection_wins_over_the_environment(
    spp_sandbox_tls: SandboxServer,
    tls_hook: Callable[..., SppHook],
    monkeypatch: pytest.MonkeyPatch,
    wrong_ca: pathlib.Path,
    env_var: str,
) -> None:
    monkeypatch.setenv(env_var, str(wrong_ca))

    created = tls_hook(verify=_sandbox_ca(spp_sandbox_tls)).create_order_message("E4A269FC", "Sent over TLS")

    assert [m.id for m in spp_sandbox_tls.messages()] == [created.id]
    (request,) = spp_sandbox_tls.requests()
    assert (request["method"], request["path"]) == ("POST", "/api/order_messages/E4A269FC")


@pytest.mark.parametrize("verify", [False, "false", "0"])
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_off_in_the_connection_wins_over_the_environment(
    spp_sandbox_tls: SandboxServer,
    tls_hook: Callable[..., SppHook],
    monkeypatch: pytest.MonkeyPatch,
    wrong_ca: pathlib.Path,
    verify: Any,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(wrong_ca))

    ok, message = tls_hook(verify=verify).test_connection()

    assert (ok, message) == (True, f"Connected to the Wayfront workspace at {spp_sandbox_tls.url}.")
    assert [(r["method"], r["path"]) for r in spp_sandbox_tls.requests()] == [("GET", "/api/orders")]


@pytest.mark.parametrize("verify", [None, True, "", "  "])
def test_verification_on_uses_the_environment_bundle_when_one_is_set(
    spp_sandbox_tls: SandboxServer,
    tls_hook: Callable[..., SppHook],
    monkeypatch: pytest.MonkeyPatch,
    wrong_ca: pathlib.Path,
    verify: Any,
) -> None:
    """Verification on (the default, also when the extra is empty) trusts REQUESTS_CA_BUNDLE, as requests does."""
    hook = tls_hook(verify=verify)
    with pytest.raises(SppTransportError, match="TLS handshake failed") as caught:
        list(hook.list_orders())  # certifi's CAs do not vouch for the sandbox's throw-away CA
    assert caught.value.request_sent is False
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(wrong_ca))
    with pytest.raises(SppTransportError, match="TLS handshake failed"):
        list(hook.list_orders())
    assert spp_sandbox_tls.requests() == []
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", _sandbox_ca(spp_sandbox_tls))
    assert [order.id for order in hook.list_orders()] == [1004, 1003, 1002, 1001]
    assert len(spp_sandbox_tls.requests()) == 1
