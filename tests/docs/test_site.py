"""The docs site as a reader gets it: ``mkdocs build --strict`` (warnings are errors), then a few pages
served on 127.0.0.1 and opened in Debian's Chromium: the navigation, the API reference, an included snippet.

Run by CI's docs step (``python3 scripts/docs_site.py``, which installs the ``docs`` extra and Chromium and
sets ``SPP_DOCS_SITE=1``); elsewhere these tests skip, saying so.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TESTS_DIR

REPO = TESTS_DIR.parent
CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    os.environ.get("SPP_DOCS_SITE") != "1",
    reason="the docs site is built and opened in Chromium by CI's docs step: python3 scripts/docs_site.py",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as ``mkdocs build --strict`` writes it."""
    target = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(target)],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-5000:]
    return target


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The built site on a free port of 127.0.0.1, for as long as the module's tests run."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on the test's output."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium through Playwright (no browser is ever downloaded)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing and could not be installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            yield launched
        finally:
            launched.close()


def test_build_expands_every_include(site: Path) -> None:
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 20
    blocks = {p.relative_to(site): re.findall(r"<pre[^>]*>.*?</pre>", p.read_text(), re.DOTALL) for p in pages}
    leftovers = [name for name, found in blocks.items() if any("--8&lt;--" in block for block in found)]
    assert leftovers == []  # every include line in a code block was expanded
    assert sum(len(found) for found in blocks.values()) >= 20
    assert (site / "reference" / "hooks" / "index.html").is_file()


def test_the_api_reference_shows_no_raw_sphinx_roles_and_links_them(site: Path) -> None:
    """Docstrings keep Sphinx roles (as Airflow's providers do); docs/hooks/sphinx_roles.py makes them links."""
    pages = {p.relative_to(site): p.read_text() for p in (site / "reference").rglob("*.html")}
    role = re.compile(r":(?:class|meth|func|attr|mod|data|exc|obj):(?:`|<code>)")  # Markdown made `x` <code>x
    raw = {name: role.findall(text) for name, text in pages.items()}
    assert {name: found for name, found in raw.items() if found} == {}
    sandbox = pages[Path("reference/sandbox/index.html")]
    assert 'href="#airflow_provider_spp.sandbox.server.SandboxServer.configure"><code>configure()</code></a>' in sandbox


def test_lists_render_as_lists(site: Path) -> None:
    """Python-Markdown needs 4-space nesting and a blank line before a list; else bullets show as flat text."""
    flat = {}
    for page in site.rglob("index.html"):
        for block in re.findall(r"<(?:p|li)>(.*?)</(?:p|li)>", page.read_text(), re.S):
            if re.search(r"\n\s*[-*] \S", re.sub(r"<[^>]+>", "", block)):
                flat[str(page.relative_to(site))] = re.sub(r"<[^>]+>", "", block)[:120]
    assert not flat, f"list items rendered as text: {flat}"


def test_navigation_lists_the_guides(served: str, browser: Any, tmp_path: Path) -> None:
    page = browser.new_page()
    page.goto(f"{served}/", wait_until="load")
    nav = page.locator("nav.md-nav--primary")
    for title in ("Getting started", "Connection", "Exactly once", "Sandbox", "Supported versions", "API reference"):
        assert nav.get_by_text(title, exact=True).count() >= 1, title
    page.screenshot(path=str(Path(os.environ.get("SPP_DOCS_SCREENSHOTS", tmp_path)) / "home.png"))
    page.close()


def test_api_reference_shows_the_hook_and_its_methods(served: str, browser: Any) -> None:
    page = browser.new_page()
    page.goto(f"{served}/reference/hooks/", wait_until="load")
    heading = page.locator("h2#airflow_provider_spp.hooks.spp.SppHook, [id='airflow_provider_spp.hooks.spp.SppHook']")
    assert heading.count() >= 1
    method = page.locator("[id='airflow_provider_spp.hooks.spp.SppHook.create_order_message']")
    assert method.count() == 1
    assert "create_order_message" in method.first.inner_text()
    page.close()


def test_guide_renders_an_included_example(served: str, browser: Any) -> None:
    page = browser.new_page()
    page.goto(f"{served}/guides/operator/", wait_until="load")
    code = page.locator("pre code").filter(has_text="post_followup = CreateOrderMessageOperator(")
    assert code.count() == 1
    assert code.first.is_visible()
    assert "[START" not in page.content()
    page.close()
