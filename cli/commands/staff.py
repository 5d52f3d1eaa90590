"""`aftercare staff`: clinic staff accounts for the review page and staff commands.

Passwords are asked twice on the terminal, or read as one line from standard
input with --password-stdin (for scripts); never given on the command line,
never printed.
"""
from __future__ import annotations

import argparse
import getpass
import sys
from datetime import datetime, timezone

from aftercare import staff as accounts
from aftercare.store.repository import StoreError
from cli.commands.patients import _clinic_zone_or_utc, _printable, _session, _table
from cli.main import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "staff", help="add, list, disable and enable staff accounts; set passwords",
        description="Clinic staff accounts (AFTERCARE_DATABASE_URL).")
    actions = parser.add_subparsers(dest="staff_command", metavar="ACTION", required=True)

    add = actions.add_parser(
        "add", help="add a staff account",
        description="Add a staff account; the password (at least "
                    f"{accounts.PASSWORD_MIN} characters) is asked twice.")
    add.add_argument("email", help="the staff member's email (their sign-in name)")
    add.add_argument("--telegram-user-id", type=int, metavar="N",
                     help="their Telegram user id, for staff commands and alert buttons")
    _role_option(add, "nurse (the default)")
    _password_stdin_option(add)
    add.set_defaults(handler=_add)

    roles = actions.add_parser(
        "roles", help="set what an account is for (nurse, author or both)",
        description="Replace a staff account's roles: nurse (patients, alerts, the review "
                    "page) and author (the content authors' inbox).")
    roles.add_argument("email")
    _role_option(roles, "required", required=True)
    roles.set_defaults(handler=_roles)

    listing = actions.add_parser("list", help="list staff accounts",
                                 description="List staff accounts (never passwords).")
    listing.set_defaults(handler=_list)

    disable = actions.add_parser(
        "disable", help="stop an account signing in; ends its sessions at once",
        description="Disable a staff account: no sign-in, and every open session ends now.")
    disable.add_argument("email")
    disable.set_defaults(handler=_disable)

    enable = actions.add_parser("enable", help="let a disabled account sign in again",
                                description="Enable a disabled staff account.")
    enable.add_argument("email")
    enable.set_defaults(handler=_enable)

    password = actions.add_parser(
        "password", help="set a new password (ends the account's sessions)",
        description="Set a staff account's password; its open sessions end.")
    password.add_argument("email")
    _password_stdin_option(password)
    password.set_defaults(handler=_password)


def _role_option(parser: argparse.ArgumentParser, default: str, required: bool = False) -> None:
    parser.add_argument(
        "--role", action="append", metavar="ROLE", required=required,
        help=f"{' or '.join(accounts.STAFF_ROLES)}; repeat it or write \"nurse,author\" "
             f"for both ({default})")


def _roles_given(values: list[str] | None) -> str:
    try:
        return accounts.parse_roles(values or ["nurse"])
    except StoreError as exc:
        raise CommandError(str(exc)) from None


def _password_stdin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password as one line from standard input")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _checked(password: str) -> str:
    try:
        return accounts.check_password(password)
    except StoreError as exc:
        raise CommandError(str(exc)) from None


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CommandError("--password-stdin: nothing on standard input")
        return _checked(line.rstrip("\r\n"))
    try:
        first = _checked(getpass.getpass("Password: "))
        again = getpass.getpass("Password again: ")
    except EOFError:
        raise CommandError("no password given (use --password-stdin in scripts)") from None
    if first != again:
        raise CommandError("the two passwords differ; nothing changed")
    return first


def _add(args: argparse.Namespace) -> int:
    email = _email(args.email)
    roles = _roles_given(args.role)
    with _session() as session:
        if accounts.find_staff(session, email) is not None:
            raise CommandError(f"a staff account for {_printable(email)} exists already")
    password = _read_password(args)
    with _session() as session:
        account = accounts.add_staff(session, email, password, roles=[roles])
        if args.telegram_user_id is not None:
            accounts.link_telegram(session, email, args.telegram_user_id)
        staff_id = account.id
    linked = (f", linked to Telegram user {args.telegram_user_id}"
              if args.telegram_user_id is not None else "")
    print(f"Added staff account {staff_id}: {_printable(email)} ({_role_words(roles)}){linked}.")
    return 0


def _role_words(roles: str) -> str:
    return " and ".join(roles.split(","))


def _roles(args: argparse.Namespace) -> int:
    email = _email(args.email)
    roles = _roles_given(args.role)
    with _session() as session:
        accounts.set_roles(session, email, [roles])
    print(f"{_printable(email)} is now: {_role_words(roles)}.")
    return 0


def _email(email: str) -> str:
    try:
        return accounts.normalise_email(email)
    except StoreError as exc:
        raise CommandError(str(exc)) from None


def _list(args: argparse.Namespace) -> int:
    tz = _clinic_zone_or_utc()
    with _session() as session:
        rows = [(str(s.id), _printable(s.email), s.roles,
                 str(s.telegram_user_id) if s.telegram_user_id is not None else "-",
                 f"disabled {s.disabled_at.astimezone(tz):%Y-%m-%d}" if s.disabled_at
                 else "active",
                 f"{s.created_at.astimezone(tz):%Y-%m-%d}")
                for s in accounts.list_staff(session)]
    if not rows:
        print("No staff accounts yet. Add one with: aftercare staff add EMAIL")
        return 0
    print(_table(("ID", "EMAIL", "ROLES", "TELEGRAM", "STATUS", "ADDED"), rows))
    return 0


def _disable(args: argparse.Namespace) -> int:
    email = _email(args.email)
    with _session() as session:
        changed = accounts.disable_staff(session, email, _now())
    if changed:
        print(f"Disabled {_printable(email)}; their sessions have ended.")
    else:
        print(f"{_printable(email)} was disabled already; any sessions have ended.")
    return 0


def _enable(args: argparse.Namespace) -> int:
    email = _email(args.email)
    with _session() as session:
        changed = accounts.enable_staff(session, email)
    print(f"Enabled {_printable(email)}." if changed
          else f"{_printable(email)} was not disabled.")
    return 0


def _password(args: argparse.Namespace) -> int:
    email = _email(args.email)
    with _session() as session:
        accounts.get_staff(session, email)
    password = _read_password(args)
    with _session() as session:
        accounts.set_password(session, email, password, _now())
    print(f"Password set for {_printable(email)}; their sessions have ended.")
    return 0
