"""The triggers' first home, kept: Airflow stores a trigger by class path, and earlier releases stored these.

Deferred tasks and asset watchers in users' metadata DBs name
``airflow_provider_spp.triggers.order_messages.SppOrderMessageTrigger`` and ``.SppOrderActivityTrigger``,
and both triggers still serialize under these paths. Their code lives in
:mod:`airflow_provider_spp.triggers.order_message` and :mod:`airflow_provider_spp.triggers.order_activity`.
"""

from __future__ import annotations

from airflow_provider_spp.triggers import SppOrderActivityTrigger, SppOrderMessageTrigger

__all__ = ["SppOrderActivityTrigger", "SppOrderMessageTrigger"]
