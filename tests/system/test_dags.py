"""DAG tests: real Airflow (dag.test()) running the operator against the SPP sandbox over real HTTP."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from typing import Any
from urllib.parse import unquote

import pytest

from airflow_provider_spp._internal.version_compat import AIRFLOW_V_3_3_PLUS
from airflow_provider_spp.testing import run_dag
from tests.conftest import DAGS_DIR, TESTS_DIR

pytestmark = [pytest.mark.dag, pytest.mark.integration]

REPO = TESTS_DIR.parent
NOTES = b"# Notes for {{ params.client }}\n{% raw %}kept as-is{% endraw %}\n"
CHART = bytes(range(256)) * 64

#: Before Airflow 3.3 there is no task_state_store, so a retry has no stored message ID to reuse: it looks
#: the message up instead. Strict, so the marker has to go once the pre-3.3 fallback keeps that promise.
NEEDS_TASK_STATE_STORE = pytest.mark.xfail(
    not AIRFLOW_V_3_3_PLUS, reason="exactly-once ledger before Airflow 3.3 (no task_state_store)", strict=True
)


@pytest.fixture(scope="module")
def attachment_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("attachments")
    (folder / "notes.md").write_bytes(NOTES)
    (folder / "chart.png").write_bytes(CHART)
    return folder


@pytest.fixture(scope="module")
def dagbag(airflow_db: str, attachment_dir: pathlib.Path) -> Any:
    from airflow_provider_spp._internal.version_compat import DagBag

    os.environ["SPP_TEST_ATTACHMENT_DIR"] = str(attachment_dir)
    bag = DagBag(str(DAGS_DIR))
    assert bag.import_errors == {}
    return bag


@pytest.fixture
def spp_conn(spp_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The default connection pointing at the sandbox, with fast client-side retries."""
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=2, retry_backoff=0.01))
    return spp_sandbox


def _xcom(dag_run: Any, task_id: str, map_index: int = -1) -> Any:
    ti = dag_run.get_task_instance(task_id, map_index=map_index)
    if map_index >= 0:
        return ti.xcom_pull(task_ids=task_id, map_indexes=map_index)
    return ti.xcom_pull(task_ids=task_id)


def _posts(sandbox: Any) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests() if r["method"] == "POST"]


def test_example_dags_import_without_errors(airflow_db: str) -> None:
    from airflow_provider_spp._internal.version_compat import DagBag

    bag = DagBag(str(REPO / "example_dags"))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {
        "spp_order_followup",
        "spp_bulk_reminders",
        "spp_pipeline_alerts",
        "spp_nightly_export",
        "spp_asset_notification",
        "spp_followup_and_wait",
        "spp_reply_triage",
        "spp_deadline_alert",
        "spp_approval",
    }


def test_followup_example_posts_template_and_report_and_hands_on_the_id(
    airflow_db: str, spp_conn: Any, example_storage: str
) -> None:
    from airflow_provider_spp._internal.version_compat import DagBag

    bag = DagBag(str(REPO / "example_dags"))
    dag_run = run_dag(bag.get_dag("spp_order_followup"))
    assert dag_run.state == "success"
    (stored,) = spp_conn.messages()
    assert _xcom(dag_run, "post_followup") == stored.id
    assert _xcom(dag_run, "record_message_id") == stored.id
    assert stored.message.startswith("Hi Dana,")
    assert "- Organic traffic up 12%" in stored.message
    assert "{{" not in stored.message
    report_url = _xcom(dag_run, "build_report")
    assert report_url.startswith(f"{example_storage}/spp_order_followup/")
    (upload,) = stored.files
    assert upload.filename == report_url.rsplit("/", 1)[1]
    assert upload.sha256 == hashlib.sha256(_stored_bytes(report_url)).hexdigest()


