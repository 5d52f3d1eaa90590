"""`aftercare inbox`: the content authors' inbox in the terminal.

List what is in it (newest first, with filters and counts per reason), show
one item with the intents to choose from, label it or set it aside, and
export the labelled ones into data/nlu/conversations/ (then review the diff,
commit, `aftercare train`, `aftercare evaluate`). The text shown is the
de-identified one; it is printed with control characters replaced. Labels
are recorded as "cli:<os user>", and with the staff account given by --as.

The inbox modules are imported when a subcommand runs: de-identification
loads spaCy, which would slow every `aftercare` command down.
"""
from __future__ import annotations

import argparse
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Optional
from zoneinfo import ZoneInfo

from aftercare import staff as accounts
from aftercare.rasa_data import RasaDataError, trainable_intents
from aftercare.settings import PROJECT_ROOT, get_settings
from aftercare.store import db
from aftercare.store.models import INBOX_REASONS, INBOX_STATUS_FILTERS
from cli.commands.escalations import _actor
from cli.commands.patients import _clinic_zone_or_utc, _printable, _session
from cli.main import CommandError

if TYPE_CHECKING:
    from aftercare.authoring.export import ExportResult
    from aftercare.authoring.inbox import InboxRow

DOMAIN_PATH = PROJECT_ROOT / "domain.yml"
DATA_DIR = PROJECT_ROOT / "data"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inbox", help="the content authors' inbox: messages the assistant misread",
        description="Patient messages worth a look (de-identified), from patients who agreed "
                    "to their messages being used to improve the assistant.")
    actions = parser.add_subparsers(dest="inbox_command", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="list the inbox, newest first",
                                 description="List the inbox, newest first, with the count "
                                             "per reason.")
    listing.add_argument("--reason", choices=INBOX_REASONS, help="only items with this reason")
    listing.add_argument("--intent", help="only items the assistant read as this intent")
    listing.add_argument("--since", metavar="YYYY-MM-DD", help="received on or after this day")
    listing.add_argument("--until", metavar="YYYY-MM-DD", help="received on or before this day")
    listing.add_argument("--status", choices=INBOX_STATUS_FILTERS, default="open",
                         help="open (new or labelled, the default), new, labelled, "
                              "not_useful, exported or all")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (50)")
    listing.add_argument("--offset", type=int, default=0, help="skip this many first")
    listing.set_defaults(handler=_list)

    show = actions.add_parser("show", help="one item, with the intents to label it with")
    show.add_argument("id", type=int)
    show.set_defaults(handler=_show)

    label = actions.add_parser("label", help="label an item with the right intent",
                               description="Label an item with the intent the patient meant; "
                                           "--text keeps a shortened form of the message.")
    label.add_argument("id", type=int)
    label.add_argument("intent")
    label.add_argument("--text", help="the message shortened to what shows the intent")
    _as_option(label)
    label.set_defaults(handler=_label)

    not_useful = actions.add_parser("not-useful", help="set an item aside (never exported)")
    not_useful.add_argument("id", type=int)
    _as_option(not_useful)
    not_useful.set_defaults(handler=_not_useful)

    export = actions.add_parser(
        "export", help="write the labelled items into data/nlu/conversations/",
        description="Write each labelled item as a training example (one file per intent), "
                    "after checking the data as `aftercare validate` does. Review the diff, "
                    "commit, then `aftercare train` and `aftercare evaluate`.")
    export.set_defaults(handler=_export)


def _as_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as", dest="as_email", metavar="EMAIL",
                        help="your staff account (it needs the author role)")


def _day_start(value: Optional[str], zone: ZoneInfo, flag: str, days: int = 0
               ) -> Optional[datetime]:
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{flag}: expected a date as YYYY-MM-DD, got {value!r}") from None
    return datetime.combine(day + timedelta(days=days), time(0), tzinfo=zone)


def _when(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M %Z}"


def _reading(name: Optional[str], confidence: Optional[float]) -> str:
    if not name:
        return "-"
    return f"{name} {confidence:.2f}" if confidence is not None else name


def _print_row(row: InboxRow, zone: ZoneInfo) -> None:
    day = f"day {row.day}" if row.day is not None else "day ?"
    print(f"#{row.id}  {_when(row.received_at, zone)}  {day}  {', '.join(row.reasons)}  "
          f"[{row.status}]")
    print(f"  patient:   {_printable(row.text)}")
    print(f"  read as:   {_reading(row.intent, row.confidence)}; runner-up "
          f"{_reading(row.runner_up, row.runner_up_confidence)}; red-flag net: "
          f"{row.net_level or 'nothing'}")
    answer = (_printable(row.answer) if row.answer
              else "(not known yet: the patient has not written since)")
    print(f"  answered:  {answer}")
    if row.status in ("labelled", "exported") and row.label_intent:
        text = f' as "{_printable(row.label_text)}"' if row.label_text else ""
        print(f"  label:     {row.label_intent}{text} ({_signature(row, zone)})")
    elif row.status == "not_useful":
        print(f"  label:     not useful ({_signature(row, zone)})")
    if row.exported_at:
        print(f"  exported:  {_when(row.exported_at, zone)}")


def _signature(row: InboxRow, zone: ZoneInfo) -> str:
    who = row.labelled_by_email or row.labelled_via or "?"
    when = _when(row.labelled_at, zone) if row.labelled_at else "?"
    return f"{_printable(who)}, {when}"


