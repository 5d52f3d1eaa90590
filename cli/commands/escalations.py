"""`aftercare escalations`: list, show, acknowledge, reply to and resolve escalations.

For staff who prefer the terminal, and for scripts. Actions are recorded on
the escalation's timeline as "cli:<os user>". Patient text is printed with
control characters replaced, so a message cannot drive the terminal.
"""
from __future__ import annotations

import argparse
import getpass
from datetime import datetime, timedelta, timezone
from typing import List, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import select

from aftercare.store import escalations as store
from aftercare.store.models import Escalation, StaffReply
from cli.commands.patients import _clinic_zone_or_utc, _printable, _session, _table
from cli.main import CommandError

REASON_WIDTH = 60
REPLY_MAX = 16_000   # as on the review page: the bot splits it into Telegram messages
REPLY_STATUS = {"pending": "queued", "sent": "sent", "failed": "failed"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "escalations", help="list, show, acknowledge and resolve escalations",
        description="What the clinic must look at: red flags and patients asking for a "
                    "person (AFTERCARE_DATABASE_URL).")
    actions = parser.add_subparsers(dest="escalations_command", metavar="ACTION",
                                    required=True)

    listing = actions.add_parser(
        "list", help="list escalations",
        description="List escalations: unresolved ones first, by level (emergency, urgent, "
                    "human, routine) and then oldest first; then resolved ones, newest first.")
    listing.add_argument("--open", action="store_true",
                         help="only those not resolved yet (open or acknowledged)")
    listing.set_defaults(handler=_list)

    show = actions.add_parser(
        "show", help="show one escalation with the patient's message and its timeline",
        description="Show an escalation: patient, level, reason, the patient's message and "
                    "who acknowledged, replied and resolved it.")
    show.add_argument("id", type=int, help="escalation id")
    show.set_defaults(handler=_show)

    ack = actions.add_parser(
        "acknowledge", help="say someone is handling an escalation (stops reminders)",
        description="Acknowledge an escalation: someone has it in hand.")
    ack.add_argument("id", type=int, help="escalation id")
    ack.set_defaults(handler=_acknowledge)

    reply = actions.add_parser(
        "reply", help="send the patient a message from the clinic (the Telegram bot sends it)",
        description="Queue a reply to the patient of an escalation; the running Telegram bot "
                    "sends it, headed as from the clinic. Refused, with the number to call, "
                    "when the patient is not on Telegram. Replying also acknowledges.")
    reply.add_argument("id", type=int, help="escalation id")
    reply.add_argument("--text", required=True, help="the message for the patient")
    reply.set_defaults(handler=_reply)

    resolve = actions.add_parser(
        "resolve", help="close an escalation with a note",
        description="Resolve an escalation, saying what was done.")
    resolve.add_argument("id", type=int, help="escalation id")
    resolve.add_argument("--note", required=True,
                         help="what was done (required, kept on the timeline)")
    resolve.set_defaults(handler=_resolve)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no login name (containers): still record that it was the CLI
        user = "unknown"
    return f"cli:{user}"


def _age(since: datetime, now: datetime) -> str:
    minutes = max(0, int((now - since) / timedelta(minutes=1)))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


def _when(moment: Optional[datetime], tz: ZoneInfo) -> str:
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M %Z}" if moment else "-"


def _patient(escalation: Escalation) -> str:
    if escalation.patient is not None:
        return f"{escalation.patient.id} {_printable(escalation.patient.name)}"
    return f"chat {_printable(escalation.sender_id or '?')} (not linked)"


