"""Read models for the review pages: plain data gathered in one database session.

The pages get frozen dataclasses rather than ORM objects, so a template can
never trigger a lazy load (or a write) after the session has closed, and each
page's queries are in one place. The escalation list's are in queue.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Dict, List, Optional, Sequence, Tuple

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from aftercare.answer_words import answer_words, payload_intent
from aftercare.checkin_status import CheckinLine, checkin_lines
from aftercare.protocol import Protocol
from aftercare.store import tracker_events
from aftercare.store.escalations import ReplyRoute, reply_route
from aftercare.store.models import (
    Escalation, EscalationEvent, Message, Patient, Photo, StaffReply, SymptomReport,
)
from aftercare.store.repository import (
    current_treatment, find_patient_by_sender, list_patients, patient_day,
)

CONVERSATION_LIMIT = 500   # newest messages shown; older ones are counted, not shown
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class PatientSummary:
    id: int
    name: str
    timezone: str
    sender_id: Optional[str]
    source: str
    day_now: Optional[int]
    treatment_number: Optional[int]
    treated_at: Optional[datetime]
    enrolled_at: Optional[datetime]
    checkins_paused_at: Optional[datetime]
    unreachable_at: Optional[datetime]
    photo_consent: Optional[bool]
    phone: Optional[str] = None   # as a tel: link takes it


@dataclass(frozen=True)
class EscalationRow:
    id: int
    level: str
    status: str
    reason: str
    message: str
    day_then: Optional[int]
    created_at: datetime
    resolved_at: Optional[datetime]
    acknowledged_at: Optional[datetime]
    acknowledged_by: Optional[str]
    note: Optional[str]
    sender_id: Optional[str]
    patient: Optional[PatientSummary]


@dataclass(frozen=True)
class ChatMessage:
    id: int
    direction: str
    kind: str
    text: str
    status: Optional[str]
    created_at: Optional[datetime]   # None: a tracker event without a usable time
    triggered: bool   # the text the escalation was raised on
    # Where `id` comes from: the bot's message log ("log") or Rasa's events
    # ("rasa"); flaggable: words the patient typed that the assistant read, so a
    # nurse can mark them "the assistant misread this".
    source: str = "log"
    flaggable: bool = False


@dataclass(frozen=True)
class PhotoRow:
    id: int
    caption: Optional[str]
    received_at: datetime
    size: Optional[int]


@dataclass(frozen=True)
class ReportRow:
    id: int
    day: Optional[int]
    treatment_id: Optional[int]
    checkin_id: Optional[str]
    symptom: str
    level: Optional[str]
    text: str
    created_at: datetime


@dataclass(frozen=True)
class EventRow:
    kind: str
    actor: str
    note: Optional[str]
    created_at: datetime


@dataclass(frozen=True)
class ReplyRow:
    id: int
    actor: str
    text: str
    status: str
    detail: Optional[str]
    created_at: datetime
    sent_at: Optional[datetime]


@dataclass(frozen=True)
class Conversation:
    messages: List[ChatMessage]
    older: int   # messages not shown (beyond CONVERSATION_LIMIT)
    # Some of it comes from Rasa's conversation record (a chat outside Telegram,
    # which the bot's message log does not hold).
    from_tracker: bool = False
    # The patient's yes to their messages improving the assistant (None: not
    # asked, which is no; also when the chat is nobody's on record).
    improve_consent: Optional[bool] = None


@dataclass(frozen=True)
class EscalationPage:
    escalation: EscalationRow
    conversation: Conversation
    photos: List[PhotoRow]
    reports: List[ReportRow]
    timeline: List[EventRow]
    replies: List[ReplyRow]
    can_reply: bool   # there is a chat the bot can send a reply to
    route: Optional[ReplyRoute] = None   # where a reply goes; why not; the phone


@dataclass(frozen=True)
class PatientRow:
    patient: PatientSummary
    last_checkin: Optional[ReportRow]
    open_escalations: int


@dataclass(frozen=True)
class PatientPage:
    patient: PatientSummary
    treatments: List[Tuple[int, datetime]]  # (number in series, treated at)
    reports: List[ReportRow]
    chart_reports: List[ReportRow]          # those of the current treatment
    conversation: Conversation
    escalations: List[EscalationRow]
    photos: List[PhotoRow]
    checkins_answered: int = 0
    checkins: List[CheckinLine] = field(default_factory=list)   # the current treatment's


def patient_summary(patient: Patient, now: datetime) -> PatientSummary:
    treatment = current_treatment(patient)
    day = patient_day(patient, now)
    return PatientSummary(
        id=patient.id, name=patient.name, timezone=patient.timezone,
        sender_id=patient.sender_id, source=patient.source, day_now=day,
        treatment_number=treatment.number_in_series if treatment else None,
        treated_at=treatment.treated_at if treatment else None,
        enrolled_at=patient.enrolled_at, checkins_paused_at=patient.checkins_paused_at,
        unreachable_at=patient.unreachable_at, photo_consent=patient.photo_consent,
        phone=patient.phone)


def _patient_of(session: Session, escalation: Escalation) -> Optional[Patient]:
    """The escalation's patient; for one recorded before the chat was linked,
    the patient that sender id belongs to now."""
    if escalation.patient is not None:
        return escalation.patient
    return find_patient_by_sender(session, escalation.sender_id or "")


def _escalation_row(session: Session, escalation: Escalation, now: datetime) -> EscalationRow:
    patient = _patient_of(session, escalation)
    return EscalationRow(
        id=escalation.id, level=escalation.level, status=escalation.status,
        reason=escalation.reason, message=escalation.message, day_then=escalation.day,
        created_at=escalation.created_at, resolved_at=escalation.resolved_at,
        acknowledged_at=escalation.acknowledged_at, acknowledged_by=escalation.acknowledged_by,
        note=escalation.note, sender_id=escalation.sender_id,
        patient=patient_summary(patient, now) if patient is not None else None)


def _report_row(report: SymptomReport) -> ReportRow:
    return ReportRow(id=report.id, day=report.day, treatment_id=report.treatment_id,
                     checkin_id=report.checkin_id, symptom=report.symptom, level=report.level,
                     text=answer_words(report.text), created_at=report.created_at)


def _reports(session: Session, patient_id: int) -> List[ReportRow]:
    query = (select(SymptomReport).where(SymptomReport.patient_id == patient_id)
             .order_by(SymptomReport.created_at, SymptomReport.id))
    return [_report_row(r) for r in session.execute(query).scalars()]


def _photos(session: Session, patient_id: int) -> List[PhotoRow]:
    query = (select(Photo.id, Photo.caption, Photo.received_at, Photo.size)
             .where(Photo.patient_id == patient_id, Photo.status == "kept",
                    Photo.content.is_not(None))
             .order_by(Photo.received_at, Photo.id))
    return [PhotoRow(id=i, caption=c, received_at=r, size=s)
            for i, c, r, s in session.execute(query)]


# Patient messages the assistant never read (see aftercare.authoring.inbox).
NOT_READ = frozenset({"unanswered", "held", "handed_off"})


def _flaggable(direction: str, kind: str, text: str, status: Optional[str]) -> bool:
    return (direction == "in" and kind == "text" and status not in NOT_READ
            and payload_intent(text) is None and bool(text.strip()))


def _said(direction: str, text: str) -> str:
    """A patient's tapped button in words; everything else as it was written."""
    return answer_words(text) if direction == "in" else text


