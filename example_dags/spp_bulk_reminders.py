"""Daily reminders: one message per order still waiting on the client, posted by a mapped task."""

from __future__ import annotations

from itertools import islice

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator

with DAG(
    dag_id="spp_bulk_reminders",
    description="Ask clients of orders that wait on them for what is missing",
    schedule="0 8 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"status": "Pending", "max_orders": 50},
    tags=["spp", "example"],
) as dag:

    @task
    def orders_waiting_on_client(params: dict | None = None) -> list[str]:
        """Order numbers in the waiting status, oldest first (at most ``max_orders`` a day)."""
        params = params or {}
        limit = int(params.get("max_orders") or 50)
        with SppHook() as hook:
            # oldest first, and no page read beyond the last order needed
            orders = islice(hook.list_orders(status=params.get("status"), sort="id:asc", per_page=100), limit)
            return [order.number or str(order.id) for order in orders]

    # [START howto_operator_spp_mapped]
    CreateOrderMessageOperator.partial(
        task_id="remind_client",
        message=(
            "Hi! To keep order {{ task.order }} moving we still need your login details. "
            "You can reply to this message with them."
        ),
        retries=2,
    ).expand(order=orders_waiting_on_client())
    # [END howto_operator_spp_mapped]
