"""Chase the client, wait (deferred) for their reply, then branch: reply -> thank them; no reply -> escalate.

``ask_for_logins`` posts the follow-up; ``wait_for_reply`` waits on the triggerer (no worker slot) for a
message from the order's **client** posted after it (its ID comes through XCom, so the wait is exact;
messages SPP writes itself, such as status changes, never count);
on a reply ``acknowledge`` thanks the client, and if none comes within the timeout the sensor is
skipped (``soft_fail``) and ``escalate`` leaves a staff-only note for the team instead.

Timeout and poll interval come from ``SPP_EXAMPLE_REPLY_TIMEOUT`` / ``SPP_EXAMPLE_POKE_INTERVAL``
(seconds; default 3 days and 15 minutes) so a demo or test can shorten them.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator
from airflow_provider_spp.sensors.order_messages import SppOrderMessageSensor

ORDER = "E4A269FC"
REPLY_TIMEOUT = float(os.environ.get("SPP_EXAMPLE_REPLY_TIMEOUT", 3 * 24 * 3600))
POKE_INTERVAL = float(os.environ.get("SPP_EXAMPLE_POKE_INTERVAL", 15 * 60))

with DAG(
    dag_id="spp_followup_and_wait",
    description="Ask the client for something on their SPP order and react to the answer (or its absence)",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["spp", "example"],
):
    ask = CreateOrderMessageOperator(
        task_id="ask_for_logins",
        order=ORDER,
        message="Hi! To start the audit we need read access to your analytics account. Could you reply here?",
    )
    wait = SppOrderMessageSensor(
        task_id="wait_for_reply",
        order=ORDER,
        after_message_id=ask.output,
        from_client=True,
        deferrable=True,
        poke_interval=POKE_INTERVAL,
        timeout=REPLY_TIMEOUT,
        soft_fail=True,
    )

    @task.branch(trigger_rule="all_done")
    def reply_or_timeout(*, ti: Any = None) -> str:
        """Acknowledge when the client answered, escalate when the wait ran out."""
        return "acknowledge" if ti.xcom_pull(task_ids="wait_for_reply") else "escalate"

    acknowledge = CreateOrderMessageOperator(
        task_id="acknowledge",
        order=ORDER,
        message="Thanks, we got it! We will confirm once access works.",
    )
    escalate = CreateOrderMessageOperator(
        task_id="escalate",
        order=ORDER,
        staff_only=True,
        message="No reply from the client to the access request (message {{ ti.xcom_pull('ask_for_logins') }}). "
        "Please call them.",
    )
    ask >> wait >> reply_or_timeout() >> [acknowledge, escalate]
