"""Workspace switches: how the sandbox's Wayfront (formerly SPP) workspace behaves, declared once.

:class:`WorkspaceSettings` is the one declaration of every switch: its field names, defaults and help are
what the admin API (``GET|POST|DELETE /_sandbox/settings``), ``SandboxServer(**settings)`` /
``SandboxServer.configure(...)`` and the CLI (``spp-sandbox --status-style code ...``) take. The defaults
are the sandbox's classic behaviour; a reset returns to the settings the server was started with.

Switches (see each field's help): the workspace's state (licence expired, signed out, not a workspace),
a moved host, a token without API access, the validation status, integer statuses with a code map,
Purity filters and sorts (ignored, strict, a rejected sort), SPP's clock offset and a rate limit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, Field, dataclass, field, fields, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_spp.sandbox.declared import as_dict, checked_json

__all__ = [
    "DEFAULT_STATUS_CODES",
    "WorkspaceSettings",
    "WorkspaceState",
    "setting_fields",
]

#: A workspace's order statuses by code, as the sandbox seeds them (a real workspace customises its own: read
#: them from ``GET /_sandbox/statuses`` here, from the orders a workspace lists, or from Wayfront's settings).
DEFAULT_STATUS_CODES: Mapping[int, str] = MappingProxyType(
    {0: "Unpaid", 1: "Submitted", 2: "Working", 3: "Complete", 4: "Canceled", 5: "On Hold", 6: "Pending"}
)
#: Laravel's AuthorizationException text, the other likely 403 wording (a Gate that denies the role).
ROLE_DENIED_MESSAGE = "This action is unauthorized."


class WorkspaceState(StrEnum):
    """What a request to the workspace's host meets before the API sees it."""

    #: A working workspace.
    ACTIVE = "active"
    #: The licence expired: every request is redirected (302) to ``/expired``, an HTML page; nothing is stored.
    EXPIRED = "expired"
    #: A session guard redirects (302) every request to ``/login``, an HTML page; nothing is stored.
    SIGNED_OUT = "signed_out"
    #: The host is no workspace (a marketing site, a proxy's error page): 200 HTML for every path.
    NOT_A_WORKSPACE = "not_a_workspace"


Parser = Callable[[Any, str], Any]


def _choice(*choices: Any) -> Parser:
    """A parser accepting one of ``choices`` (numbers also as digits)."""

    def parse(value: Any, name: str) -> Any:
        for choice in choices:
            if value == choice or (isinstance(choice, int) and str(value).strip() == str(choice)):
                return choice
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")

    return parse


def _state(value: Any, name: str) -> WorkspaceState:
    """A :class:`WorkspaceState` from its text."""
    try:
        return WorkspaceState(str(value).strip().lower())
    except ValueError:
        raise ValueError(f"{name} must be one of {', '.join(s.value for s in WorkspaceState)}, got {value!r}") from None


def _base_url(value: Any, name: str) -> str | None:
    """An absolute http(s) URL without query (trailing slash removed), or None."""
    if value is None or value == "":
        return None
    parts = urlsplit(str(value))
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"{name} must be an absolute http(s) base URL (https://acme.wayfront.com), got {value!r}")
    return str(value).rstrip("/")


def _optional_text(value: Any, name: str) -> str | None:
    """A non-blank string, or None."""
    if value is None or value == "":
        return None
    return _text(value, name)


def _text(value: Any, name: str) -> str:
    """A non-blank string."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _flag(value: Any, name: str) -> bool:
    """A boolean, also from true/false/yes/no/1/0."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")


def _names(value: Any, name: str) -> tuple[str, ...]:
    """Field names from a list or a comma-separated string."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        raise ValueError(f"{name} must be a list of field names, got {value!r}")
    return tuple(item.strip() for item in items if item.strip())


def _seconds(value: Any, name: str) -> float:
    """A finite number of seconds within a day either way."""
    try:
        seconds = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or abs(seconds) > 86_400:
        raise ValueError(f"{name} must be a number of seconds between -86400 and 86400, got {value!r}")
    return seconds


def _count(value: Any, name: str) -> int:
    """A whole number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    return int(value)


def _window(value: Any, name: str) -> float:
    """A positive number of seconds, at most an hour."""
    seconds = _seconds(value, name)
    if not 0 < seconds <= 3600:
        raise ValueError(f"{name} must be a number of seconds above 0 and at most 3600, got {value!r}")
    return seconds


def _status_codes(value: Any, name: str) -> Mapping[int, str]:
    """A code-to-label map from a mapping, JSON text or ``0=Unpaid,1=Submitted``."""
    if isinstance(value, str):
        text = value.strip()
        pairs = json.loads(text).items() if text.startswith("{") else (p.partition("=")[::2] for p in text.split(","))
        value = dict(pairs)
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"{name} must map status codes to labels, got {value!r}")
    codes: dict[int, str] = {}
    for code, label in value.items():
        if isinstance(code, bool) or not str(code).strip().lstrip("-").isdigit() or not str(label).strip():
            raise ValueError(f"{name}: {code!r}={label!r} is not an integer code and a label")
        codes[int(str(code).strip())] = str(label).strip()
    if len({label.casefold() for label in codes.values()}) != len(codes):
        raise ValueError(f"{name}: two codes share a label in {value!r}")
    return MappingProxyType(codes)


