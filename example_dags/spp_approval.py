"""Human in the loop: before an invoice reminder goes to the client, a person approves it in Airflow.

``approve_reminder`` (an ``ApprovalOperator``) waits for someone to approve or reject in Airflow's
Required Actions page; its notifier posts a **staff-only** note on the SPP order telling the team,
with the link to that page, so whoever watches the order can decide. On approval ``send_reminder``
posts the reminder to the client; on rejection it is skipped.
"""

from __future__ import annotations

import inspect
from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk import DAG

from airflow_provider_spp.notifications.spp import SppOrderMessageNotifier
from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator

# How long the team has to decide: ``response_timeout`` from apache-airflow-providers-standard 1.13,
# ``execution_timeout`` before it (the version Airflow 3.1's constraints pin).
HAS_RESPONSE_TIMEOUT = "response_timeout" in inspect.signature(HITLOperator.__init__).parameters
HITL_TIMEOUT_ARG = "response_timeout" if HAS_RESPONSE_TIMEOUT else "execution_timeout"

ORDER = "00C0FFEE"

with DAG(
    dag_id="spp_approval",
    description="Approve an invoice reminder in Airflow before it reaches the client on SPP",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["spp", "example"],
):
    # [START howto_notifier_spp_hitl]
    approve = ApprovalOperator(
        task_id="approve_reminder",
        subject="Send the overdue-invoice reminder for order 00C0FFEE?",
        body="The invoice is 14 days overdue. Approve to post the reminder to the client on SPP.",
        **{HITL_TIMEOUT_ARG: timedelta(hours=8)},
        notifiers=[
            SppOrderMessageNotifier(
                order=ORDER,
                message="Approval needed before we remind the client: {{ task.subject }}",
                staff_only=True,
            )
        ],
    )
    send = CreateOrderMessageOperator(
        task_id="send_reminder",
        order=ORDER,
        message="Friendly reminder: invoice for this order is 14 days overdue. Reply here with any questions.",
    )
    approve >> send
    # [END howto_notifier_spp_hitl]
