"""The SPP hooks: :class:`SppHook` (requests) and :class:`SppAsyncHook` (httpx, for triggers and notifiers)."""

from airflow_provider_spp.hooks.spp import SppAsyncHook, SppHook

__all__ = ["SppAsyncHook", "SppHook"]
