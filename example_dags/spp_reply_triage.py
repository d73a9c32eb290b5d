"""Start a DAG when clients write: an Asset watched by SppOrderActivityTrigger, one event per new message.

The triggerer polls SPP (cheaply: orders sorted by ``last_message_at``, then only the orders that moved)
and updates ``spp_client_messages`` once per new **client** message, with a small payload (order,
message ID, created_at, author; never the text). ``triage`` reads the messages behind the events that
started the run, in the worker, and leaves a staff-only triage note on each order.

A manual run can replay events: trigger it with ``{"events": [<payload>, ...]}`` as its conf.
``SPP_EXAMPLE_POLL_INTERVAL`` (seconds, default 60) lets a demo or test poll more often.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

# [START example_spp_reply_triage]
import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_spp.triggers.order_activity import SppOrderActivityTrigger

POLL_INTERVAL = float(os.environ.get("SPP_EXAMPLE_POLL_INTERVAL", 60))
URGENT_WORDS = ("urgent", "asap", "down", "broken", "emergency")

# [START howto_trigger_spp_order_activity]
CLIENT_MESSAGES = Asset(
    name="spp_client_messages",
    watchers=[
        AssetWatcher(
            name="spp_client_messages_watcher",
            trigger=SppOrderActivityTrigger(from_client=True, poll_interval=POLL_INTERVAL),
        )
    ],
)
# [END howto_trigger_spp_order_activity]

with DAG(
    dag_id="spp_reply_triage",
    description="Triage every new client message on SPP",
    schedule=[CLIENT_MESSAGES],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["spp", "example"],
):

    @task
    def triage(*, triggering_asset_events: Any = None, dag_run: Any = None) -> list[dict[str, Any]]:
        """Read each new client message and note its priority on the order (staff only)."""
        from airflow_provider_spp.hooks.spp import SppHook

        extras = [event.extra for event in (triggering_asset_events or {}).get(CLIENT_MESSAGES, [])]
        if not extras and dag_run is not None and dag_run.conf:
            extras = list(dag_run.conf.get("events", []))
        handled = []
        with SppHook() as hook:
            for extra in extras:
                event = extra.get("payload", extra)
                created = datetime.fromisoformat(event["created_at"])
                message = hook.find_order_message_where(
                    event["order_id"], lambda m, wanted=event["message_id"]: m.id == wanted, created_since=created
                )
                if message is None:
                    continue  # deleted since
                text = (message.message or "").casefold()
                priority = "urgent" if any(word in text for word in URGENT_WORDS) else "normal"
                hook.create_order_message(
                    event["order_id"],
                    f"Triage: client message {event['message_id']} is {priority.upper()} priority.",
                    staff_only=True,
                )
                handled.append({"order": event["order_id"], "message_id": event["message_id"], "priority": priority})
        return handled

    triage()
# [END example_spp_reply_triage]
