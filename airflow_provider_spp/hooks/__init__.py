"""Wayfront (formerly Service Provider Pro, SPP) hooks: SppHook (requests) and SppAsyncHook (httpx, async)."""

from airflow_provider_spp.hooks.spp import SppAsyncHook, SppHook

__all__ = ["SppAsyncHook", "SppHook"]
