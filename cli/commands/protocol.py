"""`aftercare protocol check`: validate the clinic's protocol file, and say
which of its check-ins have no text of their own in domain.yml.

A check-in without its own text is a warning, not an error: the patient still
gets the generic check-in (utter_checkin_generic), so refusing the protocol
would stop every other check-in over a wording gap. A missing generic text is
an error, since then such a check-in would have nothing to say.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aftercare.protocol import (
    GENERIC_CHECKIN_RESPONSE, ProtocolError, checkin_response_name, checkins_without_text,
    domain_response_names, load_protocol,
)
from aftercare.settings import PROJECT_ROOT, get_settings
from cli.main import CommandError

DOMAIN_PATH = PROJECT_ROOT / "domain.yml"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("protocol", help="check the clinic's aftercare protocol file")
    actions = parser.add_subparsers(dest="protocol_command", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate the protocol file and print a summary")
    check.add_argument("path", nargs="?", type=Path, help="protocol file (default: configured one)")
    check.add_argument("--domain", type=Path, default=DOMAIN_PATH,
                       help="the assistant's domain file, for the check-in texts "
                            "(default: domain.yml)")
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    path = args.path or get_settings().protocol_path
    try:
        protocol = load_protocol(path)
        responses = domain_response_names(args.domain)
    except ProtocolError as exc:
        raise CommandError(str(exc)) from None
    untexted = checkins_without_text(protocol, responses)
    if untexted and GENERIC_CHECKIN_RESPONSE not in responses:
        raise CommandError(
            f"{args.domain}: no response {GENERIC_CHECKIN_RESPONSE}, and check-in(s) "
            f"{', '.join(untexted)} have no text of their own: they would send nothing")
    for checkin_id in untexted:
        print(f"{path}: warning: check-in '{checkin_id}' has no response "
              f"{checkin_response_name(checkin_id)} in {args.domain}; patients get the "
              f"generic check-in ({GENERIC_CHECKIN_RESPONSE}) instead", file=sys.stderr)
    print(f"{path}: OK ({protocol.clinic.name}, {len(protocol.aftercare)} aftercare topics, "
          f"{len(protocol.checkins)} check-ins"
          f"{f', {len(untexted)} with the generic text' if untexted else ''})")
    return 0
