"""What differs between the Airflow releases this provider supports (3.1 and later), kept in one place.

Like the official providers' ``version_compat.py``: flags computed from the installed Airflow, plus the
few names that moved between releases. Moved names are imported only when first used (PEP 562), so
importing this module stays as cheap as importing Airflow itself.
"""

from __future__ import annotations

import importlib
from typing import Any


def get_base_airflow_version_tuple() -> tuple[int, int, int]:
    """The installed Airflow release as ``(major, minor, micro)``; a pre-release counts as its release."""
    from airflow import __version__
    from packaging.version import Version

    version = Version(__version__)
    return version.major, version.minor, version.micro


AIRFLOW_V_3_2_PLUS: bool = get_base_airflow_version_tuple() >= (3, 2, 0)
AIRFLOW_V_3_3_PLUS: bool = get_base_airflow_version_tuple() >= (3, 3, 0)
AIRFLOW_V_3_4_PLUS: bool = get_base_airflow_version_tuple() >= (3, 4, 0)

#: name -> (module, attribute) on the installed release. DagBag moved to airflow.dag_processing in 3.2;
#: the task runtime got its own providers manager in 3.2 (before, the core one served it).
_MOVED: dict[str, tuple[str, str]] = {
    "DagBag": ("airflow.dag_processing.dagbag" if AIRFLOW_V_3_2_PLUS else "airflow.models.dagbag", "DagBag"),
    "sync_bag_to_db": (
        "airflow.dag_processing.dagbag" if AIRFLOW_V_3_2_PLUS else "airflow.models.dagbag",
        "sync_bag_to_db",
    ),
    "ProvidersManagerTaskRuntime": (
        ("airflow.sdk.providers_manager_runtime", "ProvidersManagerTaskRuntime")
        if AIRFLOW_V_3_2_PLUS
        else ("airflow.providers_manager", "ProvidersManager")
    ),
    # Deadline alerts: 3.1 keeps them (AsyncCallback only) in airflow.sdk.definitions.deadline; 3.2 exports
    # them, and SyncCallback, from airflow.sdk.
    "AsyncCallback": ("airflow.sdk" if AIRFLOW_V_3_2_PLUS else "airflow.sdk.definitions.deadline", "AsyncCallback"),
    "DeadlineAlert": ("airflow.sdk" if AIRFLOW_V_3_2_PLUS else "airflow.sdk.definitions.deadline", "DeadlineAlert"),
    "DeadlineReference": (
        "airflow.sdk" if AIRFLOW_V_3_2_PLUS else "airflow.sdk.definitions.deadline",
        "DeadlineReference",
    ),
}


def __getattr__(name: str) -> Any:
    """Import a moved name from where the installed release keeps it, on first use."""
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _MOVED[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


__all__ = [
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AIRFLOW_V_3_4_PLUS",
    "AsyncCallback",  # noqa: F822 - provided by __getattr__
    "DagBag",  # noqa: F822
    "DeadlineAlert",  # noqa: F822
    "DeadlineReference",  # noqa: F822
    "ProvidersManagerTaskRuntime",  # noqa: F822
    "sync_bag_to_db",  # noqa: F822
]
