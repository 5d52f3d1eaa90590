"""`aftercare patients`: add, list, show, edit and remove patients, record
their further treatments, make enrolment links.

The database is AFTERCARE_DATABASE_URL; every action first brings its schema
up to date, so a fresh install needs no separate migration step.

An enrolment link (https://t.me/<bot>?start=<code>) carries a single-use
code; only its hash is stored, so add and link print the code once and
nothing else ever shows it.
"""
from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, List, Optional, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import segno
from alembic.util import CommandError as AlembicError
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from aftercare import enrolment
from aftercare.checkin_status import checkin_lines
from aftercare.dates import MAX_DAYS_BACK, DateParseError, parse_clinic_datetime
from aftercare.protocol import Protocol, ProtocolError, load_protocol
from aftercare.recovery import recovery_day
from aftercare.settings import get_settings
from aftercare.store import db, repository
from aftercare.store.models import Erasure, Patient, Treatment
from aftercare.store.repository import StoreError
from cli.main import CommandError


PHONE_HELP = ("the patient's phone number, for the clinic to call: digits, spaces, + - and "
              "brackets, 7 to 15 digits; a leading + keeps the country code "
              "(+44 20 7946 0000)")
IMPROVE_HELP = ("whether the patient agreed to their messages, with names, numbers and dates "
                "removed, being used to teach the assistant (the authors' inbox); not "
                "recorded counts as no. On Telegram the patient answers this themselves")
IMPROVE_CHOICES = {"yes": True, "no": False}
QR_PNG_SCALE = 10  # pixels per module: a version 4 code is about 410 px wide
QR_PNG_BORDER = 4


def _add_link_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--qr", action="store_true",
                        help="also print the enrolment link as a QR code on the terminal")
    parser.add_argument("--qr-png", metavar="PATH", type=Path,
                        help="also save the enrolment link's QR code as a PNG image")
    parser.add_argument("--force", action="store_true",
                        help="overwrite the --qr-png file if it exists")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "patients", help="add, list, show and remove patients; make enrolment links",
        description="Manage the clinic's patients in the aftercare database "
                    "(AFTERCARE_DATABASE_URL).")
    actions = parser.add_subparsers(dest="patients_command", metavar="ACTION", required=True)

    add = actions.add_parser(
        "add", help="add a patient and their treatment",
        description="Add a patient with the date and time of their treatment, and print "
                    "their single-use Telegram enrolment link (unless --sender links a chat "
                    "directly). Set TELEGRAM_BOT_USERNAME (or TELEGRAM_TOKEN) for a t.me link.")
    add.add_argument("--name", required=True, help="the patient's name")
    add.add_argument("--treated", required=True, metavar='"YYYY-MM-DD HH:MM"',
                     help="when the treatment was, local time in --tz")
    add.add_argument("--tz", metavar="ZONE",
                     help="IANA time zone such as Europe/London "
                          "(default: the clinic's, from the protocol file)")
    add.add_argument("--number", type=int, default=1,
                     help="which treatment of the series this is (default: 1)")
    add.add_argument("--sender", metavar="ID",
                     help="conversation id to link (Rasa sender id / Telegram chat id); "
                          "no enrolment link is made then")
    add.add_argument("--phone", metavar="NUMBER", help=PHONE_HELP)
    _add_improve_option(add)
    _add_link_options(add)
    add.set_defaults(handler=_add)

    edit = actions.add_parser(
        "edit", help="change a patient's phone number or their yes/no to improving the assistant",
        description="Change or remove the phone number staff call a patient on (shown on "
                    "the review page as a link to call), or record the patient's yes or no "
                    "to their messages improving the assistant (a no takes their messages "
                    "out of the authors' inbox).")
    edit.add_argument("id", type=int, help="patient id")
    phone = edit.add_mutually_exclusive_group()
    phone.add_argument("--phone", metavar="NUMBER", help=PHONE_HELP)
    phone.add_argument("--no-phone", action="store_true", help="remove the phone number")
    _add_improve_option(edit)
    edit.set_defaults(handler=_edit, usage_error=edit.error)

    treatment = actions.add_parser(
        "treatment", help="record a patient's next treatment, or correct the latest one's date",
        description="Record the next treatment of a patient's series, or with --correct "
                    "change the date of their latest treatment. The running bot moves the "
                    "check-ins to match within 5 minutes (its next reconcile pass).")
    treatment.add_argument("id", type=int, help="patient id")
    treatment.add_argument("--treated", required=True, metavar='"YYYY-MM-DD HH:MM"',
                           help="when the treatment was, local time in the patient's zone")
    treatment.add_argument("--correct", action="store_true",
                           help="change the latest treatment's date instead of adding one")
    treatment.set_defaults(handler=_treatment)

    link = actions.add_parser(
        "link", help="make a new enrolment link for a patient",
        description="Make a new single-use Telegram enrolment link for a patient; their "
                    "earlier links stop working. Opened from a new chat, it moves an "
                    "enrolled patient to that chat.")
    link.add_argument("id", type=int, help="patient id")
    _add_link_options(link)
    link.set_defaults(handler=_link)

    listing = actions.add_parser("list", help="list all patients",
                                 description="List all patients with their current treatment.")
    listing.set_defaults(handler=_list)

    show = actions.add_parser("show", help="show one patient",
                              description="Show a patient, their treatments, the check-ins of "
                                          "the current one (what became of each, and their "
                                          "answers) and their escalations.")
    show.add_argument("id", type=int, help="patient id")
    show.set_defaults(handler=_show)

    remove = actions.add_parser(
        "remove", help="remove a patient and all their data",
        description="Remove a patient with their treatments and escalations. Asks for "
                    "confirmation unless --yes is given (required when not on a terminal).")
    remove.add_argument("id", type=int, help="patient id")
    remove.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    remove.set_defaults(handler=_remove)