def _inbox_error(exc: Exception) -> CommandError:
    return CommandError(f"{exc}; nothing changed")


def _list(args: argparse.Namespace) -> int:
    from aftercare.authoring import inbox

    zone = _clinic_zone_or_utc()
    filters = inbox.InboxFilter(
        reason=args.reason, intent=args.intent, status=args.status,
        since=_day_start(args.since, zone, "--since"),
        until=_day_start(args.until, zone, "--until", days=1))
    try:
        with _session() as session:
            page = inbox.list_inbox(session, filters, offset=args.offset, limit=args.limit)
    except inbox.InboxError as exc:
        raise CommandError(str(exc)) from None
    counts = ", ".join(f"{reason} {page.counts[reason]}" for reason in INBOX_REASONS)
    shown = f"{page.offset + 1}-{page.offset + len(page.rows)} of " if page.rows else ""
    print(f"Inbox ({args.status}): {shown}{page.total} item(s). By reason: {counts}.")
    for row in page.rows:
        print()
        _print_row(row, zone)
    if not page.total:
        print("Nothing here. Messages arrive from patients who agreed to their messages being "
              "used to improve the assistant.")
    return 0


def _intents() -> list[str]:
    try:
        return trainable_intents(DOMAIN_PATH)
    except RasaDataError as exc:
        raise CommandError(str(exc)) from None


def _show(args: argparse.Namespace) -> int:
    from aftercare.authoring import inbox

    zone = _clinic_zone_or_utc()
    try:
        with _session() as session:
            row = inbox.get_item(session, args.id)
    except inbox.InboxError as exc:
        raise CommandError(str(exc)) from None
    _print_row(row, zone)
    print(f"  label with: {', '.join(inbox.intent_choices(row, _intents()))}")
    return 0


def _staff_id(session, email: Optional[str]) -> Optional[int]:
    if email is None:
        return None
    staff = accounts.find_staff(session, email)
    if staff is None:
        raise CommandError(f"--as: there is no staff account {_printable(email)}")
    return staff.id


def _label(args: argparse.Namespace) -> int:
    from aftercare.authoring import inbox

    intents = _intents()
    try:
        with _session() as session:
            row = inbox.label(session, args.id, args.intent, intents=intents, text=args.text,
                              staff_id=_staff_id(session, args.as_email), via=_actor(),
                              now=datetime.now(timezone.utc))
    except inbox.InboxError as exc:
        raise _inbox_error(exc) from None
    shortened = f' as "{_printable(row.label_text)}"' if row.label_text else ""
    print(f"Labelled inbox item {row.id}: {row.label_intent}{shortened}.")
    return 0


def _not_useful(args: argparse.Namespace) -> int:
    from aftercare.authoring import inbox

    try:
        with _session() as session:
            row = inbox.mark_not_useful(session, args.id, via=_actor(),
                                        staff_id=_staff_id(session, args.as_email),
                                        now=datetime.now(timezone.utc))
    except inbox.InboxError as exc:
        raise _inbox_error(exc) from None
    print(f"Inbox item {row.id} set aside as not useful; it will not be exported.")
    return 0


def _shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _export(args: argparse.Namespace) -> int:
    from aftercare.authoring import export as exporting
    from cli.commands.validate import data_problems

    settings = get_settings()
    url = settings.database_url
    with _session():
        pass   # migrated, and any database error reported the usual way
    try:
        result = exporting.export_labelled(
            lambda: db.session_scope(url), data_dir=DATA_DIR, target_dir=settings.inbox_export_dir,
            domain_path=DOMAIN_PATH, validate=lambda folder: data_problems(folder)[0],
            now=datetime.now(timezone.utc))
    except exporting.ExportError as exc:
        raise CommandError(str(exc)) from None
    print_export(result)
    refused = result.conflicts or result.unknown_intents or result.empty
    return 1 if refused else 0


def print_export(result: ExportResult) -> None:
    """What an export did, for the author (no patient text but the examples written)."""
    if not (result.written or result.already_there or result.conflicts
            or result.unknown_intents or result.empty or result.changed):
        print("export: nothing labelled to export.")
        return
    total = sum(len(w.examples) for w in result.written)
    print(f"export: wrote {total} example(s)" + (":" if total else "."))
    for written in result.written:
        ids = ", ".join(str(i) for i in written.item_ids)
        print(f"  {_shown_path(written.path)}: {len(written.examples)} (inbox item(s) {ids})")
        for example in written.examples:
            print(f"    - {_printable(example)}")
    for item_id, intent in result.already_there:
        print(f"export: item {item_id} is already an example of {intent}; not written again, "
              f"marked exported.")
    for item_id, intent, others in result.conflicts:
        print(f"export: REFUSED item {item_id} ({intent}): the same words are an example of "
              f"{', '.join(others)}, and one example cannot be under two intents. Relabel it "
              f"or mark it not useful.")
    for item_id, intent in result.unknown_intents:
        print(f"export: REFUSED item {item_id}: the intent {_printable(intent)} is no longer in "
              f"domain.yml. Label it again.")
    for item_id in result.empty:
        print(f"export: REFUSED item {item_id}: no words left to learn from. Label it again "
              f"with --text, or mark it not useful.")
    if result.changed:
        print(f"export: item(s) {', '.join(map(str, result.changed))} changed or were removed "
              f"while the data was checked; run the export again for them.")
    if result.written:
        print("Next: review the diff (git diff data/nlu), commit it, then run "
              "`aftercare train` and `aftercare evaluate` to see the effect.")
