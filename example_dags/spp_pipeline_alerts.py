"""Staff-only notes: a pipeline lands an asset, and its failure is reported on the order too.

A successful load posts an internal note (``staff_only=True``) with the output attached; if any task
fails, ``SppOrderMessageNotifier`` posts a staff-only alert to the same order.
"""

from __future__ import annotations

import json
import pathlib
import tempfile

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_spp.notifications.spp import SppOrderMessageNotifier
from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator

ORDER = "B7C3D2A1"

with DAG(
    dag_id="spp_pipeline_alerts",
    description="Internal notes on an SPP order as a data pipeline runs",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    on_failure_callback=SppOrderMessageNotifier(
        order=ORDER,
        message="Pipeline {{ dag.dag_id }} failed for {{ ds }} (run {{ run_id }}). Investigating.",
    ),
    tags=["spp", "example"],
) as dag:

    @task
    def load_keyword_rankings(ds: str | None = None) -> str:
        """Stand-in for a real load: writes the day's rankings as JSON and returns the file."""
        path = pathlib.Path(tempfile.gettempdir()) / f"rankings-{ds}.json"
        path.write_text(json.dumps({"date": ds, "keywords": {"seo agency": 3, "local seo": 7}}))
        return str(path)

    rankings = load_keyword_rankings()

    CreateOrderMessageOperator(
        task_id="note_rankings_landed",
        order=ORDER,
        message="Rankings for {{ ds }} landed; file attached. Internal only.",
        staff_only=True,
        attachments=[rankings],
    )