def _timed(messages: List[ChatMessage]) -> List[Tuple[datetime, ChatMessage]]:
    """(time to sort by, message): one without a time keeps its place after the
    message before it."""
    moment, timed = EPOCH, []
    for message in messages:
        moment = message.created_at or moment
        timed.append((moment, message))
    return timed


def _conversation(session: Session, sender_ids: Sequence[Optional[str]],
                  patient_id: Optional[int], trigger: Optional[str] = None) -> Conversation:
    """The chat of a patient: the bot's message log by sender id (also before
    the chat was linked) and by patient id; for a sender id the log has nothing
    from (the terminal chat, Rasa's REST channel), Rasa's own record of that
    conversation.

    One source per conversation, never both: for a Telegram chat Rasa's record
    repeats what the log holds (in other shapes: a check-in is an intent there,
    a long reply one event here and several messages there), while only the
    log has what never went through Rasa (held and unanswered messages, the
    clinic's replies, notices, photos)."""
    senders = {s for s in sender_ids if s}
    conditions = [Message.sender_id == s for s in senders]
    if patient_id is not None:
        conditions.append(Message.patient_id == patient_id)
    if not conditions:
        return Conversation(messages=[], older=0)
    where = or_(*conditions)
    total = session.execute(select(func.count(Message.id)).where(where)).scalar_one()
    query = select(Message).where(where).order_by(Message.id.desc()).limit(CONVERSATION_LIMIT)
    rows = list(reversed(list(session.execute(query).scalars())))
    trigger = (trigger or "").strip()
    messages = [ChatMessage(id=m.id, direction=m.direction, kind=m.kind,
                            text=_said(m.direction, m.text), status=m.status,
                            created_at=m.created_at,
                            triggered=bool(trigger) and m.direction == "in"
                            and m.text.strip() == trigger,
                            flaggable=_flaggable(m.direction, m.kind, m.text, m.status))
                for m in rows]
    consent = _improve_consent(session, senders, patient_id)
    older = total - len(messages)
    logged = set(session.execute(select(Message.sender_id).where(
        Message.sender_id.in_(senders)).distinct()).scalars()) if senders else set()
    tracked, tracked_older = tracker_events.conversation(
        session, sorted(senders - logged), CONVERSATION_LIMIT)
    if not tracked:
        return Conversation(messages=messages, older=older + tracked_older,
                            improve_consent=consent)
    from_rasa = [ChatMessage(id=t.event_id, direction=t.direction, kind="text",
                             text=_said(t.direction, t.text), status=None,
                             created_at=t.created_at,
                             triggered=bool(trigger) and t.direction == "in"
                             and t.text.strip() == trigger, source="rasa",
                             flaggable=_flaggable(t.direction, "text", t.text, None))
                 for t in tracked]
    messages = sorted(_timed(messages) + _timed(from_rasa), key=lambda pair: pair[0])
    messages = [message for _, message in messages]
    shown = messages[-CONVERSATION_LIMIT:]
    return Conversation(messages=shown, older=older + tracked_older + len(messages) - len(shown),
                        from_tracker=True, improve_consent=consent)


