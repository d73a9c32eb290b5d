"""Data-triggered notification: when the nightly export (an Asset) is updated, tell the clients it concerns.

``spp_nightly_export`` stands for the pipeline: it writes the export and updates the ``spp_nightly_export``
asset, saying in the asset event which SPP orders the file is for. ``spp_asset_notification`` is
scheduled on that asset: for each order named in the event it posts a message with the file attached
(one mapped task per order, so each post is deduplicated on its own if a try is repeated).
"""

from __future__ import annotations

import csv
import pathlib
import tempfile
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, task

from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator

NIGHTLY_EXPORT = Asset(name="spp_nightly_export", uri="file:///tmp/spp-exports/nightly-rankings.csv")

with DAG(
    dag_id="spp_nightly_export",
    description="Stand-in pipeline: writes the nightly export and updates its asset",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["spp", "example"],
):

    @task(outlets=[NIGHTLY_EXPORT])
    def export_rankings(*, outlet_events: Any = None, run_id: str | None = None) -> str:
        """Write the export and say, in the asset event, which orders it is for."""
        folder = pathlib.Path(tempfile.gettempdir()) / "spp-exports"
        folder.mkdir(exist_ok=True)
        path = folder / "nightly-rankings.csv"
        with path.open("w", newline="") as out:
            csv.writer(out).writerows([["keyword", "rank"], ["seo agency", 3], ["local seo", 7]])
        outlet_events[NIGHTLY_EXPORT].extra = {"path": str(path), "orders": ["E4A269FC", "00C0FFEE"], "run": run_id}
        return str(path)

    export_rankings()


with DAG(
    dag_id="spp_asset_notification",
    description="Post the fresh export to the SPP orders it concerns, file attached",
    schedule=[NIGHTLY_EXPORT],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["spp", "example"],
):

    @task(inlets=[NIGHTLY_EXPORT])
    def deliveries(*, triggering_asset_events: Any = None, inlet_events: Any = None) -> list[dict[str, Any]]:
        """One post per order named by the asset events that started this run (manual run: the latest)."""
        events = list(triggering_asset_events[NIGHTLY_EXPORT]) if triggering_asset_events else []
        if not events:
            events = list(inlet_events[NIGHTLY_EXPORT][-1:])
        return [
            {"order": order, "attachments": [event.extra["path"]]}
            for event in events
            for order in event.extra.get("orders", [])
        ]

    CreateOrderMessageOperator.partial(
        task_id="tell_client",
        message="Your nightly keyword rankings are ready: the file is attached.",
    ).expand_kwargs(deliveries())
