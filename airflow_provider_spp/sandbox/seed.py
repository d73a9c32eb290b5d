"""The sandbox workspace's fixed data: users (with roles) and orders, re-created on every reset.

* user 1 — Ada Admin, staff administrator; **the API token belongs to her** (the default ``user_id``);
* user 2 — Cleo Client, a client with email, phone and address, managed by user 3;
* user 3 — Max Manager, a staff member assigned to the orders.

Orders (ID / number / status): 1001 ``E4A269FC`` Working, 1002 ``B7C3D2A1`` Submitted,
1003 ``9F8E7D6C`` Complete, 1004 ``00C0FFEE`` Working (a second client order, older).
More orders for load runs come from :func:`generated_orders` (admin API ``POST /_sandbox/orders``).
"""

from __future__ import annotations

import copy
from typing import Any, TypeAlias

__all__ = [
    "DEFAULT_TOKEN",
    "TOKEN_USER_ID",
    "Status",
    "checked_status",
    "generated_orders",
    "order_record",
    "seeded_orders",
    "seeded_users",
]

#: An order status as stored: a label ("Working") or a workspace's integer code (2); the ``status_style``
#: setting decides which of the two orders carry (see ``workspace.WorkspaceSettings``).
Status: TypeAlias = int | str

#: The user the sandbox token belongs to.
TOKEN_USER_ID = 1
#: The fake token the pytest fixtures use (a server accepts exactly the token it was started with).
DEFAULT_TOKEN = "spp-sandbox-test-token"  # noqa: S105 - a sandbox token, not a secret

_ALL = 3  # permission level "all"

_ADMIN_ROLE: dict[str, Any] = {
    "id": 1,
    "name": "Administrator",
    "dashboard_access": _ALL,
    "affiliates": _ALL,
    "clients": _ALL,
    "coupons": _ALL,
    "forms": _ALL,
    "invoice_access": _ALL,
    "invoice_management": _ALL,
    "messaging": _ALL,
    "order_access": _ALL,
    "order_management": _ALL,
    "rank_tracking": _ALL,
    "services": _ALL,
    "ticket_access": _ALL,
    "ticket_management": _ALL,
    "team": True,
    "settings": True,
    "settings_company": True,
    "settings_payments": True,
    "settings_team": True,
    "settings_modules": True,
    "settings_integrations": True,
    "settings_orders": True,
    "settings_tickets": True,
    "settings_accounts": True,
    "settings_messages": True,
    "settings_tags": True,
    "settings_sidebar": True,
    "settings_dashboard": True,
    "settings_templates": True,
    "settings_emails": True,
    "settings_language": True,
    "settings_logs": True,
    "created_at": "2021-08-31T14:48:00+00:00",
    "updated_at": "2021-08-31T14:48:00+00:00",
}

_MANAGER_ROLE: dict[str, Any] = {
    **_ADMIN_ROLE,
    "id": 3,
    "name": "Manager",
    "affiliates": 0,
    "coupons": 0,
    "invoice_management": 1,
    "settings": False,
    **{key: False for key in _ADMIN_ROLE if key.startswith("settings_")},
    "team": False,
}

_CLIENT_ROLE: dict[str, Any] = {
    **{key: 0 for key, value in _ADMIN_ROLE.items() if isinstance(value, int) and not isinstance(value, bool)},
    **{key: False for key, value in _ADMIN_ROLE.items() if isinstance(value, bool)},
    "id": 2,
    "name": "Client",
    "dashboard_access": 1,
    "invoice_access": 1,
    "messaging": 1,
    "order_access": 1,
    "ticket_access": 1,
    "created_at": _ADMIN_ROLE["created_at"],
    "updated_at": _ADMIN_ROLE["updated_at"],
}


def _address(name_f: str, name_l: str, **fields: str | None) -> dict[str, Any]:
    """An Address with every documented key."""
    address: dict[str, Any] = dict.fromkeys(
        ("line_1", "line_2", "city", "country", "state", "postcode", "tax_id", "company_name", "company_vat")
    )
    address.update(name_f=name_f, name_l=name_l, **fields)
    return address


def _user(
    user_id: int,
    name_f: str,
    name_l: str,
    email: str,
    role: dict[str, Any],
    created_at: str,
    **fields: Any,
) -> dict[str, Any]:
    """A User with every documented key."""
    user: dict[str, Any] = {
        "id": user_id,
        "aff_id": None,
        "aff_link": f"https://sandbox.spp.local/r/U{user_id:05d}",
        "created_at": created_at,
        "name_f": name_f,
        "name_l": name_l,
        "email": email,
        "company": None,
        "tax_id": None,
        "phone": None,
        "address": _address(name_f, name_l),
        "note": None,
        "balance": "0.00",
        "optin": "No",
        "stripe_id": None,
        "custom_fields": {},
        "status": 1,
        "role_id": role["id"],
        "role": copy.deepcopy(role),
        "name": f"{name_f} {name_l}",
        "spent": None,
        "employee_id": None,
        "managers": [],
        "ga_cid": None,
        "team_owner_ids": [],
        "team_member_ids": [],
    }
    user.update(fields)
    return user