def _yes_no(text: str) -> bool:
    try:
        return IMPROVE_CHOICES[text.strip().lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"say yes or no, not {text!r}") from None


def _add_improve_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--improve-consent", metavar="yes|no", type=_yes_no, help=IMPROVE_HELP)


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


def _protocol() -> Protocol:
    try:
        return load_protocol(get_settings().protocol_path)
    except ProtocolError as exc:
        raise CommandError(f"cannot read the protocol (link expiry, time zone): {exc}") from None


def _clinic_zone_or_utc() -> ZoneInfo:
    try:
        return load_protocol(get_settings().protocol_path).tz
    except ProtocolError:
        return ZoneInfo("UTC")


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


@dataclass(frozen=True)
class _LinkPlan:
    """What a new enrolment link needs, settled before anything is stored."""
    bot_username: Optional[str]
    expiry_days: int
    clinic_tz: ZoneInfo


def _plan_link(args: argparse.Namespace) -> _LinkPlan:
    protocol = _protocol()
    username = enrolment.bot_username(get_settings())
    if username is None and (args.qr or args.qr_png):
        raise CommandError("a QR code needs the bot's username: set TELEGRAM_BOT_USERNAME "
                           "(or TELEGRAM_TOKEN, to ask Telegram for it)")
    if args.qr_png is not None and args.qr_png.exists() and not args.force:
        raise CommandError(f"--qr-png: {args.qr_png} already exists; add --force to overwrite it")
    return _LinkPlan(username, protocol.enrolment.link_expiry_days, protocol.tz)


def _qr(link: str) -> segno.QRCode:
    return segno.make_qr(link, error="m")  # never a Micro QR: phone cameras do not read those


def _print_qr(link: str) -> None:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "\u2588\u2580\u2584".encode(encoding)
        compact = True
    except (UnicodeEncodeError, LookupError):
        compact = False  # falls back to ANSI colours with spaces
    _qr(link).terminal(out=sys.stdout, compact=compact)


def _print_link(plan: _LinkPlan, code: str, expires_at: datetime, patient_id: int) -> None:
    expiry = _when(expires_at, plan.clinic_tz)
    if plan.bot_username is not None:
        print(f"Enrolment link (single use, expires {expiry}):")
        print(f"  {enrolment.deep_link(plan.bot_username, code)}")
    else:
        print(f"Enrolment code (single use, expires {expiry}): {code}")
        print(f"The patient can send the bot: /start {code}")
        print("For a t.me link and QR codes, set TELEGRAM_BOT_USERNAME (or TELEGRAM_TOKEN).")
    print(f"It is shown only now. A new one: aftercare patients link {patient_id} "
          "(earlier links then stop working).")


