"""pytest fixtures for the SPP sandbox (loads nothing heavy until used).

Opt-in, as moto's are: add ``pytest_plugins = ["airflow_provider_spp.sandbox.pytest_plugin"]`` to your
top-level ``conftest.py``.

Design: one server per test session, a clean state per test.

* ``spp_sandbox_session`` (session scope) — the running :class:`SandboxServer` (token
  ``"spp-sandbox-test-token"``, a free port on 127.0.0.1). Its state is *not* reset between tests;
  use it only from session/module-scoped fixtures that manage state themselves.
* ``spp_sandbox`` (function scope) — **the one to use**: the same server, reset first (messages,
  files, request log, faults, after-page writes and handshake drops cleared; workspace switches back to
  their defaults; users and orders re-seeded), so every test starts clean. Switch a behaviour on with
  ``spp_sandbox.configure(status_style="code")`` (see ``WorkspaceSettings``).
* ``spp_sandbox_other_host`` (function scope) — a second server on another port ("another host",
  same token), also reset, e.g. to check a client does not forward ``Authorization`` across a redirect
  (``{spp_sandbox.url}/_sandbox/redirect?to={spp_sandbox_other_host.url}/api/...``).
* ``spp_sandbox_tls`` (function scope) — a third server that speaks https with a throw-away CA
  (``.certificate.ca_file``; its ``connection_json()`` sets ``verify`` to that CA), also reset.
* ``spp_sandbox_conn_uri`` (function scope) — the ``AIRFLOW_CONN_…`` JSON for ``spp_sandbox``:
  ``{"conn_type": "spp", "host": url, "password": token}``.
* ``spp_sandbox_conn`` (function scope) — sets ``AIRFLOW_CONN_SPP_DEFAULT`` to that JSON (undone after
  the test) and returns the connection ID, ``"spp_default"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_spp.sandbox.server import SandboxServer

__all__ = [
    "SANDBOX_CONN_ENV",
    "SANDBOX_CONN_ID",
    "spp_sandbox",
    "spp_sandbox_conn",
    "spp_sandbox_conn_uri",
    "spp_sandbox_other_host",
    "spp_sandbox_session",
    "spp_sandbox_tls",
]

SANDBOX_CONN_ID = "spp_default"
SANDBOX_CONN_ENV = "AIRFLOW_CONN_SPP_DEFAULT"


def _serving(*, tls: bool = False) -> Iterator[SandboxServer]:
    """A started sandbox with the default test token, stopped when the generator is closed."""
    from airflow_provider_spp.sandbox.server import SandboxServer

    server = SandboxServer(tls=tls).start()
    try:
        yield server
    finally:
        server.stop()


def _reset(server: SandboxServer) -> SandboxServer:
    """The server, back in its seeded state."""
    server.reset()
    return server


@pytest.fixture(scope="session")
def spp_sandbox_session() -> Iterator[SandboxServer]:
    """The session's sandbox server (state shared across tests, never reset here)."""
    yield from _serving()


@pytest.fixture(scope="session")
def _spp_sandbox_other_host_session() -> Iterator[SandboxServer]:
    """A second session server on another port."""
    yield from _serving()


@pytest.fixture(scope="session")
def _spp_sandbox_tls_session() -> Iterator[SandboxServer]:
    """A session server over TLS."""
    yield from _serving(tls=True)


@pytest.fixture
def spp_sandbox(spp_sandbox_session: SandboxServer) -> SandboxServer:
    """The session's sandbox, reset to its seeded state before this test."""
    return _reset(spp_sandbox_session)


@pytest.fixture
def spp_sandbox_other_host(_spp_sandbox_other_host_session: SandboxServer) -> SandboxServer:
    """A second sandbox ("another host", another port), reset before this test."""
    return _reset(_spp_sandbox_other_host_session)


@pytest.fixture
def spp_sandbox_tls(_spp_sandbox_tls_session: SandboxServer) -> SandboxServer:
    """A sandbox on https (self-signed CA), reset before this test."""
    return _reset(_spp_sandbox_tls_session)


@pytest.fixture
def spp_sandbox_conn_uri(spp_sandbox: SandboxServer) -> str:
    """The Airflow connection JSON pointing at ``spp_sandbox``."""
    return spp_sandbox.connection_json()


@pytest.fixture
def spp_sandbox_conn(spp_sandbox_conn_uri: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point ``spp_default`` at the sandbox via ``AIRFLOW_CONN_SPP_DEFAULT``; returns the connection ID."""
    monkeypatch.setenv(SANDBOX_CONN_ENV, spp_sandbox_conn_uri)
    return SANDBOX_CONN_ID
