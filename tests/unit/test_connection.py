"""Connection parsing: workspace URL forms, token, extras; all errors raised before any request."""

from __future__ import annotations

import pathlib

import pytest

from airflow_provider_spp._internal.connection import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    is_loopback_host,
    normalize_workspace_url,
    settings_from_connection,
)
from airflow_provider_spp.exceptions import SppConfigError


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("example.spp.co", None, "https://example.spp.co"),
        ("https://example.spp.co", None, "https://example.spp.co"),
        ("https://example.spp.co/", None, "https://example.spp.co"),
        ("  https://Example.spp.co/  ", None, "https://example.spp.co"),
        ("https://example.spp.co:443", None, "https://example.spp.co"),
        ("https://example.spp.co:8443", None, "https://example.spp.co:8443"),
        ("http://127.0.0.1:8765", None, "http://127.0.0.1:8765"),
        ("http://localhost:8765/", None, "http://localhost:8765"),
        ("http://[::1]:8765", None, "http://[::1]:8765"),
        ("http://127.1.2.3", None, "http://127.1.2.3"),
        ("127.0.0.1", 8765, "https://127.0.0.1:8765"),
        ("http://127.0.0.1", 8765, "http://127.0.0.1:8765"),
        ("http://127.0.0.1:9000", 8765, "http://127.0.0.1:9000"),
        # the workspace URL as Wayfront's own tools show the API's address: the API path is not ours to add twice
        ("https://acme.wayfront.com/api", None, "https://acme.wayfront.com"),
        ("https://acme.wayfront.com/api/", None, "https://acme.wayfront.com"),
        ("acme.wayfront.com/api/", None, "https://acme.wayfront.com"),
        ("http://127.0.0.1:8765/api", None, "http://127.0.0.1:8765"),
    ],
)
def test_workspace_url_forms(host: str, port: int | None, expected: str) -> None:
    assert normalize_workspace_url(host, port) == expected


@pytest.mark.parametrize(
    ("host", "fragment"),
    [
        (None, "has no host"),
        ("", "has no host"),
        ("   ", "has no host"),
        ("ftp://example.spp.co", "must use https"),
        ("https://example.spp.co/app", "without a path"),
        ("https://acme.wayfront.com/api/orders", "not a path such as '/api/orders'"),
        ("https://acme.wayfront.com/oauth-api", "without a path"),
        ("https://acme.wayfront.com/api//", "without a path"),
        ("https://example.spp.co?x=1", "without a path"),
        ("https://example.spp.co#top", "without a path"),
        ("https://user:pw@example.spp.co", "must not contain credentials"),
        ("http://example.spp.co", "Refusing plain http to example.spp.co"),
        ("http://10.0.0.5:8765", "Refusing plain http"),
        ("https://example.spp.co:99999", "invalid port"),
    ],
)
def test_bad_workspace_urls_are_refused(host: str | None, fragment: str) -> None:
    with pytest.raises(SppConfigError, match=fragment):
        normalize_workspace_url(host)