def test_message_template_file_is_rendered_and_attachments_are_not(dagbag: Any, spp_conn: Any) -> None:
    dag_run = dagbag.get_dag("spp_test_templating").test()
    assert dag_run.state == "success"
    by_order = {m.order_id: m for m in spp_conn.messages()}
    with_files = by_order[1001]
    assert _xcom(dag_run, "post_file_template") == with_files.id
    assert with_files.message.startswith("Hello Dana, your report for order E4A269FC is ready (run ")
    assert with_files.user_id == 2
    assert with_files.staff_only is False
    notes, chart = with_files.files
    assert (notes.filename, notes.sha256) == ("notes.md", hashlib.sha256(NOTES).hexdigest())
    assert (chart.filename, chart.content_type, chart.sha256) == (
        "chart.png",
        "image/png",
        hashlib.sha256(CHART).hexdigest(),
    )
    multipart = next(r for r in _posts(spp_conn) if r["path"].endswith("/E4A269FC"))
    assert multipart["form"]["user_id"] == "2"
    assert multipart["form"]["staff_only"] == "0"
    json_post = next(r for r in _posts(spp_conn) if r["path"].endswith("/B7C3D2A1"))
    assert json_post["json"] == {"message": "Inline template for Dana", "user_id": 2}
    assert _xcom(dag_run, "post_json_user_id") == by_order[1002].id


def test_native_rendering_sends_real_types(dagbag: Any, spp_conn: Any) -> None:
    dag_run = dagbag.get_dag("spp_test_native").test()
    assert dag_run.state == "success"
    (post,) = _posts(spp_conn)
    assert post["path"] == "/api/order_messages/1003"
    assert post["json"] == {"message": "Native rendering keeps types", "user_id": 2, "staff_only": True}
    assert isinstance(_xcom(dag_run, "post_native"), int)


def test_mapped_tasks_on_a_native_dag_keep_the_order_text_and_attach_md_files_unread(
    dagbag: Any, spp_conn: Any
) -> None:
    dag_run = dagbag.get_dag("spp_test_native_mapped").test()
    float_order, real_order = (dag_run.get_task_instance("remind", map_index=i) for i in (0, 1))
    assert real_order.state == "success"
    (stored,) = spp_conn.messages()
    assert (stored.order_id, stored.message, stored.user_id) == (1001, "Order E4A269FC: notes attached", 2)
    (notes,) = stored.files
    assert (notes.filename, notes.sha256) == ("notes.md", hashlib.sha256(NOTES).hexdigest())
    # "12345E67" went over the wire as written (SPP has no such order), not as the float 1.2345e+71.
    assert float_order.state == "failed"
    assert [(r["path"], r["status"]) for r in _posts(spp_conn) if "E67" in r["path"]] == [
        ("/api/order_messages/12345E67", 404)
    ]


def test_notifier_on_a_native_dag_keeps_order_and_message_text(dagbag: Any, spp_conn: Any) -> None:
    dag_run = dagbag.get_dag("spp_test_native_notifier").test()
    assert dag_run.state == "failed"
    (alert,) = _posts(spp_conn)
    assert (alert["path"], alert["status"]) == ("/api/order_messages/12345E67", 404)
    assert alert["json"] == {"message": "42", "user_id": 2, "staff_only": True}


def test_dynamic_task_mapping_posts_one_message_per_order(dagbag: Any, spp_conn: Any) -> None:
    dag_run = dagbag.get_dag("spp_test_mapped").test()
    assert dag_run.state == "success"
    stored = {m.order_id: m for m in spp_conn.messages()}
    assert sorted(stored) == [1001, 1002, 1003]
    assert stored[1002].message == "Reminder for order B7C3D2A1"
    ids = [_xcom(dag_run, "remind", i) for i in range(3)]
    assert sorted(ids) == sorted(m.id for m in stored.values())
    assert _xcom(dag_run, "collect") == sorted(ids)


def test_two_map_indexes_posting_the_same_text_each_get_their_own_message(dagbag: Any, spp_conn: Any) -> None:
    spp_conn.add_fault("bad_gateway", method="POST", after=1)  # the second POST only: a 502, nothing stored
    dag_run = dagbag.get_dag("spp_test_same_text_siblings").test()
    assert dag_run.state == "success"
    ids = [_xcom(dag_run, "notify", i) for i in range(2)]
    stored = spp_conn.messages()
    assert [m.message for m in stored] == ["Your files are ready"] * 2
    assert sorted(ids) == sorted(m.id for m in stored)
    assert [r["status"] for r in _posts(spp_conn)] == [201, 502, 201]


