"""Deadline alert: if the morning report is not done 3 hours after its run was queued (9:00), tell the team.

The DAG runs at 6:00 UTC. Its ``DeadlineAlert`` fires when the run is still going 3 hours after it
was queued; Airflow then runs ``SppOrderMessageNotifier`` on the triggerer (``AsyncCallback``: the
notifier's ``async_notify``), which posts a staff-only note to the client's order. The callback's
context carries the run (``dag_run``: the REST API's DAG run, e.g. ``dag_run.dag_run_id``) and the ``deadline``.

``SPP_EXAMPLE_DEADLINE_SECONDS`` and ``SPP_EXAMPLE_REPORT_SECONDS`` (defaults 3 hours and 1 second)
let a demo or test make the report late.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_spp.notifications.spp import SppOrderMessageNotifier

# [START howto_notifier_spp_deadline_imports]
try:  # Airflow 3.2+ exports the deadline names from airflow.sdk; 3.1 keeps them in its definitions
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference
except ImportError:
    from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference
# [END howto_notifier_spp_deadline_imports]

ORDER = "B7C3D2A1"
DEADLINE = timedelta(seconds=float(os.environ.get("SPP_EXAMPLE_DEADLINE_SECONDS", 3 * 3600)))

with DAG(
    dag_id="spp_deadline_alert",
    description="Tell the team on the SPP order when the morning report misses its deadline",
    schedule="0 6 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # [START howto_notifier_spp_deadline]
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=DEADLINE,
        callback=AsyncCallback(
            SppOrderMessageNotifier,
            kwargs={
                "order": ORDER,
                "message": "The morning report ({{ dag_run.dag_id }}, run {{ dag_run.dag_run_id }}) missed its "
                "deadline of {{ deadline.deadline_time }}. Someone please check the pipeline.",
                "staff_only": True,
            },
        ),
    ),
    # [END howto_notifier_spp_deadline]
    tags=["spp", "example"],
):

    @task
    def build_report() -> str:
        """Stand-in for the report build (slow on purpose when SPP_EXAMPLE_REPORT_SECONDS says so)."""
        time.sleep(float(os.environ.get("SPP_EXAMPLE_REPORT_SECONDS", 1)))
        return "report.pdf"

    build_report()
