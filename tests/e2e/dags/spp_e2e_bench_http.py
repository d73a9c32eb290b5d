"""Benchmark (benchmarks/mapped_tasks.py): HttpOperator posting the same body, one mapped task per order.

Its ``spp_bench_http`` connection (an ``http`` one, created by the benchmark) carries the token as an
``Authorization`` header in its extra.
"""

from __future__ import annotations

import json

import pendulum
from airflow.providers.http.operators.http import HttpOperator
from airflow.sdk import DAG, task

TEXT = "Hi! To keep your order moving we still need your login details. You can reply to this message with them."

with DAG(
    dag_id="spp_e2e_bench_http",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params={"orders": []},
    max_active_tasks=64,
    tags=["spp", "e2e", "benchmark"],
) as dag:

    @task
    def endpoints(params: dict | None = None) -> list[str]:
        """One endpoint per order to post to, one mapped task instance each."""
        return [f"api/order_messages/{order}" for order in (params or {}).get("orders") or []]

    HttpOperator.partial(
        task_id="post",
        http_conn_id="spp_bench_http",
        method="POST",
        data=json.dumps({"message": TEXT}),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    ).expand(endpoint=endpoints())
