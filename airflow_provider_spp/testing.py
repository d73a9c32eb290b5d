"""Helpers for users' own DAG tests (the sandbox fixtures live in ``airflow_provider_spp.sandbox``)."""

from __future__ import annotations

from typing import Any

__all__ = ["run_dag"]


def run_dag(dag: Any, **kwargs: Any) -> Any:
    """``dag.test()`` for a DAG built outside the DAGs folder: serialize it first, as the scheduler would.

    Version-bound: Airflow has no public way to register a DAG that is not in a bundle, so this uses the
    DAG-bag internals ``dag.test()`` itself uses (kept in ``_internal/version_compat.py``); it is tested on
    each supported Airflow line. A DAG in the DAGs folder needs none of this: call ``dag.test()``.
    """
    from airflow_provider_spp._internal.version_compat import write_dag_to_db

    write_dag_to_db(dag)
    return dag.test(**kwargs)
