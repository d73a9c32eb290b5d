"""Hook-level lineage: a posted message reads its attachment files and writes to the Wayfront order.

Reported to Airflow's hook lineage collector (common-compat's, which covers Airflow 3.1 to 3.4), which
OpenLineage reads when a task ends. Only locations go in: never the message text, a file's content, a
user, a password or a query string.

The order is the asset ``wayfront://<workspace host[:port]>/orders/<order>``: OpenLineage names a
dataset by a namespace (``scheme://authority``: here the workspace) and a name (the path), and a
scheme of its own tells a Wayfront order from the web page or API call of the same host, whose
``https://`` URLs would look like any other web resource. Files keep their own URI: ``file:///...``
for local paths, ``s3://bucket/key`` (and the like) for object storage; bytes in memory have no
location and are left out.
"""

from __future__ import annotations

import logging
import os
import pathlib
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_spp._internal.attachments import is_object_storage_path
from airflow_provider_spp._internal.links import order_segment, workspace_root
from airflow_provider_spp._internal.urls import authority, port_of

__all__ = ["ORDER_SCHEME", "attachment_uri", "order_asset_uri", "report_message_lineage", "report_reply_lineage"]

log = logging.getLogger(__name__)

ORDER_SCHEME = "wayfront"


def order_asset_uri(base_url: str | None, order: str | int | None) -> str | None:
    """``wayfront://<host[:port]>/orders/<order>`` for an order of a workspace; None when either is unknown."""
    root, segment = workspace_root(base_url), order_segment(order)
    return f"{ORDER_SCHEME}://{urlsplit(root).netloc}/orders/{segment}" if root and segment else None


def attachment_uri(item: Any) -> str | None:
    """Where an attachment comes from, as a URI without credentials or query; None for bytes in memory."""
    if isinstance(item, tuple) or not isinstance(item, str | os.PathLike):
        return None
    text = str(item)
    if is_object_storage_path(item) or (isinstance(item, str) and "://" in item):
        parts = urlsplit(text)
        if not parts.scheme or not parts.hostname:
            return None
        return urlunsplit((parts.scheme, authority(parts.hostname, port_of(parts)), parts.path, "", ""))
    if not text.strip():
        return None
    return pathlib.Path(os.fspath(item)).expanduser().absolute().as_uri()


def report_message_lineage(hook: Any, base_url: str | None, order: str | int, attachments: Iterable[Any]) -> None:
    """Tell the collector the hook read the attachment files and wrote to the order; never fails the task."""
    output = order_asset_uri(base_url, order)
    if output is None:
        return
    try:
        collector = _collector()
        for uri in dict.fromkeys(u for u in map(attachment_uri, attachments or ()) if u):
            collector.add_input_asset(context=hook, uri=uri)
        collector.add_output_asset(context=hook, uri=output)
    except Exception as err:
        log.warning("Could not report lineage for the Wayfront order (%s)", type(err).__name__)


def report_reply_lineage(hook: Any, base_url: str | None, order: str | int) -> None:
    """Tell the collector the hook read a message from the order (a sensor's reply); never fails the task."""
    uri = order_asset_uri(base_url, order)
    if uri is None:
        return
    try:
        _collector().add_input_asset(context=hook, uri=uri)
    except Exception as err:
        log.warning("Could not report lineage for the Wayfront order (%s)", type(err).__name__)


def _collector() -> Any:
    """Airflow's hook lineage collector (a no-op one unless a lineage reader such as OpenLineage is installed)."""
    from airflow.providers.common.compat.lineage.hook import get_hook_lineage_collector

    return get_hook_lineage_collector()
