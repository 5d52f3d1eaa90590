"""Each check-in of a patient's current treatment, with what became of it, in words.

The plan comes from the protocol (aftercare.checkins); what happened from the
delivery log (checkin_deliveries, aftercare/store/deliveries.py) and the
patient's answers (symptom_reports with the check-in's id). The review page
and `aftercare patients show` both show this list, so staff see a check-in
that was skipped, failed or may not have arrived, and why.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Dict, List, Optional, Tuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from aftercare import checkins
from aftercare.answer_words import answer_words, symptom_words
from aftercare.protocol import Protocol
from aftercare.store.models import CheckinDelivery, Patient, SymptomReport
from aftercare.store.repository import current_treatment, patient_zone

# States staff should notice: the patient may not have had this check-in.
PROBLEMS = ("skipped", "failed", "uncertain", "missing")

# The delivery log's reasons (bot/checkin_service.py) as staff would say them.
REASONS: Dict[str, str] = {
    "check-ins paused by the patient": "check-ins paused",
    "stale: past its grace window": "too late to send by then",
    "missed while the bot was not running; stale":
        "missed while the bot was not running, too late to send",
    "missed while the bot was not running": "missed while the bot was not running",
    "no longer in the protocol": "no longer in the clinic's check-in schedule",
    "interrupted while sending": "the bot stopped while sending it",
    "assistant unavailable": "the assistant was not answering; trying again",
    "database busy": "the database was busy; trying again",
}


@dataclass(frozen=True)
class Answer:
    symptom: str           # in words: "redness", "all good"
    said: str              # what the patient said, a tapped button in words
    level: Optional[str]   # the triage level, None when nothing to flag
    at: datetime


@dataclass(frozen=True)
class CheckinLine:
    checkin_id: str
    label: str             # "day1 morning"
    day: Optional[int]     # recovery day it is due on
    due_at: datetime
    state: str             # planned, waiting, sending, sent, skipped, failed, uncertain, missing
    words: str             # the state and its reason, for people
    answers: Tuple[Answer, ...]

    @property
    def problem(self) -> bool:
        return self.state in PROBLEMS


def reason_words(detail: Optional[str]) -> str:
    if not detail:
        return "no reason recorded"
    if detail.startswith("Telegram: "):
        return f"Telegram kept refusing it ({detail[len('Telegram: '):]})"
    return REASONS.get(detail, detail)


def _words(row: Optional[CheckinDelivery], patient: Patient, due_at: datetime,
           now: datetime) -> Tuple[str, str]:
    """(state, words) of one check-in."""
    if row is None:
        enrolled = patient.enrolled_at is not None and patient.sender_id is not None
        if due_at > now:
            if not enrolled:
                return "planned", "planned: sent only once the patient is enrolled on Telegram"
            if patient.unreachable_at is not None:
                return "planned", "planned, but the patient blocked the bot"
            return "planned", "planned"
        if not enrolled:
            return "missing", "not sent: the patient is not enrolled on Telegram"
        if due_at < patient.enrolled_at:
            return "missing", "not sent: due before the patient enrolled"
        if patient.unreachable_at is not None:
            return "missing", "not sent: the patient blocked the bot"
        return "missing", ("not sent: the bot has not recorded it (it sends check-ins "
                           "only while it is running)")
    status = row.status
    if status == "sent":
        return "sent", "sent"
    if status == "due":
        extra = f" ({reason_words(row.detail)})" if row.detail else ""
        return "waiting", f"waiting to be sent{extra}"
    if status in ("claimed", "sending"):
        return "sending", "being sent now"
    if status == "skipped":
        return "skipped", f"skipped: {reason_words(row.detail)}"
    if status == "failed":
        return "failed", f"not delivered: {reason_words(row.detail)}"
    if status == "uncertain":
        return "uncertain", ("may not have arrived: the bot stopped while sending it, "
                             "and it is never sent twice")
    return status, status


def checkin_lines(session: Session, patient: Patient, protocol: Protocol,
                  now: datetime) -> List[CheckinLine]:
    """The current treatment's check-ins in time order (those the protocol no
    longer has but the log recorded too), each with its state and answers."""
    treatment = current_treatment(patient)
    if treatment is None:
        return []
    tz = patient_zone(patient)
    planned = {p.checkin_id: p for p in checkins.plan(
        protocol, treatment.treated_at, tz, treatment.number_in_series)}
    rows = {r.checkin_id: r for r in session.execute(
        select(CheckinDelivery).where(CheckinDelivery.treatment_id == treatment.id)).scalars()}
    answers: Dict[str, List[Answer]] = {}
    reports = session.execute(
        select(SymptomReport).where(SymptomReport.treatment_id == treatment.id,
                                    SymptomReport.checkin_id.is_not(None))
        .order_by(SymptomReport.created_at, SymptomReport.id)).scalars()
    for report in reports:
        answers.setdefault(report.checkin_id, []).append(Answer(
            symptom=symptom_words(report.symptom), said=answer_words(report.text),
            level=report.level, at=report.created_at))
    lines = []
    for checkin_id in set(planned) | set(rows):
        plan, row = planned.get(checkin_id), rows.get(checkin_id)
        due_at = plan.due_at if plan is not None else row.due_at
        day = plan.day if plan is not None else None
        state, words = _words(row, patient, due_at, now)
        lines.append(CheckinLine(checkin_id=checkin_id, label=checkin_id.replace("_", " "),
                                 day=day, due_at=due_at, state=state, words=words,
                                 answers=tuple(answers.get(checkin_id, ()))))
    return sorted(lines, key=lambda line: (line.due_at, line.checkin_id))
