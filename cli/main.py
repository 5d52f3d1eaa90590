"""`aftercare`: the one command line for staff, content authors and scripts.

Each subcommand lives in its own module under cli/commands/ and exposes
register(subparsers); this file only wires them together.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from aftercare.settings import SettingsError

COMMAND_MODULES = (
    "cli.commands.patients",
    "cli.commands.protocol",
    "cli.commands.model",
    "cli.commands.chat",
    "cli.commands.evaluate",
    "cli.commands.validate",
    "cli.commands.escalations",
    "cli.commands.staff",
    "cli.commands.inbox",
    "cli.commands.privacy",
    "cli.commands.db",
)


class CommandError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aftercare",
        description="SkinPen aftercare assistant: patients, chat, evaluation and more.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (CommandError, SettingsError) as exc:
        print(f"aftercare: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