def test_unknown_order_fails_at_once_without_spending_retries(dagbag: Any, spp_conn: Any, capfd: Any) -> None:
    dag_run = dagbag.get_dag("spp_test_unknown_order").test()
    assert dag_run.state == "failed"
    ti = dag_run.get_task_instance("post")
    assert ti.state == "failed"
    assert ti.try_number == 1
    assert len(_posts(spp_conn)) == 1
    assert spp_conn.messages() == []
    out, err = capfd.readouterr()
    assert "failed with 404" in out + err


@pytest.mark.parametrize(
    "fault",
    [
        "drop_after",
        "gateway_timeout",
        "server_error_after_commit",
        "unavailable_after_commit",
        "missing_id",
        "slow",
        "slow_commit",
    ],
)
def test_a_retry_after_a_lost_answer_returns_the_first_message_instead_of_posting_again(
    dagbag: Any, spp_sandbox: Any, monkeypatch: pytest.MonkeyPatch, capfd: Any, fault: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=0.5, retry_backoff=0.01))
    spp_sandbox.add_fault(fault, method="POST", delay=1.5)
    dag_run = dagbag.get_dag("spp_test_retry_dedup").test()
    assert dag_run.state == "success"
    (stored,) = spp_sandbox.messages()
    assert _xcom(dag_run, "post") == stored.id
    assert dag_run.get_task_instance("post").try_number == 2
    assert len(_posts(spp_sandbox)) == 1
    out, _ = capfd.readouterr()
    assert f"Found message {stored.id} on order E4A269FC" in out


def test_without_deduplication_a_lost_answer_means_a_duplicate(
    dagbag: Any, spp_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=0.5, retry_backoff=0.01))
    spp_sandbox.add_fault("drop_after", method="POST")
    dag_run = dagbag.get_dag("spp_test_retry_no_dedup").test()
    assert dag_run.state == "success"
    assert [m.message for m in spp_sandbox.messages()] == ["Posted on every try"] * 2


@NEEDS_TASK_STATE_STORE
def test_a_retry_after_a_crash_reuses_the_stored_message_id_without_any_request(
    dagbag: Any, spp_conn: Any, capfd: Any
) -> None:
    dag_run = dagbag.get_dag("spp_test_crash_after_post").test()
    assert dag_run.state == "success"
    (stored,) = spp_conn.messages()
    assert _xcom(dag_run, "post") == stored.id
    assert dag_run.get_task_instance("post").try_number == 2
    assert [r["method"] for r in spp_conn.requests()] == ["POST"]
    out, _ = capfd.readouterr()
    assert f"An earlier try already posted message {stored.id} to order 9F8E7D6C" in out


def test_drop_before_creation_is_posted_by_the_retry(
    dagbag: Any, spp_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=2, retry_backoff=0.01))
    spp_sandbox.add_fault("drop_before", method="POST")
    dag_run = dagbag.get_dag("spp_test_retry_dedup").test()
    assert dag_run.state == "success"
    (stored,) = spp_sandbox.messages()
    assert _xcom(dag_run, "post") == stored.id
    assert [r["method"] for r in spp_sandbox.requests()] == ["POST", "GET", "POST"]
    assert json.loads(json.dumps(_posts(spp_sandbox)[1]["json"])) == {"message": "Exactly once, please"}


def test_failure_notifier_posts_a_staff_only_alert(dagbag: Any, spp_conn: Any) -> None:
    dag_run = dagbag.get_dag("spp_test_notifier").test()
    assert dag_run.state == "failed"
    (alert,) = spp_conn.messages()
    assert alert.order_id == 1002
    assert alert.staff_only is True
    # dag.test() before Airflow 3.3 leaves `exception` out of failure-callback contexts; real workers set it.
    reason = "upstream API returned nothing" if AIRFLOW_V_3_3_PLUS else "(no exception)"
    assert alert.message == f"Task load_rankings failed in spp_test_notifier: {reason}"


