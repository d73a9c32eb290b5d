"""Stand-ins for what Airflow hands a task's execute(): a task state store and a context, for ledger tests."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


class Store:
    """Airflow's task_state_store as a dict; ``failing`` ("get" or "set") makes reads or writes raise."""

    def __init__(self, failing: str | None = None) -> None:
        self.values: dict[str, Any] = {}
        self.failing = failing
        self.calls: list[str] = []  # "get" / "set", in order: each is an Execution API round trip in a task

    def get(self, key: str, default: Any = None) -> Any:
        self.calls.append("get")
        if self.failing == "get":
            raise ConnectionError("execution API unreachable")
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.calls.append("set")
        if self.failing == "set":
            raise ConnectionError("execution API unreachable")
        self.values[key] = value


def task_context(try_number: int, store: Store | None = None, run_started: Any = None, map_index: int = -1) -> Any:
    """The parts of a task's context the operator reads: the task instance and try, the run's start, the store.

    Task instances differ by ``map_index`` (the sibling map indexes of one task in one DAG run).
    """
    ti = SimpleNamespace(dag_id="spp_dag", run_id="manual__1", task_id="post", map_index=map_index)
    ti.try_number, ti.start_date = try_number, None
    context: dict[str, Any] = {
        "ti": ti,
        "dag_run": SimpleNamespace(start_date=run_started),
    }
    if store is not None:
        context["task_state_store"] = store
    return context
