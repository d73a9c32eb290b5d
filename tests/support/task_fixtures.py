"""Fixtures for tests that run an operator as in a task against the sandbox: one copy, imported by each module.

A module imports them by name (``from tests.support.task_fixtures import sandbox as sandbox``: the ``as``
tells ruff the name is meant): ``_as_in_a_task`` links the module to the Task SDK (claims and records live
in Airflow Variables and the task state store), ``sandbox`` makes the sandbox ``spp_default``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_spp.sandbox import SandboxServer
from tests.support.task_sdk import task_sdk_link

__all__ = ["SANDBOX_TIMEOUT", "_as_in_a_task", "sandbox"]

#: The hook's read timeout against the sandbox, in seconds: short, so a hung answer fails fast. A test
#: module that needs longer sets its own ``SANDBOX_TIMEOUT``.
SANDBOX_TIMEOUT = 0.4


@pytest.fixture(scope="module", autouse=True)
def _as_in_a_task(airflow_db: str) -> Iterator[None]:
    """Claims live in Airflow Variables, read through the Task SDK as in a task (tests/conftest.py forgets them)."""
    with task_sdk_link():
        yield


@pytest.fixture
def sandbox(
    spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> SandboxServer:
    """The sandbox as the ``spp_default`` connection, with the module's ``SANDBOX_TIMEOUT`` and quick backoffs."""
    timeout = getattr(request.module, "SANDBOX_TIMEOUT", SANDBOX_TIMEOUT)
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=timeout, retry_backoff=0.01))
    return spp_sandbox
