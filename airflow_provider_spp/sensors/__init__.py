"""Sensors that wait for SPP: :class:`SppOrderMessageSensor` waits for a new message on an order (a reply)."""

from __future__ import annotations

from airflow_provider_spp.sensors.order_messages import SppOrderMessageSensor

__all__ = ["SppOrderMessageSensor"]
