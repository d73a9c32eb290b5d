"""Benchmark (benchmarks/mapped_tasks.py): CreateOrderMessageOperator with ``deduplicate=False``, per order.

The same operator as ``spp_e2e_bench_ours`` without its exactly-once bookkeeping (no record in the task
state store, no claim Variable): beside it, it shows what that bookkeeping costs and what the rest does.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator

TEXT = "Hi! To keep your order moving we still need your login details. You can reply to this message with them."

with DAG(
    dag_id="spp_e2e_bench_bare",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params={"orders": []},
    max_active_tasks=64,
    tags=["spp", "e2e", "benchmark"],
) as dag:

    @task
    def orders(params: dict | None = None) -> list[str]:
        """The orders to post to, one mapped task instance each."""
        return [str(order) for order in (params or {}).get("orders") or []]

    CreateOrderMessageOperator.partial(task_id="post", message=TEXT, deduplicate=False).expand(order=orders())
