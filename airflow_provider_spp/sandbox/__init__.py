"""A local SPP (Service Provider Pro) API for tests, demos and fault-injection benchmarks.

Import stays light: FastAPI and uvicorn load only when :class:`SandboxServer` or :func:`create_app`
is first used (install the ``sandbox`` extra for them).

    from airflow_provider_spp.sandbox import SandboxServer

    with SandboxServer(token="t") as spp:          # port 0: a free port, see spp.url
        spp.add_fault("drop_after")                 # the next API request is stored, then dropped
        ...
        spp.messages()                              # what the "workspace" received

pytest fixtures (``spp_sandbox``, ``spp_sandbox_conn``, ...) are opt-in: add
``pytest_plugins = ["airflow_provider_spp.sandbox.pytest_plugin"]`` to your top-level ``conftest.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_spp.sandbox.app import create_app
    from airflow_provider_spp.sandbox.faults import Fault, FaultKind, RandomFaults, parse_fault_spec
    from airflow_provider_spp.sandbox.seed import DEFAULT_TOKEN
    from airflow_provider_spp.sandbox.server import SandboxServer
    from airflow_provider_spp.sandbox.store import SandboxStore, StoredFile, StoredMessage

__all__ = [
    "DEFAULT_TOKEN",
    "Fault",
    "FaultKind",
    "RandomFaults",
    "SandboxServer",
    "SandboxStore",
    "StoredFile",
    "StoredMessage",
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
}


def __getattr__(name: str) -> Any:
    """Import public names on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
