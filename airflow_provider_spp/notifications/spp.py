"""SppOrderMessageNotifier: post a note to an SPP order from a DAG or task callback (e.g. on failure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseNotifier

from airflow_provider_spp.hooks.spp import SppHook

if TYPE_CHECKING:
    import jinja2


class SppOrderMessageNotifier(BaseNotifier):
    """
    Post a message to an SPP order when a callback fires, e.g. ``on_failure_callback``.

    Staff-only by default: a failure alert is for the agency's team, not its client.

    :param order: Order ID or order number. Templated.
    :param message: The text or a Jinja template, e.g. ``"Run {{ run_id }} failed: {{ exception }}"``. Templated.
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

    def render_template_fields(self, context: Any, jinja_env: jinja2.Environment | None = None) -> None:
        """Render as every notifier does, also where the callback's DAG has no template environment.

        A deployment runs DAG-level callbacks in the DAG processor with the parsed DAG, which renders
        with the DAG's own environment. ``dag.test()`` (Airflow 3.3) hands them a ``SerializedDAG``
        instead, which has no ``get_template_env``; there the fields render in a sandboxed environment
        that, like a DAG's, fails on undefined names (the DAG's own macros and filters are not available).
        """
        dag = context.get("dag") if hasattr(context, "get") else None
        if jinja_env is None and dag is not None and not callable(getattr(dag, "get_template_env", None)):
            import jinja2.sandbox

            jinja_env = jinja2.sandbox.SandboxedEnvironment(undefined=jinja2.StrictUndefined, cache_size=0)
        super().render_template_fields(context, jinja_env)

    def notify(self, context: Any) -> None:
        """Post the rendered message; a callback's own retries are Airflow's, so nothing is re-sent here."""
        with SppHook(spp_conn_id=self.spp_conn_id, api_version=self.api_version) as hook:
            created = hook.create_order_message(
                self.order, self.message, user_id=self.user_id, staff_only=self.staff_only
            )
        self.log.info("Posted notification message %d to SPP order %s", created.id, self.order)


send_spp_order_message = SppOrderMessageNotifier
