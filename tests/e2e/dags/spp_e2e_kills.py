"""E2E check DAGs: real posts whose first try dies around the POST; the retries must leave exactly one message.

``spp_e2e_worker_kill``: scripts/e2e.py SIGKILLs the Celery worker running the task while the sandbox
holds the POST (fault ``slow_commit``: stored only after a delay). The scheduler's heartbeat timeout
fails the try and the retry runs on the other worker.

``spp_e2e_task_kill``: the task process kills itself on its first try, at three points around the POST.
"""

from __future__ import annotations

import os
import signal
import threading
from datetime import timedelta
from typing import Any
from unittest import mock

import pendulum
from airflow.sdk import DAG

from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator

with DAG(
    dag_id="spp_e2e_worker_kill",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["spp", "e2e"],
):
    CreateOrderMessageOperator(
        task_id="post_while_worker_dies",
        order="9F8E7D6C",
        message="E2E worker kill, run {{ run_id }}",
        retries=2,
        retry_delay=timedelta(seconds=3),
    )


#: Which order each kill point posts to; the E2E run makes the sandbox hold POSTs to B7C3D2A1 (fault ``slow``).
TASK_KILL_ORDERS = {"after_execute": "E4A269FC", "after_post": "00C0FFEE", "in_flight": "B7C3D2A1"}
TASKS_PER_KILL_POINT = 2


class KilledOnFirstTry(CreateOrderMessageOperator):
    """The real operator, whose first try SIGKILLs its own process at ``kill_point``.

    ``after_execute``: execute() finished (message ID recorded by the operator), the return value never
    reaches XCom. ``after_post``: SPP answered 201, the operator never saw it. ``in_flight``: 0.3 s into
    a POST that the sandbox stores at once but answers late.
    """

    def __init__(self, *, kill_point: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kill_point = kill_point

    def execute(self, context: Any) -> int:
        if context["ti"].try_number > 1:
            return super().execute(context)
        if self.kill_point == "after_execute":
            super().execute(context)
            os.kill(os.getpid(), signal.SIGKILL)
        if self.kill_point == "in_flight":
            import requests.adapters

            real_send = requests.adapters.HTTPAdapter.send

            def send_then_die(adapter: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
                if request.method == "POST":  # the request is on its way: die while SPP holds the answer
                    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGKILL)).start()
                return real_send(adapter, request, *args, **kwargs)

            with mock.patch.object(requests.adapters.HTTPAdapter, "send", send_then_die):
                return super().execute(context)
        real_post = SppHook.create_order_message

        def post_then_die(hook: SppHook, *args: Any, **kwargs: Any) -> Any:
            real_post(hook, *args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)  # SPP answered 201; the operator never hears of it

        with mock.patch.object(SppHook, "create_order_message", post_then_die):
            return super().execute(context)


with DAG(
    dag_id="spp_e2e_task_kill",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=3)},
    tags=["spp", "e2e"],
):
    for kill_point, order in TASK_KILL_ORDERS.items():
        for i in range(TASKS_PER_KILL_POINT):
            KilledOnFirstTry(
                task_id=f"{kill_point}_{i}",
                kill_point=kill_point,
                order=order,
                message=f"E2E task kill {kill_point} {i}, run {{{{ run_id }}}}",
            )
