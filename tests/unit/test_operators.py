"""Operator templating without a run: only ``message`` is ever read as a template file."""

from __future__ import annotations

import pathlib

import pendulum
import pytest

from airflow_provider_spp._internal.message_match import text_digest
from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator
from tests.support.ledger_support import Store, task_context


@pytest.fixture
def template_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    (tmp_path / "followup.md.j2").write_text("Report for {{ params.client }} on order {{ task.order }}")
    (tmp_path / "report.md").write_text("# {{ this must stay as written }}")
    return tmp_path


def _operator(template_dir: pathlib.Path, **kwargs: object) -> CreateOrderMessageOperator:
    from airflow.sdk import DAG

    with DAG(
        "unit_templating",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        template_searchpath=[str(template_dir)],
        params={"client": "Dana", "order": "E4A269FC"},
    ):
        return CreateOrderMessageOperator(task_id="post", **kwargs)  # type: ignore[arg-type]


def test_parse_time_resolution_reads_only_the_message_file(template_dir: pathlib.Path) -> None:
    operator = _operator(
        template_dir, order="E4A269FC", message="followup.md.j2", attachments=["report.md", "followup.md.j2"]
    )
    operator.resolve_template_files()
    assert operator.message == "Report for {{ params.client }} on order {{ task.order }}"
    assert operator.attachments == ["report.md", "followup.md.j2"]
    assert operator.template_fields == ("order", "message", "user_id", "staff_only", "attachments")


def test_rendering_follows_field_order_and_leaves_attachment_files_unread(template_dir: pathlib.Path) -> None:
    operator = _operator(
        template_dir,
        order="{{ params.order }}",
        message="followup.md.j2",
        user_id="{{ 40 + 2 }}",
        attachments=[str(template_dir / "report.md"), "{{ params.client }}.csv"],
    )
    context = {"params": {"client": "Dana", "order": "E4A269FC"}, "task": operator}
    operator.render_template_fields(context)  # type: ignore[arg-type]
    assert operator.order == "E4A269FC"
    assert operator.message == "Report for Dana on order E4A269FC"
    assert operator.user_id == "42"
    assert operator.attachments == [str(template_dir / "report.md"), "Dana.csv"]
    assert operator.template_ext == (".txt", ".md", ".j2", ".html")


@pytest.mark.integration
def test_without_a_state_store_a_retry_looks_back_to_the_run_start(spp_sandbox, spp_sandbox_conn) -> None:
    from airflow_provider_spp.hooks.spp import SppHook

    run_started = pendulum.now("UTC").subtract(minutes=1)
    earlier = SppHook().create_order_message("E4A269FC", "Sent by try 1")
    operator = CreateOrderMessageOperator(task_id="post", order="E4A269FC", message="Sent by try 1")
    assert operator.execute(task_context(2, run_started=run_started)) == earlier.id  # type: ignore[arg-type]
    assert [r["method"] for r in spp_sandbox.requests()] == ["POST", "GET"]
    assert len(spp_sandbox.messages()) == 1
    assert operator.execute(task_context(1, run_started=run_started)) != earlier.id  # type: ignore[arg-type]
    assert len(spp_sandbox.messages()) == 2


@pytest.mark.integration
def test_the_state_store_records_the_first_try_and_the_message_id(spp_sandbox, spp_sandbox_conn) -> None:
    from airflow_provider_spp._internal.ledger import LEDGER_KEY

    store = Store()
    operator = CreateOrderMessageOperator(task_id="post", order="B7C3D2A1", message="Recorded")
    message_id = operator.execute(task_context(1, store=store))  # type: ignore[arg-type]
    record = store.values[LEDGER_KEY]
    assert isinstance(record, dict)
    assert (record["order"], record["message_id"], record["in_flight"]) == ("B7C3D2A1", message_id, False)
    assert record["digests"] == [text_digest("Recorded")]
    assert record["files"] == []
    assert "Recorded" not in str(record)
    assert pendulum.parse(record["first_sent_at"]) <= pendulum.now("UTC")  # type: ignore[operator]
    assert operator.execute(task_context(2, store=store)) == message_id  # type: ignore[arg-type]
    assert [r["method"] for r in spp_sandbox.requests()] == ["POST"]


def test_page_size_is_checked_before_any_request(spp_sandbox, spp_sandbox_conn) -> None:
    from airflow_provider_spp.exceptions import SppInputError
    from airflow_provider_spp.hooks.spp import SppHook

    for bad in (0, 101, True, "10"):
        with pytest.raises(SppInputError, match="per_page must be an integer from 1 to 100"):
            next(SppHook().list_order_messages("E4A269FC", per_page=bad))  # type: ignore[arg-type]
    assert spp_sandbox.requests() == []


def _post(store: Store, try_number: int, message: str, order: str = "E4A269FC", **kwargs: object) -> int:
    kwargs.setdefault("lost_answer_wait", 0)
    operator = CreateOrderMessageOperator(task_id="post", order=order, message=message, **kwargs)  # type: ignore[arg-type]
    return operator.execute(task_context(try_number, store=store))  # type: ignore[arg-type]


