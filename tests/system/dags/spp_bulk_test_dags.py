"""DAGs for the bulk operator's DAG tests (dag.test()): retries after lost answers and after a simulated kill."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any
from unittest import mock

import pendulum
from airflow.sdk import DAG

from airflow_provider_spp._internal.bulk_ledger import BulkLedger
from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.operators.bulk_order_messages import CreateOrderMessagesInBulkOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
#: The four seeded orders and eight generated ones (the tests add B0000001-B0000008 first).
BULK_ORDERS = ["E4A269FC", "B7C3D2A1", "9F8E7D6C", "00C0FFEE", *(f"B{n:07d}" for n in range(1, 9))]
#: Posts the first try of spp_test_bulk_killed gets answers for before it "dies".
ANSWERED_BEFORE_KILL = 5


class KilledMidBatch(CreateOrderMessagesInBulkOperator):
    """The real operator, whose first try stops as a SIGKILLed worker would: mid-batch, nothing checkpointed.

    The records written before the POSTs went out stay as they were ("in flight"); answers after the
    fifth are never heard of.
    """

    def execute(self, context: Any) -> Any:
        if context["ti"].try_number > 1:
            return super().execute(context)
        real_post = SppHook._post_once
        answered = 0
        lock = threading.Lock()

        def post_then_die(hook: SppHook, wanted: Any) -> Any:
            nonlocal answered
            outcome = real_post(hook, wanted)
            with lock:
                answered += 1
                if answered > ANSWERED_BEFORE_KILL:
                    raise RuntimeError("worker killed")  # SPP stored it; nobody hears the answer
            return outcome

        with (
            mock.patch.object(BulkLedger, "checkpoint", return_value=None),
            mock.patch.object(SppHook, "_post_once", post_then_die),
        ):
            return super().execute(context)


with DAG("spp_test_bulk_retry", schedule=None, start_date=START):
    CreateOrderMessagesInBulkOperator(
        task_id="remind",
        orders=[{"order": order, "name": f"client {i}"} for i, order in enumerate(BULK_ORDERS)],
        message="Hello {{ item.name }}, order {{ order }} needs you (run {{ run_id }})",
        concurrency=3,
        lost_answer_wait=0,
        retries=1,
        retry_delay=timedelta(0),
    )

with DAG("spp_test_bulk_killed", schedule=None, start_date=START):
    KilledMidBatch(
        task_id="remind",
        orders=BULK_ORDERS,
        message="Order {{ order }}: still waiting on you",
        concurrency=2,
        lost_answer_wait=0,
        retries=1,
        retry_delay=timedelta(0),
    )

with DAG("spp_test_bulk_bad_input", schedule=None, start_date=START):
    CreateOrderMessagesInBulkOperator(
        task_id="remind",
        orders=["E4A269FC", "", {"order": "B7C3D2A1", "message": "  "}],
        message="Order {{ order }}",
        retries=3,
    )
