"""Client memory to upload one large file to an SPP order: our hook vs the HTTP provider, requests and Slack.

Clients, each in its own fresh subprocess (``--clients``, default all four):

* ``ours``     ``SppHook.create_order_message(..., attachments=[path])`` (streams a multipart body);
* ``http``     ``HttpHook(method="POST").run(endpoint, data={...}, files={"attachments[]": open(path, "rb")})``
               (connection ``AIRFLOW_CONN_HTTP_BENCH`` with an ``Authorization`` header in its extra);
* ``requests`` plain ``requests.post(url, data={...}, files={"attachments[]": f})``;
* ``slack``    the Slack provider's ``SlackHook.send_file_v2`` (slack_sdk ``files_upload_v2``) against a
               minimal local stand-in for Slack's three upload endpoints (it is not SPP: it only shows
               how much memory the Slack SDK's way of uploading a file of this size costs).

The SPP sandbox runs as a separate process (``spp-sandbox --port <free> --token bench-fake-token``), as
does the Slack stand-in, so server memory never counts. The sandbox is reset before every upload
(it keeps uploaded bytes in memory) and every upload is checked for arrival: size and SHA-256 of the
received file, from the sandbox's request log (``GET /_sandbox/requests``) or the stand-in's record.

Each repetition runs every client twice: once with a 1 KiB file (its *baseline*: same interpreter,
same imports, same code path) and once with the large file; clients take turns in a rotating order.
Every child first imports its client and looks its connection up, then measures only the upload call:

* peak RSS: the child's ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (the child is started through a
  forking ``sh`` so it does not inherit this script's peak, see :func:`fresh_process`);
* Δ peak: peak RSS minus the baseline's (0 when the upload stays below the peak the imports reached);
* Δ call: the RSS high-water mark during the upload call over the RSS just before it (the mark is
  restarted via ``/proc/self/clear_refs``), minus the same for the baseline: what the file's size costs;
* upload s (wall, server included) and CPU s (the client's own user + system time) of the call.

Medians over ``--repeat`` rounds; "ours/peer" divides our figure by the row's (below 1 = we use less).

    .venv/bin/python benchmarks/upload_memory.py [--size-mib 256] [--repeat 3] [--clients ours,http,requests,slack]

Everything talks to 127.0.0.1 only. No figure is asserted: compare rows of the same run only.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench_support import (
    ORDER,
    TOKEN,
    bench_connections,
    free_port,
    fresh_process,
    http_json,
    sandbox_process,
    server_process,
)

MESSAGE = "benchmark upload"
BASELINE_BYTES = 1024
ALL_CLIENTS = ("ours", "http", "requests", "slack")
SPP_CLIENTS = frozenset({"ours", "http", "requests"})
#: Generous, identical for every client: the server needs a few seconds to parse a large body.
TIMEOUT_S = 600
CHUNK = 1 << 20
MIB = 1 << 20

# -- the clients (run inside the child process; every import is local so the parent stays light) ------
#
# Each ``prepare_*`` imports what its client needs and looks its connection up (Airflow's first lookup
# costs about a second of imports), then returns the upload call that is measured.

Upload = Callable[[], None]


def prepare_ours(path: Path, url: str) -> Upload:
    """Our hook: a streamed multipart body (requests-toolbelt MultipartEncoder)."""
    from airflow_provider_spp.hooks.spp import SppHook

    hook = SppHook("spp_bench")
    hook.get_conn()

    def upload() -> None:
        with hook:
            hook.create_order_message(ORDER, MESSAGE, attachments=[path])

    return upload


def prepare_http(path: Path, url: str) -> Upload:
    """The HTTP provider's hook, as its docs show a file upload: ``files=`` plus ``data=``."""
    from airflow.providers.http.hooks.http import HttpHook

    hook = HttpHook(method="POST", http_conn_id="http_bench")
    hook.get_conn()

    def upload() -> None:
        with path.open("rb") as file:
            hook.run(f"api/order_messages/{ORDER}", data={"message": MESSAGE}, files={"attachments[]": file})

    return upload


