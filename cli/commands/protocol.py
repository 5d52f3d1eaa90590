"""`aftercare protocol check`: validate the clinic's protocol file."""
from __future__ import annotations

import argparse
from pathlib import Path

from aftercare.protocol import ProtocolError, load_protocol
from aftercare.settings import get_settings
from cli.main import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("protocol", help="check the clinic's aftercare protocol file")
    actions = parser.add_subparsers(dest="protocol_command", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate the protocol file and print a summary")
    check.add_argument("path", nargs="?", type=Path, help="protocol file (default: configured one)")
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    path = args.path or get_settings().protocol_path
    try:
        protocol = load_protocol(path)
    except ProtocolError as exc:
        raise CommandError(str(exc)) from None
    print(f"{path}: OK ({protocol.clinic.name}, {len(protocol.aftercare)} aftercare topics, "
          f"{len(protocol.checkins)} check-ins)")
    return 0
