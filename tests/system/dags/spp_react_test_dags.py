"""DAGs for the sensor tests: SppOrderMessageSensor poking in the worker and deferred to the triggerer."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_spp.sensors.order_messages import SppOrderMessageSensor

for dag_id, deferrable in (("spp_test_wait_poke", False), ("spp_test_wait_deferred", True)):
    with DAG(dag_id=dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
        SppOrderMessageSensor(
            task_id="wait",
            order="{{ params.order }}",
            from_client=True,
            contains="approved",
            return_text=True,
            deferrable=deferrable,
            mode="poke",
            poke_interval=0.2,
            timeout=30,
            params={"order": "E4A269FC"},
        )
