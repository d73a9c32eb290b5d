"""The Airflow UI in Debian's headless Chromium, driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

from airflow_provider_spp._internal.links import LINK_NAME
from airflow_provider_spp._internal.provider_info import CONN_FIELDS
from tests.e2e.deploy import CHROMIUM, say

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: The extra fields the provider declares (conn-fields), their labels, and what the form shows before the
#: user types: the schema default (booleans are toggles, numbers appear as text), else empty.
EXTRA_LABELS = tuple(spec["label"] for spec in CONN_FIELDS.values())


def _form_default(schema: dict[str, Any]) -> bool | str:
    """What the form shows for a conn-field before the user types: a toggle's state, or the default as text."""
    if "boolean" in schema["type"]:
        return bool(schema.get("default", False))
    return str(schema.get("default", ""))


EXTRA_DEFAULTS = {name: _form_default(spec["schema"]) for name, spec in CONN_FIELDS.items()}
TIMEOUT_MS = 60_000


def check_ui(ctx: Any) -> None:
    """Log in, check the Add Connection form for the spp type, then a follow-up run's Rendered Template view and
    its post's "Open order in Wayfront" link."""
    from playwright.sync_api import sync_playwright

    shots = ctx.work / "screenshots"
    shots.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            try:
                _log_in(ctx, page, shots)
                _check_connection_form(ctx, page, shots)
                _check_rendered_template(ctx, page, shots)
                _check_order_link(ctx, page, shots)
            except Exception:
                _shot(ctx, page, shots / "ui-failure.png")
                (shots / "ui-failure.txt").write_text(page.inner_text("body"))
                raise
        finally:
            browser.close()