def _write_png(link: str, path: Path, force: bool) -> None:
    created = False
    try:
        with open(path, "wb" if force else "xb") as out:
            created = True
            _qr(link).save(out, kind="png", scale=QR_PNG_SCALE, border=QR_PNG_BORDER)
    except FileExistsError:
        raise CommandError(f"{path} already exists; add --force to overwrite it") from None
    except OSError as exc:
        if created:
            path.unlink(missing_ok=True)
        raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None


def _deliver_link(args: argparse.Namespace, plan: _LinkPlan, code: str, expires_at: datetime,
                  patient_id: int, if_png_fails: str) -> None:
    """Print the link (and its QR codes); a PNG that cannot be written is a CommandError."""
    _print_link(plan, code, expires_at, patient_id)
    if plan.bot_username is None:
        return
    link = enrolment.deep_link(plan.bot_username, code)
    if args.qr:
        _print_qr(link)
    if args.qr_png is not None:
        try:
            _write_png(link, args.qr_png, args.force)
        except CommandError as exc:
            raise CommandError(f"--qr-png: {exc}. {if_png_fails}") from None
        print(f"QR code saved to {args.qr_png}")


def _add(args: argparse.Namespace) -> int:
    if args.sender and (args.qr or args.qr_png):
        raise CommandError("--qr and --qr-png show an enrolment link, which is not made "
                           "with --sender (the chat is linked already)")
    tz_name = args.tz or _clinic_timezone()
    tz = _zone(tz_name)
    now = _now()
    treated_at = _treated_at(args.treated, tz, now)
    phone = _phone(args.phone) if args.phone is not None else None
    plan = None if args.sender else _plan_link(args)
    code = expires_at = None
    with _session() as session:
        patient = repository.add_patient(
            session, args.name, treated_at, tz_name,
            treatment_number=args.number, sender_id=args.sender, phone=phone)
        if args.sender:
            patient.enrolled_at = now
        else:
            code = enrolment.issue_code(session, patient, now, plan.expiry_days)
            expires_at = enrolment.latest_code(patient).expires_at
        if args.improve_consent is not None:
            _set_improve_consent(session, patient, args.improve_consent)
        patient_id, name = patient.id, patient.name
    day = recovery_day(treated_at, tz, now)
    linked = ", chat linked" if args.sender else ""
    phoned = f", phone {phone}" if phone else ""
    improving = ("" if args.improve_consent is None
                 else f", messages may improve the assistant: "
                      f"{_improving(args.improve_consent)}")
    print(f"Added patient {patient_id}: {_printable(name)}, treatment {args.number} on "
          f"{_when(treated_at, tz)} ({tz_name}), day {day} of recovery{linked}{phoned}"
          f"{improving}.")
    if plan is not None:
        _deliver_link(args, plan, code, expires_at, patient_id,
                      f"Patient {patient_id} was added and the link above works; for a QR "
                      f"image run: aftercare patients link {patient_id} --qr-png PATH "
                      "(this replaces the link above)")
    return 0


def _phone(text: str) -> str:
    """The number as stored, or a CommandError saying what is wrong (nothing is stored)."""
    try:
        return repository.normalise_phone(text)
    except StoreError as exc:
        raise CommandError(f"--phone: {exc}") from None


def _improving(agreed: Optional[bool]) -> str:
    """The patient's yes/no to their messages improving the assistant, in words."""
    if agreed is None:
        return "no, not asked yet"
    return "yes" if agreed else "no"


def _set_improve_consent(session: Session, patient: Patient, agreed: bool) -> int:
    """Record the yes/no; a no removes the patient's inbox items (how many)."""
    from aftercare.authoring.inbox import InboxError, set_improve_consent

    session.flush()   # a patient added just now needs its id
    try:
        return set_improve_consent(session, patient.id, agreed)
    except InboxError as exc:
        raise CommandError(str(exc)) from None


