"""The operator guide's every-argument example: a DAG that tests/docs runs against the sandbox."""

from __future__ import annotations

import tempfile
from pathlib import Path

# [START howto_operator_spp_every_argument]
import pendulum
from airflow.sdk import DAG, task

from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator

with DAG(
    dag_id="spp_operator_arguments",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"order": "E4A269FC"},
) as dag:

    @task(multiple_outputs=True)
    def build_files() -> dict[str, str]:
        """A report as a local file and a chart as a file:// URL (s3:// and gs:// work the same way)."""
        folder = Path(tempfile.mkdtemp(prefix="spp-report-"))
        (folder / "report.csv").write_text("metric,value\nsessions,18234\n")
        (folder / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\n")
        return {"report": str(folder / "report.csv"), "chart": (folder / "chart.png").as_uri()}

    files = build_files()
    post = CreateOrderMessageOperator(
        task_id="post_followup",
        order="{{ params.order }}",  # order ID (1001) or order number ("E4A269FC")
        message="Your report for {{ ds }} is attached.",  # inline Jinja, or a .txt/.md/.j2/.html template file
        attachments=[files["report"], files["chart"], ("notes.txt", b"Numbers are preliminary.")],
        staff_only=False,  # True: an internal note the client never sees
        user_id=None,  # post as this user; default: the token's user
        spp_conn_id="spp_default",
        api_version=None,  # overrides the connection's
        deduplicate=True,  # default: a retried task never posts twice
        lost_answer_wait=30,  # seconds the workspace gets to finish a request whose answer was lost
        deferrable=False,  # True: spend that wait on the triggerer, not in a worker slot
    )

    @task
    def downstream(message_id: int) -> int:
        """Gets the new message's ID."""
        return message_id

    downstream(post.output)  # XCom return_value: the new message ID, an int
# [END howto_operator_spp_every_argument]
