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


# -- both hooks trust exactly the same CAs ----------------------------------------------------------------


def _ca_folder(ca_file: pathlib.Path, folder: pathlib.Path) -> pathlib.Path:
    """A CA folder as OpenSSL reads one (``c_rehash``): the CA under its subject hash, ``<hash>.0``."""
    import shutil
    import subprocess

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to name a CA folder's files")
    subject_hash = subprocess.run(
        [openssl, "x509", "-hash", "-noout", "-in", str(ca_file)], capture_output=True, text=True, check=True
    ).stdout.strip()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{subject_hash}.0").write_bytes(ca_file.read_bytes())
    return folder


def _list_orders(hook_kind: str, server: SandboxServer, verify: Any) -> list[int | None]:
    """List the TLS sandbox's orders through one hook kind, on a connection with this ``verify`` extra."""
    import asyncio
    import os

    from airflow_provider_spp.hooks.spp import SppAsyncHook

    extra: dict[str, Any] = {"timeout": 5, "max_retries": 0}
    if verify is not None:
        extra["verify"] = verify
    os.environ["AIRFLOW_CONN_SPP_TLS_BOTH"] = json.dumps(
        {"conn_type": "spp", "host": server.url, "password": server.token, "extra": extra}
    )
    if hook_kind == "sync":
        with SppHook("spp_tls_both") as hook:
            return [order.id for order in hook.list_orders()]

    async def listing() -> list[int | None]:
        async with SppAsyncHook("spp_tls_both") as hook:
            return [order.id async for order in hook.list_orders()]

    return asyncio.run(listing())


@pytest.fixture
def clean_ca_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No CA variables from the machine running the tests; the connection variable is undone after."""
    for name in (*CA_ENV_VARS, "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_SPP_TLS_BOTH", "{}")
    return monkeypatch


HOOKS = ["sync", "async"]
SEEDED = [1004, 1003, 1002, 1001]


@pytest.mark.parametrize("hook_kind", HOOKS)
@pytest.mark.parametrize("env_var", CA_ENV_VARS)
def test_both_hooks_trust_the_environment_bundle_when_verification_is_on(
    spp_sandbox_tls: SandboxServer, clean_ca_env: pytest.MonkeyPatch, hook_kind: str, env_var: str
) -> None:
    """A private CA in REQUESTS_CA_BUNDLE works for the operator and the deferred sensor alike."""
    with pytest.raises(SppTransportError, match="TLS handshake failed") as caught:
        _list_orders(hook_kind, spp_sandbox_tls, None)  # the default CAs do not vouch for the sandbox
    assert caught.value.permanent
    clean_ca_env.setenv(env_var, _sandbox_ca(spp_sandbox_tls))
    assert _list_orders(hook_kind, spp_sandbox_tls, None) == SEEDED
    assert _list_orders(hook_kind, spp_sandbox_tls, True) == SEEDED


@pytest.mark.parametrize("hook_kind", HOOKS)
def test_both_hooks_prefer_the_connections_bundle_over_the_environment(
    spp_sandbox_tls: SandboxServer, clean_ca_env: pytest.MonkeyPatch, wrong_ca: pathlib.Path, hook_kind: str
) -> None:
    clean_ca_env.setenv("REQUESTS_CA_BUNDLE", str(wrong_ca))
    with pytest.raises(SppTransportError, match="TLS handshake failed"):
        _list_orders(hook_kind, spp_sandbox_tls, None)
    assert _list_orders(hook_kind, spp_sandbox_tls, _sandbox_ca(spp_sandbox_tls)) == SEEDED


@pytest.mark.parametrize("hook_kind", HOOKS)
def test_both_hooks_take_a_ca_folder(
    spp_sandbox_tls: SandboxServer, clean_ca_env: pytest.MonkeyPatch, tmp_path: pathlib.Path, hook_kind: str
) -> None:
    assert spp_sandbox_tls.certificate is not None
    folder = _ca_folder(spp_sandbox_tls.certificate.ca_file, tmp_path / "cas")
    assert _list_orders(hook_kind, spp_sandbox_tls, str(folder)) == SEEDED
    clean_ca_env.setenv("REQUESTS_CA_BUNDLE", str(folder))
    assert _list_orders(hook_kind, spp_sandbox_tls, None) == SEEDED


# -- a TLS handshake cut short is transient ---------------------------------------------------------------


def _post(hook_kind: str, server: SandboxServer, text: str, **extra: Any) -> int:
    """Post one message through one hook kind over the TLS sandbox (trusting its CA); the created ID."""
    import asyncio
    import os

    from airflow_provider_spp.hooks.spp import SppAsyncHook

    os.environ["AIRFLOW_CONN_SPP_TLS_BOTH"] = server.connection_json(timeout=5, retry_backoff=0.01, **extra)
    if hook_kind == "sync":
        with SppHook("spp_tls_both") as hook:
            return hook.create_order_message("E4A269FC", text).id

    async def post() -> int:
        async with SppAsyncHook("spp_tls_both") as hook:
            return (await hook.create_order_message("E4A269FC", text)).id

    return asyncio.run(post())


@pytest.mark.parametrize("hook_kind", HOOKS)
def test_a_dropped_handshake_is_transient_and_the_post_is_sent_once(
    spp_sandbox_tls: SandboxServer, clean_ca_env: pytest.MonkeyPatch, hook_kind: str
) -> None:
    """A handshake cut short sent nothing: the error is retryable (a wait goes on), a retry posts once."""
    spp_sandbox_tls.drop_handshakes(1)
    with pytest.raises(SppTransportError, match="TLS handshake failed") as caught:
        _post(hook_kind, spp_sandbox_tls, "never sent", max_retries=0)
    assert (caught.value.request_sent, caught.value.retryable, caught.value.permanent) == (False, True, False)
    assert spp_sandbox_tls.messages() == []

    spp_sandbox_tls.drop_handshakes(2)
    created = _post(hook_kind, spp_sandbox_tls, "after two dropped handshakes", max_retries=3)

    assert [(m.id, m.message) for m in spp_sandbox_tls.messages()] == [(created, "after two dropped handshakes")]
    assert [r["method"] for r in spp_sandbox_tls.requests()] == ["POST"]


@pytest.mark.parametrize("hook_kind", HOOKS)
def test_a_certificate_that_does_not_verify_stays_permanent(
    spp_sandbox_tls: SandboxServer, clean_ca_env: pytest.MonkeyPatch, wrong_ca: pathlib.Path, hook_kind: str
) -> None:
    with pytest.raises(SppTransportError, match="certificate did not verify") as caught:
        _list_orders(hook_kind, spp_sandbox_tls, str(wrong_ca))
    assert (caught.value.request_sent, caught.value.permanent) == (False, True)
