"""SppOrderMessageNotifier over real HTTP: sync and async paths, attachments, errors that never propagate."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from airflow_provider_spp.notifications.spp import SppOrderMessageNotifier
from airflow_provider_spp.sandbox import SandboxServer

pytestmark = pytest.mark.integration


@pytest.fixture
def spp(spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=2, retry_backoff=0.01))
    return spp_sandbox


def test_awaiting_the_notifier_renders_and_posts_from_asyncio_with_files(spp: SandboxServer, tmp_path: Path) -> None:
    report = tmp_path / "late-report.txt"
    report.write_bytes(b"rows: 0\n")
    context: dict[str, Any] = {"dag_run": {"dag_id": "nightly", "dag_run_id": "r1"}}
    notifier = SppOrderMessageNotifier(
        order="{{ params_order }}",
        message="{{ dag_run.dag_id }} ({{ dag_run.dag_run_id }}) is late",
        attachments=["{{ report }}"],
        context={**context, "params_order": "E4A269FC", "report": str(report)},
    )

    async def awaited() -> None:
        await notifier  # what Airflow's CallbackTrigger does with an AsyncCallback(notifier class)

    asyncio.run(awaited())
    (stored,) = spp.messages()
    assert stored.message == "nightly (r1) is late"
    assert stored.staff_only is True
    assert [(f.filename, f.data) for f in stored.files] == [("late-report.txt", b"rows: 0\n")]
    assert {r["headers"]["user-agent"].split()[-1].split("/")[0] for r in spp.requests()} == {"python-httpx"}


def test_as_a_callback_it_posts_with_the_sync_hook(spp: SandboxServer) -> None:
    notifier = SppOrderMessageNotifier(order=1002, message="Run {{ run_id }} failed", attachments=[("log.txt", b"x")])
    notifier({"run_id": "manual__1"})
    (stored,) = spp.messages()
    assert (stored.order_id, stored.message, stored.staff_only) == (1002, "Run manual__1 failed", True)
    assert [f.filename for f in stored.files] == ["log.txt"]


@pytest.mark.parametrize("path", ["sync", "async"])
def test_an_spp_error_is_logged_with_the_request_id_and_never_raised(spp: SandboxServer, path: str) -> None:
    spp.add_fault("unavailable", times=None, method="POST")
    notifier = SppOrderMessageNotifier(order="E4A269FC", message="secret client detail")
    with capture_logs() as entries:
        if path == "sync":
            notifier({})
        else:
            asyncio.run(notifier.async_notify({}))
    (post,) = [r for r in spp.requests() if r["method"] == "POST"]  # a 503 POST is never re-sent
    (error,) = [e for e in entries if e.get("log_level") == "error"]
    text = str(error)
    assert post["api_identifier"] in text
    assert "503" in text
    assert "secret client detail" not in text
    assert spp.token not in text
