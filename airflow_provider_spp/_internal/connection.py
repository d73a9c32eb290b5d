"""Turn an Airflow ``spp`` connection into validated settings, before any request is made."""

from __future__ import annotations

import ipaddress
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_spp._internal.urls import authority
from airflow_provider_spp.exceptions import SppConfigError

DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_RETRY_MAX_TIME = 120.0
DEFAULT_RETRY_BACKOFF = 1.0

#: What an api_version may look like (it becomes a header): a short token such as 2024-03-05.
API_VERSION_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"

_API_VERSION = re.compile(API_VERSION_PATTERN)
_TOKEN_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SppConnectionSettings:
    """Everything the hook needs to talk to one SPP workspace; the token never shows in ``repr``."""

    base_url: str
    token: str = field(repr=False)
    api_version: str | None = None
    #: Longest silence while waiting for SPP's answer: before its first byte and between reads after that.
    timeout: float = DEFAULT_TIMEOUT
    #: Longest wait to open the connection (TCP and TLS handshake), and for each write of the request.
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    verify: bool | str = True
    max_retries: int = DEFAULT_MAX_RETRIES
    retry_max_time: float = DEFAULT_RETRY_MAX_TIME
    retry_backoff: float = DEFAULT_RETRY_BACKOFF


def is_loopback_host(hostname: str) -> bool:
    """Whether the host is this machine (127.0.0.0/8, ::1, localhost): the only place plain http is safe."""
    if hostname.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


#: The paths a workspace URL may end with: none, or the API's own (as Wayfront's tools show the address);
#: the hook adds ``/api/...`` itself, so ``https://acme.wayfront.com/api`` means ``https://acme.wayfront.com``.
_WORKSPACE_PATHS = ("", "/", "/api", "/api/")


def normalize_workspace_url(host: str | None, port: int | None = None, *, allow_insecure_http: bool = False) -> str:
    """Return ``scheme://host[:port]`` for a workspace written as ``acme.wayfront.com``, a URL, or a URL + ``/api``."""
    raw = (host or "").strip()
    if not raw:
        raise SppConfigError(
            "The Wayfront (SPP) connection has no host: set it to your workspace URL, e.g. https://acme.wayfront.com"
        )
    if "://" not in raw:
        raw = f"https://{raw}"
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise SppConfigError(
            f"The Wayfront (SPP) workspace URL must use https (or http on this machine), not {scheme!r}"
        )
    try:
        hostname, url_port = parts.hostname, parts.port
    except ValueError as err:
        raise SppConfigError(f"The Wayfront (SPP) workspace URL has an invalid port: {err}") from None
    if not hostname:
        raise SppConfigError("The Wayfront (SPP) workspace URL has no host name")
    if parts.username is not None or parts.password is not None:
        raise SppConfigError(
            "The Wayfront (SPP) workspace URL must not contain credentials; put the API token in the password field"
        )
    if parts.path not in _WORKSPACE_PATHS or parts.query or parts.fragment:
        found = f"; not a path such as {parts.path!r}" if parts.path not in _WORKSPACE_PATHS else ""
        raise SppConfigError(
            "The Wayfront (SPP) workspace URL must be just the workspace address (e.g. https://acme.wayfront.com, "
            f"or https://acme.wayfront.com/api as Wayfront shows it), without a path, query or fragment{found}"
        )
    if scheme == "http" and not allow_insecure_http and not is_loopback_host(hostname):
        raise SppConfigError(
            f"Refusing plain http to {hostname}: the API token would cross the network in clear text. "
            "Use https, or set the connection extra allow_insecure_http to true if you really mean it"
        )
    final_port = url_port or port
    default_port = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{authority(hostname, None if final_port == default_port else final_port)}"


def _is_blank(value: Any) -> bool:
    """An extra left empty (None, "" from the form or ``?key=`` in a URI) means its default."""
    return value is None or (isinstance(value, str) and not value.strip())


