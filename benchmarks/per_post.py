"""Time per JSON post to an SPP order: our hook vs raw requests and the HTTP provider, side by side in one run.

Every contender posts the same JSON body (``{"message": ...}``) to seeded order 1001 of one sandbox,
which runs as its own process (``spp-sandbox --port <free> --token bench-fake-token``):

* ``ours``           ``SppHook("spp_bench").create_order_message(1001, MESSAGE)``: input validated, answer
                     parsed into a typed ``MessageResource``, retries armed (the connection's defaults);
* ``requests``       ``session.post(url, json=BODY, headers=..., timeout=...)`` on one ``requests.Session``,
                     then ``raise_for_status()`` and ``.json()``: the least anyone does to get the created
                     message back. Same headers as ours (Accept, Authorization, User-Agent);
* ``requests, no .json()``  the same post without reading the answer as JSON (the bare round trip);
* ``http``           ``HttpHook(method="POST", http_conn_id="http_bench").run(endpoint, json=BODY).json()``;
* ``http.client``    one keep-alive ``http.client.HTTPConnection`` sending the same request (body serialised
                     once), reading the answer's bytes: what the sandbox and loopback alone cost;
* ``sandbox health`` ``http.client`` ``GET /_sandbox/health`` (no auth, no request log, tiny answer).

Each round runs every contender once, in a rotating order, so machine noise hits all of them alike;
``--warmup`` rounds run first, untimed, then ``--rounds`` timed ones. The table shows the median (p50)
and 95th percentile (p95) of the wall time of one call, and ours/peer ratios (below 1 = ours is
faster). The sandbox also logs how long it took to handle each post (``handling_ms`` in its request
log: from the app receiving the request to its response starting), shown per contender so the reader
can see the server is the same for all. Every answer is checked (201, the message text came back).
The sandbox is reset (untimed) every ``--reset-every`` rounds, so its store stays small.

    .venv/bin/python benchmarks/per_post.py [--rounds 400] [--warmup 30] [--json results.json]

Everything talks to 127.0.0.1 only. No figure is asserted: compare rows of the same run only.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench_support import ORDER, TOKEN, bench_connections, http_json, sandbox_process

MESSAGE = "Benchmark: the nightly export landed."
BODY = {"message": MESSAGE}
TIMEOUT_S = 30.0

OURS = "ours"
REQUESTS = "requests"
REQUESTS_NO_JSON = "requests, no .json()"
HTTP = "http"
HTTP_CLIENT = "http.client"
HEALTH = "sandbox health"

#: What each row is, for the table's legend.
DESCRIPTIONS = {
    OURS: "SppHook.create_order_message -> MessageResource",
    REQUESTS: "requests.Session().post(json=...) + raise_for_status() + .json()",
    REQUESTS_NO_JSON: "requests.Session().post(json=...) + raise_for_status()",
    HTTP: "HttpHook(method='POST').run(endpoint, json=...).json()",
    HTTP_CLIENT: "http.client keep-alive POST, same bytes, answer read not parsed",
    HEALTH: "http.client GET /_sandbox/health",
}

Call = Callable[[], None]


@dataclass
class Samples:
    """One contender's timings."""

    call_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.95 = p95)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def prepare_contenders(url: str) -> dict[str, Call]:
    """Import every client, look its connection up, open its session; return one call per contender."""
    import requests
    from airflow.providers.http.hooks.http import HttpHook

    from airflow_provider_spp.hooks.spp import SppHook

    hook = SppHook("spp_bench")
    session = hook.get_conn()
    headers = {
        "Accept": "application/json",
        "Authorization": f"Bearer {TOKEN}",
        "User-Agent": str(session.headers["User-Agent"]),  # the same bytes on the wire as ours
    }
    post_url = f"{url}/api/order_messages/{ORDER}"
    raw = requests.Session()
    http_hook = HttpHook(method="POST", http_conn_id="http_bench")
    host, port = url.removeprefix("http://").split(":")
    floor = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT_S)
    health = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT_S)
    body_bytes = json.dumps(BODY).encode()
    floor_headers = {**headers, "Content-Type": "application/json"}

    def ours() -> None:
        created = hook.create_order_message(ORDER, MESSAGE)
        assert created.message == MESSAGE

    def raw_requests() -> None:
        response = raw.post(post_url, json=BODY, headers=headers, timeout=TIMEOUT_S)
        response.raise_for_status()
        assert response.json()["message"] == MESSAGE

    def raw_requests_no_json() -> None:
        response = raw.post(post_url, json=BODY, headers=headers, timeout=TIMEOUT_S)
        response.raise_for_status()
        assert response.status_code == 201

    def http_provider() -> None:
        response = http_hook.run(f"api/order_messages/{ORDER}", json=BODY)
        assert response.json()["message"] == MESSAGE

    def http_client() -> None:
        floor.request("POST", f"/api/order_messages/{ORDER}", body=body_bytes, headers=floor_headers)
        answer = floor.getresponse()
        answer.read()
        assert answer.status == 201

    def sandbox_health() -> None:
        health.request("GET", "/_sandbox/health")
        answer = health.getresponse()
        answer.read()
        assert answer.status == 200

    return {
        OURS: ours,
        REQUESTS: raw_requests,
        REQUESTS_NO_JSON: raw_requests_no_json,
        HTTP: http_provider,
        HTTP_CLIENT: http_client,
        HEALTH: sandbox_health,
    }