def _short(text: str, width: int) -> str:
    text = " ".join(_printable(text).split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _list(args: argparse.Namespace) -> int:
    now = _now()
    with _session() as session:
        found: List[Escalation] = (store.open_escalations(session) if args.open
                                   else store.all_escalations(session))
        rows = [(str(e.id), e.level, e.status, _age(e.created_at, now), _patient(e),
                 "-" if e.day is None else str(e.day), _short(e.reason, REASON_WIDTH) or "-")
                for e in found]
    if not rows:
        print("No open escalations." if args.open else "No escalations yet.")
        return 0
    print(_table(("ID", "LEVEL", "STATUS", "AGE", "PATIENT", "DAY", "REASON"), rows))
    return 0


def _quoted(text: str, indent: str = "    | ") -> List[str]:
    lines = text.splitlines() or [""]
    return [f"{indent}{_printable(line)}" for line in lines]


def _show(args: argparse.Namespace) -> int:
    now = _now()
    tz = _clinic_zone_or_utc()
    with _session() as session:
        e = store.get_escalation(session, args.id)
        acknowledged = (f"{_when(e.acknowledged_at, tz)} by {_printable(e.acknowledged_by)}"
                        if e.acknowledged_at else "no")
        lines = [
            f"Escalation {e.id}: {e.level}, {e.status}",
            f"  patient:      {_patient(e)}",
            f"  chat:         {_printable(e.sender_id) if e.sender_id else '-'}",
            f"  day:          {'-' if e.day is None else e.day}",
            f"  raised:       {_when(e.created_at, tz)} ({_age(e.created_at, now)} ago)",
            f"  reason:       {_printable(e.reason) or '-'}",
            f"  acknowledged: {acknowledged}",
            f"  resolved:     {_when(e.resolved_at, tz) if e.resolved_at else 'no'}",
        ]
        if e.note:
            lines.append("  note:")
            lines.extend(_quoted(e.note))
        lines.append("  message:")
        lines.extend(_quoted(e.message))
        route = store.reply_route(session, e.id)
        lines.append(f"  phone:        {route.phone or 'none on record'}")
        lines.append("  replies:      " + ("by Telegram" if route.deliverable
                                           else f"not possible: {route.refusal}"))
        if route.warning:
            lines.append(f"                warning: {route.warning}")
        replies = session.execute(select(StaffReply).where(StaffReply.escalation_id == e.id)
                                  .order_by(StaffReply.id)).scalars().all()
        for reply in replies:
            detail = f" ({_printable(reply.detail)})" if reply.detail else ""
            lines.append(f"    {_when(reply.created_at, tz)}  "
                         f"{REPLY_STATUS.get(reply.status, reply.status)}{detail}  "
                         f"{_printable(reply.actor)}")
            lines.extend(_quoted(reply.text, "      | "))
        events = store.timeline(session, e.id)
        lines.append("  timeline:" + ("" if events else " nothing yet"))
        for event in events:
            lines.append(f"    {_when(event.created_at, tz)}  {event.kind:<12}  "
                         f"{_printable(event.actor)}")
            if event.note:
                lines.extend(_quoted(event.note, "      | "))
    print("\n".join(lines))
    return 0


def _acknowledge(args: argparse.Namespace) -> int:
    tz = _clinic_zone_or_utc()
    with _session() as session:
        changed = store.acknowledge(session, args.id, _actor(), _now())
        e = store.get_escalation(session, args.id)
        by, at = _printable(e.acknowledged_by or "?"), _when(e.acknowledged_at, tz)
    if changed:
        print(f"Acknowledged escalation {args.id}.")
    else:
        print(f"Escalation {args.id} was acknowledged already, by {by} at {at}.")
    return 0


def _reply(args: argparse.Namespace) -> int:
    text = args.text.strip()
    if not text:
        raise CommandError("--text must not be empty")
    if len(text) > REPLY_MAX:
        raise CommandError(f"--text is too long: {len(text):,} characters, at most "
                           f"{REPLY_MAX:,}; nothing was queued")
    with _session() as session:
        store.queue_reply(session, args.id, _actor(), text, _now())
        warning = store.reply_route(session, args.id).warning
    print(f"Reply queued for escalation {args.id}: the Telegram bot sends it "
          f"(aftercare escalations show {args.id} shows whether it was sent).")
    if warning:
        print(f"Warning: {warning}")
    return 0


def _resolve(args: argparse.Namespace) -> int:
    if not args.note.strip():
        raise CommandError("--note must not be empty: say what was done")
    with _session() as session:
        store.resolve(session, args.id, _actor(), args.note, _now())
    print(f"Resolved escalation {args.id}.")
    return 0