_CLIENT_ADDRESS = {
    "line_1": "Example Street 1",
    "line_2": "2nd floor",
    "city": "Berlin",
    "country": "DE",
    "state": "BE",
    "postcode": "10115",
    "tax_id": "DE123456789",
    "company_name": "Client Co.",
    "company_vat": "DE123456789",
}


def seeded_users() -> dict[int, dict[str, Any]]:
    """Fresh, independent copies of the seeded users, by ID."""
    admin = _user(1, "Ada", "Admin", "ada.admin@sandbox.spp.local", _ADMIN_ROLE, "2021-09-01T00:00:00+00:00")
    manager = _user(3, "Max", "Manager", "max.manager@sandbox.spp.local", _MANAGER_ROLE, "2022-02-14T08:30:00+00:00")
    client = _user(
        2,
        "Cleo",
        "Client",
        "cleo@client.example.org",
        _CLIENT_ROLE,
        "2023-05-10T09:15:00+00:00",
        company="Client Co.",
        tax_id="DE123456789",
        phone="+49 30 1234567",
        address=_address("Cleo", "Client", **_CLIENT_ADDRESS),
        balance="0.00",
        optin="Yes",
        spent="1250.00",
        employee_id=3,
        managers=[
            {
                "id": 3,
                "name": "Max Manager",
                "name_f": "Max",
                "name_l": "Manager",
                "email": "max.manager@sandbox.spp.local",
                "role_id": 3,
            }
        ],
        ga_cid="123456789.1234567890",
    )
    return {user["id"]: user for user in (admin, client, manager)}


_EMPLOYEE = {"id": 3, "name_f": "Max", "name_l": "Manager", "group_id": 1, "role_id": 3}


def checked_status(status: Any) -> Status:
    """A status label (non-empty text) or code (an integer), else ValueError."""
    blank = isinstance(status, str) and not status.strip()
    if isinstance(status, bool) or not isinstance(status, int | str) or blank:
        raise ValueError(f"status must be a label (non-empty string) or an integer code, got {status!r}")
    return status


def order_record(order_id: int, number: str, status: Status, service: str, created_at: str) -> dict[str, Any]:
    """A stored order (the client object is attached when rendering)."""
    return {
        "id": order_id,
        "number": number,
        "status": status,
        "service": service,
        "service_id": 1 + order_id % 3,
        "user_id": 2,
        "price": "250.00",
        "currency": "USD",
        "note": None,
        "tags": [],
        "form_data": {},
        "metadata": {},
        "employees": [dict(_EMPLOYEE)],
        "created_at": created_at,
        "updated_at": created_at,
        "date_started": None,
        "date_completed": None,
        "date_due": None,
        "last_message_at": None,
    }


#: Generated orders get numbers from here on (8 hex digits, as SPP numbers look): B0000001, B0000002, ...
GENERATED_NUMBER_BASE = 0xB0000000


def generated_orders(first_id: int, count: int, status: Status) -> list[dict[str, Any]]:
    """``count`` more client orders with IDs from ``first_id``, numbered ``B0000001`` on, one minute apart."""
    return [
        order_record(
            order_id,
            f"{GENERATED_NUMBER_BASE + order_id - first_id + 1:08X}",
            status,
            "Monthly SEO report",
            f"2026-11-01T{(n // 60) % 24:02d}:{n % 60:02d}:00+00:00",
        )
        for n, order_id in enumerate(range(first_id, first_id + count))
    ]


def seeded_orders() -> dict[int, dict[str, Any]]:
    """Fresh, independent copies of the seeded orders, by ID."""
    orders = [
        order_record(1001, "E4A269FC", "Working", "Website audit", "2026-10-01T09:00:00+00:00"),
        order_record(1002, "B7C3D2A1", "Submitted", "SEO retainer", "2026-10-05T10:30:00+00:00"),
        order_record(1003, "9F8E7D6C", "Complete", "Logo design", "2026-10-09T14:45:00+00:00"),
        order_record(1004, "00C0FFEE", "Working", "Content writing", "2026-09-20T16:00:00+00:00"),
    ]
    return {order["id"]: order for order in orders}
