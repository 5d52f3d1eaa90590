"""The check-in delivery log: one row per (treatment, check-in), so a check-in
is sent at most once however often its job runs.

    due ──claim──▶ sending ──▶ sent
     │                  └────▶ failed (blocked, or Telegram kept failing)
     └──▶ skipped (stale, paused, no longer current)
    sending found at start-up ──▶ uncertain (may or may not have reached the
    patient; never re-sent, shown to staff)

A row is claimed by a conditional UPDATE, so two workers (or two bot
instances by mistake) cannot both send it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aftercare.store.models import CheckinDelivery, utc_now


def record(session: Session, *, patient_id: int, treatment_id: int, checkin_id: str,
           due_at: datetime, status: str = "due", detail: Optional[str] = None) -> bool:
    """Add the row if (treatment, check-in) has none; False if it already had one."""
    exists = session.execute(
        select(CheckinDelivery.id).where(CheckinDelivery.treatment_id == treatment_id,
                                         CheckinDelivery.checkin_id == checkin_id)
    ).first()
    if exists:
        return False
    try:
        with session.begin_nested():
            session.add(CheckinDelivery(patient_id=patient_id, treatment_id=treatment_id,
                                        checkin_id=checkin_id, due_at=due_at, status=status,
                                        detail=detail))
    except IntegrityError:  # another worker recorded it between our check and insert
        return False
    return True


def claim(session: Session, delivery_id: int) -> bool:
    """due → sending; True only for the one caller that made the change."""
    result = session.execute(
        update(CheckinDelivery)
        .where(CheckinDelivery.id == delivery_id, CheckinDelivery.status == "due")
        .values(status="sending", updated_at=utc_now())
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def finish(session: Session, delivery_id: int, status: str,
           detail: Optional[str] = None) -> None:
    session.execute(
        update(CheckinDelivery).where(CheckinDelivery.id == delivery_id)
        .values(status=status, detail=detail, updated_at=utc_now())
        .execution_options(synchronize_session=False))


def release(session: Session, delivery_id: int, detail: str) -> None:
    """sending → due: nothing was sent (e.g. the assistant was down); try later."""
    session.execute(
        update(CheckinDelivery)
        .where(CheckinDelivery.id == delivery_id, CheckinDelivery.status == "sending")
        .values(status="due", detail=detail, updated_at=utc_now())
        .execution_options(synchronize_session=False))


def due(session: Session, limit: int = 500) -> list[CheckinDelivery]:
    query = (select(CheckinDelivery).where(CheckinDelivery.status == "due")
             .order_by(CheckinDelivery.due_at, CheckinDelivery.id).limit(limit))
    return list(session.execute(query).scalars())


def mark_interrupted_uncertain(session: Session) -> int:
    """At start-up: rows left in `sending` by a crash may or may not have been sent."""
    result = session.execute(
        update(CheckinDelivery).where(CheckinDelivery.status == "sending")
        .values(status="uncertain", detail="interrupted while sending",
                updated_at=utc_now())
        .execution_options(synchronize_session=False))
    return result.rowcount or 0


def recorded_keys(session: Session) -> set[tuple[int, str]]:
    """(treatment id, check-in id) of every row, for planning without one query each."""
    rows = session.execute(select(CheckinDelivery.treatment_id, CheckinDelivery.checkin_id))
    return {(treatment_id, checkin_id) for treatment_id, checkin_id in rows}


def for_patient(session: Session, patient_id: int) -> list[CheckinDelivery]:
    query = (select(CheckinDelivery).where(CheckinDelivery.patient_id == patient_id)
             .order_by(CheckinDelivery.due_at))
    return list(session.execute(query).scalars())
