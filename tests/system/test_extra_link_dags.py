"""DAG tests: a run keeps the "Open order in Wayfront" link where the UI reads it (XCom), for the operator and
the sensor; the link is read back the API server's way, from the serialized DAG and the metadata DB."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_spp._internal.links import LINK_NAME, ORDER_URL_KEY
from airflow_provider_spp.sandbox import SandboxServer
from tests.conftest import DAGS_DIR

pytestmark = [pytest.mark.dag, pytest.mark.integration]


@pytest.fixture
def spp(spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, airflow_db: str, tmp_path: Any) -> SandboxServer:
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=2, retry_backoff=0.01))
    (tmp_path / "notes.md").write_text("notes")
    (tmp_path / "chart.png").write_bytes(b"png")
    monkeypatch.setenv("SPP_TEST_ATTACHMENT_DIR", str(tmp_path))
    return spp_sandbox


def _dag(dag_id: str) -> Any:
    from airflow_provider_spp._internal.version_compat import DagBag

    bag = DagBag(str(DAGS_DIR))
    assert bag.import_errors == {}
    return bag.get_dag(dag_id)


def _link_as_the_ui_reads_it(dag_run: Any, task_id: str) -> tuple[list[str], str | None]:
    """The task's extra links and this one's URL, as the API server gets them (serialized DAG + XCom table)."""
    from airflow.models.serialized_dag import SerializedDagModel

    task = SerializedDagModel.get_dag(dag_run.dag_id).get_task(task_id)
    ti = dag_run.get_task_instance(task_id)
    return list(task.extra_links), task.get_extra_links(ti, LINK_NAME)


def test_a_runs_post_keeps_the_link_to_its_order(spp: SandboxServer) -> None:
    dag_run = _dag("spp_test_templating").test()
    assert dag_run.state == "success"
    for task_id, order in (("post_file_template", "E4A269FC"), ("post_json_user_id", "B7C3D2A1")):
        ti = dag_run.get_task_instance(task_id)
        assert ti.xcom_pull(task_ids=task_id, key=ORDER_URL_KEY) is None  # no round trip of its own: see links.py
        names, url = _link_as_the_ui_reads_it(dag_run, task_id)
        assert names == [LINK_NAME]
        assert url == f"{spp.url}/orders/{order}"
        assert spp.token not in url


def test_a_runs_wait_keeps_the_link_to_its_order(spp: SandboxServer) -> None:
    from tests.support.background import background_actions

    listed = lambda: any(r["path"] == "/api/order_messages/E4A269FC" for r in spp.requests())  # noqa: E731
    with background_actions() as when:
        when(listed, lambda: spp.post_as_client("E4A269FC", "approved, thanks"), within=30)
        dag_run = _dag("spp_test_wait_poke").test()
    assert dag_run.state == "success"
    names, url = _link_as_the_ui_reads_it(dag_run, "wait")
    assert (names, url) == ([LINK_NAME], f"{spp.url}/orders/E4A269FC")
