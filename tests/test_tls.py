"""TLS against a real HTTPS listener on 127.0.0.1: the connection's ``verify`` wins over the environment."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import pathlib
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from airflow_provider_spp.exceptions import SppTransportError
from airflow_provider_spp.hooks.spp import SppHook

pytestmark = pytest.mark.integration

TOKEN = "tls-test-token"
CA_ENV_VARS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def _write_ca_and_leaf(folder: pathlib.Path, name: str) -> tuple[pathlib.Path, pathlib.Path, pathlib.Path]:
    """A fresh CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = (folder / f"{name}-{part}.pem" for part in ("ca", "cert", "key"))
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_path, cert_path, key_path


class _OrdersHandler(BaseHTTPRequestHandler):
    """Answers GET /api/orders with an empty SPP page and remembers what it was asked."""

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Authorization")))  # type: ignore[attr-defined]
        body = json.dumps({"data": [], "links": {"next": None}, "meta": {}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class TlsListener:
    """An HTTPS server on a free 127.0.0.1 port whose certificate only ``ca`` (a fresh CA) vouches for."""

    def __init__(self, folder: pathlib.Path) -> None:
        self.ca, cert, key = _write_ca_and_leaf(folder, "server")
        self.wrong_ca, _, _ = _write_ca_and_leaf(folder, "other")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _OrdersHandler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.seen = []  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def seen(self) -> list[tuple[str, str | None]]:
        return self._server.seen  # type: ignore[attr-defined,no-any-return]

    def start(self) -> TlsListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def tls_listener(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsListener]:
    listener = TlsListener(tmp_path_factory.mktemp("tls")).start()
    try:
        yield listener
    finally:
        listener.stop()


@pytest.fixture
def tls_hook(tls_listener: TlsListener, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., SppHook]]:
    """Hooks on a connection to the TLS listener with the given ``verify`` extra (left out when None)."""
    tls_listener.seen.clear()
    for name in CA_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    hooks: list[SppHook] = []

    def make(verify: Any = None) -> SppHook:
        extra: dict[str, Any] = {"timeout": 5, "max_retries": 0}
        if verify is not None:
            extra["verify"] = verify
        conn = {"conn_type": "spp", "host": tls_listener.url, "password": TOKEN, "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_SPP_TLS", json.dumps(conn))
        hooks.append(SppHook("spp_tls"))
        return hooks[-1]

    yield make
    for hook in hooks:
        hook.close()


@pytest.mark.parametrize("env_var", CA_ENV_VARS)
def test_a_ca_bundle_in_the_connection_wins_over_the_environment(
    tls_listener: TlsListener, tls_hook: Callable[..., SppHook], monkeypatch: pytest.MonkeyPatch, env_var: str
) -> None:
    monkeypatch.setenv(env_var, str(tls_listener.wrong_ca))

    orders = list(tls_hook(verify=str(tls_listener.ca)).list_orders(per_page=1))

    assert orders == []
    assert tls_listener.seen == [("/api/orders?limit=1&sort=id%3Adesc", f"Bearer {TOKEN}")]


@pytest.mark.parametrize("verify", [False, "false", "0"])
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_off_in_the_connection_wins_over_the_environment(
    tls_listener: TlsListener, tls_hook: Callable[..., SppHook], monkeypatch: pytest.MonkeyPatch, verify: Any
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_listener.wrong_ca))

    ok, message = tls_hook(verify=verify).test_connection()

    assert (ok, message) == (True, f"Connected to the SPP workspace at {tls_listener.url}.")
    assert len(tls_listener.seen) == 1


@pytest.mark.parametrize("verify", [None, True, "", "  "])
def test_verification_on_uses_the_environment_bundle_when_one_is_set(
    tls_listener: TlsListener, tls_hook: Callable[..., SppHook], monkeypatch: pytest.MonkeyPatch, verify: Any
) -> None:
    """Verification on (the default, also when the extra is empty) trusts REQUESTS_CA_BUNDLE, as requests does."""
    hook = tls_hook(verify=verify)
    with pytest.raises(SppTransportError, match="TLS handshake failed") as caught:
        list(hook.list_orders())  # the system's CAs do not vouch for the test CA
    assert caught.value.request_sent is False
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_listener.wrong_ca))
    with pytest.raises(SppTransportError, match="TLS handshake failed"):
        list(hook.list_orders())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_listener.ca))
    assert list(hook.list_orders()) == []
    assert len(tls_listener.seen) == 1