def _meta(parse: Parser, help_text: str) -> dict[str, Any]:
    """A settings field's metadata: its parser and its help (the one declaration the admin API and the CLI read)."""
    return {"parse": parse, "help": help_text}


@dataclass(frozen=True)
class WorkspaceSettings:
    """Every switch of the sandbox workspace; the defaults are the classic sandbox (a working SPP workspace)."""

    _: KW_ONLY
    workspace_state: WorkspaceState = field(
        default=WorkspaceState.ACTIVE,
        metadata=_meta(_state, "active, expired (302 to /expired), signed_out (302 to /login) or not_a_workspace"),
    )
    moved_to: str | None = field(
        default=None,
        metadata=_meta(_base_url, "base URL the host moved to: non-admin requests are redirected there, same path"),
    )
    moved_status: int = field(
        default=301, metadata=_meta(_choice(301, 302, 307, 308), "status of the moved_to redirect (nginx: 301)")
    )
    no_api_token: str | None = field(
        default=None,
        metadata=_meta(_optional_text, "a second valid token whose role or plan has no API access: 403 on the API"),
    )
    no_api_message: str = field(
        default="Your license may not include API access.", metadata=_meta(_text, "the 403 message for no_api_token")
    )
    validation_status: int = field(
        default=422, metadata=_meta(_choice(422, 400), "status of validation errors (Laravel: 422)")
    )
    status_style: str = field(
        default="label",
        metadata=_meta(_choice("label", "code"), "orders carry status as a label or an integer code (status_codes)"),
    )
    status_codes: Mapping[int, str] = field(
        default_factory=lambda: DEFAULT_STATUS_CODES,
        metadata=_meta(_status_codes, 'the workspace\'s status map, e.g. "0=Unpaid,1=Submitted,2=Working"'),
    )
    ignore_filters_and_sort: bool = field(
        default=False,
        metadata=_meta(_flag, "ignore filters[...] and sort (no Purity): listings in primary-key order, oldest first"),
    )
    unknown_fields: str = field(
        default="ignore",
        metadata=_meta(_choice("ignore", "error"), "a filter/sort on an undeclared field or operator: ignore or fail"),
    )
    rejected_sorts: tuple[str, ...] = field(
        default=(), metadata=_meta(_names, "sort fields answered with query_error_status, e.g. last_message_at")
    )
    rejected_filters: tuple[str, ...] = field(
        default=(), metadata=_meta(_names, "filter fields answered with query_error_status, e.g. created_at")
    )
    query_error_status: int = field(
        default=400,
        metadata=_meta(_choice(400, 422, 500), "status of a rejected filter or sort (500: Purity exception unhandled)"),
    )
    clock_offset: float = field(
        default=0.0,
        metadata=_meta(_seconds, "seconds SPP's clock runs ahead (negative: behind): Date header and timestamps"),
    )

    rate_limit: int = field(
        default=0,
        metadata=_meta(
            _count,
            "API requests per token per rate_limit_window (Laravel's throttle middleware); beyond: 429 with "
            "Retry-After until the window ends. 0: no limit",
        ),
    )
    rate_limit_window: float = field(
        default=60.0, metadata=_meta(_window, "seconds of the rate limit's window (Laravel: 60, 'per minute')")
    )

    def __post_init__(self) -> None:
        """Parse and validate every field (raises ValueError)."""
        for setting in setting_fields():
            parse = setting.metadata["parse"]
            object.__setattr__(self, setting.name, parse(getattr(self, setting.name), setting.name))

    @classmethod
    def from_dict(cls, data: Any) -> WorkspaceSettings:
        """Build from JSON such as ``{"status_style": "code", "clock_offset": -5}`` (missing fields: defaults)."""
        return cls(**checked_json(cls, data, "workspace settings", "setting"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what :meth:`from_dict` reads)."""
        return as_dict(self)

    def changed(self, **changes: Any) -> WorkspaceSettings:
        """A copy with some settings changed (validated; unknown names raise ValueError)."""
        return replace(self, **checked_json(type(self), changes, "workspace settings", "setting"))

    def render_status(self, value: Any) -> Any:
        """A stored status (a label or a code) as this workspace's orders carry it."""
        if self.status_style == "code":
            return status_code(value, self.status_codes)
        return self.status_label(value)

    def status_label(self, value: Any) -> Any:
        """The label of a stored status: a code looked up in ``status_codes``, a label as it is."""
        return self.status_codes.get(value, value) if isinstance(value, int) and not isinstance(value, bool) else value

    def status_table(self) -> dict[str, Any]:
        """The code map as the admin API lists it: how a user finds which code means which status."""
        rows = [{"code": code, "label": label} for code, label in sorted(self.status_codes.items())]
        return {"status_style": self.status_style, "statuses": rows}


def status_code(value: Any, codes: Mapping[int, str]) -> Any:
    """The code of a stored status: an int as it is, a label looked up (case-insensitive), else unchanged."""
    if isinstance(value, str):
        by_label = {label.casefold(): code for code, label in codes.items()}
        return by_label.get(value.casefold(), value)
    return value


def setting_fields() -> tuple[Field[Any], ...]:
    """The declared settings (name, default, ``metadata["help"]``), in declaration order."""
    return tuple(f for f in fields(WorkspaceSettings) if f.init)
