"""Operator templating without a run: only ``message`` is ever read as a template file."""

from __future__ import annotations

import pathlib

import pendulum
import pytest

from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator


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


class _RecordingStore:
    """Stands in for Airflow's task_state_store, keeping values in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def get(self, key: str, default: object = None) -> object:
        return self.values.get(key, default)

    def set(self, key: str, value: object) -> None:
        self.values[key] = value


def _context(try_number: int, run_started: object, store: object = None) -> dict[str, object]:
    from types import SimpleNamespace

    context: dict[str, object] = {
        "ti": SimpleNamespace(try_number=try_number, start_date=None),
        "dag_run": SimpleNamespace(start_date=run_started),
    }
    if store is not None:
        context["task_state_store"] = store
    return context


@pytest.mark.integration
def test_without_a_state_store_a_retry_looks_back_to_the_run_start(spp_sandbox, spp_sandbox_conn) -> None:
    from airflow_provider_spp.hooks.spp import SppHook

    run_started = pendulum.now("UTC").subtract(minutes=1)
    earlier = SppHook().create_order_message("E4A269FC", "Sent by try 1")
    operator = CreateOrderMessageOperator(task_id="post", order="E4A269FC", message="Sent by try 1")
    assert operator.execute(_context(2, run_started)) == earlier.id  # type: ignore[arg-type]
    assert [r["method"] for r in spp_sandbox.requests()] == ["POST", "GET"]
    assert len(spp_sandbox.messages()) == 1
    assert operator.execute(_context(1, run_started)) != earlier.id  # type: ignore[arg-type]
    assert len(spp_sandbox.messages()) == 2


@pytest.mark.integration
def test_the_state_store_records_the_first_try_and_the_message_id(spp_sandbox, spp_sandbox_conn) -> None:
    from airflow_provider_spp.idempotency import LEDGER_KEY

    store = _RecordingStore()
    operator = CreateOrderMessageOperator(task_id="post", order="B7C3D2A1", message="Recorded")
    message_id = operator.execute(_context(1, None, store))  # type: ignore[arg-type]
    record = store.values[LEDGER_KEY]
    assert isinstance(record, dict)
    assert (record["order"], record["message_id"]) == ("B7C3D2A1", message_id)
    assert pendulum.parse(record["first_attempt_at"]) <= pendulum.now("UTC")  # type: ignore[operator]
    assert operator.execute(_context(2, None, store)) == message_id  # type: ignore[arg-type]
    assert [r["method"] for r in spp_sandbox.requests()] == ["POST"]


def test_page_size_is_checked_before_any_request(spp_sandbox, spp_sandbox_conn) -> None:
    from airflow_provider_spp.exceptions import SppInputError
    from airflow_provider_spp.hooks.spp import SppHook

    for bad in (0, 101, True, "10"):
        with pytest.raises(SppInputError, match="per_page must be an integer from 1 to 100"):
            next(SppHook().list_order_messages("E4A269FC", per_page=bad))  # type: ignore[arg-type]
    assert spp_sandbox.requests() == []
