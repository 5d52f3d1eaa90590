"""`aftercare patients`: add, list, show and remove patients (clinic staff).

The database is AFTERCARE_DATABASE_URL; every action first brings its schema
up to date, so a fresh install needs no separate migration step.
"""
from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator, List, Optional, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alembic.util import CommandError as AlembicError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from aftercare.cli import CommandError
from aftercare.dates import MAX_DAYS_BACK, DateParseError, parse_clinic_datetime
from aftercare.protocol import ProtocolError, load_protocol
from aftercare.recovery import recovery_day
from aftercare.settings import get_settings
from aftercare.store import db, repository
from aftercare.store.models import Patient, Treatment
from aftercare.store.repository import StoreError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "patients", help="add, list, show and remove patients",
        description="Manage the clinic's patients in the aftercare database "
                    "(AFTERCARE_DATABASE_URL).")
    actions = parser.add_subparsers(dest="patients_command", metavar="ACTION", required=True)

    add = actions.add_parser(
        "add", help="add a patient and their treatment",
        description="Add a patient with the date and time of their treatment.")
    add.add_argument("--name", required=True, help="the patient's name")
    add.add_argument("--treated", required=True, metavar='"YYYY-MM-DD HH:MM"',
                     help="when the treatment was, local time in --tz")
    add.add_argument("--tz", metavar="ZONE",
                     help="IANA time zone such as Europe/London "
                          "(default: the clinic's, from the protocol file)")
    add.add_argument("--number", type=int, default=1,
                     help="which treatment of the series this is (default: 1)")
    add.add_argument("--sender", metavar="ID",
                     help="conversation id to link (Rasa sender id / Telegram chat id)")
    add.set_defaults(handler=_add)

    listing = actions.add_parser("list", help="list all patients",
                                 description="List all patients with their current treatment.")
    listing.set_defaults(handler=_list)

    show = actions.add_parser("show", help="show one patient",
                              description="Show a patient, their treatments and escalations.")
    show.add_argument("id", type=int, help="patient id")
    show.set_defaults(handler=_show)

    remove = actions.add_parser(
        "remove", help="remove a patient and all their data",
        description="Remove a patient with their treatments and escalations. Asks for "
                    "confirmation unless --yes is given (required when not on a terminal).")
    remove.add_argument("id", type=int, help="patient id")
    remove.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    remove.set_defaults(handler=_remove)


@contextmanager
def _session() -> Iterator[Session]:
    """A session on the migrated database; store and database errors become CommandError."""
    url = get_settings().database_url
    try:
        db.migrate(url)
        with db.session_scope(url) as session:
            yield session
    except StoreError as exc:
        raise CommandError(str(exc)) from None
    except (SQLAlchemyError, AlembicError, OSError) as exc:
        reason = getattr(exc, "orig", None) or exc
        safe_url = make_url(url).render_as_string(hide_password=True)
        raise CommandError(f"database {safe_url}: {reason}") from None


def _clinic_timezone() -> str:
    try:
        return load_protocol(get_settings().protocol_path).clinic.timezone
    except ProtocolError as exc:
        raise CommandError(f"cannot read the clinic's time zone (use --tz): {exc}") from None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CommandError(
            f"unknown time zone {name!r} (use an IANA name such as Europe/London)") from None


