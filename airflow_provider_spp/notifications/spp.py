"""SppOrderMessageNotifier: post a note to an SPP order from a DAG or task callback (e.g. on failure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseNotifier

from airflow_provider_spp._internal.attachments import AttachmentLike
from airflow_provider_spp._internal.templating import SppTemplating
from airflow_provider_spp.exceptions import SppError
from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.hooks.spp_async import SppAsyncHook

if TYPE_CHECKING:
    import jinja2

__all__ = ["SppOrderMessageNotifier", "send_spp_order_message"]


class SppOrderMessageNotifier(SppTemplating, BaseNotifier):
    """
    Post a message to a Wayfront (formerly Service Provider Pro, SPP) order when a callback fires.

    E.g. from ``on_failure_callback``.

    Staff-only by default: a failure alert is for the agency's team, not its client.

    :param order: Order ID or order number. Templated.
    :param message: The text or a Jinja template, e.g. ``"Run {{ run_id }} failed: {{ exception }}"``. Templated.
        ``order`` and ``message`` render as text even on a native-rendering DAG.
    :param user_id: Post as this SPP user (default: the token's user). Templated.
    :param staff_only: Whether the client is kept from seeing it (default True). Templated.
    :param spp_conn_id: The ``spp`` connection to use.
    :param attachments: Files to attach (paths, ObjectStoragePaths or ``(name, bytes)``). Templated.
    :param hitl_link: Under a human-in-the-loop operator's ``notifiers=[...]``, append the link to its
        required-action page (default True).
    :param airflow_base_url: Base URL of the Airflow UI for that link (default: ``[api] base_url``).
    :param kwargs: Passed to ``BaseNotifier`` (e.g. the ``context`` a Deadline's ``AsyncCallback`` gives).

    Works as a DAG or task callback (``notify``), on the triggerer (``async_notify``: a Deadline's
    ``AsyncCallback(SppOrderMessageNotifier, kwargs={...})``), and as a HITL operator's notifier. An SPP
    error never fails the task or the callback machinery: it is logged with SPP's request id.
    """

    template_fields: Sequence[str] = ("order", "message", "user_id", "staff_only", "attachments")

    def __init__(
        self,
        *,
        order: str | int,
        message: str,
        user_id: int | str | None = None,
        staff_only: bool | str = True,
        spp_conn_id: str = SppHook.default_conn_name,
        api_version: str | None = None,
        attachments: Iterable[AttachmentLike] | None = None,
        hitl_link: bool = True,
        airflow_base_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.keep_message_fields(order, message, user_id, staff_only, spp_conn_id, api_version)
        self.attachments = attachments
        self.hitl_link = hitl_link
        self.airflow_base_url = airflow_base_url

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
        message = self.message_for(context)
        try:
            with SppHook(spp_conn_id=self.spp_conn_id, api_version=self.api_version) as hook:
                created = hook.create_order_message(
                    self.order, message, user_id=self.user_id, staff_only=self.staff_only, attachments=self.attachments
                )
        except SppError as err:
            self.log_failure(err)
            return
        self.log.info("Posted notification message %d to SPP order %s", created.id, self.order)

    async def async_notify(self, context: Any) -> None:
        """Post the rendered message from the triggerer (Deadline alerts), without blocking its event loop."""
        message = self.message_for(context)
        try:
            async with SppAsyncHook(self.spp_conn_id, api_version=self.api_version) as hook:
                created = await hook.create_order_message(
                    self.order, message, user_id=self.user_id, staff_only=self.staff_only, attachments=self.attachments
                )
        except SppError as err:
            self.log_failure(err)
            return
        self.log.info("Posted notification message %d to SPP order %s", created.id, self.order)

    def message_for(self, context: Any) -> str:
        """The rendered message, plus the required-action link when a HITL operator is notifying."""
        task = context.get("task") if hasattr(context, "get") else None
        make_link = getattr(type(task), "generate_link_to_ui_from_context", None)
        if not self.hitl_link or make_link is None or not isinstance(self.message, str):
            return self.message
        try:
            link = make_link(context=context, base_url=self.airflow_base_url)
        except (ValueError, KeyError, AttributeError) as err:
            self.log.warning("No link to the required action in the SPP message: %s", err)
            return self.message
        return f"{self.message.rstrip()}\n\nRespond in Airflow: {link}"

    def log_failure(self, err: SppError) -> None:
        """Log a failed post with SPP's request id and status (never the token or the message text)."""
        self.log.error(
            "Could not post the notification to SPP order %s (status %s, request id %s): %s",
            self.order,
            getattr(err, "status_code", None) or "none",
            getattr(err, "request_id", None) or "none",
            err,
        )


send_spp_order_message = SppOrderMessageNotifier
