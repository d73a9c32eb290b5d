"""Notifiers: post to a Wayfront (SPP) order from DAG, task, Deadline and HITL callbacks."""

from airflow_provider_spp.notifications.spp import SppOrderMessageNotifier, send_spp_order_message

__all__ = ["SppOrderMessageNotifier", "send_spp_order_message"]
