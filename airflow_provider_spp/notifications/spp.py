"""SppOrderMessageNotifier: post a note to an SPP order from a DAG or task callback (e.g. on failure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import BaseNotifier

from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.templating import SppTemplating


class SppOrderMessageNotifier(SppTemplating, BaseNotifier):
    """
    Post a message to an SPP order when a callback fires, e.g. ``on_failure_callback``.

    Staff-only by default: a failure alert is for the agency's team, not its client.

    :param order: Order ID or order number. Templated.
    :param message: The text or a Jinja template, e.g. ``"Run {{ run_id }} failed: {{ exception }}"``. Templated.
        ``order`` and ``message`` render as text even on a native-rendering DAG.
    :param user_id: Post as this SPP user (default: the token's user). Templated.
    :param staff_only: Whether the client is kept from seeing it (default True). Templated.
    :param spp_conn_id: The ``spp`` connection to use.
    """

    template_fields: Sequence[str] = ("order", "message", "user_id", "staff_only")

    def __init__(
        self,
        *,
        order: str | int,
        message: str,
        user_id: int | str | None = None,
        staff_only: bool | str = True,
        spp_conn_id: str = SppHook.default_conn_name,
        api_version: str | None = None,
    ) -> None:
        super().__init__()
        self.order = order
        self.message = message
        self.user_id = user_id
        self.staff_only = staff_only
        self.spp_conn_id = spp_conn_id
        self.api_version = api_version

    def notify(self, context: Any) -> None:
        """Post the rendered message; a callback's own retries are Airflow's, so nothing is re-sent here."""
        with SppHook(spp_conn_id=self.spp_conn_id, api_version=self.api_version) as hook:
            created = hook.create_order_message(
                self.order, self.message, user_id=self.user_id, staff_only=self.staff_only
            )
        self.log.info("Posted notification message %d to SPP order %s", created.id, self.order)


send_spp_order_message = SppOrderMessageNotifier
