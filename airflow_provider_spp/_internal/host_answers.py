"""What a workspace's host answers besides the API, without I/O: redirects, its own HTML pages, no workspace.

A call follows a redirect only when it may be re-sent, and only within the workspace (the token never goes
to another host): :func:`redirect_target`. A redirect not followed, and a 2xx HTML page where the API
answers JSON, become errors that say what happened: the licence expired, a login page, a moved host, or a
host that is no workspace (:func:`redirect_error`, :func:`html_error`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from airflow_provider_spp.exceptions import SppApiError, SppAuthError, SppUnexpectedResponseError

if TYPE_CHECKING:
    from airflow_provider_spp._internal.client import Answer, ApiRequest

#: Where a workspace sends a request when its licence expired, or when it wants a session (both HTML pages).
EXPIRED_PATH = "/expired"
LOGIN_PATH = "/login"


def origin(url: str) -> tuple[str, str | None, int | None]:
    """Scheme, host and port of a URL, with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, parts.hostname, parts.port or {"http": 80, "https": 443}.get(scheme)


def redirect_target(request: ApiRequest, answer: Answer, base_url: str) -> ApiRequest | None:
    """The request that follows a redirect, or None: not a redirect, or one that must not be followed.

    Only a call that may be re-sent (a GET, a DELETE) follows, and only within the workspace's origin: the
    token never goes to another host, so a moved workspace is reported (:func:`raise_for_status`), not
    followed. The target's query comes with it.
    """
    location = answer.headers.get("Location")
    if not request.idempotent or not 300 <= answer.status < 400 or answer.status == 304 or not location:
        return None
    target = urljoin(answer.url, location)
    if origin(target) != origin(base_url):
        return None
    # As browsers and requests do: a 302 or 303 is followed with a GET (a DELETE lands on the page it names).
    method = "GET" if answer.status in (302, 303) and request.method != "HEAD" else request.method
    return dataclasses.replace(request, method=method, url=target, params={})


def redirect_error(answer: Answer, method: str, path: str) -> SppApiError:
    """What a redirect that was not followed means: licence expired, a login page, or a moved workspace."""
    status, request_id = answer.status, answer.request_id
    target = urljoin(answer.url, answer.headers.get("Location", ""))
    where = urlsplit(target)
    said = f"Wayfront (SPP) {method} {path} was redirected ({status})"
    if origin(target) == origin(answer.url) and where.path in (EXPIRED_PATH, LOGIN_PATH):
        return SppAuthError(
            f"{said} to {where.path}: {_HOST_PAGE_MEANING[where.path]} (nothing was sent to the API)",
            status_code=status,
            request_id=request_id,
        )
    if origin(target) != origin(answer.url) and where.scheme in ("http", "https") and where.netloc:
        new_base = f"{where.scheme}://{where.netloc}"
        return SppApiError(
            f"{said} to {new_base}: the workspace has moved. Set the connection's host to {new_base} "
            "(the API token is never sent to another host, so the redirect was not followed)",
            status_code=status,
            request_id=request_id,
        )
    return SppApiError(
        f"{said} to {where.path or 'another address'}; set the connection host to the workspace's final URL",
        status_code=status,
        request_id=request_id,
    )


#: What landing on a workspace's own HTML pages means for an API call.
_HOST_PAGE_MEANING = {
    EXPIRED_PATH: "the Wayfront licence of this workspace has expired; renew it, then try again",
    LOGIN_PATH: "redirected to a login page: the token was not accepted (check the API token field)",
}


def html_error(answer: Answer, method: str, path: str) -> SppApiError:
    """A 2xx HTML page where the API answers JSON: the licence or login page a redirect led to, or no workspace."""
    status, request_id = answer.status, answer.request_id
    landed = answer.path
    if landed in _HOST_PAGE_MEANING:
        return SppAuthError(
            f"Wayfront (SPP) {method} {path} ended on {landed}: {_HOST_PAGE_MEANING[landed]}",
            status_code=status,
            request_id=request_id,
        )
    return SppUnexpectedResponseError(
        f"Wayfront (SPP) {method} {path} answered {status} with an HTML page, not the Wayfront API: "
        "check the workspace URL",
        status_code=status,
        request_id=request_id,
    )


def is_html(answer: Answer) -> bool:
    """Whether an answer is an HTML page (``text/html``), which the API never sends."""
    return answer.headers.get("Content-Type", "").split(";")[0].strip().lower() == "text/html"


def check_probe(answer: Answer) -> None:
    """Raise SppUnexpectedResponseError unless the connection test's answer is the API's order list."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise SppUnexpectedResponseError(
            f"Wayfront (SPP) answered {answer.status} to {answer.path} with something that is not the API's "
            "order list: check the workspace URL",
            status_code=answer.status,
            request_id=answer.request_id,
        )
