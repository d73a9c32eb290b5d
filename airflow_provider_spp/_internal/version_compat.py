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

#: Where Airflow keeps its hook lineage collector: the Task SDK from 3.2, the core before. The provider asks
#: common-compat's ``get_hook_lineage_collector`` (which covers both); tests put a collector in here.
HOOK_LINEAGE_MODULE = "airflow.sdk.lineage" if AIRFLOW_V_3_2_PLUS else "airflow.lineage.hook"

#: name -> (module, attribute) on the installed release. DagBag moved to airflow.dag_processing in 3.2;
#: the task runtime got its own providers manager in 3.2 (before, the core one served it).
_MOVED: dict[str, tuple[str, str]] = {
    "DagBag": ("airflow.dag_processing.dagbag" if AIRFLOW_V_3_2_PLUS else "airflow.models.dagbag", "DagBag"),
    "sync_bag_to_db": (
        "airflow.dag_processing.dagbag" if AIRFLOW_V_3_2_PLUS else "airflow.models.dagbag",
        "sync_bag_to_db",
    ),
    # common-compat carries mask_secret only from 1.22, newer than Airflow 3.1-3.3's constraints pin.
    "mask_secret": ("airflow.sdk.log", "mask_secret"),
    "HookLineageCollector": (HOOK_LINEAGE_MODULE, "HookLineageCollector"),
    "ProvidersManagerTaskRuntime": (
        ("airflow.sdk.providers_manager_runtime", "ProvidersManagerTaskRuntime")
        if AIRFLOW_V_3_2_PLUS
        else ("airflow.providers_manager", "ProvidersManager")
    ),
}


def _compat_async_connection_api() -> Any:
    """common-compat's async connection helpers, if it is new enough (1.21) to have both; else None."""
    module = importlib.import_module("airflow.providers.common.compat.connection")
    return module if hasattr(module, "get_async_extra_dejson") else None


async def get_async_connection(conn_id: str, hook: Any) -> Any:
    """A connection for async code (a trigger, the async hook) without blocking or deadlocking the loop.

    common-compat has this from 1.21, newer than Airflow 3.1-3.3's constraints pin; with an older one
    the synchronous lookup runs in a worker thread, which is what 1.21 itself does before Airflow 3.3.2.
    """
    compat = _compat_async_connection_api()
    if compat is not None:
        return await compat.get_async_connection(conn_id, hook=hook)
    from asgiref.sync import sync_to_async

    return await sync_to_async(hook.get_connection)(conn_id=conn_id)


async def get_async_extra_dejson(conn: Any) -> dict[str, Any]:
    """A connection's extra as a dict, from async code (common-compat's from 1.21; else in a thread)."""
    compat = _compat_async_connection_api()
    if compat is not None:
        return dict(await compat.get_async_extra_dejson(conn))
    from asgiref.sync import sync_to_async

    return dict(await sync_to_async(lambda: conn.extra_dejson)())


def write_dag_to_db(dag: Any) -> None:
    """Serialize one DAG into the metadata DB as the DAG processor would, wherever its file lives.

    Airflow has no public call for this: ``dag.test()`` itself uses these DAG-bag internals (bundles,
    ``sync_bag_to_db``), which moved in 3.2 and may move again.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()
    bag = _moved("DagBag")(collect_dags=False)
    bag.dags[dag.dag_id] = dag
    _moved("sync_bag_to_db")(bag, "dags-folder", None)


def shared_stream_ack_supported() -> bool:
    """Whether the triggerer has the shared-stream ack path (persistence-gated ``advance``): 3.3.2 and 3.4 do.

    Tested by feature, not release: ``BaseEventTrigger.create_shared_stream_producer`` is what turns it on.
    """
    from airflow.triggers.base import BaseEventTrigger

    return hasattr(BaseEventTrigger, "create_shared_stream_producer") and hasattr(BaseEventTrigger, "shared_stream_key")


def __getattr__(name: str) -> Any:
    """Import a moved name from where the installed release keeps it, on first use."""
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _moved(name)


def _moved(name: str) -> Any:
    """A moved name, imported from where the installed release keeps it (and kept as a global)."""
    module, attribute = _MOVED[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


__all__ = [
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AIRFLOW_V_3_4_PLUS",
    "HOOK_LINEAGE_MODULE",
    "DagBag",  # noqa: F822 - provided by __getattr__
    "HookLineageCollector",  # noqa: F822
    "ProvidersManagerTaskRuntime",  # noqa: F822
    "get_async_connection",
    "get_async_extra_dejson",
    "mask_secret",  # noqa: F822
    "shared_stream_ack_supported",
    "write_dag_to_db",
]