def _improve_consent(session: Session, senders: set,
                     patient_id: Optional[int]) -> Optional[bool]:
    """The patient's answer to improving the assistant (as the inbox reads it:
    by the chat's sender id), or None."""
    found = [find_patient_by_sender(session, s) for s in sorted(senders)]
    if patient_id is not None:
        found.append(session.get(Patient, patient_id))
    answers = {p.improve_consent for p in found if p is not None}
    return True if answers == {True} else (False if False in answers else None)


def escalation_page(session: Session, escalation_id: int, now: datetime) -> Optional[EscalationPage]:
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        return None
    row = _escalation_row(session, escalation, now)
    patient = _patient_of(session, escalation)
    patient_id = patient.id if patient is not None else None
    conversation = _conversation(
        session, [escalation.sender_id, patient.sender_id if patient else None],
        patient_id, trigger=escalation.message)
    events = session.execute(
        select(EscalationEvent).where(EscalationEvent.escalation_id == escalation_id)
        .order_by(EscalationEvent.created_at, EscalationEvent.id)).scalars()
    replies = session.execute(
        select(StaffReply).where(StaffReply.escalation_id == escalation_id)
        .order_by(StaffReply.id)).scalars()
    route = reply_route(session, escalation_id)
    return EscalationPage(
        escalation=row, conversation=conversation,
        photos=_photos(session, patient_id) if patient_id else [],
        reports=_reports(session, patient_id) if patient_id else [],
        timeline=[EventRow(kind=e.kind, actor=e.actor, note=e.note, created_at=e.created_at)
                  for e in events],
        replies=[ReplyRow(id=r.id, actor=r.actor, text=r.text, status=r.status,
                          detail=r.detail, created_at=r.created_at, sent_at=r.sent_at)
                 for r in replies],
        can_reply=route.deliverable, route=route)


