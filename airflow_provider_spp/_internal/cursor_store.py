"""Where the activity trigger keeps its cursor between polls and across triggerer restarts.

Airflow 3.3+ gives a watched asset a state store (``asset_state_store``); before that, or when one trigger
watches several assets, the cursor is an Airflow Variable named after what is watched.
"""

from __future__ import annotations

import abc
from typing import Any


class CursorStore(abc.ABC):
    """Where a trigger keeps its cursor between polls and across triggerer restarts."""

    @abc.abstractmethod
    async def load(self) -> Any:
        """The stored cursor JSON, or None."""

    @abc.abstractmethod
    async def save(self, value: dict[str, Any]) -> None:
        """Store the cursor JSON."""


class AssetCursorStore(CursorStore):
    """Airflow 3.3+'s ``asset_state_store`` of the watched asset (awaited, never blocking the loop)."""

    def __init__(self, accessor: Any, key: str, *, fallback: CursorStore) -> None:
        self._accessor = accessor
        self._key = key
        self._fallback = fallback
        self._use_fallback = False

    async def load(self) -> Any:
        """Read the cursor; a trigger watched by several assets has no single store, so use the fallback."""
        if not self._use_fallback:
            try:
                return await self._accessor.aget(self._key)
            except ValueError:
                self._use_fallback = True
        return await self._fallback.load()

    async def save(self, value: dict[str, Any]) -> None:
        """Write the cursor."""
        if not self._use_fallback:
            try:
                await self._accessor.aset(self._key, value)
                return
            except ValueError:
                self._use_fallback = True
        await self._fallback.save(value)


class VariableCursorStore(CursorStore):
    """An Airflow Variable named after the trigger's filters (JSON), through the Task SDK's public ``Variable``.

    The triggerer (and ``dag.test()``) run a trigger with the Task SDK's link to Airflow, so this is the
    metadata DB's Variable, or a secrets backend's, as for any task.
    """

    def __init__(self, key: str, *, description: str) -> None:
        self._key = key
        self._description = description

    async def load(self) -> Any:
        """Read the Variable (in a thread: the Variable API is synchronous)."""
        from airflow.sdk import Variable
        from asgiref.sync import sync_to_async

        return await sync_to_async(Variable.get)(self._key, default=None, deserialize_json=True)

    async def save(self, value: dict[str, Any]) -> None:
        """Write the Variable."""
        from airflow.sdk import Variable
        from asgiref.sync import sync_to_async

        await sync_to_async(Variable.set)(self._key, value, description=self._description, serialize_json=True)
