"""The "Open order in Wayfront" extra link: the order's page in the workspace, for the task's page in the UI.

Airflow 3 calls ``get_link`` in the task process at the end of each try, with the task that ran, and
stores what it returns under the link's own XCom key (``_link_WayfrontOrderLink``); the API server
shows that, whichever worker ran the task. So the operator keeps the URL on itself while it runs
(:func:`keep_order_link`, where it knows the rendered order and the connection's host) and the link
returns it: no XCom round trip of its own. A task that keeps it in XCom instead (the sensor, whose
deferred tries resume in a fresh task object) uses :func:`persist_order_link`, like the official
providers (Databricks' job-run link, Google's console links), and the link reads it back.

The web address of an order is an assumption: Wayfront's docs give only the API routes. A workspace
serves its web app on the same host as ``/api`` (``https://acme.wayfront.com``), and like a stock
Laravel app it names the order's page after the API resource: ``<workspace>/orders/<order>``, with the
order number or ID as given to the task.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from airflow.providers.common.compat.sdk import BaseOperatorLink

from airflow_provider_spp._internal.urls import authority

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator, TaskInstanceKey

__all__ = [
    "LINK_NAME",
    "ORDER_URL_ATTR",
    "ORDER_URL_KEY",
    "WayfrontOrderLink",
    "keep_order_link",
    "order_segment",
    "order_url",
    "persist_order_link",
    "workspace_root",
]

log = logging.getLogger(__name__)

LINK_NAME = "Open order in Wayfront"
#: The XCom key the task keeps the order's URL under (read back by :class:`WayfrontOrderLink`).
ORDER_URL_KEY = "wayfront_order_url"
#: The attribute a running task keeps the order's URL in (None: no link), read by :class:`WayfrontOrderLink`.
ORDER_URL_ATTR = "_wayfront_order_url"
_NOT_KEPT = object()


def workspace_root(base_url: str | None) -> str | None:
    """``scheme://host[:port]`` of a workspace URL: never a user, password, path or query; None if not http(s)."""
    if not base_url:
        return None
    parts = urlsplit(base_url)
    try:
        hostname, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not hostname:
        return None
    return f"{parts.scheme.lower()}://{authority(hostname, port)}"


def order_segment(order: str | int | None) -> str | None:
    """An order ID (positive int) or number as one percent-encoded path segment; None when it is not one."""
    if isinstance(order, bool) or not isinstance(order, str | int) or (isinstance(order, int) and order <= 0):
        return None
    reference = str(order).strip()
    return quote(reference, safe="") if reference.strip(".") else None


def order_url(base_url: str | None, order: str | int | None) -> str | None:
    """The order's page in the workspace web app, ``<workspace>/orders/<order>``; None when either is unknown."""
    root, segment = workspace_root(base_url), order_segment(order)
    return f"{root}/orders/{segment}" if root and segment else None


def persist_order_link(context: Any, base_url: str | None, order: str | int | None) -> str | None:
    """Keep the order's URL in this task instance's XCom for the extra link; never fails the task."""
    url = order_url(base_url, order)
    ti = context.get("ti") if hasattr(context, "get") else None
    if url is None or ti is None:
        return None
    try:
        ti.xcom_push(key=ORDER_URL_KEY, value=url)
    except Exception as err:
        log.warning("Could not keep the link to the Wayfront order in XCom (%s)", type(err).__name__)
        return None
    return url


def keep_order_link(task: Any, base_url: str | None, order: str | int | None) -> str | None:
    """Keep the order's URL on the running task for the extra link (no round trip); None when there is none."""
    url = order_url(base_url, order)
    setattr(task, ORDER_URL_ATTR, url)
    return url


class WayfrontOrderLink(BaseOperatorLink):
    """Operator extra link "Open order in Wayfront": the order's page, as the task kept it (on itself or in XCom)."""

    name = LINK_NAME

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The URL the task kept on itself or in XCom, or "" (no link shown) when it kept none."""
        url = getattr(operator, ORDER_URL_ATTR, _NOT_KEPT)
        if url is _NOT_KEPT:
            from airflow.providers.common.compat.sdk import XCom

            url = XCom.get_value(key=ORDER_URL_KEY, ti_key=ti_key)
        return url if isinstance(url, str) and url.startswith(("https://", "http://")) else ""
