"""Bad input to SppHook fails fast with a clear ValueError, and nothing at all goes over the network."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_spp.exceptions import SppConfigError, SppInputError
from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.sandbox import SandboxServer

pytestmark = pytest.mark.integration

ORDER = "E4A269FC"
CONN_ID = "spp_bad_input"
UNSET = object()


@dataclass
class Files:
    """Files a case may refer to."""

    ok: pathlib.Path
    directory: pathlib.Path
    missing: pathlib.Path
    path_list: pathlib.Path
    opened: list[Any] = field(default_factory=list)

    def open(self, path: pathlib.Path, mode: str) -> Any:
        handle = path.open(mode)
        self.opened.append(handle)
        return handle


@dataclass(frozen=True)
class Case:
    """One bad call: how to make it, and what it must raise."""

    call: Callable[[SppHook, Files], Any]
    exc: type[ValueError]
    fragment: str
    #: Connection overrides: "host", "password" (UNSET keeps the sandbox's) and "extra".
    conn: dict[str, Any] = field(default_factory=dict)
    hook_kwargs: dict[str, Any] = field(default_factory=dict)


def storage_path(url: str) -> Any:
    """An Airflow ObjectStoragePath (imported when a case is run, not when the module is collected)."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(url)


def create(order: Any = ORDER, message: Any = "hello", **kwargs: Any) -> Callable[[SppHook, Files], Any]:
    return lambda hook, files: hook.create_order_message(order, message, **kwargs)


def create_with(attachments: Callable[[Files], Any]) -> Callable[[SppHook, Files], Any]:
    return lambda hook, files: hook.create_order_message(ORDER, "A valid message", attachments=attachments(files))


def config(fragment: str, **conn_or_kwargs: Any) -> Case:
    """A connection problem, seen when the hook first needs its settings (here: posting a message)."""
    hook_kwargs: dict[str, Any] = {
        k: conn_or_kwargs.pop(k) for k in ("api_version", "timeout", "max_retries") if k in conn_or_kwargs
    }
    return Case(create(), SppConfigError, fragment, conn=conn_or_kwargs, hook_kwargs=hook_kwargs)


ORDER_PROBLEM = "order must be an order ID or order number"
USER_PROBLEM = "user_id must be a positive integer"
STAFF_PROBLEM = "staff_only must be a boolean"

