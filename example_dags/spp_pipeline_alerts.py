"""Staff-only notes: a pipeline lands an asset, and its failure is reported on the order too.

A successful load posts an internal note (``staff_only=True``) with the output attached; if the run
fails, the DAG's ``on_failure_callback`` (``SppOrderMessageNotifier``, run by the DAG processor) posts a
staff-only alert to the same order. Trigger with ``{"simulate_failure": true}`` to see the alert.

The file goes from the load to the note through object storage (the ``spp_example_storage`` Variable,
as in ``spp_order_followup``), so the two tasks may run on different workers.
"""

from __future__ import annotations

import json
import tempfile

import pendulum
from airflow.sdk import DAG, ObjectStoragePath, Variable, task

from airflow_provider_spp.notifications.spp import SppOrderMessageNotifier
from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator

ORDER = "B7C3D2A1"


def storage_base() -> ObjectStoragePath:
    """Where example tasks hand files to each other: the ``spp_example_storage`` Variable, else a temp folder."""
    base = Variable.get("spp_example_storage", default=None) or f"file://{tempfile.gettempdir()}/spp-example-storage"
    return ObjectStoragePath(base)


with DAG(
    dag_id="spp_pipeline_alerts",
    description="Internal notes on an SPP order as a data pipeline runs",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"simulate_failure": False},
    # [START howto_notifier_spp_on_failure]
    on_failure_callback=SppOrderMessageNotifier(
        order=ORDER,
        message="Pipeline {{ dag.dag_id }} failed for {{ ds }} (run {{ run_id }}). Investigating.",
    ),
    # [END howto_notifier_spp_on_failure]
    tags=["spp", "example"],
) as dag:

    @task
    def load_keyword_rankings(ds: str | None = None, run_id: str | None = None, params: dict | None = None) -> str:
        """Stand-in for a real load: writes the day's rankings as JSON to shared storage and returns its URL."""
        if (params or {}).get("simulate_failure"):
            raise RuntimeError("The rankings API returned no data (simulate_failure is set)")
        path = storage_base() / "spp_pipeline_alerts" / str(run_id).replace(":", "_") / f"rankings-{ds}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"date": ds, "keywords": {"seo agency": 3, "local seo": 7}}))
        return str(path)

    rankings = load_keyword_rankings()

    # [START howto_operator_spp_staff_only]
    CreateOrderMessageOperator(
        task_id="note_rankings_landed",
        order=ORDER,
        message="Rankings for {{ ds }} landed; file attached. Internal only.",
        staff_only=True,
        attachments=[rankings],
    )
    # [END howto_operator_spp_staff_only]
