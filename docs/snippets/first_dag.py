"""Getting started: the smallest useful DAG, a templated message on an order (run by tests/docs)."""

from __future__ import annotations

# [START first_dag]
import pendulum
from airflow.sdk import DAG

from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator

with DAG(
    dag_id="spp_first_dag",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    CreateOrderMessageOperator(
        task_id="say_hello",
        spp_conn_id="spp_default",  # Admin > Connections, type "Wayfront (formerly Service Provider Pro, SPP)"
        order="E4A269FC",  # an order ID (1001) or its number
        message="Hello from Airflow! The run for {{ ds }} finished.",
    )
# [END first_dag]