CASES = [
    # -- the message
    pytest.param(Case(create(message=""), SppInputError, "message is empty"), id="message-empty"),
    pytest.param(Case(create(message=" \n\t  "), SppInputError, "message is empty"), id="message-whitespace"),
    pytest.param(Case(create(message=123), SppInputError, "message must be a string, got int"), id="message-int"),
    pytest.param(
        Case(create(message=None), SppInputError, "message must be a string, got NoneType"), id="message-none"
    ),
    pytest.param(Case(create(message=b"bytes"), SppInputError, "message must be a string, got bytes"), id="msg-bytes"),
    # -- the order
    pytest.param(Case(create(order=""), SppInputError, ORDER_PROBLEM), id="order-empty"),
    pytest.param(Case(create(order=None), SppInputError, ORDER_PROBLEM), id="order-none"),
    pytest.param(Case(create(order="   "), SppInputError, ORDER_PROBLEM), id="order-blank"),
    pytest.param(Case(create(order=True), SppInputError, ORDER_PROBLEM), id="order-true"),
    pytest.param(Case(create(order=0), SppInputError, ORDER_PROBLEM), id="order-zero"),
    # -- user_id and staff_only
    pytest.param(Case(create(user_id="abc"), SppInputError, USER_PROBLEM), id="user-id-abc"),
    pytest.param(Case(create(user_id=1.5), SppInputError, USER_PROBLEM), id="user-id-float"),
    pytest.param(Case(create(user_id=True), SppInputError, USER_PROBLEM), id="user-id-true"),
    pytest.param(Case(create(user_id=-3), SppInputError, USER_PROBLEM), id="user-id-negative"),
    pytest.param(Case(create(user_id=0), SppInputError, USER_PROBLEM), id="user-id-zero"),
    pytest.param(Case(create(staff_only="maybe"), SppInputError, STAFF_PROBLEM), id="staff-only-maybe"),
    pytest.param(Case(create(staff_only=2), SppInputError, STAFF_PROBLEM), id="staff-only-2"),
    # -- every problem at once, in one error
    pytest.param(
        Case(create(order="", message="", user_id="x", staff_only="y"), SppInputError, "order: order must be"),
        id="all-at-once",
    ),
    # -- attachments
    pytest.param(Case(create_with(lambda f: [f.missing]), SppInputError, "Attachment not found"), id="att-missing"),
    pytest.param(
        Case(create_with(lambda f: [f.directory]), SppInputError, "Attachment is not a regular file"), id="att-dir"
    ),
    pytest.param(
        Case(create_with(lambda f: [f.ok, ("chart.png", b"\x89PNG"), f.missing]), SppInputError, "missing.pdf"),
        id="att-one-of-three-missing",
    ),
    pytest.param(
        Case(create_with(lambda f: [f"file://{f.missing}"]), SppInputError, "Attachment not found: file://"),
        id="att-missing-file-url",
    ),
    pytest.param(
        Case(create_with(lambda f: [storage_path(f"file://{f.missing}")]), SppInputError, "not found: file://"),
        id="att-missing-object-storage-path",
    ),
    pytest.param(
        Case(create_with(lambda f: ["nosuchfs://bucket/report.pdf"]), SppInputError, "nosuchfs"),
        id="att-unknown-url-scheme",
    ),
    pytest.param(
        Case(create_with(lambda f: str(f.ok)), SppInputError, "attachments must be a list of files, got str"),
        id="att-bare-string",
    ),
    pytest.param(
        Case(create_with(lambda f: f.ok), SppInputError, "attachments must be a list of files"), id="att-bare-path"
    ),
    pytest.param(
        Case(create_with(lambda f: {str(f.ok): b"content"}), SppInputError, "attachments must be a list"),
        id="att-dict",
    ),
    pytest.param(
        Case(create_with(lambda f: f.open(f.path_list, "r")), SppInputError, "attachments must be a list"),
        id="att-bare-file-object",
    ),
    pytest.param(
        Case(create_with(lambda f: [("notes.txt", "text, not bytes")]), SppInputError, "content must be bytes"),
        id="att-tuple-str-content",
    ),
    pytest.param(
        Case(create_with(lambda f: [("notes.txt", f.open(f.ok, "r"))]), SppInputError, "open the file in binary mode"),
        id="att-tuple-text-mode-file",
    ),
    pytest.param(
        Case(create_with(lambda f: [f.open(f.ok, "rb")]), SppInputError, "got BufferedReader"),
        id="att-bare-file-in-list",
    ),
    pytest.param(Case(create_with(lambda f: [42]), SppInputError, "got int"), id="att-int"),
    pytest.param(Case(create_with(lambda f: [("", b"x")]), SppInputError, "needs a file name"), id="att-no-name"),
    # -- other calls
    pytest.param(
        Case(lambda hook, f: hook.delete_order_message(0), SppInputError, "message_id must be a positive integer"),
        id="delete-zero",
    ),
    pytest.param(
        Case(
            lambda hook, f: hook.delete_order_message("7"),  # type: ignore[arg-type]
            SppInputError,
            "message_id must be a positive integer",
        ),
        id="delete-string",
    ),
    pytest.param(
        Case(lambda hook, f: list(hook.list_order_messages("  ")), SppInputError, ORDER_PROBLEM), id="list-blank-order"
    ),
    pytest.param(
        Case(lambda hook, f: hook.get_order(None), SppInputError, ORDER_PROBLEM),  # type: ignore[arg-type]
        id="get-order-none",
    ),
    # -- the connection
    pytest.param(config("The Wayfront (SPP) connection has no host", host=None), id="conn-no-host"),
    pytest.param(config("has no host", host="   "), id="conn-blank-host"),
    pytest.param(config("without a path, query or fragment", host="{url}/app"), id="conn-host-with-path"),
    pytest.param(config("without a path, query or fragment", host="{url}/?x=1"), id="conn-host-with-query"),
    pytest.param(config("Refusing plain http to example.spp.co", host="http://example.spp.co"), id="conn-remote-http"),
    pytest.param(config("must not contain credentials", host="http://user:pw@127.0.0.1:9"), id="conn-userinfo"),
    pytest.param(config("has no API token", password=None), id="conn-no-token"),
    pytest.param(config("has no API token", password="   "), id="conn-blank-token"),
    pytest.param(
        config("spaces, control or non-ASCII characters", password="spp-token\nX-Injected: 1"), id="conn-token-newline"
    ),
    pytest.param(config("api_version must be a short token", api_version="2024-03-05\r\nX-Injected: 1"), id="ver-arg"),
    pytest.param(config("api_version must be a short token", extra={"api_version": "2024-03-05\nX-A: 1"}), id="ver-x"),
    pytest.param(config("api_version must be a short token", extra={"api_version": "2024 03 05"}), id="ver-space"),
    pytest.param(config("'timeout' must be greater than 0", timeout=0), id="timeout-zero-arg"),
    pytest.param(config("'timeout' must be greater than 0", extra={"timeout": -1}), id="timeout-negative-extra"),
    pytest.param(config("'timeout' must be greater than 0", extra={"timeout": "0"}), id="timeout-zero-string-extra"),
    pytest.param(config("'max_retries' must be at least 0", max_retries=-1), id="max-retries-negative-arg"),
    pytest.param(config("'max_retries' must be at least 0", extra={"max_retries": "-1"}), id="max-retries-neg-extra"),
    pytest.param(config("'max_retries' must be a whole number", extra={"max_retries": 1.5}), id="max-retries-float"),
]


