"""The check-in delivery log: one row per (treatment, check-in), so a check-in
is sent at most once however often its job runs.

    due ──claim──▶ claimed ──start_sending──▶ sending ──▶ sent
     │  ◀──release──┘  │                         └────▶ failed (blocked, or
     │   (the assistant │                               Telegram kept failing)
     │   did not answer)└──▶ failed (the assistant gave nothing to send)
     └──▶ skipped (stale, paused, no longer current, missed while blocked)

`sent` means Telegram accepted every message of the check-in; a path on which
nothing reached Telegram ends `failed` or `skipped`, with the reason in `detail`.

    found at start-up (the bot stopped or crashed with the row in flight):
    claimed ──▶ due        certainly not sent: the request to Telegram is made
                           only after the row is `sending`. Sent again if still
                           within the check-in's grace (skipped otherwise),
                           like any due check-in.
    sending ──▶ uncertain  may or may not have reached the patient; never
                           re-sent, shown to staff.

`claim` happens before the assistant is asked for the check-in's wording,
`start_sending` just before the request to Telegram, so the one state that
leaves a doubt after a crash covers only the Telegram request itself.

Every transition out of due and out of claimed is a conditional UPDATE, so two
workers (or two bot instances by mistake) cannot both send a row: a row enters
`sending` at most once (nothing leads back from sending, or from what follows
it, to claimed), and only the caller whose start_sending changed the row
sends. That holds even when a second instance's start-up returns the first
one's claimed rows to due and claims one again: whichever of the two moves it
to sending first sends it, the other finds it taken.

A check-in returned to due after a crash had already been triggered in the
assistant (the EXTERNAL_checkin event is in the patient's Rasa tracker) but
never reached the patient; triggering it again when it is re-sent adds a
second such event to the tracker. That is accepted: the patient sees the
check-in once, and the dialogue is in the check-in's context either way.
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
    """due → claimed; True only for the one caller that made the change."""
    result = session.execute(
        update(CheckinDelivery)
        .where(CheckinDelivery.id == delivery_id, CheckinDelivery.status == "due")
        .values(status="claimed", updated_at=utc_now())
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def start_sending(session: Session, delivery_id: int) -> bool:
    """claimed → sending, just before the request to Telegram; True only for the
    one caller that made the change (the only one that may send)."""
    result = session.execute(
        update(CheckinDelivery)
        .where(CheckinDelivery.id == delivery_id, CheckinDelivery.status == "claimed")
        .values(status="sending", updated_at=utc_now())
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def finish(session: Session, delivery_id: int, status: str,
           detail: Optional[str] = None) -> None:
    session.execute(
        update(CheckinDelivery).where(CheckinDelivery.id == delivery_id)
        .values(status=status, detail=detail, updated_at=utc_now())
        .execution_options(synchronize_session=False))


def release(session: Session, delivery_id: int, detail: str) -> bool:
    """claimed → due: nothing was sent (e.g. the assistant was down); try later.
    False if the row was not claimed any more."""
    result = session.execute(
        update(CheckinDelivery)
        .where(CheckinDelivery.id == delivery_id, CheckinDelivery.status == "claimed")
        .values(status="due", detail=detail, updated_at=utc_now())
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def due(session: Session, limit: int = 500) -> list[CheckinDelivery]:
    query = (select(CheckinDelivery).where(CheckinDelivery.status == "due")
             .order_by(CheckinDelivery.due_at, CheckinDelivery.id).limit(limit))
    return list(session.execute(query).scalars())


def recover_interrupted(session: Session) -> tuple[int, int]:
    """At start-up, rows a stop or a crash left in flight: claimed → due (the
    request to Telegram was never made), sending → uncertain (it may have
    been). Returns (returned to due, marked uncertain)."""
    now = utc_now()
    uncertain = session.execute(
        update(CheckinDelivery).where(CheckinDelivery.status == "sending")
        .values(status="uncertain", detail="interrupted while sending", updated_at=now)
        .execution_options(synchronize_session=False)).rowcount or 0
    returned = session.execute(
        update(CheckinDelivery).where(CheckinDelivery.status == "claimed")
        .values(status="due", detail="interrupted before sending; sent again if still due",
                updated_at=now)
        .execution_options(synchronize_session=False)).rowcount or 0
    return returned, uncertain


def recorded_keys(session: Session) -> set[tuple[int, str]]:
    """(treatment id, check-in id) of every row, for planning without one query each."""
    rows = session.execute(select(CheckinDelivery.treatment_id, CheckinDelivery.checkin_id))
    return {(treatment_id, checkin_id) for treatment_id, checkin_id in rows}


def for_patient(session: Session, patient_id: int) -> list[CheckinDelivery]:
    query = (select(CheckinDelivery).where(CheckinDelivery.patient_id == patient_id)
             .order_by(CheckinDelivery.due_at))
    return list(session.execute(query).scalars())