def _as_bool(name: str, value: Any, default: bool) -> bool:
    """Coerce an extra that may arrive as a string from a connection URI; empty means the default."""
    from airflow_provider_spp.models import boolean_from  # pydantic: not for provider info's form

    parsed = default if _is_blank(value) else boolean_from(value)
    if parsed is not None:
        return parsed
    raise SppConfigError(f"The Wayfront (SPP) connection extra {name!r} must be true or false, got {value!r}")


def _verify_setting(value: Any) -> bool | str:
    """TLS verification: on (also when empty), off when false, or the path of a CA bundle (file or folder)."""
    from airflow_provider_spp.models import boolean_from

    if isinstance(value, str) and not _is_blank(value) and boolean_from(value) is None:
        path = os.path.expanduser(value.strip())
        if not os.path.exists(path):
            raise SppConfigError(
                "The Wayfront (SPP) connection extra 'verify' names a CA bundle that does not exist on this machine: "
                f"{path}"
            )
        return path
    return _as_bool("verify", value, True)


def _as_number(name: str, value: Any, *, minimum: float, integer: bool = False, exclusive: bool = False) -> float:
    """Coerce a numeric extra (URI extras arrive as strings) and check its lower bound."""
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or (integer and not number.is_integer()):
        kind = "a whole number" if integer else "a number"
        raise SppConfigError(f"The Wayfront (SPP) setting {name!r} must be {kind}, got {value!r}")
    if number < minimum or (exclusive and number == minimum):
        bound = "greater than" if exclusive else "at least"
        raise SppConfigError(f"The Wayfront (SPP) setting {name!r} must be {bound} {minimum:g}, got {value!r}")
    return number


def _check_api_version(value: Any) -> str | None:
    """An API version is a short token such as 2024-03-05; anything else could inject headers."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or not _API_VERSION.fullmatch(value):
        raise SppConfigError(
            "The Wayfront (SPP) api_version must be a short token such as '2024-03-05' "
            "(letters, digits, '.', '_', '-'; no spaces or line breaks)"
        )
    return value


def _check_token(password: str | None) -> str:
    """The bearer token must exist and be a single header-safe word."""
    token = (password or "").strip()
    if not token:
        raise SppConfigError(
            "The Wayfront (SPP) connection has no API token: put it in the connection's password (API token) field"
        )
    if _TOKEN_FORBIDDEN.search(token) or not token.isascii() or not token.isprintable():
        raise SppConfigError(
            "The Wayfront (SPP) API token contains spaces, control or non-ASCII characters; check the copy-paste"
        )
    return token


def settings_from_connection(
    *,
    host: str | None,
    port: int | None,
    password: str | None,
    extra: dict[str, Any],
    api_version: str | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
) -> SppConnectionSettings:
    """Validate a connection's fields and extras; hook arguments (when not None) override extras."""
    allow_insecure_http = _as_bool("allow_insecure_http", extra.get("allow_insecure_http"), False)

    def pick(argument: Any, key: str, default: Any) -> Any:
        if argument is not None:
            return argument
        value = extra.get(key)
        return default if value is None or value == "" else value

    read_timeout = _as_number("timeout", pick(timeout, "timeout", DEFAULT_TIMEOUT), minimum=0, exclusive=True)
    connect_default = min(DEFAULT_CONNECT_TIMEOUT, read_timeout)
    return SppConnectionSettings(
        base_url=normalize_workspace_url(host, port, allow_insecure_http=allow_insecure_http),
        token=_check_token(password),
        api_version=_check_api_version(pick(api_version, "api_version", None)),
        timeout=read_timeout,
        connect_timeout=_as_number(
            "connect_timeout", pick(None, "connect_timeout", connect_default), minimum=0, exclusive=True
        ),
        verify=_verify_setting(extra.get("verify")),
        max_retries=int(
            _as_number("max_retries", pick(max_retries, "max_retries", DEFAULT_MAX_RETRIES), minimum=0, integer=True)
        ),
        retry_max_time=_as_number("retry_max_time", pick(None, "retry_max_time", DEFAULT_RETRY_MAX_TIME), minimum=0),
        retry_backoff=_as_number("retry_backoff", pick(None, "retry_backoff", DEFAULT_RETRY_BACKOFF), minimum=0),
    )
