"""Wayfront (formerly Service Provider Pro, SPP) hooks: SppHook (requests) and SppAsyncHook (httpx, async)."""

from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.hooks.spp_async import SppAsyncHook

__all__ = ["SppAsyncHook", "SppHook"]