def _shot(ctx: Any, page: Any, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    ctx.report.screenshots.append(path)
    say(f"Screenshot {path}")


def _log_in(ctx: Any, page: Any, shots: Path) -> None:
    """SimpleAuthManager's login form, with the generated admin password."""
    page.goto(f"{ctx.airflow.api_url}/connections")
    page.wait_for_load_state("networkidle")
    if page.locator("input[type=password]").count():
        _shot(ctx, page, shots / "01-login.png")
        page.locator("input[name=username], input#username, input[type=text]").first.fill(ctx.airflow.admin_user)
        page.locator("input[type=password]").first.fill(ctx.airflow.admin_password)
        page.locator("button[type=submit]").first.click()
        page.wait_for_url(lambda url: "/login" not in url)
        page.goto(f"{ctx.airflow.api_url}/connections")
        page.wait_for_load_state("networkidle")
    ctx.report.check(
        "UI: logged in and the Connections page is shown", page.get_by_text("Add Connection").count() > 0, page.url
    )


def _check_connection_form(ctx: Any, page: Any, shots: Path) -> None:
    """Add Connection -> "Wayfront (formerly Service Provider Pro, SPP)": relabelled fields, placeholders, extras,
    a password input."""
    report = ctx.report
    page.get_by_text("Add Connection").first.click()
    page.get_by_text("Connection Type").first.wait_for()
    type_picker = page.get_by_role("combobox").first
    type_picker.click()
    page.keyboard.type("Wayfront")
    page.get_by_role("option", name="Wayfront (formerly Service Provider Pro, SPP)").first.click()
    page.get_by_text("Workspace URL").first.wait_for()
    _shot(ctx, page, shots / "02-add-connection-spp-standard-fields.png")
    standard = page.inner_text("body")
    page.get_by_text("Extra Fields").first.click()  # an accordion: this folds the standard fields away
    page.get_by_text(EXTRA_LABELS[0], exact=True).first.wait_for()
    _shot(ctx, page, shots / "03-add-connection-spp-extra-fields.png")
    extra = page.inner_text("body")
    inputs = page.eval_on_selector_all(
        "input",
        "els => els.map(e => ({name: e.name, type: e.type, value: e.value, placeholder: e.placeholder,"
        " checked: e.checked}))",
    )
    (shots / "03-add-connection-spp.inputs.json").write_text(json.dumps(inputs, indent=1))
    by_name = {i["name"]: i for i in inputs if i["name"]}
    host, token = by_name.get("host") or {}, by_name.get("password") or {}
    report.check(
        "UI: SPP form relabels host and password to 'Workspace URL' and 'API token', hides login/port/schema",
        "Workspace URL" in standard
        and "API token" in standard
        and bool(host)
        and bool(token)
        and not {"login", "port", "schema"} & set(by_name),
        f"inputs {sorted(by_name)}",
    )
    report.check(
        "UI: host and token placeholders are shown",
        host.get("placeholder") == "https://acme.wayfront.com"
        and token.get("placeholder") == "An API token of your Wayfront workspace",
    )
    report.check("UI: the API token field is a password input", token.get("type") == "password")
    missing = [label for label in EXTRA_LABELS if label not in extra]
    report.check(
        f"UI: the {len(EXTRA_LABELS)} extra fields are shown with their labels", not missing, f"missing {missing}"
    )
    shown = {
        name.removeprefix("element_"): (i["value"] if i["type"] != "checkbox" else i["checked"])
        for name, i in by_name.items()
        if name.startswith("element_")
    }
    report.check(
        "UI: extra fields start at the provider's defaults (toggles for the booleans)",
        shown == EXTRA_DEFAULTS,
        f"{shown}",
    )


def _check_rendered_template(ctx: Any, page: Any, shots: Path) -> None:
    """The finished follow-up run's post_followup: Rendered Templates show the message, never the token."""
    run_id = ctx.runs["followup"]
    url = (
        f"{ctx.airflow.api_url}/dags/spp_order_followup/runs/{urllib.parse.quote(run_id, safe='')}"
        "/tasks/post_followup/rendered_templates"
    )
    page.goto(url)
    page.get_by_text("Your weekly report for").first.wait_for()
    page.wait_for_load_state("networkidle")
    _shot(ctx, page, shots / "04-rendered-templates-post_followup.png")
    body = page.inner_text("body")
    # The view highlights code: a line's words may sit in separate elements, so look for whole plain lines.
    ctx.report.check(
        "UI: Rendered Templates show the rendered message (greeting, highlights, signature)",
        all(
            line in body
            for line in ("Hi Dana,", "- Two new backlinks from industry press", "The Northwind Digital team")
        )
        and "{{" not in body,
    )
    ctx.report.check("UI: Rendered Templates never show the SPP token", ctx.token not in page.content())


#: The order the follow-up example posts to (its ``params.order`` default, which the E2E run keeps).
FOLLOWUP_ORDER = "E4A269FC"


def _check_order_link(ctx: Any, page: Any, shots: Path) -> None:
    """The follow-up run's post_followup page (Details) shows the "Open order in Wayfront" link to the order's page.

    post_followup ran on the second Celery worker; the API server reads the link back from XCom.
    """
    run_id = ctx.runs["followup"]
    run = urllib.parse.quote(run_id, safe="")
    # Airflow 3's task instance page lists the extra links on its Details tab.
    page.goto(f"{ctx.airflow.api_url}/dags/spp_order_followup/runs/{run}/tasks/post_followup/details")
    link = page.get_by_role("link", name=LINK_NAME).first
    link.wait_for()
    page.wait_for_load_state("networkidle")
    _shot(ctx, page, shots / "05-task-extra-link-post_followup.png")
    href = link.get_attribute("href")
    expected = f"{ctx.sandbox_url}/orders/{FOLLOWUP_ORDER}"
    ctx.report.check(
        f"UI: the task page shows the extra link {LINK_NAME!r} to the order's page", href == expected, f"href {href!r}"
    )
    ctx.report.check("UI: the extra link never carries the SPP token", ctx.token not in (href or ""))
