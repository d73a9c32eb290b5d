"""Which CAs both hooks trust, and which TLS failures are worth another try; shared by both transports."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from airflow_provider_spp.exceptions import SppConfigError

#: The variables requests reads a CA bundle (file or folder) from when verification is on, in its order.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def trusted_cas(verify: bool | str, environ: Mapping[str, str]) -> bool | str:
    """The CAs a call trusts, decided once for both hooks as requests decides: off, the default store, or a path.

    The connection's ``verify`` wins: off, or a CA bundle file or folder. On, the environment's
    REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE (file or folder) when set, else the default store (certifi's).
    """
    if verify is not True:
        return verify
    for name in CA_BUNDLE_VARIABLES:
        path = environ.get(name)
        if path:
            if not os.path.exists(path):
                raise SppConfigError(f"{name} names a CA bundle that does not exist on this machine: {path}")
            return path
    return True


def caused_by(err: BaseException, kind: type[BaseException] | tuple[type[BaseException], ...]) -> bool:
    """Whether ``kind`` is in an error's chain: causes, contexts, and the errors it wraps (urllib3's
    ``reason``, requests' and urllib3's first argument), as both HTTP libraries wrap the ssl module's."""
    seen: set[int] = set()
    pending: list[Any] = [err]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        pending.extend((current.__cause__, current.__context__, getattr(current, "reason", None), *current.args))
    return False


def handshake_cut_short(err: BaseException) -> bool:
    """Whether a TLS handshake ended because the connection closed or was reset (transient: try again).

    What the peer did send and TLS refused stays permanent: a certificate or host name that does not
    verify, or a peer that does not speak TLS at all (https to a plain-http port).
    """
    import ssl

    if caused_by(err, ssl.SSLCertVerificationError):
        return False
    cut = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)
    return caused_by(err, cut)
