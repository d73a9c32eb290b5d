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
