"""Apache Airflow provider for Wayfront (formerly Service Provider Pro, SPP): post order messages from DAGs."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Airflow's provider metadata (entry point ``apache_airflow_provider``); imports nothing heavy."""
    from airflow_provider_spp._internal.provider_info import provider_info

    return provider_info()