def prepare_requests(path: Path, url: str) -> Upload:
    """Plain requests with ``files=`` (it builds the whole multipart body in memory)."""
    import requests

    def upload() -> None:
        with path.open("rb") as file:
            response = requests.post(
                f"{url}/api/order_messages/{ORDER}",
                data={"message": MESSAGE},
                files={"attachments[]": file},
                headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"},
                timeout=TIMEOUT_S,
            )
        response.raise_for_status()

    return upload


def prepare_slack(path: Path, url: str) -> Upload:
    """The Slack provider's hook (slack_sdk ``files_upload_v2``) against the local Slack stand-in."""
    from airflow.providers.slack.hooks.slack import SlackHook

    hook = SlackHook(slack_conn_id="slack_bench")
    hook.get_conn()

    def upload() -> None:
        hook.send_file_v2(
            channel_id="C0BENCH", file_uploads={"file": str(path), "filename": path.name}, initial_comment=MESSAGE
        )

    return upload


CLIENTS: dict[str, Callable[[Path, str], Upload]] = {
    "ours": prepare_ours,
    "http": prepare_http,
    "requests": prepare_requests,
    "slack": prepare_slack,
}


def current_rss_kib() -> int:
    """This process's resident set size right now."""
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") // 1024


def reset_peak_rss() -> bool:
    """Restart the kernel's RSS high-water mark from the current RSS (Linux >= 4.0); False if refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def run_client(name: str, path: Path, url: str, result: Path) -> None:
    """Child mode: upload once; report the process's peak RSS, the upload call's own growth and wall time.

    The process peak may have been reached while importing; so the high-water mark is also restarted
    just before the call, which makes ``call_growth_kib`` what the call itself adds over the RSS it started
    from, even when that stays below the import-time peak.
    """
    upload = CLIENTS[name](path, url)
    peak_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_before_kib = current_rss_kib()
    was_reset = reset_peak_rss()
    cpu_start = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    upload()
    upload_s = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_after_kib = usage.ru_maxrss
    report = {
        "upload_s": upload_s,
        "cpu_s": usage.ru_utime - cpu_start.ru_utime + usage.ru_stime - cpu_start.ru_stime,
        "maxrss_kib": max(peak_before_kib, peak_after_kib),
        "call_growth_kib": peak_after_kib - rss_before_kib if was_reset else None,
    }
    result.write_text(json.dumps(report))


# -- the Slack stand-in (a separate process) -----------------------------------------------------------


class SlackStandIn(BaseHTTPRequestHandler):
    """Answers files.getUploadURLExternal / the upload URL / files.completeUploadExternal, hashing uploads."""

    server: SlackStandInServer

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""

    def _answer(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        """``/_stub/uploads``: what arrived so far."""
        if self.path == "/_stub/uploads":
            self._answer(200, self.server.uploads)
        else:
            self._answer(404, {"ok": False, "error": "unknown_method"})

    def do_POST(self) -> None:
        """The Slack API methods, the upload URL, and ``/_stub/reset``."""
        remaining = int(self.headers.get("Content-Length") or 0)
        digest, size = hashlib.sha256(), 0
        while remaining > 0:
            chunk = self.rfile.read(min(CHUNK, remaining))
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
            remaining -= len(chunk)
        path = self.path.split("?", 1)[0]
        port = self.server.server_address[1]
        if path == "/_stub/reset":
            self.server.uploads.clear()
            self._answer(200, {"ok": True})
        elif path == "/api/files.getUploadURLExternal":
            upload_url = f"http://127.0.0.1:{port}/upload/F0BENCH"
            self._answer(200, {"ok": True, "file_id": "F0BENCH", "upload_url": upload_url})
        elif path == "/upload/F0BENCH":
            self.server.uploads.append({"size": size, "sha256": digest.hexdigest()})
            self._answer(200, {"ok": True})
        elif path == "/api/files.completeUploadExternal":
            self._answer(200, {"ok": True, "files": [{"id": "F0BENCH", "title": "bench"}]})
        else:
            self._answer(404, {"ok": False, "error": "unknown_method"})


class SlackStandInServer(ThreadingHTTPServer):
    """The stand-in's server, holding the upload record."""

    uploads: list[dict[str, Any]]


