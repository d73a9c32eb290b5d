"""Run the sandbox app with uvicorn in a background thread, on a real TCP port of this machine."""

from __future__ import annotations

import http.client
import json
import pathlib
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any

import uvicorn

from airflow_provider_spp.sandbox.app import DEFAULT_API_VERSION, create_app
from airflow_provider_spp.sandbox.arrivals import ArrivingMessage, status_changed_text
from airflow_provider_spp.sandbox.faults import Fault, FaultKind, RandomFaults, fault_kind
from airflow_provider_spp.sandbox.handshake import HandshakeDroppingSocket
from airflow_provider_spp.sandbox.page_actions import AfterPage, Listing
from airflow_provider_spp.sandbox.routing import SandboxApp
from airflow_provider_spp.sandbox.seed import DEFAULT_TOKEN
from airflow_provider_spp.sandbox.store import SandboxStore, StoredMessage
from airflow_provider_spp.sandbox.tls import SandboxCertificate, make_certificate
from airflow_provider_spp.sandbox.workspace import WorkspaceSettings

__all__ = ["DEFAULT_TOKEN", "SandboxServer"]


class SandboxServer:
    """A Wayfront (formerly SPP) sandbox on ``http://host:port``; ``port=0`` picks a free port (see :attr:`url`).

    Keyword ``settings`` are :class:`WorkspaceSettings` switches the server starts with and every reset
    returns to, e.g. ``SandboxServer(status_style="code", no_api_token="t2")``; :meth:`configure` changes
    them until the next reset.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_version: str = DEFAULT_API_VERSION,
        store: SandboxStore | None = None,
        faults: Iterable[Fault | str | Mapping[str, Any]] = (),
        startup_timeout: float = 10.0,
        tls: bool = False,
        **settings: Any,
    ) -> None:
        """Configure (not start) a server; ``faults`` are queued right away; ``tls`` serves https."""
        self.token = token
        self.host = host
        self.api_version = api_version
        self.app: SandboxApp = create_app(token, api_version, store)
        self.store: SandboxStore = self.app.store
        self.startup_timeout = startup_timeout
        self._requested_port = port
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.tls = tls
        #: The throw-away CA and server certificate of a TLS sandbox (None without TLS).
        self.certificate: SandboxCertificate | None = None
        self._cert_dir: tempfile.TemporaryDirectory[str] | None = None
        self.store.add_faults(*faults)
        if settings:
            self.store.start_with(**settings)

    def __repr__(self) -> str:
        """Show where it listens, never the token."""
        where = self.url if self.running else "not started"
        return f"SandboxServer({where})"

    # -- lifecycle ------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server thread is up and serving."""
        return self._thread is not None and self._thread.is_alive() and self._port is not None

    @property
    def port(self) -> int:
        """The bound port (the real one when started with port 0)."""
        if self._port is None:
            raise RuntimeError("the sandbox server is not started")
        return self._port

    @property
    def url(self) -> str:
        """``http(s)://host:port`` of the running server (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def start(self) -> SandboxServer:
        """Bind, start serving in a daemon thread and wait until connections are accepted."""
        if self._thread is not None:
            raise RuntimeError("the sandbox server is already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on accepted sockets that say so, and
        # without it every keep-alive answer after the first waits ~40 ms for the client's delayed ACK.
        sock = HandshakeDroppingSocket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, drops=self.store.handshake_drops)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._requested_port))
        except OSError:
            sock.close()
            raise
        port = int(sock.getsockname()[1])
        tls_files: dict[str, Any] = {}
        if self.tls:
            self._cert_dir = tempfile.TemporaryDirectory(prefix="spp-sandbox-tls-")
            self.certificate = make_certificate(pathlib.Path(self._cert_dir.name))
            tls_files = {
                "ssl_certfile": str(self.certificate.cert_file),
                "ssl_keyfile": str(self.certificate.key_file),
            }
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=port,
            http="h11",
            loop="asyncio",
            lifespan="off",
            log_level="warning",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            date_header=False,  # the middleware sends Date from SPP's clock (the clock_offset setting)
            timeout_graceful_shutdown=1,
            **tls_files,
        )
        self._server = uvicorn.Server(config)
        self.app.shutting_down.clear()
        self._thread = threading.Thread(target=self._serve, args=(sock,), name=f"spp-sandbox:{port}", daemon=True)
        self._thread.start()
        self._wait_started(port)
        self._port = port
        return self

    def _serve(self, sock: socket.socket) -> None:
        """Thread body: run uvicorn until told to exit."""
        assert self._server is not None
        try:
            self._server.run(sockets=[sock])
        except BaseException as err:  # reported by start()
            self._error = err
        finally:
            sock.close()

    def _wait_started(self, port: int) -> None:
        """Block until uvicorn has started and answers ``GET /_sandbox/health`` (or fail loudly).

        A whole exchange, not only a TCP connect: a probe connection still waiting in the backlog when
        start() returns would be the one a test's ``drop_handshakes`` drops.
        """
        assert self._server is not None
        assert self._thread is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                self._thread = None
                raise RuntimeError(f"the sandbox server failed to start: {self._error!r}")
            if self._server.started and self._answers(port):
                return
            time.sleep(0.01)
        self._server.should_exit = True
        raise RuntimeError(f"the sandbox server did not start within {self.startup_timeout} s")

    def _answers(self, port: int) -> bool:
        """Whether the server answers a health check on ``port`` (over TLS with its own CA when it has one)."""
        if self.certificate is not None:
            context = ssl.create_default_context(cafile=str(self.certificate.ca_file))
            context.check_hostname = False  # the certificate names 127.0.0.1 and localhost, the host may be another
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(self.host, port, timeout=2, context=context)
        else:
            conn = http.client.HTTPConnection(self.host, port, timeout=2)
        try:
            conn.request("GET", "/_sandbox/health")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving (pending ``slow`` responses are cut short) and wait for the thread."""
        thread, server = self._thread, self._server
        if thread is None or server is None:
            return
        self.app.shutting_down.set()
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout)
        self._thread = None
        self._server = None
        self._port = None
        if self._cert_dir is not None:
            self._cert_dir.cleanup()
            self._cert_dir = None

    def __enter__(self) -> SandboxServer:
        """Start (if not yet started) and return the server."""
        return self if self.running else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the server."""
        self.stop()

    # -- conveniences for tests ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget messages, files, the request log, faults and page actions; switches back to the start; re-seed."""
        self.store.reset()

    @property
    def settings(self) -> WorkspaceSettings:
        """The workspace switches in force (``GET /_sandbox/settings``)."""
        return self.store.settings

    def configure(self, **changes: Any) -> WorkspaceSettings:
        """Change workspace switches until the next reset, e.g. ``configure(workspace_state="expired")``."""
        return self.store.configure(**changes)

    def requests(self) -> list[dict[str, Any]]:
        """The request log (same entries as ``GET /_sandbox/requests``)."""
        return self.store.requests()

    def messages(self, order_id: int | None = None) -> list[StoredMessage]:
        """Stored messages in creation order (optionally of one order ID), with their file bytes."""
        return self.store.messages(order_id)

    def post_as_client(
        self,
        order: str | int,
        message: str,
        *,
        user_id: int | None = None,
        via: str = "web",
        date_seen: datetime | None = None,
    ) -> StoredMessage:
        """Store a message written by the order's client (a reply arriving ``via`` the portal or "email")."""
        arriving = ArrivingMessage(message, user_id=user_id, via=via, date_seen=date_seen)
        return arriving.store_on(self.store, self._order(order)["id"])

    def post_auto_generated(
        self, order: str | int, message: str | None = None, *, user_id: int | None = None, via: str = "web"
    ) -> StoredMessage:
        """Store a message the service writes itself (``is_auto_generated``), by default as the order's client.

        The text defaults to "Order status changed to <the order's status>".
        """
        found = self._order(order)
        text = message or status_changed_text(self.store.settings.status_label(found["status"]))
        arriving = ArrivingMessage(text, user_id=user_id, via=via, is_auto_generated=True)
        return arriving.store_on(self.store, found["id"])

    def _order(self, order: str | int) -> dict[str, Any]:
        """The order given by ID or number, or KeyError."""
        found = self.store.order(order)
        if found is None:
            raise KeyError(f"no order {order!r}")
        return found

    def after_page(self, listing: Listing | str, order: str | int | None = None, **options: Any) -> AfterPage:
        """Right after page ``page`` (default 1) of ``listing`` is built, write to ``order`` (see ``page_actions``).

        ``listing`` is "orders" or "order_messages"; ``options`` are :class:`AfterPage`'s fields (``page``,
        ``listed_order``, ``write``: "client_message" / "auto_message" / "touch", ``message``, ``times``).
        """
        action = AfterPage(Listing(listing), None if order is None else str(order), **options)
        return self.store.add_after_page(action)[0]

    def drop_handshakes(self, times: int = 1) -> None:
        """Close the next ``times`` new connections in the middle of the TLS handshake (see ``handshake``)."""
        self.store.handshake_drops.add(times)

    def add_fault(self, kind: FaultKind | str, **options: Any) -> Fault:
        """Queue one fault; ``options`` are :class:`Fault`'s fields (``times=None``: every matching request)."""
        return self.store.add_faults(Fault(fault_kind(kind), **options))[0]

    def add_faults(self, *faults: Fault | str | Mapping[str, Any]) -> list[Fault]:
        """Queue several faults (Fault objects, ``"kind:times"`` specs or dicts)."""
        return self.store.add_faults(*faults)

    def set_random_faults(self, rate: float, kinds: Iterable[FaultKind | str], **options: Any) -> RandomFaults:
        """Fail each matching request with probability ``rate``, with a kind drawn from ``kinds``."""
        return self.store.set_random_faults(rate, kinds, **options)

    def clear_faults(self) -> None:
        """Remove queued faults and turn random faults off."""
        self.store.clear_faults()

    def connection_json(self, **extra: Any) -> str:
        """An Airflow connection (``AIRFLOW_CONN_…`` JSON) for this sandbox; ``extra`` goes to its extras."""
        conn: dict[str, Any] = {"conn_type": "spp", "host": self.url, "password": self.token}
        if self.certificate is not None:
            extra = {"verify": str(self.certificate.ca_file), **extra}
        if extra:
            conn["extra"] = extra
        return json.dumps(conn)
