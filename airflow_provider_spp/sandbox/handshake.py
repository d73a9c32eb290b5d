"""Connections closed in the middle of the TLS handshake: a transient network failure, not a bad certificate.

``SandboxServer.drop_handshakes(n)`` (admin ``POST /_sandbox/handshake_drops {"times": n}``, CLI
``--drop-handshakes N``): the next ``n`` TCP connections are accepted, their first TLS record (the
ClientHello) is read, and the connection is closed cleanly (FIN) before the server says anything. A TLS
client sees an EOF before the handshake completes (Python: ``ssl.SSLEOFError``, "UNEXPECTED_EOF_WHILE_READING"),
as when a load balancer or a flaky network drops a new connection; its next connection is served normally.
On a plain-HTTP sandbox the same happens to the first bytes of the request (the connection closes without
an answer, below HTTP: nothing is logged). Connections already open (keep-alive) are not affected, and
the path is not known before the handshake: an admin call on a new connection is dropped too, so register
the drop last, right before the client's request (or make admin calls on a kept-alive connection).

It works on the listening socket (:class:`HandshakeDroppingSocket`), so the TLS layer never sees the
dropped connections; uvicorn and asyncio take it as any listening socket.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

__all__ = [
    "HandshakeDroppingSocket",
    "HandshakeDrops",
]

#: Longest wait for a client's first TLS record before the connection is closed anyway.
HELLO_TIMEOUT = 2.0
_TLS_HEADER = 5


class HandshakeDrops:
    """How many new connections to drop mid-handshake, and how many were dropped (thread-safe)."""

    def __init__(self) -> None:
        """Drop nothing."""
        self._lock = threading.Lock()
        self._pending = 0
        self._dropped = 0

    def add(self, times: int) -> None:
        """Drop the next ``times`` new connections (on top of those already pending)."""
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError(f"times must be a positive integer, got {times!r}")
        with self._lock:
            self._pending += times

    def take(self) -> bool:
        """Whether to drop the connection just accepted (counts it)."""
        with self._lock:
            if self._pending <= 0:
                return False
            self._pending -= 1
            self._dropped += 1
            return True

    def clear(self) -> None:
        """Drop nothing more; forget the count."""
        with self._lock:
            self._pending = 0
            self._dropped = 0

    def snapshot(self) -> dict[str, int]:
        """``{"pending": n, "dropped": m}``."""
        with self._lock:
            return {"pending": self._pending, "dropped": self._dropped}


def _read_first_record(conn: socket.socket) -> None:
    """Read the client's first TLS record (or whatever it sent first), then close with a FIN."""
    try:
        conn.settimeout(HELLO_TIMEOUT)
        head = conn.recv(_TLS_HEADER)
        remaining = int.from_bytes(head[3:5], "big") if len(head) == _TLS_HEADER and head[0] == 0x16 else 0
        while remaining > 0:  # a handshake record: read all of it
            chunk = conn.recv(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)
        if head and head[0] != 0x16:  # plain HTTP: take what the request sent so far
            conn.recv(65536)
        # Nothing unread is left behind, so close() sends a FIN (an EOF), not a reset.
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        conn.close()


class HandshakeDroppingSocket(socket.socket):
    """A listening socket whose ``accept`` hands connections :class:`HandshakeDrops` selects to a closer."""

    def __init__(self, *args: Any, drops: HandshakeDrops, **kwargs: Any) -> None:
        """A socket like ``socket.socket(*args)``, dropping what ``drops`` asks for."""
        super().__init__(*args, **kwargs)
        self.drops = drops

    def accept(self) -> tuple[socket.socket, Any]:
        """The next connection to serve; those to drop are closed in a thread after their first record."""
        while True:
            conn, address = super().accept()
            if not self.drops.take():
                return conn, address
            threading.Thread(target=_read_first_record, args=(conn,), name="spp-sandbox-drop", daemon=True).start()
