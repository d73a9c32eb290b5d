"""The hooks page's examples, as functions a test calls against the sandbox (tests/docs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow_provider_spp.hooks import SppAsyncHook, SppHook


def sync_tour(order: str, report_path: str, since: datetime) -> dict[str, Any]:
    """Every call of SppHook once, as the hooks guide shows them."""
    # [START howto_hook_spp_sync]
    with SppHook("spp_default") as hook:  # one pooled requests.Session, closed on exit
        created = hook.create_order_message(order, "Report attached", attachments=[report_path])
        print(created.id, created.files, created.order.number if created.order else None)  # a MessageResource
        texts = [message.message for message in hook.list_order_messages(order)]  # newest first, all pages
        found = hook.find_order_message(order, "Report attached", created_since=since)
        staff_note = hook.find_order_message_where(order, lambda m: m.staff_only, created_since=since)
        details = hook.get_order(order)  # by ID or number
        working = [o.number for o in hook.list_orders(status="Working")]
        ok, status = hook.test_connection()
        hook.delete_order_message(created.id)
    # [END howto_hook_spp_sync]
    return {
        "created": created,
        "texts": texts,
        "found": found,
        "staff_note": staff_note,
        "order": details,
        "working": working,
        "test": (ok, status),
    }


async def async_tour(order: str, report_path: str, since: datetime) -> dict[str, Any]:
    """The same calls on asyncio, as a trigger or an async notifier makes them."""
    # [START howto_hook_spp_async]
    async with SppAsyncHook("spp_default") as hook:  # one pooled httpx.AsyncClient
        details = await hook.get_order(order)
        texts = [message.message async for message in hook.list_order_messages(order)]
        numbers = [o.number async for o in hook.list_orders(sort="last_message_at:desc")]
        await hook.create_order_message(order, "Late report", staff_only=True, attachments=[report_path])
        found = await hook.find_order_message(order, "Late report", created_since=since)
        if found is not None:
            await hook.delete_order_message(found.id)
    # [END howto_hook_spp_async]
    return {"order": details, "texts": texts, "numbers": numbers, "found": found, "uploaded": found and found.files}
