"""``spp-sandbox``: run the SPP sandbox in the foreground until SIGINT/SIGTERM.

    spp-sandbox --port 8765 --token TOKEN [--host 127.0.0.1] [--api-version 2024-03-05]
                [--extra-orders 1000 --extra-order-status Pending]
                [--fault rate_limit:2 --fault slow:1:delay=5 ...]
                [--fault-rate 0.2 --fault-kinds drop_after,rate_limit --fault-seed 1
                 --fault-method POST --fault-path-prefix /api/order_messages
                 --fault-retry-after 2 --fault-delay 5]
                [--drop-handshakes 1]
                [--status-style code --status-codes 0=Unpaid,1=Submitted,2=Working --clock-offset -5 ...]

Only loopback addresses are accepted for ``--host`` unless ``--allow-non-loopback`` is given (the admin
API has no auth). The token may come from ``SPP_SANDBOX_TOKEN`` instead of ``--token`` (keeps it out of
``ps``); it is never printed. Fault specs: ``KIND[:TIMES][:key=value...]``
(see :mod:`airflow_provider_spp.sandbox.faults`). Every workspace switch of
:class:`~airflow_provider_spp.sandbox.workspace.WorkspaceSettings` is a flag (``status_style`` is
``--status-style``); the server starts with them and every reset returns to them.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from airflow_provider_spp.sandbox.faults import FaultKind, option_help, option_names, parse_fault_spec
from airflow_provider_spp.sandbox.workspace import setting_fields

__all__ = [
    "main",
]

log = logging.getLogger("airflow_provider_spp.sandbox")
TOKEN_ENV = "SPP_SANDBOX_TOKEN"  # noqa: S105 - the name of an environment variable


def _fault_spec(text: str) -> str:
    """argparse type: validate a fault spec early, keep the text."""
    try:
        parse_fault_spec(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _rate(text: str) -> float:
    """argparse type: a probability."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"the fault rate must be between 0 and 1, got {value}")
    return value


def _status(text: str) -> int | str:
    """argparse type: an order status, a code (digits) or a label."""
    return int(text) if text.strip().lstrip("-").isdigit() else text


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per workspace switch, from its declaration (``status_style`` is ``--status-style``)."""
    group = parser.add_argument_group("workspace switches (the server starts with them; a reset returns to them)")
    for setting in setting_fields():
        flag, help_text = f"--{setting.name.replace('_', '-')}", setting.metadata["help"]
        if isinstance(setting.default, bool):
            group.add_argument(flag, action="store_const", const=True, default=None, help=help_text)
        else:
            group.add_argument(flag, default=None, help=help_text)


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The workspace switches given on the command line."""
    return {s.name: getattr(args, s.name) for s in setting_fields() if getattr(args, s.name) is not None}


def _is_loopback(host: str) -> bool:
    """Whether an address is this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="spp-sandbox", description="Run a local SPP API sandbox.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="allow a --host other than this machine (the admin API has no auth and logs Authorization headers)",
    )
    parser.add_argument("--port", type=int, default=8765, help="port to bind; 0 picks a free one (default: 8765)")
    parser.add_argument("--token", default=None, help=f"the bearer token to accept (default: ${TOKEN_ENV})")
    parser.add_argument("--api-version", default=None, help="X-Api-Version to answer when the client sends none")
    parser.add_argument(
        "--extra-orders",
        type=int,
        default=0,
        metavar="N",
        help="add N generated client orders (numbers B0000001...) beside the seeded ones, until a reset",
    )
    parser.add_argument(
        "--extra-order-status", type=_status, default="Pending", help="status (label or code) of the --extra-orders"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        type=_fault_spec,
        metavar="SPEC",
        help="queue a fault, KIND[:TIMES][:key=value...], e.g. rate_limit:2 or slow:1:delay=5 (repeatable)",
    )
    parser.add_argument("--fault-rate", type=_rate, default=None, help="probability of a random fault per request")
    parser.add_argument(
        "--fault-kinds",
        default=None,
        help=f"comma-separated kinds for --fault-rate (choices: {','.join(k.value for k in FaultKind)})",
    )
    parser.add_argument("--fault-seed", type=int, default=None, help="random seed for --fault-rate")
    for name in option_names():
        parser.add_argument(
            f"--fault-{name.replace('_', '-')}", default=None, help=f"random faults: {option_help(name)}"
        )
    parser.add_argument(
        "--drop-handshakes",
        type=int,
        default=0,
        metavar="N",
        help="close the first N new connections in the middle of the TLS handshake (then serve normally)",
    )
    _add_setting_flags(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``spp-sandbox`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        parser.error(f"give the token to accept with --token or ${TOKEN_ENV}")
    if not args.allow_non_loopback and not _is_loopback(args.host):
        parser.error(f"--host {args.host} is not a loopback address; add --allow-non-loopback if you really mean it")
    if args.fault_rate is not None and not args.fault_kinds:
        parser.error("--fault-rate needs --fault-kinds")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from airflow_provider_spp.sandbox.app import DEFAULT_API_VERSION
    from airflow_provider_spp.sandbox.server import SandboxServer

    try:
        version = args.api_version or DEFAULT_API_VERSION
        server = SandboxServer(token, host=args.host, port=args.port, api_version=version, **_settings(args))
        if args.drop_handshakes:
            server.drop_handshakes(args.drop_handshakes)
        if args.extra_orders:
            server.store.add_orders(args.extra_orders, status=args.extra_order_status)
        server.add_faults(*args.fault)
        if args.fault_rate is not None:
            server.set_random_faults(
                args.fault_rate,
                [k.strip() for k in args.fault_kinds.split(",") if k.strip()],
                seed=args.fault_seed,
                **{name: getattr(args, f"fault_{name}") for name in option_names()},
            )
    except ValueError as err:
        parser.error(str(err))

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server.start()
    log.info("SPP sandbox listening on %s (admin API: %s/_sandbox/requests)", server.url, server.url)
    if server.store.faults.snapshot() != {"faults": [], "random": None}:
        log.info("faults: %s", server.store.faults.snapshot())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        log.info("stopping the SPP sandbox")
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
