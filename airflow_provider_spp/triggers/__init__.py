"""Triggers that read SPP order messages on the triggerer (asyncio); none of them ever writes to SPP.

* :class:`SppOrderMessageTrigger` (:mod:`.order_message`) - the deferrable ``SppOrderMessageSensor``'s
  wait: polls one order until a new matching message arrives, or the wait times out.
* :class:`SppOrderActivityTrigger` (:mod:`.order_activity`) - a ``BaseEventTrigger`` for ``AssetWatcher``:
  one event per new message across the workspace.

Both take a connection id (never a token) and only JSON-safe kwargs. Airflow stores them by class path
under :mod:`.order_messages`, their first home, which stays.
"""

from __future__ import annotations

from airflow_provider_spp.triggers.order_activity import SppOrderActivityTrigger
from airflow_provider_spp.triggers.order_message import SppOrderMessageTrigger

__all__ = ["SppOrderActivityTrigger", "SppOrderMessageTrigger"]