def serve_slack_stand_in(port: int) -> None:
    """Stand-in mode: serve on 127.0.0.1:port until killed."""
    server = SlackStandInServer(("127.0.0.1", port), SlackStandIn)
    server.uploads = []
    server.serve_forever()


# -- the parent ----------------------------------------------------------------------------------------


@dataclass
class Run:
    """One child's upload."""

    maxrss_mib: float
    #: RSS high-water mark during the upload call minus the RSS just before it (None: not measurable).
    call_growth_mib: float | None
    upload_s: float
    #: Client CPU time (user + system) of the upload call.
    cpu_s: float
    ok: bool


@dataclass
class ClientResults:
    """A client's runs across repetitions."""

    big: list[Run] = field(default_factory=list)
    small: list[Run] = field(default_factory=list)


def write_random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes; returns their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(CHUNK, left))
            digest.update(chunk)
            out.write(chunk)
            left -= len(chunk)
        out.flush()
        os.fsync(out.fileno())  # so the first upload does not race the write-back of this file
    return digest.hexdigest()


def child_env(workdir: Path, spp_url: str | None, slack_url: str | None) -> dict[str, str]:
    """Environment of the clients: a throw-away AIRFLOW_HOME and the three bench connections."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    env.update({"AIRFLOW_HOME": str(workdir / "airflow_home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    if spp_url:
        env.update(bench_connections(spp_url, TIMEOUT_S, max_retries=0))
    if slack_url:
        env["AIRFLOW_CONN_SLACK_BENCH"] = json.dumps(
            {"conn_type": "slack", "password": TOKEN, "extra": {"base_url": f"{slack_url}/api/", "timeout": TIMEOUT_S}}
        )
    return env


def arrived(client: str, spp_url: str | None, slack_url: str | None) -> list[dict[str, Any]]:
    """The files the server received for the last upload: ``[{"size", "sha256"}, ...]``."""
    if client == "slack":
        assert slack_url
        return list(http_json("GET", f"{slack_url}/_stub/uploads"))
    assert spp_url
    posts = [
        r
        for r in http_json("GET", f"{spp_url}/_sandbox/requests")
        if r["method"] == "POST" and r["path"] == f"/api/order_messages/{ORDER}" and r["status"] == 201
    ]
    return [{"size": f["size"], "sha256": f["sha256"]} for r in posts for f in r["files"]]


def reset(client: str, spp_url: str | None, slack_url: str | None) -> None:
    """Forget previous uploads (the sandbox holds them in memory)."""
    if client == "slack":
        http_json("POST", f"{slack_url}/_stub/reset")
    else:
        http_json("POST", f"{spp_url}/_sandbox/reset")


def measure(
    python: str,
    client: str,
    file: Path,
    expected: dict[str, Any],
    env: dict[str, str],
    urls: tuple[str | None, str | None],
    workdir: Path,
) -> Run:
    """Run one client in a fresh interpreter and check what arrived."""
    spp_url, slack_url = urls
    reset(client, spp_url, slack_url)
    result = workdir / "result.json"
    result.unlink(missing_ok=True)
    cmd = [python, str(Path(__file__).resolve()), "--run-client", client, "--file", str(file)]
    cmd += ["--url", spp_url or "", "--result", str(result)]
    proc = subprocess.run(
        fresh_process(cmd), env=env, cwd=workdir, capture_output=True, text=True, timeout=TIMEOUT_S + 60, check=False
    )
    if proc.returncode != 0 or not result.exists():
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"client {client} exited with {proc.returncode}:\n{tail}")
    report = json.loads(result.read_text())
    got = arrived(client, spp_url, slack_url)
    growth = report["call_growth_kib"]
    return Run(
        maxrss_mib=report["maxrss_kib"] / 1024,
        call_growth_mib=None if growth is None else growth / 1024,
        upload_s=report["upload_s"],
        cpu_s=report["cpu_s"],
        ok=got == [expected],
    )


def bare_interpreter_mib(python: str, repeat: int) -> float:
    """Median peak RSS of an interpreter that does nothing (for reference)."""
    code = "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    values = [
        int(subprocess.check_output(fresh_process([python, "-c", code]), text=True)) / 1024 for _ in range(repeat)
    ]
    return statistics.median(values)


def _median_or_none(values: list[float | None]) -> float | None:
    """Median, or None when any value is missing."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known and len(known) == len(values) else None


