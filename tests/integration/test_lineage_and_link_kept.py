"""The link and the lineage a real post and a real wait leave, against the sandbox over HTTP.

The operator and the sensor run ``execute`` with a task's context; Airflow's hook lineage collector is a
real one (Airflow hands out a no-op one unless a lineage reader such as OpenLineage is installed).
"""

from __future__ import annotations

import importlib
import pathlib
from typing import Any

import pytest

from airflow_provider_spp._internal.links import ORDER_URL_KEY, WayfrontOrderLink
from airflow_provider_spp._internal.version_compat import HOOK_LINEAGE_MODULE
from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator
from airflow_provider_spp.sandbox import SandboxServer
from airflow_provider_spp.sensors.order_messages import SppOrderMessageSensor
from tests.support.ledger_support import Store, task_context
from tests.support.task_fixtures import _as_in_a_task as _as_in_a_task
from tests.support.task_fixtures import sandbox as sandbox

pytestmark = pytest.mark.integration

ORDER = "E4A269FC"
SANDBOX_TIMEOUT = 2  # read by the sandbox fixture: lineage and the link, not hung answers, are tested here
SECRET_TEXT = "Confidential: the Q3 numbers for Dana"


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A real hook lineage collector where Airflow keeps its own, as when OpenLineage is installed."""
    from airflow_provider_spp._internal.version_compat import HookLineageCollector

    module = importlib.import_module(HOOK_LINEAGE_MODULE)
    fresh = HookLineageCollector()
    monkeypatch.setattr(module, "get_hook_lineage_collector", lambda: fresh)
    return fresh


class RecordingTi:
    """The task instance of a task_context(), keeping what the task pushes to XCom."""

    def __init__(self, ti: Any) -> None:
        self.__dict__.update(vars(ti))
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _context() -> dict[str, Any]:
    context = task_context(1, Store())
    context["ti"] = RecordingTi(context["ti"])
    return context


def _link_of(operator: CreateOrderMessageOperator, context: dict[str, Any]) -> str:
    """The link's URL as Airflow gets it at the end of the try; the operator kept it without an XCom push."""
    assert ORDER_URL_KEY not in context["ti"].pushed
    return WayfrontOrderLink().get_link(operator, ti_key=context["ti"])


def _uris(infos: list[Any]) -> list[str]:
    return [info.asset.uri for info in infos]


def test_a_post_reports_its_files_as_read_and_the_order_as_written(
    sandbox: SandboxServer, collector: Any, tmp_path: pathlib.Path
) -> None:
    report = tmp_path / "weekly report.md"
    report.write_text(SECRET_TEXT)
    context = _context()
    operator = CreateOrderMessageOperator(
        task_id="post", order=ORDER, message=SECRET_TEXT, attachments=[str(report), ("inline.csv", b"a,b\n1,2\n")]
    )
    message_id = operator.execute(context)
    assert [m.id for m in sandbox.messages()] == [message_id]
    lineage = collector.collected_assets
    host = sandbox.url.split("://", 1)[1]
    assert _uris(lineage.inputs) == [report.as_uri()]  # bytes in memory have no location
    assert _uris(lineage.outputs) == [f"wayfront://{host}/orders/{ORDER}"]
    assert all(isinstance(info.context, SppHook) for info in lineage.inputs + lineage.outputs)
    collected = repr(lineage)
    assert SECRET_TEXT not in collected
    assert "Confidential" not in collected
    assert sandbox.token not in collected
    assert "a,b" not in collected
    assert _link_of(operator, context) == f"{sandbox.url}/orders/{ORDER}"
    assert sandbox.token not in _link_of(operator, context)


def test_a_failed_post_keeps_the_link_but_reports_no_lineage(sandbox: SandboxServer, collector: Any) -> None:
    context = _context()
    operator = CreateOrderMessageOperator(task_id="post", order="NOPE0000", message=SECRET_TEXT)
    with pytest.raises(Exception, match="404"):
        operator.execute(context)
    assert collector.collected_assets.outputs == []
    assert _link_of(operator, context) == f"{sandbox.url}/orders/NOPE0000"


def test_a_sensor_keeps_the_link_and_reports_the_order_it_read_a_reply_from(
    sandbox: SandboxServer, collector: Any
) -> None:
    before = sandbox.post_as_client(ORDER, "before the wait")
    sandbox.post_as_client(ORDER, SECRET_TEXT)
    context = _context()
    context["ti"].max_tries = 1
    sensor = SppOrderMessageSensor(
        task_id="wait", order=ORDER, after_message_id=before.id, poke_interval=0.2, timeout=3, mode="poke"
    )
    found = sensor.execute(context)
    assert found["order"] == ORDER
    host = sandbox.url.split("://", 1)[1]
    assert _uris(collector.collected_assets.inputs) == [f"wayfront://{host}/orders/{ORDER}"]
    assert SECRET_TEXT not in repr(collector.collected_assets)
    assert sandbox.token not in repr(collector.collected_assets)
    assert context["ti"].pushed[ORDER_URL_KEY] == f"{sandbox.url}/orders/{ORDER}"
