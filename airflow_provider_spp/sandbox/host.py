"""What a request to the workspace's host meets before the API: licence expiry, a login page, no workspace, a move.

Answered by the sandbox middleware ahead of the API (nothing is stored, no queued fault is used, the
request is logged with its status); the ``/_sandbox`` admin API is never affected. The switches are
``WorkspaceSettings.workspace_state`` and ``moved_to`` (first match wins):

* ``moved_to``: nginx's ``return 301 <moved_to>$request_uri``: every request (any method) is redirected
  to the same path and query on the new base URL, status ``moved_status`` (301), an nginx HTML body;
* ``not_a_workspace``: 200 ``text/html`` for every path and method (a marketing site, a parked domain or a
  proxy's friendly error page);
* ``expired``: Laravel's ``redirect('/expired')`` from a licence middleware: 302 with an absolute
  ``Location`` on the same host and Symfony's "Redirecting to" HTML body, for every path (API included)
  except ``/expired`` itself, which answers 200 HTML;
* ``signed_out``: the same to ``/login`` (Laravel's ``Authenticate`` middleware for a session guard; the
  sandbox redirects even when the client asks for JSON).

``GET /expired`` and ``GET /login`` always answer their HTML page, as a real workspace's do. The answers
carry no ``X-Api-Identifier``/``X-Api-Version`` (the API never saw them), only ``Date``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from http import HTTPStatus

from airflow_provider_spp.sandbox.workspace import WorkspaceSettings, WorkspaceState

__all__ = [
    "NGINX_PAGE",
    "host_answer",
]

#: nginx's own error and redirect pages.
NGINX_PAGE = (
    "<html>\r\n<head><title>{0}</title></head>\r\n<body>\r\n<center><h1>{0}</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
#: Symfony's RedirectResponse body, which Laravel's ``redirect()`` sends.
_REDIRECT_PAGE = """<!DOCTYPE html>
<html>
    <head>
        <meta charset="UTF-8" />
        <meta http-equiv="refresh" content="0;url='{0}'" />

        <title>Redirecting to {0}</title>
    </head>
    <body>
        Redirecting to <a href="{0}">{0}</a>.
    </body>
</html>"""
_PAGE = (
    '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>{0}</title></head>\n'
    "<body>{1}</body>\n</html>\n"
)
EXPIRED_PAGE = _PAGE.format(
    "License expired", "<h1>License expired</h1><p>This workspace is not active. Contact its owner to renew it.</p>"
)
LOGIN_PAGE = _PAGE.format(
    "Log in",
    '<form method="POST" action="/login"><input type="hidden" name="_token" value="sandbox">'
    '<input type="email" name="email"><input type="password" name="password">'
    "<button>Log in</button></form>",
)
NOT_A_WORKSPACE_PAGE = _PAGE.format(
    "Acme Agency - websites that sell", "<h1>Websites that sell</h1><p>Book a call with our team today.</p>"
)
_HTML = (b"content-type", b"text/html; charset=UTF-8")


@dataclass(frozen=True)
class HostAnswer:
    """A complete response given instead of the API's."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


def _page(text: str, status: int = 200) -> HostAnswer:
    """An HTML page."""
    return HostAnswer(status, (_HTML,), text.encode())


def _laravel_redirect(url: str) -> HostAnswer:
    """Laravel's ``redirect($url)``: 302, absolute ``Location``, Symfony's HTML body."""
    headers = (_HTML, (b"location", url.encode("latin-1", "replace")), (b"cache-control", b"no-cache, private"))
    return HostAnswer(302, headers, _REDIRECT_PAGE.format(html.escape(url)).encode())


def _nginx_redirect(url: str, status: int) -> HostAnswer:
    """nginx's ``return <status> <url>``."""
    title = f"{status} {HTTPStatus(status).phrase}"
    headers = ((b"content-type", b"text/html"), (b"location", url.encode("latin-1", "replace")))
    return HostAnswer(status, headers, NGINX_PAGE.format(title).encode())


def host_answer(settings: WorkspaceSettings, method: str, path: str, query: str, base_url: str) -> HostAnswer | None:
    """The answer the host gives a (non-admin) request before the API, or None to let the API answer."""
    if settings.moved_to is not None:
        return _nginx_redirect(f"{settings.moved_to}{path}{'?' + query if query else ''}", settings.moved_status)
    state = settings.workspace_state
    if state is WorkspaceState.NOT_A_WORKSPACE:
        return _page(NOT_A_WORKSPACE_PAGE)
    if method in ("GET", "HEAD") and path in ("/expired", "/login"):
        return _page(EXPIRED_PAGE if path == "/expired" else LOGIN_PAGE)
    if state is WorkspaceState.EXPIRED and path != "/expired":
        return _laravel_redirect(f"{base_url}/expired")
    if state is WorkspaceState.SIGNED_OUT and path != "/login":
        return _laravel_redirect(f"{base_url}/login")
    return None
