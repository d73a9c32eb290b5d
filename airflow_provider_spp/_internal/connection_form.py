"""The ``spp`` connection form, declared once: Airflow 3.2+ reads it as conn-fields, older UIs as wtforms.

Each extra field is one :class:`FormField`; its default and bounds come from :mod:`connection`, which
applies them. ``CONN_FIELDS`` and ``UI_FIELD_BEHAVIOUR`` (provider info) and the hook's wtforms widgets
are derived from :data:`FORM_FIELDS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_spp._internal.connection import (
    API_VERSION_PATTERN,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_BACKOFF,
    DEFAULT_RETRY_MAX_TIME,
    DEFAULT_TIMEOUT,
)

#: The connection type's name in the UI: the vendor's name since 2026, and the one users knew before.
DISPLAY_NAME = "Wayfront (formerly Service Provider Pro, SPP)"
#: What the empty host field shows (workspaces live at ``https://<workspace>.wayfront.com`` or a custom domain).
HOST_EXAMPLE = "https://acme.wayfront.com"


@dataclass(frozen=True)
class FormField:
    """One extra of the connection form: JSON-schema type, default and lower bound, label and help text."""

    name: str
    label: str
    description: str
    #: JSON-schema type: "string", "number", "integer" or "boolean" (a form field may also be left empty).
    kind: str
    default: Any = None
    minimum: float | None = None
    #: Whether the value must be greater than ``minimum`` rather than at least it.
    exclusive: bool = False
    pattern: str | None = None
    #: Shown in the empty field: an example, or True for the default.
    placeholder: str | bool = False

    @property
    def shown_default(self) -> Any:
        """The default as the form shows it: 30, not 30.0."""
        return _shown(self.default)

    def schema(self) -> dict[str, Any]:
        """The field's JSON schema, as Airflow's conn-fields take it."""
        schema: dict[str, Any] = {"type": [self.kind, "null"]}
        if self.pattern is not None:
            schema["pattern"] = f"^{self.pattern}$"
        if self.default is not None:
            schema["default"] = self.shown_default
        if self.minimum is not None:
            schema["exclusiveMinimum" if self.exclusive else "minimum"] = _shown(self.minimum)
        return schema

    @property
    def placeholder_text(self) -> str | None:
        """What the empty field shows: the example, the default, or nothing."""
        if self.placeholder is True:
            return str(self.shown_default)
        return self.placeholder or None


def _shown(value: Any) -> Any:
    """A number as a form shows it: a whole float as an int (30, not 30.0)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


FORM_FIELDS: tuple[FormField, ...] = (
    FormField(
        "api_version",
        "API version",
        "Sent as the X-Api-Version header, e.g. 2024-03-05. Leave empty for the workspace default.",
        "string",
        pattern=API_VERSION_PATTERN,
        placeholder="2024-03-05",
    ),
    FormField(
        "timeout",
        "Read timeout (seconds)",
        "Longest silence while waiting for SPP's answer: before its first byte and between reads. "
        "Not a limit on a whole call; use the task's execution_timeout for that.",
        "number",
        DEFAULT_TIMEOUT,
        minimum=0,
        exclusive=True,
        placeholder=True,
    ),
    FormField(
        "connect_timeout",
        "Connect timeout (seconds)",
        f"Longest wait to open a connection to SPP (TCP and TLS handshake). "
        f"Default {DEFAULT_CONNECT_TIMEOUT:g}, or timeout if smaller.",
        "number",
        DEFAULT_CONNECT_TIMEOUT,
        minimum=0,
        exclusive=True,
        placeholder=True,
    ),
    FormField(
        "max_retries",
        "Max retries",
        "Retries of rate-limited (429) or unavailable (503) calls. A POST is never re-sent blindly.",
        "integer",
        DEFAULT_MAX_RETRIES,
        minimum=0,
        placeholder=True,
    ),
    FormField(
        "retry_max_time",
        "Retry time cap (seconds)",
        "Give up retrying a call after this long in total.",
        "number",
        DEFAULT_RETRY_MAX_TIME,
        minimum=0,
    ),
    FormField(
        "retry_backoff",
        "Retry backoff base (seconds)",
        "First wait between retries; it doubles each time (with jitter) unless SPP sends Retry-After.",
        "number",
        DEFAULT_RETRY_BACKOFF,
        minimum=0,
    ),
    FormField(
        "verify",
        "Verify TLS certificates",
        "Leave on unless you know why it must be off; on, REQUESTS_CA_BUNDLE is honoured. "
        "A CA bundle path (which wins over REQUESTS_CA_BUNDLE) can go in the extra JSON as verify.",
        "boolean",
        True,
    ),
    FormField(
        "allow_insecure_http",
        "Allow plain http to a remote host",
        "Plain http is accepted for 127.0.0.1/localhost only, unless this is on.",
        "boolean",
        False,
    ),
)

#: Airflow's conn-fields: the extra fields of the form, as JSON schema.
CONN_FIELDS: dict[str, Any] = {
    f.name: {"label": f.label, "description": f.description, "schema": f.schema()} for f in FORM_FIELDS
}

#: The standard fields' layout, and what each field shows while empty.
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["login", "port", "schema"],
    "relabeling": {"host": "Workspace URL", "password": "API token"},
    "placeholders": {
        "host": HOST_EXAMPLE,
        "password": "An API token of your Wayfront workspace",
        **{f.name: f.placeholder_text for f in FORM_FIELDS if f.placeholder_text},
    },
}


def wtforms_widgets() -> dict[str, Any]:
    """The extra fields as wtforms fields, for Airflow's UI before 3.2 (empty when wtforms is absent, 3.3+)."""
    try:
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import BooleanField, IntegerField, StringField
        from wtforms.validators import NumberRange, Optional
    except ImportError:
        return {}
    widgets: dict[str, Any] = {}
    for f in FORM_FIELDS:
        label = lazy_gettext(f.label)
        if f.kind == "boolean":
            widgets[f.name] = BooleanField(label, default=f.default)
        elif f.kind == "string":
            widgets[f.name] = StringField(label, widget=BS3TextFieldWidget())
        else:  # numbers as whole numbers: the only numeric field older UIs know
            least = int(f.minimum or 0) + 1 if f.exclusive else int(f.minimum or 0)
            widgets[f.name] = IntegerField(
                label,
                validators=[Optional(), NumberRange(min=least)],
                widget=BS3TextFieldWidget(),
                default=f.shown_default,
            )
    return widgets
