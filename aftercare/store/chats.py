"""Store functions for a patient's chat: the message log, photos, check-in
pause and reachability, and erasure on request.

Like repository.py: each takes an open Session; the caller commits.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from aftercare.store.models import Erasure, Escalation, InboxItem, Message, Patient, Photo
from aftercare.store.repository import StoreError, find_patient_by_sender


def log_message(session: Session, *, sender_id: str, direction: str, text: str,
                kind: str = "text", status: Optional[str] = None,
                patient_id: Optional[int] = None) -> Message:
    if patient_id is None:
        patient = find_patient_by_sender(session, sender_id)
        patient_id = patient.id if patient else None
    message = Message(patient_id=patient_id, sender_id=sender_id, direction=direction,
                      kind=kind, text=text, status=status)
    session.add(message)
    session.flush()
    return message


def set_message_status(session: Session, message_id: int, status: str) -> None:
    session.execute(update(Message).where(Message.id == message_id).values(status=status))


def messages_for(session: Session, sender_id: str) -> list[Message]:
    query = select(Message).where(Message.sender_id == sender_id).order_by(Message.id)
    return list(session.execute(query).scalars())


def pause_checkins(session: Session, patient: Patient, now: datetime) -> bool:
    """Pause; False if they were already paused."""
    if patient.checkins_paused_at is not None:
        return False
    patient.checkins_paused_at = now
    session.flush()
    return True


def resume_checkins(session: Session, patient: Patient) -> bool:
    """Resume; False if they were not paused."""
    if patient.checkins_paused_at is None:
        return False
    patient.checkins_paused_at = None
    session.flush()
    return True


def mark_unreachable(session: Session, patient_id: int, now: datetime) -> None:
    """The patient blocked the bot: check-ins stop and staff can see why."""
    session.execute(update(Patient).where(Patient.id == patient_id,
                                          Patient.unreachable_at.is_(None))
                    .values(unreachable_at=now))


def unreachable_patient_id(session: Session, sender_id: str) -> Optional[int]:
    """The id of this chat's patient if they are marked unreachable, else None."""
    return session.execute(select(Patient.id).where(
        Patient.sender_id == sender_id, Patient.unreachable_at.is_not(None))).scalar()


def clear_unreachable(session: Session, patient_id: int) -> bool:
    """The patient wrote again, so they no longer block the bot; True only for
    the one caller that made the change."""
    result = session.execute(
        update(Patient).where(Patient.id == patient_id, Patient.unreachable_at.is_not(None))
        .values(unreachable_at=None).execution_options(synchronize_session=False))
    return result.rowcount == 1


def mark_reachable(session: Session, patient: Patient) -> None:
    if patient.unreachable_at is not None:
        patient.unreachable_at = None
        session.flush()


def add_photo(session: Session, patient: Patient, *, file_id: str, caption: Optional[str],
              content: Optional[bytes], status: str) -> Photo:
    photo = Photo(patient_id=patient.id, telegram_file_id=file_id, caption=caption,
                  content=content, size=len(content) if content is not None else None,
                  status=status)
    session.add(photo)
    session.flush()
    return photo


def photos_awaiting_consent(session: Session, patient_id: int) -> list[Photo]:
    query = select(Photo).where(Photo.patient_id == patient_id,
                                Photo.status == "awaiting_consent").order_by(Photo.id)
    return list(session.execute(query).scalars())


def keep_photo(session: Session, photo: Photo, content: bytes) -> None:
    photo.content = content
    photo.size = len(content)
    photo.status = "kept"
    session.flush()


def discard_photos_awaiting_consent(session: Session, patient_id: int) -> int:
    result = session.execute(delete(Photo).where(Photo.patient_id == patient_id,
                                                 Photo.status == "awaiting_consent"))
    return result.rowcount or 0


def erase_patient(session: Session, patient: Patient, *, requested_via: str,
                  tracker_table: Optional[str] = "events") -> Erasure:
    """Delete everything the product holds about a patient, keep a note that it
    happened (no personal data in it).

    Rasa's conversation events for their chat go too, when Rasa's SQL tracker
    store shares this database (tracker_table names its events table).
    """
    sender_id = patient.sender_id
    former_id = patient.id
    # The authoring inbox (masked text, labels) goes too; its reasons cascade.
    session.execute(delete(InboxItem).where(InboxItem.patient_id == former_id))
    if sender_id:
        session.execute(delete(Message).where(Message.sender_id == sender_id))
        session.execute(delete(Escalation).where(Escalation.sender_id == sender_id))
        session.execute(delete(InboxItem).where(InboxItem.sender_id == sender_id))
        if tracker_table and _has_table(session, tracker_table):
            session.execute(text(f'DELETE FROM "{tracker_table}" WHERE sender_id = :sender'),
                            {"sender": sender_id})
    session.delete(patient)  # cascades: treatments, codes, photos, reports, deliveries
    erasure = Erasure(former_patient_id=former_id, requested_via=requested_via)
    session.add(erasure)
    session.flush()
    return erasure


def erase_chat(session: Session, sender_id: str,
               tracker_table: Optional[str] = "events") -> None:
    """Forget a chat that belongs to no patient (someone who wrote without a link)."""
    if not sender_id:
        raise StoreError("sender id must be non-empty")
    session.execute(delete(Message).where(Message.sender_id == sender_id))
    session.execute(delete(Escalation).where(Escalation.sender_id == sender_id))
    session.execute(delete(InboxItem).where(InboxItem.sender_id == sender_id))
    if tracker_table and _has_table(session, tracker_table):
        session.execute(text(f'DELETE FROM "{tracker_table}" WHERE sender_id = :sender'),
                        {"sender": sender_id})


def _has_table(session: Session, name: str) -> bool:
    from sqlalchemy import inspect

    return inspect(session.connection()).has_table(name)
