"""Templating shared by the operator and the notifier: order and message render as text, files only for message."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeGuard

if TYPE_CHECKING:
    import jinja2

log = logging.getLogger(__name__)

#: The endings that make a message a template file (the operators' ``template_ext``).
MESSAGE_TEMPLATE_EXT: tuple[str, ...] = (".txt", ".md", ".j2", ".html")


def names_a_template_file(value: Any, endings: Sequence[str]) -> TypeGuard[str]:
    """Whether a value is read as a template file: it has one of these endings and no spaces."""
    return (
        isinstance(value, str)
        and bool(endings)
        and value.endswith(tuple(endings))
        and not any(c.isspace() for c in value)
    )


class SppTemplating:
    """Mix into a ``BaseOperator`` or ``BaseNotifier`` (first in the bases) to render SPP fields safely.

    - ``TEXT_FIELDS`` render to text even when the DAG (or, from Airflow 3.2, the operator) renders
      native objects: the order number ``12345E67`` must not become a float.
    - Only ``TEMPLATE_FILE_FIELDS`` may name a template file, and only when the value looks like a file
      name (a template extension, no spaces); an attachment called ``notes.md`` is never read.
    - Everything else renders as Airflow renders it (native objects on a native DAG).

    It overrides Airflow's public ``render_template``, which Airflow calls for each templated field in
    declared order, both from ``render_template_fields`` and, for a mapped task, straight from the
    unmapped task; Airflow then sets the rendered values on the object itself.
    """

    TEXT_FIELDS: ClassVar[tuple[str, ...]] = ("order", "message")
    TEMPLATE_FILE_FIELDS: ClassVar[tuple[str, ...]] = ()

    template_fields: Sequence[str]
    template_ext: Sequence[str]

    def keep_message_fields(
        self,
        order: str | int,
        message: str,
        user_id: int | str | None,
        staff_only: bool | str | None,
        spp_conn_id: str,
        api_version: str | None,
    ) -> None:
        """Keep what to post, as given (templates render later), and the connection to post through."""
        self.order = order
        self.message = message
        self.user_id = user_id
        self.staff_only = staff_only
        self.spp_conn_id = spp_conn_id
        self.api_version = api_version

    def names_a_template_file(self, value: Any) -> TypeGuard[str]:
        """Whether a value is read as a template file: it has a template extension and no spaces."""
        return names_a_template_file(value, self.template_ext)

    def resolve_template_files(self) -> None:
        """Load the file-capable fields from their template files when they name one; nothing else."""
        for field in self.TEMPLATE_FILE_FIELDS:
            value = getattr(self, field, None)
            if self.names_a_template_file(value):
                env = self.get_template_env()
                try:
                    setattr(self, field, env.loader.get_source(env, value)[0])  # type: ignore[union-attr]
                except Exception:
                    log.exception("Failed to resolve template field %r", field)
        self.prepare_template()

    def render_template(
        self,
        content: Any,
        context: Any,
        jinja_env: jinja2.Environment | None = None,
        seen_oids: set[int] | None = None,
    ) -> Any:
        """Render one value as Airflow does, but order/message as text, and template files only for message."""
        if not isinstance(content, str) or (seen_oids is not None and id(content) in seen_oids):
            return super().render_template(content, context, jinja_env, seen_oids)  # type: ignore[misc]
        env = jinja_env or self.get_template_env(dag=context.get("dag"))
        field = self._field_holding(content)
        if field in self.TEXT_FIELDS:
            env = self._text_template_env(env, context)
        if field in self.TEMPLATE_FILE_FIELDS and self.names_a_template_file(content):
            template = env.get_template(content)
        else:
            template = env.from_string(content)
        return template.render(context)

    def _field_holding(self, content: str) -> str | None:
        """The templated field whose current value is this very string (Airflow renders fields one by one)."""
        return next((field for field in self.template_fields if getattr(self, field, None) is content), None)

    def _text_template_env(self, env: jinja2.Environment, context: Any) -> jinja2.Environment:
        """The DAG's template environment, rendering to text even where the DAG renders native objects."""
        from jinja2.nativetypes import NativeEnvironment

        if not isinstance(env, NativeEnvironment):
            return env
        get_dag = getattr(self, "get_dag", None)
        dag = context.get("dag") or (get_dag() if get_dag else None)
        if hasattr(dag, "get_template_env"):
            return dag.get_template_env(force_sandboxed=True)  # type: ignore[union-attr]
        from jinja2.sandbox import SandboxedEnvironment

        text_env = SandboxedEnvironment(loader=env.loader, undefined=env.undefined, extensions=["jinja2.ext.do"])
        text_env.filters.update(env.filters)
        text_env.globals.update(env.globals)
        return text_env

    if TYPE_CHECKING:  # provided by Airflow's BaseOperator / BaseNotifier

        def get_template_env(self, dag: Any = None) -> jinja2.Environment: ...

        def prepare_template(self) -> None: ...
