"""DAGs the DAG tests run with dag.test(); each exercises one behaviour of the operator in real Airflow."""

from __future__ import annotations

import os
import pathlib
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_spp.notifications.spp import SppOrderMessageNotifier
from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
ATTACHMENT_DIR = pathlib.Path(os.environ.get("SPP_TEST_ATTACHMENT_DIR", "/nonexistent"))
NOT_A_TEMPLATE = "# Notes for {{ params.client }}\n{% raw %}kept as-is{% endraw %}\n"


class CrashAfterPostOperator(CreateOrderMessageOperator):
    """Posts, then fails its first try as a killed worker would: after SPP created the message."""

    def execute(self, context: Any) -> int:
        message_id = super().execute(context)
        if context["ti"].try_number == 1:
            raise RuntimeError("worker lost after the POST succeeded")
        return message_id


with DAG("spp_test_templating", schedule=None, start_date=START, params={"client": "Dana", "order": "E4A269FC"}):
    CreateOrderMessageOperator(
        task_id="post_file_template",
        order="{{ params.order }}",
        message="templates/ready.md.j2",
        user_id="{{ 1 + 1 }}",
        staff_only="{{ params.client == 'nobody' }}",
        attachments=[str(ATTACHMENT_DIR / "notes.md"), str(ATTACHMENT_DIR / "chart.png")],
    )
    CreateOrderMessageOperator(
        task_id="post_json_user_id",
        order="B7C3D2A1",
        message="Inline template for {{ params.client }}",
        user_id="{{ 2 }}",
    )

with DAG(
    "spp_test_native",
    schedule=None,
    start_date=START,
    render_template_as_native_obj=True,
    params={"user": 2, "internal": True},
):
    CreateOrderMessageOperator(
        task_id="post_native",
        order=1003,
        message="Native rendering keeps {{ 'types' }}",
        user_id="{{ params.user }}",
        staff_only="{{ params.internal }}",
    )

with DAG(
    "spp_test_native_mapped",
    schedule=None,
    start_date=START,
    render_template_as_native_obj=True,
    params={"order": "12345E67", "user": 2},
):
    # Mapped tasks are rendered through the unmapped task, not through render_template_fields.
    CreateOrderMessageOperator.partial(
        task_id="remind",
        message="Order {{ task.order }}: notes attached",
        user_id="{{ params.user }}",
        attachments=[str(ATTACHMENT_DIR / "notes.md")],
    ).expand(order=["{{ params.order }}", "E4A269FC"])

with DAG(
    "spp_test_native_notifier",
    schedule=None,
    start_date=START,
    render_template_as_native_obj=True,
    params={"order": "12345E67", "total": 42},
):

    @task(
        on_failure_callback=SppOrderMessageNotifier(
            order="{{ params.order }}", message="{{ params.total }}", user_id="{{ params.total - 40 }}"
        )
    )
    def fail_natively() -> None:
        raise RuntimeError("nothing to load")

    fail_natively()

with DAG("spp_test_mapped", schedule=None, start_date=START):

    @task
    def orders() -> list[str]:
        return ["E4A269FC", "B7C3D2A1", "1003"]

    posted = CreateOrderMessageOperator.partial(task_id="remind", message="Reminder for order {{ task.order }}").expand(
        order=orders()
    )

    @task
    def collect(ids: list[int]) -> list[int]:
        return sorted(ids)

    collect(posted.output)

with DAG("spp_test_same_text_siblings", schedule=None, start_date=START):
    # Two map indexes post the same text to the same order (an order listed twice): two messages are wanted.
    CreateOrderMessageOperator.partial(
        task_id="notify", message="Your files are ready", retries=2, retry_delay=timedelta(0), lost_answer_wait=0.5
    ).expand(order=["E4A269FC", "E4A269FC"])

with DAG("spp_test_unknown_order", schedule=None, start_date=START):
    CreateOrderMessageOperator(
        task_id="post", order="NOPE0000", message="Will not arrive", retries=3, retry_delay=timedelta(0)
    )