@pytest.mark.integration
def test_a_changed_message_after_a_successful_post_is_posted(spp_sandbox, spp_sandbox_conn) -> None:
    store = Store()
    first = _post(store, 1, "Total: 10 EUR")
    corrected = _post(store, 2, "Total: 12 EUR (corrected)")
    assert corrected != first
    assert [m.message for m in spp_sandbox.messages()] == ["Total: 10 EUR", "Total: 12 EUR (corrected)"]
    assert _post(store, 3, "Total: 12 EUR (corrected)") == corrected
    assert len(spp_sandbox.messages()) == 2


@pytest.mark.integration
def test_a_retry_finds_the_lost_post_even_if_its_text_renders_differently(spp_sandbox, spp_sandbox_conn) -> None:
    from airflow_provider_spp.exceptions import SppTransportError

    store = Store()
    spp_sandbox.add_fault("drop_after", method="POST")
    with pytest.raises(SppTransportError):
        _post(store, 1, "Report generated at 10:00:01")
    (stored,) = spp_sandbox.messages()
    assert _post(store, 2, "Report generated at 10:05:02") == stored.id
    assert len(spp_sandbox.messages()) == 1


@pytest.mark.integration
def test_a_retry_after_a_certain_failure_never_adopts_another_tasks_message(spp_sandbox, spp_sandbox_conn) -> None:
    from airflow_provider_spp.exceptions import SppRateLimitError

    text = "New files were uploaded to your order."
    other_task = _post(Store(), 1, text)
    store = Store()
    spp_sandbox.add_fault("rate_limit", times=4, method="POST", retry_after=0)
    with pytest.raises(SppRateLimitError):
        _post(store, 1, text)
    own = _post(store, 2, text)
    assert own != other_task
    assert [m.message for m in spp_sandbox.messages()] == [text, text]


@pytest.mark.integration
def test_a_retry_waits_for_a_request_the_server_was_still_processing(
    spp_sandbox, spp_sandbox_conn, monkeypatch
) -> None:
    import json

    from airflow_provider_spp.exceptions import SppTransportError

    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=0.3, retry_backoff=0.01))
    store = Store()
    spp_sandbox.add_fault("slow_commit", method="POST", delay=1.0)
    with pytest.raises(SppTransportError):
        _post(store, 1, "Committed late", lost_answer_wait=1.5)
    assert spp_sandbox.messages() == []
    operator = CreateOrderMessageOperator(
        task_id="post", order="E4A269FC", message="Committed late", lost_answer_wait=1.5
    )
    found = operator.execute(task_context(2, store=store))  # type: ignore[arg-type]
    (stored,) = spp_sandbox.messages()
    assert found == stored.id
    assert json.dumps(store.values).count(str(found)) >= 1


def test_an_inline_message_ending_like_a_file_name_is_rendered_inline(template_dir: pathlib.Path) -> None:
    operator = _operator(template_dir, order="E4A269FC", message="Your report is ready, see summary.md")
    operator.resolve_template_files()
    operator.render_template_fields({"params": {}, "task": operator})  # type: ignore[arg-type]
    assert operator.message == "Your report is ready, see summary.md"


def test_order_and_message_stay_text_on_a_native_dag(template_dir: pathlib.Path) -> None:
    from airflow.sdk import DAG

    with DAG(
        "unit_native",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        render_template_as_native_obj=True,
        params={"order": "12345E67", "total": 42, "user": 7},
    ) as dag:
        operator = CreateOrderMessageOperator(
            task_id="post", order="{{ params.order }}", message="{{ params.total }}", user_id="{{ params.user }}"
        )
    context = {"params": dag.params, "task": operator}
    operator.render_template_fields(context)  # type: ignore[arg-type]
    assert operator.order == "12345E67"
    assert operator.message == "42"
    assert operator.user_id == 7


def test_notifier_renders_order_and_message_as_text_on_a_native_dag() -> None:
    from airflow.sdk import DAG

    from airflow_provider_spp.notifications.spp import SppOrderMessageNotifier

    with DAG(
        "unit_native_notifier",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        render_template_as_native_obj=True,
        params={"order": "12345E67", "total": 42, "user": 7},
    ) as dag:
        pass
    notifier = SppOrderMessageNotifier(
        order="{{ params.order }}", message="{{ params.total }}", user_id="{{ params.user }}", staff_only="{{ 1 }}"
    )
    notifier.render_template_fields({"params": dag.params, "dag": dag})  # type: ignore[arg-type]
    assert (notifier.order, notifier.message) == ("12345E67", "42")
    assert (notifier.user_id, notifier.staff_only) == (7, 1)


def test_attachment_names_found_on_the_template_path_are_not_read(template_dir: pathlib.Path) -> None:
    operator = _operator(
        template_dir, order="E4A269FC", message="followup.md.j2", attachments=["report.md", ("report.md", b"x")]
    )
    operator.render_template_fields({"params": {"client": "Dana"}, "task": operator})  # type: ignore[arg-type]
    assert operator.message == "Report for Dana on order E4A269FC"
    assert operator.attachments == ["report.md", ("report.md", b"x")]


def test_a_native_environment_without_a_dag_still_renders_order_as_text() -> None:
    from jinja2.nativetypes import NativeEnvironment

    operator = CreateOrderMessageOperator(
        task_id="no_dag", order="{{ number }}", message="{{ 1 + 1 }}", user_id="{{ 3 }}"
    )
    operator.render_template_fields({"number": "12345E67"}, jinja_env=NativeEnvironment())  # type: ignore[arg-type]
    assert (operator.order, operator.message, operator.user_id) == ("12345E67", "2", 3)