def test_a_missing_attachment_fails_the_task_before_any_request(dagbag: Any, spp_conn: Any, capfd: Any) -> None:
    dag_run = dagbag.get_dag("spp_test_missing_attachment").test()
    assert dag_run.state == "failed"
    assert dag_run.get_task_instance("post").try_number == 1
    assert spp_conn.requests() == []
    out, err = capfd.readouterr()
    assert "Attachment not found: /nonexistent/report-" in out + err


@pytest.mark.filterwarnings("ignore:UPath 'flakyfs' filesystem not explicitly implemented")
def test_an_object_store_error_while_checking_an_attachment_is_retried(dagbag: Any, spp_conn: Any) -> None:
    """A network error asking s3://-like storage about a file is not a missing file: the next try posts."""
    from tests.support.flaky_storage import install

    storage = install()
    storage.files["bucket/reports/report.csv"] = b"id,total\n1,20\n"
    storage.fail("info", ConnectionError("connection reset by peer"), times=1)
    try:
        dag_run = dagbag.get_dag("spp_test_object_storage_attachment").test()
        assert dag_run.state == "success"
        assert dag_run.get_task_instance("post").try_number == 2
        (posted,) = spp_conn.messages()
        assert [(f.filename, f.content_type, f.data) for f in posted.files] == [
            ("report.csv", "text/csv", b"id,total\n1,20\n")
        ]
        assert len(_posts(spp_conn)) == 1

        spp_conn.reset()
        del storage.files["bucket/reports/report.csv"]  # certainly missing: no retries spent
        dag_run = dagbag.get_dag("spp_test_object_storage_attachment").test()
        assert dag_run.state == "failed"
        assert dag_run.get_task_instance("post").try_number == 1
        assert spp_conn.requests() == []
    finally:
        storage.reset()


def test_in_memory_attachment_bytes_reach_spp_but_are_never_stored_by_airflow(dagbag: Any, spp_conn: Any) -> None:
    """Rendered fields (the UI's Rendered Template view) and the serialized DAG show a placeholder, not the data."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.serialized_dag import SerializedDagModel

    from tests.system.dags.spp_test_dags import IN_MEMORY_CLIENT_DATA

    dag_run = dagbag.get_dag("spp_test_in_memory_attachment").test()

    assert dag_run.state == "success"
    (posted,) = spp_conn.messages()
    assert [(f.filename, f.data) for f in posted.files] == [("client.txt", IN_MEMORY_CLIENT_DATA), ("notes.md", NOTES)]
    rendered = RenderedTaskInstanceFields.get_templated_fields(dag_run.get_task_instance("post"))
    assert rendered is not None
    serialized = SerializedDagModel.get("spp_test_in_memory_attachment")
    assert serialized is not None
    secret = IN_MEMORY_CLIENT_DATA.decode().strip()[:20]  # "Client: Dana Kim, IB"
    for stored in (json.dumps(rendered), json.dumps(serialized.data)):
        assert secret not in stored
        assert "Dana Kim" not in stored
    placeholder = f"<{len(IN_MEMORY_CLIENT_DATA)} bytes in memory>"
    notes = str(pathlib.Path(os.environ["SPP_TEST_ATTACHMENT_DIR"]) / "notes.md")

    def shown_as(name: str) -> tuple[Any, str]:
        """As JSON, or (Airflow 3.1, for a list holding a tuple) as its str()."""
        return [[name, placeholder], notes], f"[({name!r}, {placeholder}), {notes!r}]"

    assert rendered["attachments"] in shown_as("client.txt")
    (task,) = serialized.data["dag"]["tasks"]
    # The DAG may have been serialized by an earlier parse of tests/system/dags, before SPP_TEST_ATTACHMENT_DIR was set.
    stored = task["__var"]["attachments"]
    if isinstance(stored, str):  # Airflow 3.1 keeps str() of a list holding a tuple
        assert "'{{ params.name }}.txt'" in stored
        assert placeholder in stored
    else:
        in_memory, notes_path = stored
        assert (in_memory, pathlib.PurePath(notes_path).name) == (["{{ params.name }}.txt", placeholder], "notes.md")


@pytest.fixture
def example_storage(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The examples' shared storage base (the ``spp_example_storage`` Variable), here a local folder."""
    base = (tmp_path / "shared-storage").as_uri()
    monkeypatch.setenv("AIRFLOW_VAR_SPP_EXAMPLE_STORAGE", base)
    return base


