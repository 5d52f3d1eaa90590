"""A patient whose check-ins went every way a check-in can go, written with the
store's own functions, for the review page and `aftercare patients show`."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from aftercare.store import db, deliveries, repository

LONDON = ZoneInfo("Europe/London")
NAME = "Imogen Plaice"
PHONE_TYPED = "+44 (0)20 7946 0321"
PHONE = "+442079460321"
TYPED_ANSWER = "still a bit pink round the nose"
# What the delivery log says, and what staff must read for it.
OUTCOMES = {
    "day0_evening": ("sent", None, "sent"),
    "day1_morning": ("sent", None, "sent"),
    "day2_morning": ("skipped", "check-ins paused by the patient", "skipped: check-ins paused"),
    "day3_morning": ("failed", "the patient blocked the bot",
                     "not delivered: the patient blocked the bot"),
    "day7": ("uncertain", "interrupted while sending", "may not have arrived"),
}


@dataclass(frozen=True)
class CheckinScene:
    patient_id: int
    sender_id: str


def treated_days_ago(days: int) -> datetime:
    """10:00 London time that many days ago: every check-in up to day `days - 1`
    is in the past, and the next session's reminder in the future, whatever the
    hour the test runs."""
    today = datetime.now(LONDON).date()
    return datetime.combine(today - timedelta(days=days), time(10), tzinfo=LONDON)


def add_checkin_scene(url: str, sender_id: str = "tg-818181") -> CheckinScene:
    """Treated 8 days ago, enrolled then: day 0 and 1 sent (answered by a tapped
    button and in words), day 2 skipped, day 3 failed, day 7 uncertain; the next
    session's reminder still to come."""
    treated = treated_days_ago(8)
    with db.session_scope(url) as session:
        patient = repository.add_patient(session, name=NAME, treated_at=treated,
                                         timezone="Europe/London", sender_id=sender_id,
                                         phone=PHONE_TYPED)
        patient.enrolled_at = treated
        treatment = repository.current_treatment(patient)
        for number, (checkin_id, (status, detail, _)) in enumerate(OUTCOMES.items()):
            deliveries.record(session, patient_id=patient.id, treatment_id=treatment.id,
                              checkin_id=checkin_id,
                              due_at=treated + timedelta(days=number, hours=1),
                              status=status, detail=detail)
        answered = treated.astimezone(timezone.utc)
        repository.record_symptom_report(
            session, patient_id=patient.id, treatment_id=treatment.id, day=0,
            checkin_id="day0_evening", symptom="report_redness", level=None,
            text="/report_redness", created_at=answered + timedelta(hours=10))
        repository.record_symptom_report(
            session, patient_id=patient.id, treatment_id=treatment.id, day=1,
            checkin_id="day1_morning", symptom="report_redness", level="routine",
            text=TYPED_ANSWER, created_at=answered + timedelta(days=1))
        return CheckinScene(patient_id=patient.id, sender_id=sender_id)
