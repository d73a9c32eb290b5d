"""Helpers for users' own DAG tests (the sandbox fixtures live in ``airflow_provider_spp.sandbox``)."""

from __future__ import annotations

from typing import Any


def run_dag(dag: Any, **kwargs: Any) -> Any:
    """``dag.test()`` for a DAG built outside the DAGs folder: serialize it first, as the scheduler would."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    from airflow_provider_spp._internal.version_compat import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(collect_dags=False)
    bag.dags[dag.dag_id] = dag
    sync_bag_to_db(bag, "dags-folder", None)
    return dag.test(**kwargs)
