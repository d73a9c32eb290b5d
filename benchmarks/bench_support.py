"""Pieces every benchmark here shares: fresh child processes, free ports, local servers, bench connections.

Not a benchmark itself. The scripts import it as a sibling module (``python benchmarks/x.py`` puts
``benchmarks/`` first on ``sys.path``). Everything talks to 127.0.0.1 only; the token is fake.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: The fake token every benchmark starts the sandbox with and puts in its connections; never a real one.
TOKEN = "bench-fake-token"
#: A seeded sandbox order.
ORDER = 1001


def fresh_process(cmd: list[str]) -> list[str]:
    """``cmd`` behind a forking ``sh``, so the child's ru_maxrss starts from zero.

    Linux folds the pre-exec memory's high-water mark into ru_maxrss at exec; Python starts children
    with vfork, so a directly started child would report at least *this* process's peak RSS. A shell
    that forks (``; exit $?`` keeps dash from exec-ing the last command) hands over a tiny one instead.
    """
    return ["/bin/sh", "-c", '"$@"; exit $?', "sh", *cmd]


def free_port() -> int:
    """A port nobody listens on right now (should another process take it first, the server start fails loudly)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(method: str, url: str) -> Any:
    """A small JSON call to a local admin endpoint (always http://127.0.0.1)."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"only the local servers are called, not {url!r}")
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)  # noqa: S310
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


def _tail(log_path: Path, lines: int = 15) -> str:
    """The last lines of a server's log (it lives in a temporary directory that is about to go)."""
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def server_process(cmd: list[str], health_url: str, log_path: Path, env: dict[str, str]) -> Iterator[None]:
    """Start a server subprocess, wait until ``health_url`` answers, and stop it (by its PID) afterwards."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{Path(cmd[0]).name} exited with {proc.returncode}:\n{_tail(log_path)}")
            try:
                http_json("GET", health_url)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{Path(cmd[0]).name} did not answer within 60 s:\n{_tail(log_path)}") from None
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def sandbox_process(python: str, workdir: Path, env: dict[str, str]) -> Iterator[str]:
    """Run ``spp-sandbox`` (beside ``python``) as its own process on a free port; yields its URL."""
    url = f"http://127.0.0.1:{free_port()}"
    cmd = [str(Path(python).with_name("spp-sandbox")), "--port", url.rsplit(":", 1)[1], "--token", TOKEN]
    with server_process(cmd, f"{url}/_sandbox/health", workdir / "sandbox.log", env):
        yield url


def bench_connections(spp_url: str, timeout: float, *, max_retries: int | None = None) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` variables for our hook (``spp_bench``) and the HTTP provider's (``http_bench``).

    ``max_retries`` None keeps our hook's default retry settings.
    """
    port = int(spp_url.rsplit(":", 1)[1])
    spp_extra: dict[str, Any] = {"timeout": timeout}
    if max_retries is not None:
        spp_extra["max_retries"] = max_retries
    spp = {"conn_type": "spp", "host": spp_url, "password": TOKEN, "extra": spp_extra}
    http = {
        "conn_type": "http",
        "host": "127.0.0.1",
        "port": port,
        "schema": "http",
        "extra": {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json", "timeout": timeout},
    }
    return {"AIRFLOW_CONN_SPP_BENCH": json.dumps(spp), "AIRFLOW_CONN_HTTP_BENCH": json.dumps(http)}
