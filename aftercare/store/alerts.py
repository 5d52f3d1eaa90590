"""Bookkeeping of the staff group: which escalations have been posted, which
are due a reminder, which replies wait to be sent, which patients must be told
that a person has taken over or has handed them back.

The bot works from these rows (an outbox), so an escalation written by the
action server, the bot's own net or the review page reaches the staff group
even if the bot was down when it was written. Each step is marked done after
it is sent: a crash in between repeats a post rather than losing it.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import List, Optional

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from aftercare.store.escalations import LEVEL_ORDER, get_escalation, record_reminder
from aftercare.store.models import Escalation, Photo, StaffPost, StaffReply
from aftercare.store.repository import _check_aware


def _by_urgency(escalations: List[Escalation]) -> List[Escalation]:
    rank = {level: i for i, level in enumerate(LEVEL_ORDER)}
    return sorted(escalations, key=lambda e: (rank.get(e.level, len(rank)), e.created_at, e.id))


def not_yet_alerted(session: Session, limit: int = 50) -> List[Escalation]:
    """Unresolved escalations never posted to the staff group, most urgent first."""
    query = (select(Escalation)
             .where(Escalation.alerted_at.is_(None), Escalation.status != "resolved")
             .order_by(Escalation.id).limit(limit))
    return _by_urgency(list(session.execute(query).scalars()))


def mark_alerted(session: Session, escalation_id: int, now: datetime) -> None:
    escalation = get_escalation(session, escalation_id)
    escalation.alerted_at = escalation.last_alert_at = _check_aware(now, "time")
    session.flush()


def unacknowledged(session: Session) -> List[Escalation]:
    """Posted but nobody has acknowledged them yet: candidates for a reminder."""
    query = select(Escalation).where(Escalation.status == "open",
                                     Escalation.alerted_at.is_not(None))
    return _by_urgency(list(session.execute(query).scalars()))


def mark_reminded(session: Session, escalation_id: int, now: datetime) -> None:
    record_reminder(session, escalation_id, now)
    get_escalation(session, escalation_id).last_alert_at = now
    session.flush()


def record_post(session: Session, escalation_id: int, chat_id: int, message_id: int,
                kind: str, now: datetime) -> StaffPost:
    # A message id Telegram hands out again in a chat (a group recreated or
    # migrated) means the old mapping is stale: the newer post wins.
    session.execute(delete(StaffPost).where(StaffPost.chat_id == chat_id,
                                            StaffPost.message_id == message_id))
    post = StaffPost(escalation_id=escalation_id, chat_id=chat_id, message_id=message_id,
                     kind=kind, created_at=_check_aware(now, "time"))
    session.add(post)
    session.flush()
    return post


def escalation_for_post(session: Session, chat_id: int, message_id: int) -> Optional[int]:
    """The escalation a staff-group message is about (so a reply to it can be routed)."""
    query = select(StaffPost.escalation_id).where(StaffPost.chat_id == chat_id,
                                                  StaffPost.message_id == message_id)
    return session.execute(query).scalars().first()


def alert_post(session: Session, escalation_id: int) -> Optional[StaffPost]:
    """The first alert posted for an escalation (reminders and closures reply to it)."""
    query = (select(StaffPost).where(StaffPost.escalation_id == escalation_id,
                                     StaffPost.kind == "alert").order_by(StaffPost.id).limit(1))
    return session.execute(query).scalars().first()


def awaiting_handoff_notice(session: Session) -> List[Escalation]:
    """Acknowledged (a person has it) but the patient has not been told yet."""
    query = (select(Escalation).where(Escalation.status == "acknowledged",
                                      Escalation.handoff_notified_at.is_(None))
             .order_by(Escalation.id))
    return list(session.execute(query).scalars())


def awaiting_closure(session: Session) -> List[Escalation]:
    """Resolved, but the staff group (and a handed-off patient) not yet told."""
    query = (select(Escalation).where(Escalation.status == "resolved",
                                      Escalation.closure_posted_at.is_(None))
             .order_by(Escalation.id))
    return list(session.execute(query).scalars())


def mark_handoff_notified(session: Session, escalation_id: int, now: datetime) -> None:
    get_escalation(session, escalation_id).handoff_notified_at = _check_aware(now, "time")
    session.flush()


def mark_closure_posted(session: Session, escalation_id: int, now: datetime) -> None:
    get_escalation(session, escalation_id).closure_posted_at = _check_aware(now, "time")
    session.flush()


def finish_reply(session: Session, reply_id: int, status: str, now: datetime,
                 detail: Optional[str] = None) -> None:
    reply = session.get(StaffReply, reply_id)
    if reply is None:
        return
    reply.status = status
    reply.detail = detail
    if status == "sent":
        reply.sent_at = _check_aware(now, "time")
    session.flush()


def recent_photos(session: Session, patient_id: int, since: datetime,
                  limit: int = 3) -> List[Photo]:
    """Photos the patient agreed to keep, received since `since`, newest first."""
    query = (select(Photo).where(Photo.patient_id == patient_id, Photo.status == "kept",
                                 Photo.received_at >= since)
             .order_by(Photo.received_at.desc(), Photo.id.desc()).limit(limit))
    return list(session.execute(query).scalars())


def photo_window(now: datetime) -> datetime:
    """How far back a new alert looks for the patient's photos."""
    return now - timedelta(hours=24)


def unresolved_for_sender(session: Session, sender_id: str) -> List[Escalation]:
    """A conversation's escalations that are open or in a person's hands, oldest first."""
    query = (select(Escalation).where(Escalation.sender_id == sender_id,
                                      Escalation.status != "resolved")
             .order_by(Escalation.id))
    return list(session.execute(query).scalars())



def posts_about_sender(session: Session, sender_id: str) -> List[tuple[int, int]]:
    """(chat id, message id) of every staff-group post about a conversation's
    escalations: what to delete from the group when the patient is erased."""
    query = (select(StaffPost.chat_id, StaffPost.message_id)
             .join(Escalation, Escalation.id == StaffPost.escalation_id)
             .where(Escalation.sender_id == sender_id))
    return [(chat, message) for chat, message in session.execute(query)]
