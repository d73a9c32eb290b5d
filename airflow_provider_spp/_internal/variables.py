"""JSON Airflow Variables, from a task (the Task SDK's ``Variable``) or outside one (the metadata DB's)."""

from __future__ import annotations

import sys
from typing import Any


def _in_task_runner() -> bool:
    """Whether this process talks to Airflow through a task runner's supervisor (worker, triggerer)."""
    return hasattr(sys.modules.get("airflow.sdk.execution_time.task_runner"), "SUPERVISOR_COMMS")


def get_json(key: str) -> Any:
    """A JSON Variable's value, or None when it does not exist."""
    if _in_task_runner():
        from airflow.sdk import Variable

        return Variable.get(key, default=None, deserialize_json=True)
    from airflow.models.variable import Variable as DbVariable

    return DbVariable.get(key, default_var=None, deserialize_json=True)


def set_json(key: str, value: Any, description: str) -> None:
    """Write a JSON Variable."""
    if _in_task_runner():
        from airflow.sdk import Variable

        Variable.set(key, value, description=description, serialize_json=True)
        return
    from airflow.models.variable import Variable as DbVariable

    DbVariable.set(key, value, description=description, serialize_json=True)
