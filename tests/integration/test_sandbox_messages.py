"""Wayfront's message fields (``is_auto_generated``, ``via``, ``date_seen``) and messages arriving without the API."""

from __future__ import annotations

import pytest

from airflow_provider_spp.sandbox import SandboxServer
from tests.support.sandbox_http import ORDER, admin, api

pytestmark = pytest.mark.integration

CLIENT = 2


def _listing(server: SandboxServer) -> list[dict[str, object]]:
    """The order's messages as the API lists them, newest first."""
    return api(server, "GET", f"/api/order_messages/{ORDER}").json()["data"]


def test_a_message_posted_through_the_api_says_so(spp_sandbox: SandboxServer) -> None:
    created = api(spp_sandbox, "POST", f"/api/order_messages/{ORDER}", json={"message": "Report attached"}).json()
    fields = ("is_auto_generated", "via", "date_seen")
    assert [created[f] for f in fields] == [False, "api", None]
    assert [_listing(spp_sandbox)[0][f] for f in fields] == [False, "api", None]
    stored = admin(spp_sandbox, "GET", "/messages").json()[0]
    assert [stored[f] for f in fields] == [False, "api", None]


def test_the_service_writes_auto_generated_messages_as_the_client(spp_sandbox: SandboxServer) -> None:
    answer = admin(spp_sandbox, "POST", f"/orders/{ORDER}/auto_messages", json={})
    assert answer.status_code == 201
    auto = _listing(spp_sandbox)[0]
    assert auto["message"] == "Order status changed to Working"
    assert (auto["user_id"], auto["is_auto_generated"], auto["via"], auto["date_seen"]) == (CLIENT, True, "web", None)
    spp_sandbox.configure(status_style="code")  # the text still names the status, not its code
    assert spp_sandbox.post_auto_generated("00C0FFEE").message == "Order status changed to Working"
    by_staff = admin(
        spp_sandbox, "POST", f"/orders/{ORDER}/auto_messages", json={"message": "Due date moved", "user_id": 3}
    )
    assert (by_staff.json()["user_id"], by_staff.json()["is_auto_generated"]) == (3, True)


def test_a_client_reply_arrives_by_email_and_is_seen(spp_sandbox: SandboxServer) -> None:
    body = {"message": "Thanks, looks good", "via": "email", "date_seen": "2026-11-25T12:00:05Z"}
    answer = admin(spp_sandbox, "POST", f"/orders/{ORDER}/client_messages", json=body)
    assert answer.status_code == 201
    reply = _listing(spp_sandbox)[0]
    assert (reply["user_id"], reply["via"], reply["is_auto_generated"]) == (CLIENT, "email", False)
    assert reply["date_seen"] == "2026-11-25T12:00:05+00:00"
    portal = spp_sandbox.post_as_client(ORDER, "and one from the portal")
    assert (portal.via, portal.is_auto_generated, portal.date_seen) == ("web", False, None)
    email = spp_sandbox.post_as_client(ORDER, "by mail", via="email")
    assert email.to_dict()["via"] == "email"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"message": " "},
        {"message": "x", "via": ""},
        {"message": "x", "date_seen": "yesterday"},
        {"message": "x", "user_id": 99},
        {"message": "x", "is_auto_generated": "yes"},
        {"message": "x", "colour": "red"},
    ],
)
def test_bad_arriving_messages_are_refused(spp_sandbox: SandboxServer, body: dict[str, object]) -> None:
    answer = admin(spp_sandbox, "POST", f"/orders/{ORDER}/client_messages", json=body)
    assert answer.status_code == 422
    assert spp_sandbox.messages() == []
    assert admin(spp_sandbox, "POST", "/orders/NOPE/auto_messages", json={}).status_code == 422
