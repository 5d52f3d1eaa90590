"""Store functions the rest of the project calls; each takes an open Session.

The caller owns the transaction (db.session_scope commits); functions flush
so new rows have ids. Bad input raises StoreError with a message for people.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import List, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from aftercare.recovery import recovery_day
from aftercare.store.models import (
    LEVELS, NAME_MAX, PHONE_MAX, SOURCES, Escalation, Patient, Treatment,
)


class StoreError(ValueError):
    """Input the store refuses; the message says what is wrong."""


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise StoreError("name must not be empty")
    name = name.strip()
    if len(name) > NAME_MAX:
        raise StoreError(f"name is too long ({len(name)} characters, at most {NAME_MAX})")
    return name


def _check_timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise StoreError(f"unknown time zone {timezone!r} (use an IANA name such as "
                         f"Europe/London)") from None
    return timezone


def _check_aware(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime):
        raise StoreError(f"{what} must be a datetime")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise StoreError(f"{what} must be timezone-aware (got a naive datetime)")
    return moment


def _check_number(number: int) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise StoreError(f"treatment number must be a whole number of 1 or more, got {number!r}")
    return number


def _check_sender(sender_id: str) -> str:
    if not isinstance(sender_id, str) or not sender_id.strip():
        raise StoreError("sender id must be non-empty text")
    return sender_id.strip()


PHONE_DIGITS_MIN, PHONE_DIGITS_MAX = 7, PHONE_MAX - 1
_PHONE_CHARS = re.compile(r"[0-9 +\-()]+")
_TRUNK_ZERO = re.compile(r"\(\s*0\s*\)")   # "+44 (0)20 ...": the 0 is not dialled from abroad


def normalise_phone(phone: str) -> str:
    """A phone number as a tel: link needs it: "+" and its digits when it starts
    with "+" (E.164-like, a "(0)" after the country code dropped), otherwise the
    digits as given. StoreError says what is wrong with anything else."""
    if not isinstance(phone, str) or not phone.strip():
        raise StoreError("phone number must not be empty")
    text = phone.strip()
    if not _PHONE_CHARS.fullmatch(text):
        raise StoreError("phone number may contain only digits, spaces, +, - and "
                         "brackets, e.g. +44 20 7946 0000")
    international = text.startswith("+")
    if "+" in text[1:]:
        raise StoreError("phone number may have a + only at the start")
    if international:
        text = _TRUNK_ZERO.sub("", text)
    digits = re.sub(r"\D", "", text)
    if not PHONE_DIGITS_MIN <= len(digits) <= PHONE_DIGITS_MAX:
        raise StoreError(f"phone number must have {PHONE_DIGITS_MIN} to {PHONE_DIGITS_MAX} "
                         f"digits, got {len(digits)}")
    return f"+{digits}" if international else digits


def set_phone(session: Session, patient: Patient, phone: Optional[str]) -> Optional[str]:
    """Record the patient's phone number (None removes it); the stored form."""
    patient.phone = normalise_phone(phone) if phone is not None else None
    session.flush()
    return patient.phone


def _ensure_sender_free(session: Session, sender_id: str, patient: Optional[Patient]) -> None:
    owner = find_patient_by_sender(session, sender_id)
    if owner is not None and owner is not patient:
        raise StoreError(f"sender id {sender_id!r} is already linked to patient {owner.id}")


def add_patient(
    session: Session,
    name: str,
    treated_at: datetime,
    timezone: str,
    treatment_number: int = 1,
    sender_id: Optional[str] = None,
    source: str = "clinic",
    phone: Optional[str] = None,
) -> Patient:
    """Add a patient with their (current) treatment."""
    name = _check_name(name)
    phone = normalise_phone(phone) if phone is not None else None
    timezone = _check_timezone(timezone)
    treated_at = _check_aware(treated_at, "treatment time")
    treatment_number = _check_number(treatment_number)
    if source not in SOURCES:
        raise StoreError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    if sender_id is not None:
        sender_id = _check_sender(sender_id)
        _ensure_sender_free(session, sender_id, None)
    patient = Patient(name=name, timezone=timezone, sender_id=sender_id, source=source,
                      phone=phone)
    patient.treatments.append(
        Treatment(number_in_series=treatment_number, treated_at=treated_at))
    session.add(patient)
    session.flush()
    return patient


def get_patient(session: Session, patient_id: int) -> Optional[Patient]:
    return session.get(Patient, patient_id)


def find_patient_by_sender(session: Session, sender_id: str) -> Optional[Patient]:
    if not sender_id:
        return None
    return session.execute(
        select(Patient).where(Patient.sender_id == sender_id)).scalar_one_or_none()


def list_patients(session: Session) -> List[Patient]:
    """All patients by id, treatments loaded."""
    query = select(Patient).options(selectinload(Patient.treatments)).order_by(Patient.id)
    return list(session.execute(query).scalars())


def remove_patient(session: Session, patient_id: int) -> bool:
    """Delete a patient with their treatments and escalations; False if there was none.

    Escalations recorded from the patient's chat before it was linked
    (patient_id empty, same sender id) are deleted too.
    """
    patient = get_patient(session, patient_id)
    if patient is None:
        return False
    if patient.sender_id:
        session.execute(
            delete(Escalation)
            .where(Escalation.sender_id == patient.sender_id, Escalation.patient_id.is_(None))
            .execution_options(synchronize_session="fetch"))
    session.delete(patient)
    session.flush()
    return True


def current_treatment(patient: Patient) -> Optional[Treatment]:
    """The latest treatment by treated_at (ties: the higher number in the series)."""
    if not patient.treatments:
        return None
    return max(patient.treatments,
               key=lambda t: (t.treated_at, t.number_in_series, t.id or 0))


