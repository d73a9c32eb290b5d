"""Daily reminders: one message per order still waiting on the client, posted one of two ways.

``way="mapped"`` (the default): a mapped ``CreateOrderMessageOperator``, one task instance per order,
each in the UI with its own log and its own retries. ``way="bulk"``: one
``CreateOrderMessagesInBulkOperator`` task posts them all, a few at once (thousands in seconds), each
order still exactly once across retries.

The status to remind is a DAG param. Wayfront statuses are integer codes that each workspace defines
("Status is a number, not a label"): find yours by reading an order whose status you know, e.g.
``SppHook().get_order("E4A269FC").status``. Older workspaces send labels ("Working"); either works here.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import islice

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.operators.bulk_order_messages import CreateOrderMessagesInBulkOperator
from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator

with DAG(
    dag_id="spp_bulk_reminders",
    description="Ask clients of orders that wait on them for what is missing",
    schedule="0 8 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        # 2 is "Working" in the sandbox's status map: set the code your workspace uses
        "status": Param(2, type=["integer", "string"], description="Status code (or label) of orders to remind"),
        "max_orders": 50,
        "way": Param(
            "mapped",
            enum=["mapped", "bulk"],
            description="mapped: one task per order (each in the UI, retried on its own); bulk: one task, "
            "thousands of orders in seconds",
        ),
    },
    tags=["spp", "example"],
) as dag:

    @task
    def orders_waiting_on_client(params: dict | None = None) -> list[str]:
        """Order numbers in the status (a code or a label, sent as given), oldest first, ``max_orders`` at most."""
        params = params or {}
        limit = int(params.get("max_orders") or 50)
        with SppHook() as hook:
            # oldest first, and no page read beyond the last order needed
            orders = islice(hook.list_orders(status=params.get("status"), sort="id:asc", per_page=100), limit)
            return [order.number or str(order.id) for order in orders]

    @task.branch
    def choose_way(params: dict | None = None) -> str:
        """The mapped task or the bulk task, as the ``way`` param says."""
        return "remind_in_bulk" if (params or {}).get("way") == "bulk" else "remind_client"

    waiting = orders_waiting_on_client()

    # [START howto_operator_spp_mapped]
    mapped = CreateOrderMessageOperator.partial(
        task_id="remind_client",
        message=(
            "Hi! To keep order {{ task.order }} moving we still need your login details. "
            "You can reply to this message with them."
        ),
        retries=2,
    ).expand(order=waiting)
    # [END howto_operator_spp_mapped]

    # [START howto_operator_spp_bulk]
    bulk = CreateOrderMessagesInBulkOperator(
        task_id="remind_in_bulk",
        orders=waiting,  # order numbers, or {"order": ..., ...} items (the template's `item`)
        message=(
            "Hi! To keep order {{ order }} moving we still need your login details. "
            "You can reply to this message with them."
        ),
        concurrency=4,  # POSTs in flight at once (at most 8); a 429 slows every post down
        retries=2,
        retry_delay=timedelta(seconds=20),  # a retry posts only to the orders that have no message yet
    )
    # [END howto_operator_spp_bulk]

    choose_way() >> [mapped, bulk]
