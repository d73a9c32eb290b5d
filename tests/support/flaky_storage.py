"""A fake object store (``flakyfs://``) whose calls can be made to fail, for attachment tests."""

from __future__ import annotations

import io
from typing import Any, ClassVar

from fsspec.spec import AbstractFileSystem

PROTOCOL = "flakyfs"


class FlakyFileSystem(AbstractFileSystem):
    """Files kept in a dict; ``failures[op]`` (op: "info" or "open") is raised by the next ``times[op]`` calls."""

    protocol = PROTOCOL
    files: ClassVar[dict[str, bytes]] = {}
    failures: ClassVar[dict[str, BaseException]] = {}
    times: ClassVar[dict[str, int]] = {}
    calls: ClassVar[list[str]] = []

    @classmethod
    def reset(cls) -> None:
        cls.files.clear()
        cls.failures.clear()
        cls.times.clear()
        cls.calls.clear()

    @classmethod
    def fail(cls, op: str, error: BaseException, times: int = 1_000_000) -> None:
        cls.failures[op], cls.times[op] = error, times

    def _maybe_fail(self, op: str) -> None:
        self.calls.append(op)
        if op in self.failures and self.times.get(op, 0) > 0:
            self.times[op] -= 1
            raise self.failures[op]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        self._maybe_fail("info")
        key = self._strip_protocol(path).rstrip("/")
        if key in self.files:
            return {"name": key, "size": len(self.files[key]), "type": "file"}
        if any(name.startswith(key + "/") for name in self.files):
            return {"name": key, "size": 0, "type": "directory"}
        raise FileNotFoundError(key)

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        key = self._strip_protocol(path).rstrip("/")
        found = [self.info(name) for name in self.files if name.startswith(key + "/")]
        return found if detail else [entry["name"] for entry in found]

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        self._maybe_fail("open")
        key = self._strip_protocol(path)
        if key not in self.files:
            raise FileNotFoundError(key)
        return io.BytesIO(self.files[key])


def install() -> type[FlakyFileSystem]:
    """Register ``flakyfs://`` with fsspec and with Airflow's object storage; returns the class, emptied."""
    import fsspec
    from airflow.sdk.io import attach

    fsspec.register_implementation(PROTOCOL, FlakyFileSystem, clobber=True)
    attach(protocol=PROTOCOL, fs=FlakyFileSystem())
    FlakyFileSystem.reset()
    return FlakyFileSystem