@pytest.fixture
def files(tmp_path: pathlib.Path) -> Iterator[Files]:
    ok = tmp_path / "ok.txt"
    ok.write_bytes(b"a real file")
    directory = tmp_path / "a-directory"
    directory.mkdir()
    path_list = tmp_path / "paths.txt"
    path_list.write_text(str(ok))  # a text file whose only line is the path of a real file
    made = Files(ok=ok, directory=directory, missing=tmp_path / "missing.pdf", path_list=path_list)
    yield made
    for handle in made.opened:
        handle.close()


@pytest.fixture
def network_attempts(spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record (and refuse) every name lookup and outgoing connection made from this process.

    Depends on ``spp_sandbox`` so that the sandbox is up (its start-up probe connects) before the guard.
    """
    attempts: list[Any] = []

    def refuse_lookup(*args: Any, **kwargs: Any) -> Any:
        attempts.append(("getaddrinfo", args))
        raise OSError("network use is not allowed in this test")

    def refuse_connect(self: socket.socket, address: Any) -> None:
        attempts.append(("connect", address))
        raise OSError("network use is not allowed in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse_lookup)
    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    return attempts


def make_hook(server: SandboxServer, monkeypatch: pytest.MonkeyPatch, case: Case) -> SppHook:
    """A hook whose connection points at the sandbox (so a request that slipped through would be logged)."""
    extra = {"timeout": 2, "max_retries": 0, **case.conn.get("extra", {})}
    host = case.conn.get("host", server.url)
    password = case.conn.get("password", server.token)
    conn = {
        "conn_type": "spp",
        "host": host.format(url=server.url) if isinstance(host, str) else host,
        "password": password,
        "extra": extra,
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    return SppHook(CONN_ID, **case.hook_kwargs)


def assert_nothing_sent(server: SandboxServer, network_attempts: list[Any]) -> None:
    assert server.requests() == []
    assert server.messages() == []
    assert network_attempts == []


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_refused_before_any_request(
    spp_sandbox: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
    files: Files,
    network_attempts: list[Any],
    case: Case,
) -> None:
    hook = make_hook(spp_sandbox, monkeypatch, case)
    with pytest.raises(ValueError) as caught:  # noqa: PT011 - the exact class is checked below
        case.call(hook, files)

    err = caught.value
    assert type(err) is case.exc
    assert case.fragment in str(err)
    assert spp_sandbox.token not in str(err)
    assert "X-Injected" not in str(err)
    assert_nothing_sent(spp_sandbox, network_attempts)


CONFIG_CASES = [p for p in CASES if isinstance(p.values[0], Case) and p.values[0].exc is SppConfigError]


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_the_test_button_reports_a_bad_connection_without_a_request(
    spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, network_attempts: list[Any], case: Case
) -> None:
    ok, message = make_hook(spp_sandbox, monkeypatch, case).test_connection()
    assert ok is False
    assert case.fragment in message
    assert_nothing_sent(spp_sandbox, network_attempts)


def test_settings_are_checked_without_touching_the_network(
    spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, network_attempts: list[Any]
) -> None:
    case = config("Refusing plain http", host="http://example.spp.co")
    with pytest.raises(SppConfigError, match="allow_insecure_http"):
        make_hook(spp_sandbox, monkeypatch, case).settings  # noqa: B018
    # The explicit opt-in makes the same host acceptable (and still nothing was sent).
    allowed = config("", host="http://example.spp.co", extra={"allow_insecure_http": True})
    assert make_hook(spp_sandbox, monkeypatch, allowed).settings.base_url == "http://example.spp.co"
    assert_nothing_sent(spp_sandbox, network_attempts)


_UNREADABLE_CHILD = textwrap.dedent(
    """
    import os, sys
    from airflow_provider_spp.exceptions import SppInputError
    from airflow_provider_spp.hooks.spp import SppHook

    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    try:
        open(sys.argv[1], "rb")
    except PermissionError:
        pass
    else:
        print("STILL-READABLE")
        sys.exit(3)
    try:
        SppHook(sys.argv[2]).create_order_message("E4A269FC", "A valid message", attachments=[sys.argv[1]])
    except SppInputError as err:
        print("SppInputError:", err)
        sys.exit(0)
    except BaseException as err:
        print("OTHER:", type(err).__name__, err)
        sys.exit(4)
    print("NO-ERROR")
    sys.exit(5)
    """
)


def test_unreadable_attachment_is_refused_before_any_request(
    spp_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = Case(create(), SppInputError, "")
    make_hook(spp_sandbox, monkeypatch, case)  # sets AIRFLOW_CONN_... for the child too
    directory = pathlib.Path(tempfile.mkdtemp(prefix="spp-unreadable-"))
    try:
        directory.chmod(0o755)  # nobody may look inside, but not read the file
        secret = directory / "secret.pdf"
        secret.write_bytes(b"%PDF-1.7 unreadable")
        secret.chmod(0)
        if os.geteuid() == 0:
            # root reads any file: drop to "nobody" in a child process for this one case.
            child = subprocess.run(
                [sys.executable, "-c", _UNREADABLE_CHILD, str(secret), CONN_ID],
                capture_output=True,
                text=True,
                timeout=60,
                env=os.environ.copy(),
                check=False,
            )
            if child.returncode == 1 and "Operation not permitted" in child.stderr:
                pytest.skip("cannot drop privileges here (no CAP_SETUID)")
            if "STILL-READABLE" in child.stdout:
                pytest.skip("mode 000 does not stop reads on this file system")
            assert child.returncode == 0, (child.stdout, child.stderr[-2000:])
            (message,) = [line for line in child.stdout.splitlines() if line.startswith("SppInputError:")]
        else:
            try:
                secret.open("rb").close()
            except PermissionError:
                pass
            else:
                pytest.skip("mode 000 does not stop reads on this file system")
            with pytest.raises(SppInputError) as caught:
                SppHook(CONN_ID).create_order_message(ORDER, "A valid message", attachments=[secret])
            message = f"SppInputError: {caught.value}"
    finally:
        (directory / "secret.pdf").unlink(missing_ok=True)
        directory.rmdir()

    assert message.startswith("SppInputError: Attachment cannot be read:")
    assert "secret.pdf" in message
    assert "Permission denied" in message
    assert spp_sandbox.requests() == []
    assert spp_sandbox.messages() == []
