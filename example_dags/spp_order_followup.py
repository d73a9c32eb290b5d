"""Weekly order follow-up: build a report, post it to the client's SPP order, hand the message ID on.

The message is rendered from ``templates/followup.md.j2`` with the task context, the report produced
upstream is attached (streamed, never loaded whole), and the downstream task receives the created
message's ID through XCom. Retries are safe: a retry never posts the message twice.
"""

from __future__ import annotations

import csv
import pathlib
import tempfile
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator

with DAG(
    dag_id="spp_order_followup",
    description="Post the weekly report to the client's SPP order",
    schedule="0 9 * * MON",
    start_date=pendulum.datetime(2026, 1, 5, tz="UTC"),
    catchup=False,
    params={
        "order": "E4A269FC",
        "client_name": "Dana",
        "agency": "Northwind Digital",
        "highlights": ["Organic traffic up 12%", "Two new backlinks from industry press"],
    },
    default_args={"retries": 3, "retry_delay": timedelta(minutes=2)},
    tags=["spp", "example"],
) as dag:

    @task
    def build_report(ds: str | None = None) -> str:
        """Write this week's figures to a CSV file and return its path."""
        folder = pathlib.Path(tempfile.gettempdir()) / "spp-example-reports"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"weekly-report-{ds}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["metric", "value"])
            writer.writerows([("sessions", 18234), ("conversions", 412), ("conversion_rate", "2.26%")])
        return str(path)

    report_path = build_report()

    post_followup = CreateOrderMessageOperator(
        task_id="post_followup",
        order="{{ params.order }}",
        message="templates/followup.md.j2",
        attachments=[report_path],
    )

    @task
    def record_message_id(message_id: int) -> int:
        """Downstream use of the message ID, e.g. to store it beside the report."""
        print(f"SPP message ID for this week's follow-up: {message_id}")
        return message_id

    record_message_id(post_followup.output)
