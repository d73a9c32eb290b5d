"""A local Wayfront (formerly Service Provider Pro, SPP) API for tests, demos and fault-injection benchmarks.

Import stays light: FastAPI and uvicorn load only when :class:`SandboxServer` or :func:`create_app`
is first used (install the ``sandbox`` extra for them).

    from airflow_provider_spp.sandbox import SandboxServer

    with SandboxServer(token="t") as spp:          # port 0: a free port, see spp.url
        spp.add_fault("drop_after")                 # the next API request is stored, then dropped
        ...
        spp.messages()                              # what the "workspace" received

The workspace can behave as real ones do (see :class:`WorkspaceSettings`; a reset returns to the start):

    with SandboxServer(status_style="code") as spp:        # orders carry "status": 2, filter by the code
        spp.configure(workspace_state="expired")           # every request: 302 to /expired (HTML)
        spp.after_page("orders", order="00C0FFEE")         # a client writes right after page 1 is served
        spp.post_auto_generated("E4A269FC")                # "Order status changed to Working", by the client
        spp.drop_handshakes(1)                             # the next connection dies mid-TLS-handshake

pytest fixtures (``spp_sandbox``, ``spp_sandbox_conn``, ...) are opt-in: add
``pytest_plugins = ["airflow_provider_spp.sandbox.pytest_plugin"]`` to your top-level ``conftest.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_spp.sandbox.app import create_app
    from airflow_provider_spp.sandbox.faults import Fault, FaultKind, RandomFaults, parse_fault_spec
    from airflow_provider_spp.sandbox.page_actions import AfterPage
    from airflow_provider_spp.sandbox.seed import DEFAULT_TOKEN
    from airflow_provider_spp.sandbox.server import SandboxServer
    from airflow_provider_spp.sandbox.store import SandboxStore, StoredFile, StoredMessage
    from airflow_provider_spp.sandbox.workspace import DEFAULT_STATUS_CODES, WorkspaceSettings, WorkspaceState

__all__ = [
    "DEFAULT_STATUS_CODES",
    "DEFAULT_TOKEN",
    "AfterPage",
    "Fault",
    "FaultKind",
    "RandomFaults",
    "SandboxServer",
    "SandboxStore",
    "StoredFile",
    "StoredMessage",
    "WorkspaceSettings",
    "WorkspaceState",
    "create_app",
    "parse_fault_spec",
]

_HOMES = {
    "create_app": "app",
    "Fault": "faults",
    "FaultKind": "faults",
    "RandomFaults": "faults",
    "parse_fault_spec": "faults",
    "DEFAULT_TOKEN": "seed",
    "SandboxServer": "server",
    "SandboxStore": "store",
    "StoredFile": "store",
    "StoredMessage": "store",
    "AfterPage": "page_actions",
    "DEFAULT_STATUS_CODES": "workspace",
    "WorkspaceSettings": "workspace",
    "WorkspaceState": "workspace",
}


def __getattr__(name: str) -> Any:
    """Import public names on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
