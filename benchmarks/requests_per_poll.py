"""Requests per poll when watching SPP orders for new messages: SppOrderActivityTrigger vs per-order polling.

For 10 and 1,000 watched orders (``--orders 10,1000``) with 1 new message, side by side:

* **ours**: one ``SppOrderActivityTrigger`` poll: the orders whose ``last_message_at`` moved since the last
  poll (``filters[last_message_at][$gte]``, sorted newest first; read as if the server ignored both), then
  the messages of those orders. The first poll (the baseline) reads the whole orders listing once, to learn
  whether the workspace really sorts it (ties, as in these generated orders, prove nothing);
* **per-order polling**: what one ``HttpSensorTrigger``/``HttpEventTrigger`` per order (the HTTP
  provider's way) sends: a GET of each watched order's messages on every poll. Measured by sending
  exactly those GETs (first page, ``limit=1``) with the same async client.

Counts come from the sandbox's request log (every request that reached it). Also shown: the first
poll (the baseline) and an idle poll (nothing new). Everything talks to 127.0.0.1; the token is fake.
Nothing is asserted on the figures.

    .venv/bin/python benchmarks/requests_per_poll.py [--orders 10,1000] [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="spp-bench-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

TOKEN = "bench-fake-token"  # a fake token for the local sandbox


async def measure(orders: int) -> dict[str, Any]:
    """Counts (and wall ms) of each kind of poll for ``orders`` watched orders."""
    from airflow_provider_spp.hooks.spp import SppAsyncHook
    from airflow_provider_spp.sandbox import SandboxServer
    from airflow_provider_spp.triggers.order_messages import SppOrderActivityTrigger

    with SandboxServer(TOKEN) as server:
        os.environ["AIRFLOW_CONN_SPP_DEFAULT"] = server.connection_json()
        seeded = len(server.store.orders())
        server.store.add_orders(max(0, orders - seeded), last_message_at=datetime.now(UTC) - timedelta(days=2))
        watched = [o["id"] for o in server.store.orders()][:orders]
        trigger = SppOrderActivityTrigger()
        figures: dict[str, Any] = {"orders": len(watched)}
        async with SppAsyncHook() as hook:

            async def ours(label: str, cursor: Any) -> Any:
                server.store.clear_requests()
                start = time.perf_counter()
                result = await trigger.poll(hook, cursor)
                figures[f"ours_{label}"] = len(server.requests())
                figures[f"ours_{label}_ms"] = round((time.perf_counter() - start) * 1000, 1)
                figures[f"ours_{label}_events"] = len(result.events)
                return result.cursor

            async def per_order(label: str) -> None:
                server.store.clear_requests()
                start = time.perf_counter()
                for order_id in watched:
                    async for _ in hook.list_order_messages(order_id, per_page=1):
                        break
                figures[f"peer_{label}"] = len(server.requests())
                figures[f"peer_{label}_ms"] = round((time.perf_counter() - start) * 1000, 1)

            cursor = await ours("baseline", None)
            cursor = await ours("idle", cursor)
            await per_order("idle")
            server.post_as_client(watched[len(watched) // 2], "one new message")
            await ours("one_new", cursor)
            await per_order("one_new")
    return figures


def main() -> int:
    """Print the table (and optionally write JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", default="10,1000", help="comma-separated watched-order counts")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    rows = [asyncio.run(measure(int(n))) for n in args.orders.split(",")]
    print("Requests per poll, watching every order of a workspace; 1 new message (one order moved)")
    print()
    print(
        "| watched orders | ours: 1 new message | per-order polling: 1 new message | ours/peer "
        "| ours: idle poll | per-order: idle poll | ours: first poll (baseline) | ours ms | per-order ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        ratio = row["ours_one_new"] / row["peer_one_new"] if row["peer_one_new"] else float("nan")
        print(
            f"| {row['orders']} | {row['ours_one_new']} ({row['ours_one_new_events']} event) "
            f"| {row['peer_one_new']} | {ratio:.3f} | {row['ours_idle']} | {row['peer_idle']} "
            f"| {row['ours_baseline']} | {row['ours_one_new_ms']} | {row['peer_one_new_ms']} |"
        )
    print()
    print(f"python {sys.version.split()[0]}; counts are requests the sandbox received (its request log).")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
