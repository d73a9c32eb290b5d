"""Triggers that earlier releases serialized into users' metadata DBs still resolve, rebuild and run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from airflow.sdk.module_loading import import_string  # as the triggerer resolves a stored class path

from airflow_provider_spp.sandbox import SandboxServer
from airflow_provider_spp.triggers.order_activity import SppOrderActivityTrigger
from airflow_provider_spp.triggers.order_message import SppOrderMessageTrigger
from tests.integration.test_triggers import MemoryAssetStore

ORDER = "E4A269FC"

#: (class path, kwargs) as Airflow stored them for the 0.1 release: a deferred sensor's wait, an asset watcher.
STORED_MESSAGE_TRIGGER = (
    "airflow_provider_spp.triggers.order_messages.SppOrderMessageTrigger",
    {
        "order": ORDER,
        "spp_conn_id": "spp_default",
        "after_message_id": 1,
        "since": None,
        "from_client": True,
        "contains": None,
        "pattern": None,
        "return_text": False,
        "poke_interval": 0.1,
        "end_time": None,
        "api_version": None,
    },
)
STORED_ACTIVITY_TRIGGER = (
    "airflow_provider_spp.triggers.order_messages.SppOrderActivityTrigger",
    {
        "spp_conn_id": "spp_default",
        "from_client": True,
        "orders": None,
        "statuses": None,
        "poll_interval": 0.1,
        "lookback": 120.0,
        "api_version": None,
    },
)


@pytest.mark.parametrize(
    ("stored", "cls"),
    [(STORED_MESSAGE_TRIGGER, SppOrderMessageTrigger), (STORED_ACTIVITY_TRIGGER, SppOrderActivityTrigger)],
    ids=["message", "activity"],
)
def test_stored_classpaths_resolve_and_serialize_back_unchanged(stored: tuple[str, dict[str, Any]], cls: type) -> None:
    classpath, kwargs = stored
    trigger = import_string(classpath)(**kwargs)
    assert type(trigger) is cls
    # The same class path and kwargs: an asset watcher, known by both, is not replaced on upgrade.
    assert trigger.serialize() == (classpath, kwargs)


@pytest.mark.integration
def test_stored_message_trigger_runs(spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=2, retry_backoff=0.01))
    classpath, kwargs = STORED_MESSAGE_TRIGGER
    followed = spp_sandbox.store.create_message(order_id=1001, message="the post the wait follows", user_id=3)
    assert followed.id == kwargs["after_message_id"]
    reply = spp_sandbox.post_as_client(ORDER, "a reply")

    async def first_event() -> dict[str, Any]:
        run = import_string(classpath)(**kwargs).run()
        try:
            return (await asyncio.wait_for(anext(run), 10)).payload
        finally:
            await run.aclose()

    event = asyncio.run(first_event())
    assert (event["status"], event["message_id"], event["author"]) == ("success", reply.id, "client")


@pytest.mark.integration
def test_stored_activity_trigger_runs(spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=2, retry_backoff=0.01))
    classpath, kwargs = STORED_ACTIVITY_TRIGGER
    trigger = import_string(classpath)(**kwargs)
    trigger.asset_state_store = MemoryAssetStore()  # what Airflow 3.3's triggerer injects for a watched asset

    async def baseline_then_one_event() -> tuple[int, dict[str, Any]]:
        run = trigger.run()
        pending = asyncio.ensure_future(anext(run))
        try:
            await asyncio.sleep(0.5)  # the baseline: existing messages are not news
            assert not pending.done()
            reply = spp_sandbox.post_as_client(ORDER, "a new reply")
            return reply.id, (await asyncio.wait_for(pending, 10)).payload
        finally:
            pending.cancel()
            await run.aclose()

    reply_id, event = asyncio.run(baseline_then_one_event())
    assert (event["message_id"], event["author"], event["order_number"]) == (reply_id, "client", ORDER)