def _edit(args: argparse.Namespace) -> int:
    change_phone = args.phone is not None or args.no_phone
    if not change_phone and args.improve_consent is None:
        args.usage_error("say what to change: --phone NUMBER, --no-phone or "
                         "--improve-consent yes|no")
    phone = None if args.no_phone or not change_phone else _phone(args.phone)
    removed = 0
    with _session() as session:
        patient = _get(session, args.id)
        if change_phone:
            repository.set_phone(session, patient, phone)
        if args.improve_consent is not None:
            removed = _set_improve_consent(session, patient, args.improve_consent)
        name = patient.name
    label = f"Patient {args.id} ({_printable(name)})"
    if change_phone and phone is None:
        print(f"{label}: phone number removed.")
    elif change_phone:
        print(f"{label}: phone {phone}.")
    if args.improve_consent is not None:
        taken = (f"; {removed} of their messages taken out of the authors' inbox"
                 if removed else "")
        print(f"{label}: messages may improve the assistant: "
              f"{_improving(args.improve_consent)}{taken}.")
    return 0


def _treated_at(text: str, tz: ZoneInfo, now: datetime) -> datetime:
    try:
        treated_at = parse_clinic_datetime(text, tz)
    except DateParseError as exc:
        raise CommandError(f"--treated: {exc}") from None
    if treated_at > now:
        raise CommandError(f"--treated: {text} ({tz.key}) is in the future")
    if recovery_day(treated_at, tz, now) > MAX_DAYS_BACK:
        raise CommandError(
            f"--treated: {text} is more than {MAX_DAYS_BACK} days ago; check the date")
    return treated_at


def _treatment(args: argparse.Namespace) -> int:
    now = _now()
    with _session() as session:
        patient = _get(session, args.id)
        tz = _zone(patient.timezone)
        treated_at = _treated_at(args.treated, tz, now)
        latest = repository.current_treatment(patient)
        if args.correct:
            if latest is None:
                raise CommandError(f"patient {args.id} has no treatment to correct")
            latest.treated_at, changed = treated_at, latest
            verb = "corrected to"
        else:
            if latest is not None and treated_at <= latest.treated_at:
                raise CommandError(
                    f"--treated: {args.treated} is not after patient {args.id}'s latest "
                    f"treatment ({_when(latest.treated_at, tz)}); to change that date, "
                    "add --correct")
            changed, verb = repository.add_treatment(session, patient, treated_at), "on"
        session.flush()
        number, name = changed.number_in_series, patient.name
    print(f"Patient {args.id} ({_printable(name)}): treatment {number} {verb} "
          f"{_when(treated_at, tz)}, day {recovery_day(treated_at, tz, now)} of recovery. "
          "Check-ins follow within 5 minutes if the bot is running.")
    return 0


def _link(args: argparse.Namespace) -> int:
    plan = _plan_link(args)
    now = _now()
    with _session() as session:
        patient = _get(session, args.id)
        code = enrolment.issue_code(session, patient, now, plan.expiry_days)
        expires_at = enrolment.latest_code(patient).expires_at
        name, enrolled = patient.name, patient.enrolled_at is not None
    print(f"New enrolment link for patient {args.id} ({_printable(name)}); "
          "earlier links no longer work.")
    if enrolled:
        print("They are enrolled already: opening this link from another Telegram chat "
              "moves them to that chat.")
    _deliver_link(args, plan, code, expires_at, args.id,
                  "The link above works; run the command again for a QR image "
                  "(that replaces the link)")
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


def _status(patient: Patient, now: datetime) -> str:
    """A word or two for the list: what stands in the way of check-ins comes first."""
    if patient.unreachable_at is not None:
        return "unreachable"
    if patient.checkins_paused_at is not None:
        return "paused"
    return enrolment.enrolment_state(patient, now)


