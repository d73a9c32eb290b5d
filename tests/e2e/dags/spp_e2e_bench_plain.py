"""Benchmark (benchmarks/mapped_tasks.py): the hand-rolled post, a mapped ``@task`` with ``requests``, per order."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

TEXT = "Hi! To keep your order moving we still need your login details. You can reply to this message with them."

with DAG(
    dag_id="spp_e2e_bench_plain",
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

    @task
    def post(order: str) -> int:
        """What a user writes by hand: read the connection, POST the same JSON body, return the message ID."""
        import requests
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection("spp_default")
        response = requests.post(
            f"{conn.host.rstrip('/')}/api/order_messages/{order}",
            json={"message": TEXT},
            headers={"Authorization": f"Bearer {conn.password}", "Accept": "application/json"},
            timeout=30,
        )
        response.raise_for_status()
        message_id = int(response.json()["id"])
        print(f"Message {message_id} is on SPP order {order}")
        return message_id

    post.expand(order=orders())
