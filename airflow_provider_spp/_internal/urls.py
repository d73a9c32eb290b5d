"""The ``host[:port]`` part of the URLs the provider writes: the workspace's, an order's link, a file's lineage URI."""

from __future__ import annotations

from urllib.parse import SplitResult

__all__ = ["authority", "port_of"]


def authority(hostname: str, port: int | None = None) -> str:
    """``host[:port]`` as a URL writes it: an IPv6 address in brackets (``[::1]:9000``), no port when there is none."""
    host = f"[{hostname}]" if ":" in hostname else hostname
    return f"{host}:{port}" if port else host


def port_of(parts: SplitResult) -> int | None:
    """The port of a split URL, or None when it has none or one that is not a port number."""
    try:
        return parts.port
    except ValueError:
        return None