def _open_counts(session: Session, patients: Sequence[Patient]) -> Dict[int, int]:
    """Unresolved escalations per patient, counting those recorded under the
    patient's sender id before the chat was linked."""
    by_sender = {p.sender_id: p.id for p in patients if p.sender_id}
    counts: Dict[int, int] = {}
    query = select(Escalation.patient_id, Escalation.sender_id).where(
        Escalation.status != "resolved")
    for patient_id, sender_id in session.execute(query):
        owner = patient_id if patient_id is not None else by_sender.get(sender_id)
        if owner is not None:
            counts[owner] = counts.get(owner, 0) + 1
    return counts


def _last_checkins(session: Session) -> Dict[int, ReportRow]:
    latest = (select(func.max(SymptomReport.id))
              .where(SymptomReport.checkin_id.is_not(None))
              .group_by(SymptomReport.patient_id))
    query = select(SymptomReport).where(SymptomReport.id.in_(latest))
    return {r.patient_id: _report_row(r) for r in session.execute(query).scalars()}


def patient_rows(session: Session, now: datetime) -> List[PatientRow]:
    patients = list_patients(session)
    counts = _open_counts(session, patients)
    checkins = _last_checkins(session)
    return [PatientRow(patient=patient_summary(p, now), last_checkin=checkins.get(p.id),
                       open_escalations=counts.get(p.id, 0))
            for p in patients]


def patient_page(session: Session, patient_id: int, now: datetime,
                 protocol: Optional[Protocol] = None) -> Optional[PatientPage]:
    """The patient's page; without the protocol (it could not be read) the
    check-in plan is left empty."""
    patient = session.get(Patient, patient_id)
    if patient is None:
        return None
    summary = patient_summary(patient, now)
    reports = _reports(session, patient.id)
    treatment = current_treatment(patient)
    chart_reports = [r for r in reports if treatment is not None and (
        r.treatment_id == treatment.id
        or (r.treatment_id is None and r.created_at >= treatment.treated_at))]
    conditions = [Escalation.patient_id == patient.id]
    if patient.sender_id:
        conditions.append(Escalation.sender_id == patient.sender_id)
    escalations = session.execute(
        select(Escalation).where(or_(*conditions))
        .order_by(Escalation.created_at.desc(), Escalation.id.desc())).scalars()
    return PatientPage(
        patient=summary,
        treatments=[(t.number_in_series, t.treated_at) for t in patient.treatments],
        reports=reports, chart_reports=chart_reports,
        conversation=_conversation(session, [patient.sender_id], patient.id),
        escalations=[_escalation_row(session, e, now) for e in escalations],
        photos=_photos(session, patient.id),
        checkins_answered=sum(1 for r in reports if r.checkin_id),
        checkins=checkin_lines(session, patient, protocol, now) if protocol else [])


def photo_content(session: Session, photo_id: int) -> Optional[bytes]:
    """A kept photo's bytes, or None (unknown, awaiting consent, or no content)."""
    photo = session.get(Photo, photo_id)
    if photo is None or photo.status != "kept" or photo.content is None:
        return None
    return bytes(photo.content)