def attribute_server_times(url: str, posters: list[str], results: dict[str, Samples]) -> bool:
    """Give each logged post's handling time to the contender that sent it (the log is in arrival order)."""
    posts = [
        r
        for r in http_json("GET", f"{url}/_sandbox/requests")
        if r["method"] == "POST" and r["path"] == f"/api/order_messages/{ORDER}"
    ]
    if len(posts) != len(posters) or any(p["status"] != 201 or p.get("handling_ms") is None for p in posts):
        return False
    for name, post in zip(posters, posts, strict=True):
        results[name].server_ms.append(float(post["handling_ms"]))
    return True


def run(url: str, rounds: int, warmup: int, reset_every: int) -> tuple[dict[str, Samples], bool]:
    """All rounds; returns the samples and whether the server times could be attributed."""
    calls = prepare_contenders(url)
    names = list(calls)
    results = {name: Samples() for name in names}
    attributed = True
    for _ in range(warmup):
        for call in calls.values():
            call()
    http_json("POST", f"{url}/_sandbox/reset")
    posters: list[str] = []
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            call = calls[name]
            start = time.perf_counter_ns()
            call()
            results[name].call_ms.append((time.perf_counter_ns() - start) / 1e6)
            if name != HEALTH:
                posters.append(name)
        if (index + 1) % reset_every == 0 or index + 1 == rounds:
            attributed = attribute_server_times(url, posters, results) and attributed
            posters = []
            http_json("POST", f"{url}/_sandbox/reset")
    return results, attributed


def summary(results: dict[str, Samples]) -> dict[str, dict[str, float | None]]:
    """p50/p95 of every contender (call and server times)."""
    out: dict[str, dict[str, float | None]] = {}
    for name, s in results.items():
        out[name] = {
            "p50_ms": statistics.median(s.call_ms),
            "p95_ms": percentile(s.call_ms, 0.95),
            "min_ms": min(s.call_ms),
            "server_p50_ms": statistics.median(s.server_ms) if s.server_ms else None,
            "server_p95_ms": percentile(s.server_ms, 0.95) if s.server_ms else None,
            "n": len(s.call_ms),
        }
    return out


def print_table(figures: dict[str, dict[str, float | None]], rounds: int, attributed: bool) -> None:
    """The comparison table; ratios are ours/peer."""
    ours = figures[OURS]

    def ratio(key: str, row: dict[str, float | None]) -> str:
        mine, theirs = ours[key], row[key]
        return f"{mine / theirs:.3f}" if mine is not None and theirs else "-"

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    header = (
        f"{'contender':<22} {'p50 ms':>8} {'p95 ms':>8} {'min ms':>8} {'ours/peer p50':>13} {'ours/peer p95':>13} "
        f"{'server p50 ms':>13} {'server p95 ms':>13}"
    )
    print(f"\nOne JSON post to order {ORDER}, {rounds} timed rounds (every contender once per round, rotating):\n")
    print(header)
    print("-" * len(header))
    for name, row in figures.items():
        print(
            f"{name:<22} {ms(row['p50_ms']):>8} {ms(row['p95_ms']):>8} {ms(row['min_ms']):>8} "
            f"{ratio('p50_ms', row):>13} {ratio('p95_ms', row):>13} "
            f"{ms(row['server_p50_ms']):>13} {ms(row['server_p95_ms']):>13}"
        )
    print()
    for name, text in DESCRIPTIONS.items():
        print(f"{name:<22} {text}")
    print(
        "server ms = the sandbox's own handling time of that contender's posts (its request log's handling_ms,\n"
        "            from the app receiving the request to its response starting); '-' for the health check,\n"
        "            which is not logged."
    )
    if not attributed:
        print("note: the sandbox's log did not match the posts sent; server times are incomplete.")


def main(argv: list[str] | None = None) -> int:
    """Start the sandbox, run the rounds, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400, help="timed rounds (default: 400)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed rounds first (default: 30)")
    parser.add_argument("--reset-every", type=int, default=50, help="reset the sandbox every N rounds (default: 50)")
    parser.add_argument("--json", type=Path, default=None, help="also write the samples and figures to this file")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0 or args.reset_every < 1:
        parser.error("--rounds and --reset-every must be at least 1, --warmup at least 0")

    with tempfile.TemporaryDirectory(prefix="spp-bench-post-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        server_env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
        url = stack.enter_context(sandbox_process(sys.executable, workdir, server_env))
        for key in [k for k in os.environ if k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))]:
            del os.environ[key]
        os.environ.update(
            {"AIRFLOW_HOME": str(workdir / "airflow_home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
            | bench_connections(url, TIMEOUT_S)
        )
        print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, sandbox at {url}", flush=True)
        results, attributed = run(url, args.rounds, args.warmup, args.reset_every)

    figures = summary(results)
    print_table(figures, args.rounds, attributed)
    if args.json:
        raw = {name: vars(s) for name, s in results.items()}
        args.json.write_text(json.dumps({"rounds": args.rounds, "figures": figures, "samples": raw}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
