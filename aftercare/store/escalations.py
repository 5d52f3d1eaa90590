"""Store functions for handling escalations: acknowledge, reply, note, resolve,
and the timeline of who did what.

Status goes open -> acknowledged -> resolved (reopen takes a resolved one back
to acknowledged). Every step adds an EscalationEvent. Like repository.py: each
function takes an open Session and flushes; the caller commits.

actor names who acted: a staff email, "telegram:<user id>", "cli:<os user>"
or "system" (reminders).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import List, Optional

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from aftercare.store.models import ACTOR_MAX, Escalation, EscalationEvent, Patient, StaffReply
from aftercare.store.repository import (
    StoreError, _check_aware, find_patient_by_sender, patient_zone,
)

# Most pressing first: a patient asking for a person comes before routine.
LEVEL_ORDER = ("emergency", "urgent", "human", "routine")


def _check_actor(actor: str) -> str:
    if not isinstance(actor, str) or not actor.strip():
        raise StoreError("actor must be non-empty text (who did this)")
    actor = actor.strip()
    if len(actor) > ACTOR_MAX:
        raise StoreError(f"actor is too long ({len(actor)} characters, at most {ACTOR_MAX})")
    return actor


def _check_text(text: Optional[str], what: str) -> Optional[str]:
    if text is None:
        return None
    if not isinstance(text, str):
        raise StoreError(f"{what} must be text")
    return text.strip() or None


def get_escalation(session: Session, escalation_id: int) -> Escalation:
    """The escalation, or StoreError "no escalation N"."""
    if isinstance(escalation_id, bool) or not isinstance(escalation_id, int):
        raise StoreError(f"escalation id must be a whole number, got {escalation_id!r}")
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        raise StoreError(f"no escalation {escalation_id}")
    return escalation


def _event(session: Session, escalation: Escalation, kind: str, actor: str,
           now: datetime, note: Optional[str] = None) -> EscalationEvent:
    event = EscalationEvent(kind=kind, actor=actor, note=note, created_at=now)
    escalation.events.append(event)
    escalation.updated_at = now
    session.flush()
    return event


def _refuse_if_resolved(escalation: Escalation, doing: str) -> None:
    if escalation.status == "resolved":
        raise StoreError(f"escalation {escalation.id} is resolved already; "
                         f"reopen it to {doing}")


def acknowledge(session: Session, escalation_id: int, actor: str, now: datetime) -> bool:
    """Someone has it in hand: stops re-alerts. False if it was acknowledged already."""
    actor = _check_actor(actor)
    now = _check_aware(now, "time")
    escalation = get_escalation(session, escalation_id)
    _refuse_if_resolved(escalation, "acknowledge it")
    if escalation.status == "acknowledged":
        return False
    escalation.status = "acknowledged"
    escalation.acknowledged_at = now
    escalation.acknowledged_by = actor
    _event(session, escalation, "acknowledged", actor, now)
    return True


def resolve(session: Session, escalation_id: int, actor: str, note: Optional[str],
            now: datetime) -> Escalation:
    """Close it with a note (what was done); a resolved one is refused."""
    actor = _check_actor(actor)
    now = _check_aware(now, "time")
    note = _check_text(note, "note")
    escalation = get_escalation(session, escalation_id)
    if escalation.status == "resolved":
        raise StoreError(f"escalation {escalation.id} is resolved already")
    escalation.status = "resolved"
    escalation.resolved_at = now
    escalation.note = note
    _event(session, escalation, "resolved", actor, now, note)
    return escalation


def reopen(session: Session, escalation_id: int, actor: str, now: datetime) -> Escalation:
    """Take a resolved escalation back to acknowledged (by actor)."""
    actor = _check_actor(actor)
    now = _check_aware(now, "time")
    escalation = get_escalation(session, escalation_id)
    if escalation.status != "resolved":
        raise StoreError(f"escalation {escalation.id} is not resolved")
    escalation.status = "acknowledged"
    escalation.resolved_at = None
    escalation.acknowledged_at = escalation.acknowledged_at or now
    escalation.acknowledged_by = escalation.acknowledged_by or actor
    # The patient is told again that a person has it; the next resolve is posted again.
    escalation.handoff_notified_at = None
    escalation.closure_posted_at = None
    _event(session, escalation, "reopened", actor, now)
    return escalation


def add_note(session: Session, escalation_id: int, actor: str, note: str,
             now: datetime) -> EscalationEvent:
    """A note on the timeline; allowed at any status."""
    actor = _check_actor(actor)
    now = _check_aware(now, "time")
    note = _check_text(note, "note")
    if note is None:
        raise StoreError("a note must not be empty")
    escalation = get_escalation(session, escalation_id)
    return _event(session, escalation, "note", actor, now, note)


def record_reply(session: Session, escalation_id: int, actor: str, text: str,
                 now: datetime) -> EscalationEvent:
    """Staff replied to the patient; replying to an open one acknowledges it too."""
    actor = _check_actor(actor)
    now = _check_aware(now, "time")
    text = _check_text(text, "reply")
    if text is None:
        raise StoreError("a reply must not be empty")
    escalation = get_escalation(session, escalation_id)
    _refuse_if_resolved(escalation, "reply")
    if escalation.status == "open":
        acknowledge(session, escalation_id, actor, now)
    return _event(session, escalation, "replied", actor, now, text)


def record_reminder(session: Session, escalation_id: int, now: datetime,
                    actor: str = "system") -> EscalationEvent:
    """A re-alert was posted for an escalation nobody has acknowledged."""
    actor = _check_actor(actor)
    now = _check_aware(now, "time")
    escalation = get_escalation(session, escalation_id)
    return _event(session, escalation, "reminded", actor, now)


def timeline(session: Session, escalation_id: int) -> List[EscalationEvent]:
    """Events oldest first."""
    get_escalation(session, escalation_id)
    query = (select(EscalationEvent).where(EscalationEvent.escalation_id == escalation_id)
             .order_by(EscalationEvent.created_at, EscalationEvent.id))
    return list(session.execute(query).scalars())


def _level_rank():
    return case({level: rank for rank, level in enumerate(LEVEL_ORDER)},
                value=Escalation.level, else_=len(LEVEL_ORDER))


def open_escalations(session: Session) -> List[Escalation]:
    """Not yet resolved (open or acknowledged): by level (emergency, urgent, human,
    routine), then oldest first."""
    query = (select(Escalation).where(Escalation.status != "resolved")
             .order_by(_level_rank(), Escalation.created_at, Escalation.id))
    return list(session.execute(query).scalars())


def all_escalations(session: Session) -> List[Escalation]:
    """Unresolved ones as open_escalations orders them, then resolved ones, newest first."""
    resolved = (select(Escalation).where(Escalation.status == "resolved")
                .order_by(Escalation.created_at.desc(), Escalation.id.desc()))
    return open_escalations(session) + list(session.execute(resolved).scalars())


# The bot sends a reply to the escalation's conversation when it is a Telegram
# chat: bot/context.py names those "tg-<chat id>" (the bot's staff relay reads
# the chat id back the same way).
TELEGRAM_SENDER_PREFIX = "tg-"


class ReplyRefused(StoreError):
    """A reply the bot could not deliver; the message says to call instead."""


@dataclass(frozen=True)
class ReplyRoute:
    """Whether a reply from the clinic can reach the patient of an escalation."""
    escalation_id: int
    patient_id: Optional[int]
    telegram: bool                  # the conversation is a Telegram chat the bot can send to
    linked: bool                    # there is a conversation at all
    unreachable_since: Optional[str]  # the patient blocked the bot (a date, their zone)
    phone: Optional[str]

    @property
    def deliverable(self) -> bool:
        return self.telegram

    @property
    def call_advice(self) -> str:
        """"Call them on <number>", or how to add a number when there is none."""
        if self.phone:
            return f"Call them on {self.phone}"
        fix = (f" (add one: aftercare patients edit {self.patient_id} --phone NUMBER)"
               if self.patient_id is not None else "")
        return f"Call them instead; no phone number is on record{fix}"

    @property
    def refusal(self) -> Optional[str]:
        """Why a reply cannot be sent, and what to do; None when it can."""
        if self.telegram:
            return None
        why = ("their conversation is not on Telegram (terminal or web chat), so the bot "
               "cannot send them a message" if self.linked
               else "no Telegram chat is linked to them")
        return (f"the patient of escalation {self.escalation_id} cannot get replies from the "
                f"bot: {why}. Nothing was queued. {self.call_advice}")

    @property
    def warning(self) -> Optional[str]:
        """For a deliverable reply that may still not arrive; None otherwise."""
        if not self.telegram or self.unreachable_since is None:
            return None
        return (f"the patient blocked the bot (since {self.unreachable_since}), so this "
                f"reply may not arrive. {self.call_advice}")


def _is_telegram_chat(sender_id: str) -> bool:
    if not sender_id.startswith(TELEGRAM_SENDER_PREFIX):
        return False
    try:
        int(sender_id[len(TELEGRAM_SENDER_PREFIX):])
    except ValueError:
        return False
    return True


def reply_route(session: Session, escalation_id: int) -> ReplyRoute:
    """Where a reply to this escalation would go, and whether it can get there."""
    escalation = get_escalation(session, escalation_id)
    patient: Optional[Patient] = escalation.patient
    if patient is None and escalation.sender_id:
        patient = find_patient_by_sender(session, escalation.sender_id)
    sender = escalation.sender_id or ""
    unreachable = None
    if patient is not None and patient.unreachable_at is not None:
        unreachable = f"{patient.unreachable_at.astimezone(patient_zone(patient)):%d %b %Y}"
    return ReplyRoute(
        escalation_id=escalation.id, patient_id=patient.id if patient is not None else None,
        telegram=_is_telegram_chat(sender), linked=bool(sender), unreachable_since=unreachable,
        phone=patient.phone if patient is not None else None)


def queue_reply(session: Session, escalation_id: int, actor: str, text: str,
                now: datetime) -> StaffReply:
    """A reply from the clinic for the bot to send to the patient (it is on the
    timeline at once; the bot marks it sent or failed).

    Refused (ReplyRefused, saying to call) when the conversation is not a
    Telegram chat: the bot could never send it. A patient who blocked the bot
    still gets it queued (see reply_route's warning): Telegram gives no other
    way to find out that they have unblocked it, and if they have not, the bot
    marks the reply failed instead of leaving it queued."""
    escalation = get_escalation(session, escalation_id)
    _refuse_if_resolved(escalation, "reply")
    refusal = reply_route(session, escalation_id).refusal
    if refusal is not None:
        raise ReplyRefused(refusal)
    event = record_reply(session, escalation_id, actor, text, now)
    reply = StaffReply(escalation_id=escalation_id, actor=event.actor, text=event.note,
                       status="pending", created_at=now)
    session.add(reply)
    session.flush()
    return reply


def pending_replies(session: Session, limit: int = 50) -> List[StaffReply]:
    query = (select(StaffReply).where(StaffReply.status == "pending")
             .order_by(StaffReply.id).limit(limit))
    return list(session.execute(query).scalars())


def in_handoff(session: Session, sender_id: str) -> Optional[Escalation]:
    """The escalation a person is handling for this conversation (acknowledged,
    not resolved), or None: while there is one, the assistant stays quiet."""
    query = (select(Escalation)
             .where(Escalation.sender_id == sender_id, Escalation.status == "acknowledged")
             .order_by(Escalation.acknowledged_at.desc(), Escalation.id.desc()).limit(1))
    return session.execute(query).scalars().first()