with DAG("spp_test_retry_dedup", schedule=None, start_date=START):
    CreateOrderMessageOperator(
        task_id="post",
        order="E4A269FC",
        message="Exactly once, please",
        retries=3,
        retry_delay=timedelta(0),
        lost_answer_wait=2,
    )

with DAG("spp_test_retry_no_dedup", schedule=None, start_date=START):
    CreateOrderMessageOperator(
        task_id="post",
        order="E4A269FC",
        message="Posted on every try",
        deduplicate=False,
        retries=3,
        retry_delay=timedelta(0),
    )

with DAG("spp_test_crash_after_post", schedule=None, start_date=START):
    CrashAfterPostOperator(
        task_id="post", order="9F8E7D6C", message="Posted before the crash", retries=2, retry_delay=timedelta(0)
    )

with DAG("spp_test_canary", schedule=None, start_date=START, default_args={"spp_conn_id": "spp_canary"}):
    CreateOrderMessageOperator(task_id="ok", order="E4A269FC", message="Canary run: all good")
    CreateOrderMessageOperator(task_id="not_found", order="NOPE0000", message="Canary run: 404")
    CreateOrderMessageOperator(task_id="invalid", order="E4A269FC", message="Canary run: 422", user_id=99999)
    CreateOrderMessageOperator(
        task_id="rejected", order="E4A269FC", message="Canary run: 401", spp_conn_id="spp_canary_rejected"
    )
    CreateOrderMessageOperator(task_id="rate_limited", order="B7C3D2A1", message="Canary run: 429")
    CreateOrderMessageOperator(task_id="server_error", order="9F8E7D6C", message="Canary run: 500")
    CreateOrderMessageOperator(task_id="dropped", order="1004", message="Canary run: dropped")
    CreateOrderMessageOperator(task_id="bad_body", order="1003", message="Canary run: 201 without id")
    CreateOrderMessageOperator(
        task_id="bad_conn", order="E4A269FC", message="Canary run: insecure", spp_conn_id="spp_canary_insecure"
    )

with DAG("spp_test_notifier", schedule=None, start_date=START):

    @task(
        on_failure_callback=SppOrderMessageNotifier(
            order="B7C3D2A1",
            message="Task {{ ti.task_id }} failed in {{ dag.dag_id }}: {{ exception | default('(no exception)') }}",
        )
    )
    def load_rankings() -> None:
        raise RuntimeError("upstream API returned nothing")

    load_rankings()

with DAG("spp_test_missing_attachment", schedule=None, start_date=START):
    CreateOrderMessageOperator(
        task_id="post",
        order="E4A269FC",
        message="The report is attached",
        attachments=["/nonexistent/report-{{ ds }}.pdf"],
        retries=3,
        retry_delay=timedelta(0),
    )

with DAG("spp_test_object_storage_attachment", schedule=None, start_date=START):
    CreateOrderMessageOperator(
        task_id="post",
        order="E4A269FC",
        message="The report is attached",
        attachments=["flakyfs://bucket/reports/{{ params.report }}"],
        params={"report": "report.csv"},
        retries=2,
        retry_delay=timedelta(0),
    )

#: Client data that must reach SPP but never Airflow's rendered fields, serialized DAG or UI.
IN_MEMORY_CLIENT_DATA = b"Client: Dana Kim, IBAN DE89 3704 0044 0532 0130 00\n"

with DAG("spp_test_in_memory_attachment", schedule=None, start_date=START, params={"name": "client"}):
    CreateOrderMessageOperator(
        task_id="post",
        order="E4A269FC",
        message="Details attached",
        attachments=[("{{ params.name }}.txt", IN_MEMORY_CLIENT_DATA), str(ATTACHMENT_DIR / "notes.md")],
    )

with DAG("spp_test_retry_deferred", schedule=None, start_date=START):
    CreateOrderMessageOperator(
        task_id="post",
        order="E4A269FC",
        message="Waited for on the triggerer",
        retries=3,
        retry_delay=timedelta(0),
        lost_answer_wait=2.5,
        deferrable=True,
    )