def summarize(res: ClientResults) -> dict[str, Any]:
    """Medians of one client's runs (differences are taken per round, then the median)."""
    pairs = list(zip(res.big, res.small, strict=True))
    deltas = [b.maxrss_mib - s.maxrss_mib for b, s in pairs]
    call = [
        None if b.call_growth_mib is None or s.call_growth_mib is None else b.call_growth_mib - s.call_growth_mib
        for b, s in pairs
    ]
    return {
        "peak": statistics.median(r.maxrss_mib for r in res.big),
        "base": statistics.median(r.maxrss_mib for r in res.small),
        "delta": statistics.median(deltas),
        "delta_range": f"{round(min(deltas))}..{round(max(deltas))}",
        "call": _median_or_none(call),
        "secs": statistics.median(r.upload_s for r in res.big),
        "delta_secs": statistics.median(b.upload_s - s.upload_s for b, s in pairs),
        "cpu": statistics.median(r.cpu_s for r in res.big),
        "ok": f"{sum(r.ok for r in res.big + res.small)}/{2 * len(pairs)}",
    }


def print_table(results: dict[str, ClientResults], size_mib: int, repeat: int, bare_mib: float) -> None:
    """The comparison table; ratios are ours/peer."""
    rows = {client: summarize(res) for client, res in results.items()}
    ours = rows.get("ours")

    def ratio(key: str, row: dict[str, Any]) -> str:
        if row is ours:
            return "1"
        if ours is None or ours[key] is None or row[key] is None or row[key] <= 0:
            return "-"
        value = ours[key] / row[key]
        if value <= 0:
            return "~0"
        return f"{value:.1e}" if value < 0.01 else f"{value:.3f}"

    def num(value: float | None, digits: int = 1) -> str:
        return "n/a" if value is None else f"{round(value, digits) + 0.0:.{digits}f}"  # + 0.0: no "-0.0"

    header = (
        f"{'client':<9} {'peak RSS MiB':>12} {'baseline MiB':>12} {'Δ peak MiB':>10} {'min..max':>8} "
        f"{'Δ call MiB':>10} {'Δ/file':>6} {'upload s':>8} {'Δ s':>5} {'CPU s':>5} "
        f"{'ours/peer Δ call':>16} {'ours/peer peak':>14} {'ours/peer s':>11} {'ours/peer CPU':>13} {'sha256 ok':>9}"
    )
    print(f"\nUpload of one {size_mib} MiB file, fresh subprocess per client, median of {repeat}:\n")
    print(header)
    print("-" * len(header))
    for client, row in rows.items():
        per_file = num(None if row["call"] is None else row["call"] / size_mib, 2)
        # The Slack stand-in only hashes the bytes while the sandbox parses multipart: wall times differ by server.
        wall_ratio = "n/c" if client == "slack" else ratio("secs", row)
        print(
            f"{client:<9} {row['peak']:>12.1f} {row['base']:>12.1f} {num(row['delta']):>10} {row['delta_range']:>8} "
            f"{num(row['call']):>10} {per_file:>6} {row['secs']:>8.2f} {num(row['delta_secs'], 2):>5} "
            f"{row['cpu']:>5.2f} {ratio('call', row):>16} {ratio('peak', row):>14} {wall_ratio:>11} "
            f"{ratio('cpu', row):>13} {row['ok']:>9}"
        )
    print(
        f"""
peak RSS   = the client process's ru_maxrss (imports included); bare interpreter (python -c): {bare_mib:.1f} MiB.
baseline   = peak RSS of the same client uploading a {BASELINE_BYTES}-byte file (same imports, same code path).
Δ peak     = peak RSS - baseline, median of per-round pairs (0 when the upload stays below the import peak).
Δ call     = RSS high-water during the upload call over the RSS just before it (peak reset via
             /proc/self/clear_refs), minus the same for the {BASELINE_BYTES}-byte upload; Δ/file = Δ call / file size.
upload s   = wall time of the upload call alone, server time included (the connection was looked up
             before); Δ s = upload s - the baseline upload's s.
CPU s      = the client's own CPU time (user + system) during the upload call.
ratios     = ours/peer, below 1 = ours uses less; n/c = not comparable (the Slack stand-in is another server).
sha256 ok  = uploads (both sizes) whose file arrived with the right size and SHA-256."""
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments; run a child or the whole benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256, help="size of the uploaded file (default: 256)")
    parser.add_argument("--repeat", type=int, default=3, help="uploads per client and size (default: 3)")
    parser.add_argument(
        "--clients",
        default=",".join(ALL_CLIENTS),
        help=f"comma-separated subset of {','.join(ALL_CLIENTS)} (default: all)",
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter for the clients (default: this one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw runs to this file")
    # Internal modes: one client upload, or the Slack stand-in server.
    parser.add_argument("--run-client", choices=ALL_CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--slack-stand-in", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.run_client:
        run_client(args.run_client, args.file, args.url, args.result)
        return 0
    if args.slack_stand_in:
        serve_slack_stand_in(args.slack_stand_in)
        return 0

    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    if not clients or set(clients) - set(ALL_CLIENTS):
        parser.error(f"--clients must be a comma-separated subset of {','.join(ALL_CLIENTS)}")
    if args.size_mib < 1 or args.repeat < 1:
        parser.error("--size-mib and --repeat must be at least 1")

    with tempfile.TemporaryDirectory(prefix="spp-bench-upload-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        (workdir / "airflow_home").mkdir()
        print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {args.size_mib} MiB, repeat={args.repeat}")
        print(f"writing {args.size_mib} MiB of random bytes...", flush=True)
        big, small = workdir / "big-attachment.bin", workdir / "small-attachment.bin"
        expected = {
            big: {"size": args.size_mib * MIB, "sha256": write_random_file(big, args.size_mib * MIB)},
            small: {"size": BASELINE_BYTES, "sha256": write_random_file(small, BASELINE_BYTES)},
        }

        server_env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
        spp_url = slack_url = None
        if SPP_CLIENTS & set(clients):
            spp_url = stack.enter_context(sandbox_process(args.python, workdir, server_env))
        if "slack" in clients:
            port = free_port()
            slack_url = f"http://127.0.0.1:{port}"
            cmd = [args.python, str(Path(__file__).resolve()), "--slack-stand-in", str(port)]
            stack.enter_context(server_process(cmd, f"{slack_url}/_stub/uploads", workdir / "slack.log", server_env))
        env = child_env(workdir, spp_url, slack_url)

        results = {c: ClientResults() for c in clients}
        for rep in range(args.repeat):
            shift = rep % len(clients)
            for client in clients[shift:] + clients[:shift]:
                urls = (spp_url, slack_url)
                small_run = measure(args.python, client, small, expected[small], env, urls, workdir)
                big_run = measure(args.python, client, big, expected[big], env, urls, workdir)
                results[client].small.append(small_run)
                results[client].big.append(big_run)
                print(
                    f"round {rep + 1}/{args.repeat} {client:<8} peak {big_run.maxrss_mib:7.1f} MiB "
                    f"(baseline {small_run.maxrss_mib:6.1f}), {big_run.upload_s:6.2f} s, "
                    f"arrived intact: {big_run.ok and small_run.ok}",
                    flush=True,
                )
        bare = bare_interpreter_mib(args.python, args.repeat)

    print_table(results, args.size_mib, args.repeat, bare)
    if args.json:
        raw = {c: {"big": [vars(r) for r in rs.big], "small": [vars(r) for r in rs.small]} for c, rs in results.items()}
        args.json.write_text(json.dumps({"size_mib": args.size_mib, "runs": raw}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