def test_plain_http_to_remote_host_needs_explicit_opt_in() -> None:
    assert normalize_workspace_url("http://spp.internal", allow_insecure_http=True) == "http://spp.internal"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("api.localhost", False),
        ("128.0.0.1", False),
        ("example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def _settings(**overrides):
    fields = {"host": "example.spp.co", "port": None, "password": "tok-123", "extra": {}}
    fields.update(overrides)
    return settings_from_connection(**fields)


def test_defaults_and_token_not_in_repr() -> None:
    settings = _settings()
    assert settings.base_url == "https://example.spp.co"
    assert settings.token == "tok-123"
    assert settings.timeout == DEFAULT_TIMEOUT
    assert settings.max_retries == DEFAULT_MAX_RETRIES
    assert settings.verify is True
    assert settings.api_version is None
    assert "tok-123" not in repr(settings)


def test_uri_style_string_extras_are_coerced() -> None:
    settings = _settings(
        extra={
            "timeout": "5",
            "max_retries": "0",
            "verify": "false",
            "api_version": "2024-03-05",
            "allow_insecure_http": "true",
        },
        host="http://spp.internal",
    )
    assert settings.timeout == 5.0
    assert settings.max_retries == 0
    assert settings.verify is False
    assert settings.api_version == "2024-03-05"
    assert settings.base_url == "http://spp.internal"


def test_verify_may_name_a_ca_bundle(tmp_path: pathlib.Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert _settings(extra={"verify": f" {bundle} "}).verify == str(bundle)
    assert _settings(extra={"verify": str(tmp_path)}).verify == str(tmp_path)  # a c_rehash'd folder
    with pytest.raises(SppConfigError, match="names a CA bundle that does not exist on this machine"):
        _settings(extra={"verify": str(tmp_path / "missing.pem")})


@pytest.mark.parametrize("empty", ["", "  ", None])
def test_an_empty_verify_or_allow_insecure_http_means_the_default(empty: str | None) -> None:
    settings = _settings(extra={"verify": empty, "allow_insecure_http": empty})
    assert settings.verify is True
    with pytest.raises(SppConfigError, match="Refusing plain http"):
        _settings(host="http://spp.internal", extra={"verify": empty, "allow_insecure_http": empty})


def test_an_empty_verify_in_a_uri_connection_means_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_spp.hooks.spp import SppHook

    monkeypatch.setenv("AIRFLOW_CONN_SPP_EMPTY_VERIFY", "spp://:tok-123@example.spp.co?verify=&timeout=5")
    assert SppHook("spp_empty_verify").settings.verify is True


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, (30.0, 10.0)),
        ({"timeout": 5}, (5.0, 5.0)),  # never longer than the read timeout unless asked
        ({"timeout": "60", "connect_timeout": "3.5"}, (60.0, 3.5)),
        ({"timeout": 2, "connect_timeout": 20}, (2.0, 20.0)),
        ({"connect_timeout": ""}, (30.0, 10.0)),
    ],
)
def test_connect_timeout_is_its_own_extra(extra: dict[str, object], expected: tuple[float, float]) -> None:
    settings = _settings(extra=extra)
    assert (settings.timeout, settings.connect_timeout) == expected


@pytest.mark.parametrize("bad", [0, -1, "soon", True])
def test_a_connect_timeout_must_be_a_positive_number(bad: object) -> None:
    with pytest.raises(SppConfigError, match="'connect_timeout' must be"):
        _settings(extra={"connect_timeout": bad})


def test_hook_arguments_override_extras() -> None:
    settings = settings_from_connection(
        host="example.spp.co",
        port=None,
        password="t",
        extra={"timeout": 5, "api_version": "2023-01-01"},
        api_version="2024-03-05",
        timeout=7,
        max_retries=1,
    )
    assert (settings.api_version, settings.timeout, settings.max_retries) == ("2024-03-05", 7.0, 1)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"password": None}, "has no API token"),
        ({"password": "   "}, "has no API token"),
        ({"password": "abc def"}, "spaces, control or non-ASCII characters"),
        ({"password": "abc\r\nX-Evil: 1"}, "spaces, control or non-ASCII characters"),
        ({"password": "tok\u2019en"}, "non-ASCII characters"),
        ({"extra": {"timeout": 0}}, "'timeout' must be greater than 0"),
        ({"extra": {"timeout": "-3"}}, "'timeout' must be greater than 0"),
        ({"extra": {"timeout": "soon"}}, "'timeout' must be a number"),
        ({"extra": {"timeout": "inf"}}, "'timeout' must be a number"),
        ({"extra": {"max_retries": -1}}, "'max_retries' must be at least 0"),
        ({"extra": {"max_retries": 2.5}}, "'max_retries' must be a whole number"),
        ({"extra": {"api_version": "2024-03-05\nX-Evil: yes"}}, "api_version must be a short token"),
        ({"extra": {"api_version": "2024 03 05"}}, "api_version must be a short token"),
        ({"extra": {"allow_insecure_http": "maybe"}}, "'allow_insecure_http' must be true or false"),
    ],
)
def test_bad_settings_are_refused(overrides: dict, fragment: str) -> None:
    with pytest.raises(SppConfigError, match=fragment) as caught:
        _settings(**overrides)
    assert "X-Evil" not in str(caught.value)
