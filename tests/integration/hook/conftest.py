"""Fixtures of SppHook's integration tests: hooks on their own connections, and the hook's warnings."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.sandbox import SandboxServer
from tests.integration.hook.wire import CONN_ID, HookFactory


@pytest.fixture
def make_hook(spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[HookFactory]:
    """Build hooks on their own AIRFLOW_CONN_* JSON (fast retries by default), closed after the test."""
    hooks: list[SppHook] = []

    def make(
        *,
        host: str | None = None,
        password: str | None = None,
        conn_id: str = CONN_ID,
        **extra_and_kwargs: Any,
    ) -> SppHook:
        hook_kwargs = {
            k: extra_and_kwargs.pop(k) for k in ("api_version", "timeout", "max_retries") if k in extra_and_kwargs
        }
        extra = {"timeout": 2, "retry_backoff": 0.01, "max_retries": 2, **extra_and_kwargs.pop("extra", {})}
        assert not extra_and_kwargs, f"unknown arguments {extra_and_kwargs}"
        conn = {
            "conn_type": "spp",
            "host": host if host is not None else spp_sandbox.url,
            "password": password if password is not None else spp_sandbox.token,
            "extra": {k: v for k, v in extra.items() if v is not None},
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        hook = SppHook(conn_id, **hook_kwargs)
        hooks.append(hook)
        return hook

    yield make
    for hook in hooks:
        hook.close()


def _logger_name(logger: Any, method_name: str, event_dict: Any) -> Any:
    event_dict["logger"] = getattr(logger, "name", None)
    return event_dict


@pytest.fixture
def hook_warnings() -> Iterator[Callable[[], list[str]]]:
    """The hook's warnings so far, as text.

    Airflow 3 logs through structlog, which pytest's caplog does not see; capture its events instead and
    keep the warnings of loggers named ``airflow.task.hooks...`` (the hook's own logger).
    """
    with capture_logs(processors=[_logger_name]) as entries:

        def warnings() -> list[str]:
            return [
                str(e["event"])
                for e in entries
                if e.get("log_level") == "warning" and str(e.get("logger") or "").startswith("airflow.task.hooks")
            ]

        yield warnings
