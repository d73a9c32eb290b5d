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


def test_page_size_is_checked_before_any_request(spp_sandbox, spp_sandbox_conn) -> None:
    from airflow_provider_spp.exceptions import SppInputError
    from airflow_provider_spp.hooks.spp import SppHook

    for bad in (0, 101, True, "10"):
        with pytest.raises(SppInputError, match="per_page must be an integer from 1 to 100"):
            next(SppHook().list_order_messages("E4A269FC", per_page=bad))  # type: ignore[arg-type]
    assert spp_sandbox.requests() == []


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


def test_the_operator_and_concealed_bytes_are_public_names() -> None:
    import airflow_provider_spp.operators as operators
    import airflow_provider_spp.operators.order_messages as order_messages
    from airflow_provider_spp._internal.attachments import ConcealedBytes as InternalConcealedBytes
    from airflow_provider_spp.operators import ConcealedBytes
    from airflow_provider_spp.operators import CreateOrderMessageOperator as FromPackage
    from airflow_provider_spp.operators.order_messages import ConcealedBytes as FromModule

    assert ConcealedBytes is FromModule is InternalConcealedBytes
    assert FromPackage is CreateOrderMessageOperator
    from airflow_provider_spp.operators import CreateOrderMessagesInBulkOperator
    from airflow_provider_spp.operators.bulk_order_messages import CreateOrderMessagesInBulkOperator as Bulk

    assert CreateOrderMessagesInBulkOperator is Bulk
    assert sorted(order_messages.__all__) == ["ConcealedBytes", "CreateOrderMessageOperator"]
    assert sorted(operators.__all__) == [*order_messages.__all__, "CreateOrderMessagesInBulkOperator"]
    with pytest.raises(AttributeError):
        operators.PostLedger  # noqa: B018
    operator = CreateOrderMessageOperator(
        task_id="public", order="E4A269FC", message="Hi", attachments=[("client.txt", ConcealedBytes(b"secret"))]
    )
    assert str(operator.attachments[0][1]) == "<6 bytes in memory>"
