"""Weekly order follow-up: build a report, post it to the client's SPP order, hand the message ID on.

The message is rendered from ``templates/followup.md.j2`` with the task context, the report produced
upstream is attached (streamed, never loaded whole), and the downstream task receives the created
message's ID through XCom. Retries are safe: a retry never posts the message twice.

The report goes from one task to the next through object storage, not a local path: with Celery or
Kubernetes the two tasks may run on different machines. The base is the Airflow Variable
``spp_example_storage`` (or ``AIRFLOW_VAR_SPP_EXAMPLE_STORAGE``), e.g. ``s3://my-bucket/spp`` with an
``aws_default`` connection, or ``file:///shared/spp`` on a volume every worker mounts; without it, a
folder in this machine's temp directory (fine for one machine).
"""

from __future__ import annotations

import csv
import tempfile
from datetime import timedelta

# [START example_spp_order_followup]
import pendulum
from airflow.sdk import DAG, ObjectStoragePath, Variable, task

from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator


def storage_base() -> ObjectStoragePath:
    """Where example tasks hand files to each other: the ``spp_example_storage`` Variable, else a temp folder."""
    base = Variable.get("spp_example_storage", default=None) or f"file://{tempfile.gettempdir()}/spp-example-storage"
    return ObjectStoragePath(base)


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
    def build_report(ds: str | None = None, run_id: str | None = None) -> str:
        """Write this week's figures to a CSV file in shared storage and return its URL."""
        path = storage_base() / "spp_order_followup" / str(run_id).replace(":", "_") / f"weekly-report-{ds}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["metric", "value"])
            writer.writerows([("sessions", 18234), ("conversions", 412), ("conversion_rate", "2.26%")])
        return str(path)

    report_path = build_report()

    # [START howto_operator_spp_create_order_message]
    post_followup = CreateOrderMessageOperator(
        task_id="post_followup",
        order="{{ params.order }}",
        message="templates/followup.md.j2",
        attachments=[report_path],
    )
    # [END howto_operator_spp_create_order_message]

    @task
    def record_message_id(message_id: int) -> int:
        """Downstream use of the message ID, e.g. to store it beside the report."""
        print(f"SPP message ID for this week's follow-up: {message_id}")
        return message_id

    record_message_id(post_followup.output)
# [END example_spp_order_followup]
