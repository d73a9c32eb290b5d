"""The sandbox as a Wayfront workspace is today: expired licence, login redirect, no workspace, moved host, 403, 422.

Every switch here is plain HTTP against the sandbox (httpx), never through the provider's hooks.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from typing import Any

import httpx
import pytest

from airflow_provider_spp.sandbox import SandboxServer, WorkspaceSettings
from tests.support.sandbox_http import ORDER, admin, api

pytestmark = pytest.mark.integration

API_CALLS = [
    ("GET", f"/api/order_messages/{ORDER}"),
    ("POST", f"/api/order_messages/{ORDER}"),
    ("DELETE", "/api/order_messages/1"),
    ("GET", "/api/orders?limit=1"),
    ("PATCH", f"/api/orders/{ORDER}"),  # no such route in the sandbox: the host answers before routing
]
#: The calls the sandbox routes (Laravel matches the route before its auth middleware: PATCH would be 405).
ROUTED = [call for call in API_CALLS if call[0] != "PATCH"]


def _nothing_stored(server: SandboxServer) -> None:
    """No message reached the workspace, and no queued fault was used."""
    assert server.messages() == []
    assert admin(server, "GET", "/messages").json() == []


@pytest.mark.parametrize(("method", "path"), API_CALLS)
def test_an_expired_licence_redirects_every_api_request_to_an_html_page(
    spp_sandbox: SandboxServer, method: str, path: str
) -> None:
    assert admin(spp_sandbox, "POST", "/settings", json={"workspace_state": "expired"}).status_code == 200
    spp_sandbox.add_fault("server_error")  # the host answers first: the fault stays queued

    answer = api(spp_sandbox, method, path, json={"message": "never stored"})

    assert answer.status_code == 302
    assert answer.headers["location"] == f"{spp_sandbox.url}/expired"
    assert answer.headers["content-type"].startswith("text/html")
    assert "Redirecting to" in answer.text
    assert "x-api-identifier" not in answer.headers
    _nothing_stored(spp_sandbox)
    assert len(spp_sandbox.store.faults.pending()) == 1
    assert spp_sandbox.requests()[-1]["status"] == 302
    page = httpx.get(answer.headers["location"], timeout=5)
    assert (page.status_code, page.headers["content-type"]) == (200, "text/html; charset=UTF-8")
    assert "License expired" in page.text


def test_a_client_that_follows_the_expired_redirect_ends_on_html(spp_sandbox: SandboxServer) -> None:
    spp_sandbox.configure(workspace_state="expired")
    followed = api(spp_sandbox, "GET", "/api/orders", follow_redirects=True)
    assert followed.status_code == 200
    assert followed.headers["content-type"].startswith("text/html")
    assert [r.status_code for r in followed.history] == [302]
    assert [(e["path"], e["status"]) for e in spp_sandbox.requests()] == [("/api/orders", 302), ("/expired", 200)]


def test_a_signed_out_session_is_redirected_to_the_login_page(spp_sandbox: SandboxServer) -> None:
    spp_sandbox.configure(workspace_state="signed_out")
    for method, path in API_CALLS:
        answer = api(spp_sandbox, method, path, json={"message": "never stored"})
        assert (answer.status_code, answer.headers["location"]) == (302, f"{spp_sandbox.url}/login")
    login = api(spp_sandbox, "GET", "/login")
    assert login.status_code == 200
    assert '<form method="POST" action="/login">' in login.text
    _nothing_stored(spp_sandbox)


def test_a_host_that_is_no_workspace_answers_200_html_everywhere(spp_sandbox: SandboxServer) -> None:
    spp_sandbox.configure(workspace_state="not_a_workspace")
    for method, path in [*API_CALLS, ("GET", "/"), ("GET", "/api.yaml")]:
        for auth in (True, False):
            answer = api(spp_sandbox, method, path, auth=auth, json={"message": "never stored"})
            assert answer.status_code == 200, (method, path)
            assert answer.headers["content-type"].startswith("text/html")
            assert answer.text.lstrip().startswith("<!DOCTYPE html>")
    _nothing_stored(spp_sandbox)
    assert admin(spp_sandbox, "GET", "/health").json() == {"status": "ok"}  # the admin API is never affected


def test_a_moved_host_redirects_every_method_to_the_same_path_on_the_new_host(
    spp_sandbox: SandboxServer, spp_sandbox_other_host: SandboxServer
) -> None:
    new = spp_sandbox_other_host
    assert admin(spp_sandbox, "POST", "/settings", json={"moved_to": f"{new.url}/"}).status_code == 200
    query = "limit=1&page=2&filters%5Bstatus%5D%5B%24eq%5D=2"
    for method, path in API_CALLS:
        answer = api(spp_sandbox, method, f"{path.split('?')[0]}?{query}", json={"message": "never stored"})
        assert answer.status_code == 301, (method, path)
        assert answer.headers["location"] == f"{new.url}{path.split('?')[0]}?{query}"
        assert "nginx" in answer.text
    _nothing_stored(spp_sandbox)
    _nothing_stored(new)
    followed = api(spp_sandbox, "GET", "/api/orders?limit=1", follow_redirects=True)
    assert followed.status_code == 401  # httpx dropped the token on the way to another port
    assert (new.requests()[-1]["path"], new.requests()[-1]["query"]) == ("/api/orders", "limit=1")
    spp_sandbox.configure(moved_status=308)
    assert api(spp_sandbox, "POST", f"/api/order_messages/{ORDER}", json={"message": "x"}).status_code == 308


def test_a_token_without_api_access_gets_403_and_stores_nothing(spp_sandbox: SandboxServer) -> None:
    spp_sandbox.configure(no_api_token="wf_client_role")
    no_api = {"Authorization": "Bearer wf_client_role"}

    for method, path in ROUTED:
        answer = api(spp_sandbox, method, path, auth=False, headers=no_api, json={"message": "never stored"})
        assert answer.status_code == 403, (method, path)
        assert answer.json() == {"message": "Your license may not include API access."}
    assert api(spp_sandbox, "GET", "/api/orders", auth=False, headers={"Authorization": "Bearer x"}).status_code == 401
    assert api(spp_sandbox, "GET", "/api/orders").status_code == 200  # the workspace's own token still works
    _nothing_stored(spp_sandbox)
    spp_sandbox.configure(no_api_message="This action is unauthorized.")
    assert api(spp_sandbox, "GET", "/api/orders", auth=False, headers=no_api).json()["message"] == (
        "This action is unauthorized."
    )


def test_switches_given_to_the_server_survive_resets() -> None:
    with SandboxServer(no_api_token="wf_noapi", status_style="code") as server:
        server.configure(no_api_token=None, status_style="label")
        server.reset()
        assert (server.settings.no_api_token, server.settings.status_style) == ("wf_noapi", "code")
        headers = {"Authorization": "Bearer wf_noapi"}
        assert api(server, "GET", "/api/orders", auth=False, headers=headers).status_code == 403
    with pytest.raises(ValueError, match="unknown setting"):
        SandboxServer(stauts_style="code")


def test_validation_errors_are_laravel_422_and_400_on_request(spp_sandbox: SandboxServer) -> None:
    url = f"/api/order_messages/{ORDER}"
    first = api(spp_sandbox, "POST", url, json={"staff_only": "yes"})
    assert first.status_code == 422
    assert first.json() == {
        "message": "The message field is required. (and 1 more error)",
        "errors": {
            "message": ["The message field is required."],
            "staff_only": ["The staff only field must be true or false."],
        },
    }
    spp_sandbox.configure(validation_status=400)
    second = api(spp_sandbox, "POST", url, json={"staff_only": "yes"})
    assert (second.status_code, second.json()) == (400, first.json())
    _nothing_stored(spp_sandbox)


CHANGED: dict[str, Any] = {
    "workspace_state": "expired",
    "moved_to": "https://acme.wayfront.com",
    "moved_status": 308,
    "no_api_token": "wf_x",
    "no_api_message": "No.",
    "validation_status": 400,
    "status_style": "code",
    "status_codes": {"10": "Open", "20": "Done"},
    "ignore_filters_and_sort": True,
    "unknown_fields": "error",
    "rejected_sorts": ["last_message_at"],
    "rejected_filters": ["created_at"],
    "query_error_status": 422,
    "clock_offset": -5.0,
    "rate_limit": 1000,
    "rate_limit_window": 2.0,
}


def test_the_admin_api_sets_every_switch_and_a_reset_restores_them(spp_sandbox: SandboxServer) -> None:
    with httpx.Client(base_url=f"{spp_sandbox.url}/_sandbox", timeout=5) as client:  # one kept-alive connection
        defaults = client.get("/settings").json()
        assert defaults == WorkspaceSettings().to_dict()
        assert set(CHANGED) == set(defaults)  # this test covers every declared switch
        changed = client.post("/settings", json=CHANGED)
        assert changed.status_code == 200
        assert changed.json() == CHANGED
        spp_sandbox.after_page("orders", order=ORDER)
        spp_sandbox.drop_handshakes(2)  # new connections only: this client's open one is not affected
        assert client.post("/reset").status_code == 200
        assert client.get("/settings").json() == defaults
        assert client.get("/after_page").json() == []
        assert client.get("/handshake_drops").json() == {"pending": 0, "dropped": 0}
        spp_sandbox.configure(status_style="code")
        assert client.delete("/settings").status_code == 204
        assert client.get("/settings").json()["status_style"] == "label"


@pytest.mark.parametrize(
    "body",
    [
        {"workspace_state": "on_holiday"},
        {"moved_to": "acme.wayfront.com"},
        {"validation_status": 418},
        {"status_codes": {"two": "Working"}},
        {"status_codes": {"1": "Working", "2": "working"}},
        {"clock_offset": "soon"},
        {"colour": "red"},
        ["not", "an", "object"],
    ],
)
def test_the_admin_api_rejects_bad_switches(spp_sandbox: SandboxServer, body: Any) -> None:
    answer = admin(spp_sandbox, "POST", "/settings", json=body)
    assert answer.status_code == 400
    assert answer.json()["message"]
    assert admin(spp_sandbox, "GET", "/settings").json() == WorkspaceSettings().to_dict()


def test_the_cli_takes_every_switch_as_a_flag_and_keeps_it_across_resets() -> None:
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "airflow_provider_spp.sandbox.cli", "--port", "0", "--token", "cli-token"),
            *("--status-style", "code", "--status-codes", "0=Unpaid,1=Submitted,2=Working,3=Complete"),
            *("--clock-offset", "-5", "--ignore-filters-and-sort", "--rejected-sorts", "last_message_at"),
            *("--extra-orders", "2", "--extra-order-status", "3"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = _listening_url(proc)
        headers = {"Authorization": "Bearer cli-token"}
        query = {"sort": "id:desc", "filters[id][$eq]": "1"}  # ignored: this workspace has no Purity
        orders = httpx.get(f"{url}/api/orders", params=query, headers=headers, timeout=5).json()["data"]
        httpx.post(f"{url}/_sandbox/reset", timeout=5)
        settings = httpx.get(f"{url}/_sandbox/settings", timeout=5).json()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert (settings["status_style"], settings["clock_offset"], settings["ignore_filters_and_sort"]) == (
        "code",
        -5,
        True,
    )
    assert settings["rejected_sorts"] == ["last_message_at"]
    assert [(o["id"], o["status"]) for o in orders] == [
        (1001, 2),
        (1002, 1),
        (1003, 3),
        (1004, 2),
        (1005, 3),
        (1006, 3),
    ]


def _listening_url(proc: subprocess.Popen[str]) -> str:
    """The URL the CLI logs once it listens."""
    assert proc.stderr is not None
    for line in proc.stderr:
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if found:
            return found.group(1)
    raise AssertionError("the sandbox CLI never said where it listens")
