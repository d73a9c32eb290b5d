"""What SppHook's integration tests share: the sandbox's request log, a closed port, small byte helpers."""

from __future__ import annotations

import hashlib
import posixpath
import socket
from collections.abc import Callable
from typing import Any

import requests

from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.sandbox import SandboxServer

ORDER = "E4A269FC"
ORDER_ID = 1001
CONN_ID = "spp_integration"

HookFactory = Callable[..., SppHook]


def logged(server: SandboxServer, method: str | None = None) -> list[dict[str, Any]]:
    """The sandbox's request log (client traffic only), optionally of one method."""
    return [r for r in server.requests() if method is None or r["method"] == method]


def closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, as a normalising proxy or web server applies it to the request path."""
    normalized = posixpath.normpath(path)
    return normalized + "/" if path.endswith("/") and not normalized.endswith("/") else normalized


def download(url: str) -> bytes:
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    return response.content


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
