"""Benchmark (benchmarks/mapped_tasks.py): one mapped CreateOrderMessageOperator per order in ``params.orders``."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator

TEXT = "Hi! To keep your order moving we still need your login details. You can reply to this message with them."

with DAG(
    dag_id="spp_e2e_bench_ours",
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

    CreateOrderMessageOperator.partial(task_id="post", message=TEXT).expand(order=orders())
