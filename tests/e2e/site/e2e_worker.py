"""On the E2E deployment's PYTHONPATH: names each Celery worker apart, as separate machines would be."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    """``[core] hostname_callable``: the worker's name from SPP_E2E_HOSTNAME, else this machine's FQDN."""
    return os.environ.get("SPP_E2E_HOSTNAME") or socket.getfqdn()