def _list(args: argparse.Namespace) -> int:
    now = _now()
    with _session() as session:
        rows = []
        for patient in repository.list_patients(session):
            treated, day, number = _treatment_cells(patient, now)
            rows.append((str(patient.id), _printable(patient.name), treated, day, number,
                         "yes" if patient.sender_id else "no", _status(patient, now)))
    if not rows:
        print("No patients yet. Add one with: aftercare patients add --help")
        return 0
    print(_table(("ID", "NAME", "TREATED (LOCAL)", "DAY", "TREATMENT", "LINKED", "STATUS"),
                 rows))
    return 0


def _get(session: Session, patient_id: int) -> Patient:
    patient = repository.get_patient(session, patient_id)
    if patient is not None:
        return patient
    erasure = session.execute(
        select(Erasure).where(Erasure.former_patient_id == patient_id)
        .order_by(Erasure.erased_at.desc())).scalars().first()
    if erasure is not None:
        erased_on = erasure.erased_at.astimezone(_clinic_zone_or_utc())
        raise CommandError(f"Patient {patient_id}'s data was deleted at their request on "
                           f"{erased_on:%Y-%m-%d} (via {_printable(erasure.requested_via)})")
    raise CommandError(f"no patient with id {patient_id}")


def _consent(value: Optional[bool]) -> str:
    return {None: "consent not asked yet", True: "consent given", False: "consent refused"}[value]


def _show(args: argparse.Namespace) -> int:
    now = _now()
    with _session() as session:
        patient = _get(session, args.id)
        tz = ZoneInfo(patient.timezone)
        current = repository.current_treatment(patient)
        linked = f"yes (sender {_printable(patient.sender_id)})" if patient.sender_id else "no"
        paused = (f"paused since {_when(patient.checkins_paused_at, tz)}"
                  if patient.checkins_paused_at else "active")
        unreachable = (f"since {_when(patient.unreachable_at, tz)} (blocked the bot)"
                       if patient.unreachable_at else "no")
        lines = [
            f"Patient {patient.id}",
            f"  name:        {_printable(patient.name)}",
            f"  time zone:   {patient.timezone}",
            f"  source:      {patient.source}",
            f"  phone:       {patient.phone or 'none on record'}",
            f"  linked chat: {linked}",
            f"  enrolment:   {enrolment.enrolment_status(patient, now, tz)}",
            f"  check-ins:   {paused}",
            f"  unreachable: {unreachable}",
            f"  photos:      {_consent(patient.photo_consent)}",
            f"  improvement: {_improving(patient.improve_consent)} (messages, de-identified, "
            "to teach the assistant)",
            f"  added:       {_when(patient.created_at, tz)}",
            "  treatments:" + ("" if patient.treatments else " none"),
        ]
        for treatment in patient.treatments:
            day = recovery_day(treatment.treated_at, tz, now)
            mark = ", current" if treatment is current else ""
            lines.append(f"    #{treatment.number_in_series}  "
                         f"{_when(treatment.treated_at, tz)}  (day {day}{mark})")
        lines.extend(_checkin_lines(session, patient, now, tz))
        escalations = patient.escalations
        still_open = sum(1 for e in escalations if e.status != "resolved")
        lines.append(f"  escalations: {len(escalations)} ({still_open} not resolved)")
    print("\n".join(lines))
    return 0


def _checkin_lines(session: Session, patient: Patient, now: datetime,
                   tz: ZoneInfo) -> List[str]:
    """The current treatment's check-ins: what became of each, and the answers."""
    try:
        protocol = load_protocol(get_settings().protocol_path)
    except ProtocolError as exc:
        return [f"  check-ins:   cannot be listed, the protocol is unreadable: {exc}"]
    found = checkin_lines(session, patient, protocol, now)
    if not found:
        return []
    lines = ["  check-in plan (current treatment):"]
    width = max(len(c.label) for c in found)
    for c in found:
        day = f"day {c.day}" if c.day is not None else "day ?"
        lines.append(f"    {c.label:<{width}}  {day:<6}  {_when(c.due_at, tz)}  {c.words}")
        for answer in c.answers:
            level = f" [{answer.level}]" if answer.level else ""
            lines.append(f"      answer: {answer.symptom}{level}: {_printable(answer.said)}")
        if c.state == "sent" and not c.answers:
            lines.append("      no answer")
    return lines


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
