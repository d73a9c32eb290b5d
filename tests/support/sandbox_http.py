"""Plain-HTTP helpers for tests that talk to the sandbox as any client would (httpx, never the provider's hooks)."""

from __future__ import annotations

from typing import Any

import httpx

from airflow_provider_spp.sandbox import DEFAULT_TOKEN, SandboxServer

AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
#: The seeded orders: number -> ID.
ORDERS = {"E4A269FC": 1001, "B7C3D2A1": 1002, "9F8E7D6C": 1003, "00C0FFEE": 1004}
ORDER = "E4A269FC"
TIMEOUT = 5.0


def api(server: SandboxServer, method: str, path: str, *, auth: bool = True, **kw: Any) -> httpx.Response:
    """One request to the sandbox's API (a fresh connection, no redirects followed unless asked)."""
    headers = {**(AUTH if auth else {}), **kw.pop("headers", {})}
    return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=TIMEOUT, **kw)


def admin(server: SandboxServer, method: str, path: str, **kw: Any) -> httpx.Response:
    """One call to the sandbox's admin API (``/_sandbox``)."""
    return httpx.request(method, f"{server.url}/_sandbox{path}", timeout=TIMEOUT, **kw)


def listed(server: SandboxServer, path: str, params: Any = None, *, key: str = "id") -> list[Any]:
    """``key`` of every item on one page of a listing (the answer must be 200)."""
    answer = api(server, "GET", path, params=params)
    assert answer.status_code == 200, answer.text
    return [item[key] for item in answer.json()["data"]]