def patient_day(patient: Optional[Patient], now: datetime) -> Optional[int]:
    """The patient's day of recovery now (day 0 = the latest treatment's day, in
    the patient's time zone); None for no patient or no treatment. The one place
    the bot, the actions, the review page and the commands get it from."""
    treatment = current_treatment(patient) if patient is not None else None
    if treatment is None:
        return None
    return recovery_day(treatment.treated_at, patient_zone(patient), now)


def patient_zone(patient: Patient) -> ZoneInfo:
    """The patient's time zone (UTC if the stored name is not a known zone)."""
    try:
        return ZoneInfo(patient.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def add_treatment(
    session: Session,
    patient: Patient,
    treated_at: datetime,
    number_in_series: Optional[int] = None,
) -> Treatment:
    """Add a treatment; without a number it is one more than the patient's highest."""
    treated_at = _check_aware(treated_at, "treatment time")
    if number_in_series is None:
        number_in_series = max((t.number_in_series for t in patient.treatments), default=0) + 1
    number_in_series = _check_number(number_in_series)
    treatment = Treatment(number_in_series=number_in_series, treated_at=treated_at)
    patient.treatments.append(treatment)
    session.flush()
    return treatment


def link_sender(session: Session, patient: Patient, sender_id: str) -> Patient:
    """Link a chat to the patient (replacing any earlier link of theirs)."""
    sender_id = _check_sender(sender_id)
    _ensure_sender_free(session, sender_id, patient)
    patient.sender_id = sender_id
    session.flush()
    return patient


def record_escalation(
    session: Session,
    *,
    patient_id: Optional[int],
    sender_id: Optional[str],
    message: str,
    level: str,
    reason: str,
    day: Optional[int],
) -> Escalation:
    """Record something the clinic must look at; status starts as open.

    Only what would make the record useless is refused (no one to call back,
    unknown patient or level, wrong types): an empty message or reason is kept.
    """
    if patient_id is None and not sender_id:
        raise StoreError("an escalation needs a patient id or a sender id")
    if patient_id is not None and get_patient(session, patient_id) is None:
        raise StoreError(f"no patient with id {patient_id}")
    if level not in LEVELS:
        raise StoreError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    if not isinstance(message, str) or not isinstance(reason, str):
        raise StoreError("message and reason must be text")
    if day is not None and (isinstance(day, bool) or not isinstance(day, int)):
        raise StoreError(f"day must be a whole number or None, got {day!r}")
    escalation = Escalation(
        patient_id=patient_id, sender_id=sender_id or None, message=message,
        level=level, reason=reason.strip(), day=day, status="open",
    )
    session.add(escalation)
    session.flush()
    return escalation


def list_escalations(session: Session, open_only: bool = False) -> List[Escalation]:
    """Escalations oldest first; open_only keeps status "open" (not acknowledged)."""
    query = select(Escalation).order_by(Escalation.created_at, Escalation.id)
    if open_only:
        query = query.where(Escalation.status == "open")
    return list(session.execute(query).scalars())


# --- Symptom reports (what a patient said about how they are) ---------------
from aftercare.store.models import SymptomReport  # noqa: E402  (appended section)

_REPORT_LEVELS = ("emergency", "urgent", "routine")
_REPORT_FIELD_MAX = 64


def record_symptom_report(
    session: Session,
    *,
    patient_id: int,
    treatment_id: Optional[int],
    day: Optional[int],
    checkin_id: Optional[str],
    symptom: str,
    level: Optional[str],
    text: str,
    created_at: Optional[datetime] = None,
) -> SymptomReport:
    """Record what a patient reported about a day of recovery: a symptom intent
    (report_redness, ...) or "fine"; checkin_id when it answers a check-in."""
    patient = get_patient(session, patient_id)
    if patient is None:
        raise StoreError(f"no patient with id {patient_id}")
    if treatment_id is not None and not any(t.id == treatment_id for t in patient.treatments):
        raise StoreError(f"treatment {treatment_id} is not one of patient {patient_id}'s")
    if not isinstance(symptom, str) or not symptom.strip() \
            or len(symptom.strip()) > _REPORT_FIELD_MAX:
        raise StoreError(f"symptom must be text of 1 to {_REPORT_FIELD_MAX} characters")
    if checkin_id is not None and (not isinstance(checkin_id, str) or not checkin_id
                                   or len(checkin_id) > _REPORT_FIELD_MAX):
        raise StoreError(f"check-in id must be text of 1 to {_REPORT_FIELD_MAX} characters")
    if level is not None and level not in _REPORT_LEVELS:
        raise StoreError(f"level must be one of {', '.join(_REPORT_LEVELS)} or None, "
                         f"got {level!r}")
    if day is not None and (isinstance(day, bool) or not isinstance(day, int)):
        raise StoreError(f"day must be a whole number or None, got {day!r}")
    if not isinstance(text, str):
        raise StoreError("text must be text")
    report = SymptomReport(patient_id=patient_id, treatment_id=treatment_id, day=day,
                           checkin_id=checkin_id, symptom=symptom.strip(), level=level,
                           text=text)
    if created_at is not None:
        report.created_at = _check_aware(created_at, "report time")
    session.add(report)
    session.flush()
    return report


def list_symptom_reports(session: Session, patient_id: int) -> List[SymptomReport]:
    """A patient's symptom reports, oldest first."""
    query = (select(SymptomReport).where(SymptomReport.patient_id == patient_id)
             .order_by(SymptomReport.created_at, SymptomReport.id))
    return list(session.execute(query).scalars())