def _stored_bytes(url: str) -> bytes:
    """The bytes of a file the examples handed over through object storage."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(url).read_bytes()


@pytest.fixture(scope="module")
def example_dagbag(airflow_db: str) -> Any:
    from airflow_provider_spp._internal.version_compat import DagBag

    return DagBag(str(REPO / "example_dags"))


def test_bulk_reminders_example_posts_one_reminder_per_matching_order(example_dagbag: Any, spp_conn: Any) -> None:
    dag_run = run_dag(example_dagbag.get_dag("spp_bulk_reminders"), run_conf={"status": "Working"})
    assert dag_run.state == "success"
    stored = sorted((m.order_id, m.message) for m in spp_conn.messages())
    assert [order_id for order_id, _ in stored] == [1001, 1004]
    assert stored[0][1].startswith("Hi! To keep order E4A269FC moving we still need your login details.")
    orders_query = next(r["query"] for r in spp_conn.requests() if r["path"] == "/api/orders")
    assert "filters[status][$eq]=Working" in unquote(orders_query)


@pytest.mark.parametrize("ignores_filters", [False, True], ids=["filtered", "filters-ignored"])
def test_bulk_reminders_example_reminds_orders_of_a_status_code_by_default(
    airflow_db: str, spp_conn: Any, ignores_filters: bool
) -> None:
    """Wayfront's statuses are integer codes: the DAG's default param (2, "Working" in the sandbox) filters by
    the code, and a workspace that ignores the filter still gets reminders only on orders of that status."""
    spp_conn.configure(status_style="code", ignore_filters_and_sort=ignores_filters)
    working = sorted(o["id"] for o in spp_conn.store.orders() if o["status"] in ("Working", 2))
    assert working == [1001, 1004]

    from airflow_provider_spp._internal.version_compat import DagBag

    # a fresh parse: dag.test(run_conf=...) in another test leaves its conf in the shared DAG's params
    dag = DagBag(str(REPO / "example_dags")).get_dag("spp_bulk_reminders")
    assert dag.params["status"] == 2
    dag_run = run_dag(dag)

    assert dag_run.state == "success"
    assert sorted(m.order_id for m in spp_conn.messages()) == working
    orders_query = next(r["query"] for r in spp_conn.requests() if r["path"] == "/api/orders")
    assert "filters[status][$eq]=2" in unquote(orders_query)


def test_bulk_reminders_message_only_orders_of_the_status_across_pages(example_dagbag: Any, spp_conn: Any) -> None:
    """SPP serves smaller pages than asked and its next links carry only ?page=N: no Complete order is messaged."""
    for n in range(6):
        spp_conn.store.add_order(f"PAGE000{n}", "Working" if n % 2 else "Complete")
    spp_conn.store.max_per_page = 2
    working = {o["id"] for o in spp_conn.store.orders() if o["status"] == "Working"}
    assert len(working) == 5  # three pages of (at most) two

    dag_run = run_dag(example_dagbag.get_dag("spp_bulk_reminders"), run_conf={"status": "Working"})

    assert dag_run.state == "success"
    assert sorted(m.order_id for m in spp_conn.messages()) == sorted(working)
    listing = [r for r in spp_conn.requests() if r["path"] == "/api/orders"]
    assert len(listing) == 3
    assert all("filters[status][$eq]=Working" in unquote(r["query"]) for r in listing)


def test_bulk_reminders_example_takes_the_oldest_orders_up_to_max_orders(example_dagbag: Any, spp_conn: Any) -> None:
    added = spp_conn.store.add_orders(7, status="Awaiting client")
    conf = {"status": "Awaiting client", "max_orders": 5}
    dag_run = run_dag(example_dagbag.get_dag("spp_bulk_reminders"), run_conf=conf)
    assert dag_run.state == "success"
    assert sorted(m.order_id for m in spp_conn.messages()) == [order["id"] for order in added[:5]]
    stored = {m.order_id: m.message for m in spp_conn.messages()}
    assert stored[added[0]["id"]].startswith("Hi! To keep order B0000001 moving")


def test_pipeline_alerts_example_posts_a_staff_only_note_with_the_file(
    example_dagbag: Any, spp_conn: Any, example_storage: str
) -> None:
    dag_run = run_dag(example_dagbag.get_dag("spp_pipeline_alerts"))
    assert dag_run.state == "success"
    (note,) = spp_conn.messages()
    assert (note.order_id, note.staff_only) == (1002, True)
    (upload,) = note.files
    rankings_url = _xcom(dag_run, "load_keyword_rankings")
    assert rankings_url.startswith(f"{example_storage}/spp_pipeline_alerts/")
    assert upload.filename == rankings_url.rsplit("/", 1)[1]
    assert upload.sha256 == hashlib.sha256(_stored_bytes(rankings_url)).hexdigest()


def test_pipeline_alerts_failure_posts_the_dag_level_alert_with_templates_rendered(
    example_dagbag: Any, spp_conn: Any, example_storage: str
) -> None:
    dag_run = run_dag(example_dagbag.get_dag("spp_pipeline_alerts"), run_conf={"simulate_failure": True})
    assert dag_run.state == "failed"
    assert dag_run.get_task_instance("note_rankings_landed").state == "upstream_failed"
    (alert,) = spp_conn.messages()
    assert (alert.order_id, alert.staff_only) == (1002, True)
    day = dag_run.logical_date.strftime("%Y-%m-%d")
    assert alert.message == f"Pipeline spp_pipeline_alerts failed for {day} (run {dag_run.run_id}). Investigating."


def test_a_deferrable_retry_waits_on_the_triggerer_for_a_slow_server(
    dagbag: Any, spp_sandbox: Any, monkeypatch: pytest.MonkeyPatch, capfd: Any
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=0.5, retry_backoff=0.01))
    spp_sandbox.add_fault("slow_commit", method="POST", delay=1.5)
    dag_run = dagbag.get_dag("spp_test_retry_deferred").test()
    assert dag_run.state == "success"
    (stored,) = spp_sandbox.messages()
    assert _xcom(dag_run, "post") == stored.id
    assert [r["method"] for r in spp_sandbox.requests()] == ["POST", "GET"]
    out, _ = capfd.readouterr()
    assert "Deferring" in out
    assert f"Found message {stored.id} on order E4A269FC" in out


# -- the bulk operator ---------------------------------------------------------------------------------------


def test_bulk_reminders_example_bulk_way_posts_one_reminder_per_order_in_one_task(
    example_dagbag: Any, spp_conn: Any
) -> None:
    added = spp_conn.store.add_orders(30, status="Awaiting client")
    conf = {"status": "Awaiting client", "max_orders": 30, "way": "bulk"}

    dag_run = run_dag(example_dagbag.get_dag("spp_bulk_reminders"), run_conf=conf)

    assert dag_run.state == "success"
    assert dag_run.get_task_instance("remind_client").state == "skipped"
    stored = {m.order_id: m for m in spp_conn.messages()}
    assert sorted(stored) == [order["id"] for order in added]
    assert stored[added[0]["id"]].message.startswith("Hi! To keep order B0000001 moving we still need")
    result = _xcom(dag_run, "remind_in_bulk")
    number_of = {order["id"]: order["number"] for order in added}
    assert result == {"message_ids": {number_of[m.order_id]: m.id for m in stored.values()}, "failed": {}}


@NEEDS_TASK_STATE_STORE
def test_a_bulk_retry_after_lost_answers_posts_only_what_is_missing(
    dagbag: Any, spp_sandbox: Any, monkeypatch: pytest.MonkeyPatch, capfd: Any
) -> None:
    from tests.system.dags.spp_bulk_test_dags import BULK_ORDERS

    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=1, retry_backoff=0.01))
    spp_sandbox.store.add_orders(8)
    for order, fault in (("B7C3D2A1", "drop_after"), ("00C0FFEE", "server_error"), ("B0000003", "rate_limit")):
        spp_sandbox.add_fault(fault, method="POST", path_prefix=f"/api/order_messages/{order}", retry_after=0)

    dag_run = dagbag.get_dag("spp_test_bulk_retry").test()

    assert dag_run.state == "success"
    assert dag_run.get_task_instance("remind").try_number == 2
    messages = spp_sandbox.messages()
    per_order = {o["id"]: o["number"] for o in spp_sandbox.store.orders()}
    assert sorted(per_order[m.order_id] for m in messages) == sorted(BULK_ORDERS), "one message per order"
    assert _xcom(dag_run, "remind") == {"message_ids": {per_order[m.order_id]: m.id for m in messages}, "failed": {}}
    second_try = [r for r in spp_sandbox.requests() if r["method"] == "POST"][len(BULK_ORDERS) + 1 :]
    assert [r["path"] for r in second_try] == ["/api/order_messages/00C0FFEE"], "the retry re-posted what landed"
    assert "Hello client 1, order B7C3D2A1 needs you" in next(m.message for m in messages if m.order_id == 1002)
    out, _ = capfd.readouterr()
    assert "Looked for 2 posts of earlier tries whose answers were lost: 1 found, 1 to post" in out
    assert "10 orders already have the message an earlier try posted" in out


@NEEDS_TASK_STATE_STORE
def test_a_bulk_retry_after_a_kill_mid_batch_leaves_one_message_per_order(
    dagbag: Any, spp_conn: Any, capfd: Any
) -> None:
    from tests.system.dags.spp_bulk_test_dags import BULK_ORDERS

    spp_conn.store.add_orders(8)
    # The same text on the last order, a minute before the run (an earlier day's run, a colleague): never adopted.
    spp_conn.configure(clock_offset=-60)
    last = next(o["id"] for o in spp_conn.store.orders() if o["number"] == "B0000008")
    earlier = spp_conn.store.create_message(order_id=last, message="Order B0000008: still waiting on you")
    spp_conn.configure(clock_offset=0)

    dag_run = dagbag.get_dag("spp_test_bulk_killed").test()

    assert dag_run.state == "success"
    assert dag_run.get_task_instance("remind").try_number == 2
    messages = [m for m in spp_conn.messages() if m.id != earlier.id]
    number_of = {o["id"]: o["number"] for o in spp_conn.store.orders()}
    assert sorted(number_of[m.order_id] for m in messages) == sorted(BULK_ORDERS), "a duplicate or a lost post"
    assert _xcom(dag_run, "remind")["message_ids"] == {number_of[m.order_id]: m.id for m in messages}
    posts = [r for r in spp_conn.requests() if r["method"] == "POST"]
    assert len(posts) == len(BULK_ORDERS), f"{len(posts)} POSTs for {len(BULK_ORDERS)} orders"
    out, _ = capfd.readouterr()
    assert "Looked for 12 posts of earlier tries whose answers were lost" in out


def test_bulk_input_errors_fail_at_once_naming_each_bad_item(dagbag: Any, spp_conn: Any, capfd: Any) -> None:
    dag_run = dagbag.get_dag("spp_test_bulk_bad_input").test()

    assert dag_run.state == "failed"
    assert dag_run.get_task_instance("remind").try_number == 1  # no retries spent
    assert spp_conn.requests() == []
    out, _ = capfd.readouterr()
    assert "item 1: order" in out
    assert "item 2: message" in out