def _printable(text: str) -> str:
    """Text safe to print on a terminal: control characters become '?'."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _when(moment: datetime, tz: ZoneInfo) -> str:
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M %Z}"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _add(args: argparse.Namespace) -> int:
    tz_name = args.tz or _clinic_timezone()
    tz = _zone(tz_name)
    now = _now()
    try:
        treated_at = parse_clinic_datetime(args.treated, tz)
    except DateParseError as exc:
        raise CommandError(f"--treated: {exc}") from None
    if treated_at > now:
        raise CommandError(f"--treated: {args.treated} ({tz_name}) is in the future")
    if recovery_day(treated_at, tz, now) > MAX_DAYS_BACK:
        raise CommandError(
            f"--treated: {args.treated} is more than {MAX_DAYS_BACK} days ago; check the date")
    with _session() as session:
        patient = repository.add_patient(
            session, args.name, treated_at, tz_name,
            treatment_number=args.number, sender_id=args.sender)
        patient_id, name = patient.id, patient.name
    day = recovery_day(treated_at, tz, now)
    linked = ", chat linked" if args.sender else ""
    print(f"Added patient {patient_id}: {_printable(name)}, treatment {args.number} on "
          f"{_when(treated_at, tz)} ({tz_name}), day {day} of recovery{linked}.")
    return 0


def _table(headers: Sequence[str], rows: List[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip()
             for row in [headers, *rows]]
    return "\n".join(lines)


def _treatment_cells(patient: Patient, now: datetime) -> tuple[str, str, str]:
    treatment: Optional[Treatment] = repository.current_treatment(patient)
    if treatment is None:
        return "-", "-", "-"
    tz = ZoneInfo(patient.timezone)
    return (_when(treatment.treated_at, tz), str(recovery_day(treatment.treated_at, tz, now)),
            str(treatment.number_in_series))


def _list(args: argparse.Namespace) -> int:
    now = _now()
    with _session() as session:
        rows = []
        for patient in repository.list_patients(session):
            treated, day, number = _treatment_cells(patient, now)
            rows.append((str(patient.id), _printable(patient.name), treated, day, number,
                         "yes" if patient.sender_id else "no"))
    if not rows:
        print("No patients yet. Add one with: aftercare patients add --help")
        return 0
    print(_table(("ID", "NAME", "TREATED (LOCAL)", "DAY", "TREATMENT", "LINKED"), rows))
    return 0


def _get(session: Session, patient_id: int) -> Patient:
    patient = repository.get_patient(session, patient_id)
    if patient is None:
        raise CommandError(f"no patient with id {patient_id}")
    return patient


def _show(args: argparse.Namespace) -> int:
    now = _now()
    with _session() as session:
        patient = _get(session, args.id)
        tz = ZoneInfo(patient.timezone)
        current = repository.current_treatment(patient)
        linked = f"yes (sender {_printable(patient.sender_id)})" if patient.sender_id else "no"
        lines = [
            f"Patient {patient.id}",
            f"  name:        {_printable(patient.name)}",
            f"  time zone:   {patient.timezone}",
            f"  source:      {patient.source}",
            f"  linked chat: {linked}",
            f"  added:       {_when(patient.created_at, tz)}",
            "  treatments:" + ("" if patient.treatments else " none"),
        ]
        for treatment in patient.treatments:
            day = recovery_day(treatment.treated_at, tz, now)
            mark = ", current" if treatment is current else ""
            lines.append(f"    #{treatment.number_in_series}  "
                         f"{_when(treatment.treated_at, tz)}  (day {day}{mark})")
        escalations = patient.escalations
        still_open = sum(1 for e in escalations if e.status != "resolved")
        lines.append(f"  escalations: {len(escalations)} ({still_open} not resolved)")
    print("\n".join(lines))
    return 0


def _confirm(prompt: str) -> bool:
    try:
        answer = input(prompt)
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _remove(args: argparse.Namespace) -> int:
    with _session() as session:
        label = f"patient {args.id} ({_printable(_get(session, args.id).name)})"
    if not args.yes:
        if not sys.stdin.isatty():
            raise CommandError(f"not removing {label} without confirmation; "
                               "add --yes to remove it")
        if not _confirm(f"Remove {label} with all their treatments and escalations? [y/N] "):
            print("Nothing removed.")
            return 1
    with _session() as session:
        if not repository.remove_patient(session, args.id):
            raise CommandError(f"no patient with id {args.id}")
    print(f"Removed {label}.")
    return 0
