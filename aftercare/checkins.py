"""When each check-in of a treatment is due, from the protocol's schedule.

Pure arithmetic, no I/O: the bot's scheduler and the delivery worker both use
it, and tests check it with fixed times. A check-in is due at its local time
in the patient's zone; one that would fall in the clinic's quiet hours moves
to the end of them. It stays worth sending for `grace_hours` after that.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Optional
from zoneinfo import ZoneInfo

from aftercare.protocol import CheckIn, Protocol, QuietHours


@dataclass(frozen=True)
class PlannedCheckin:
    checkin_id: str
    due_at: datetime      # aware, UTC
    expires_at: datetime  # aware, UTC: after this the check-in is stale
    day: int              # recovery day at due_at (day 0 = treatment day)


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    # fold=0 and zoneinfo pick a real instant even for times skipped or repeated by DST.
    return datetime.combine(day, at, tzinfo=tz)


def outside_quiet_hours(moment: datetime, quiet: QuietHours, tz: ZoneInfo) -> datetime:
    """moment, or the end of the quiet hours it falls in (in UTC)."""
    local = moment.astimezone(tz)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return moment.astimezone(timezone.utc)
    end = _local(local.date(), quiet.end_time, tz)
    if end <= local:
        end = _local(local.date() + timedelta(days=1), quiet.end_time, tz)
    return end.astimezone(timezone.utc)


def _anchor_date(checkin: CheckIn, protocol: Protocol, treated_local: date,
                 treatment_number: int) -> Optional[date]:
    if checkin.day is not None:
        return treated_local + timedelta(days=checkin.day)
    is_last = treatment_number >= protocol.course.sessions
    if checkin.days_before_next_session is not None:
        if is_last:
            return None
        next_session = treated_local + timedelta(weeks=protocol.course.interval_weeks)
        return next_session - timedelta(days=checkin.days_before_next_session)
    if checkin.days_after_last_session is not None and is_last:
        return treated_local + timedelta(days=checkin.days_after_last_session)
    return None


def plan(protocol: Protocol, treated_at: datetime, tz: ZoneInfo,
         treatment_number: int) -> list[PlannedCheckin]:
    """Every check-in of one treatment, in time order.

    A check-in whose time comes before the treatment itself (an evening
    check-in after a late appointment) is left out.
    """
    treated_local = treated_at.astimezone(tz)
    planned = []
    for checkin in protocol.checkins:
        anchor = _anchor_date(checkin, protocol, treated_local.date(), treatment_number)
        if anchor is None:
            continue
        wanted = _local(anchor, checkin.local_time, tz)
        if wanted <= treated_local:
            continue
        due = outside_quiet_hours(wanted, protocol.quiet_hours, tz)
        day = (due.astimezone(tz).date() - treated_local.date()).days
        planned.append(PlannedCheckin(
            checkin_id=checkin.id, due_at=due,
            expires_at=due + timedelta(hours=checkin.grace_hours), day=day))
    return sorted(planned, key=lambda p: p.due_at)


def find(protocol: Protocol, treated_at: datetime, tz: ZoneInfo, treatment_number: int,
         checkin_id: str) -> Optional[PlannedCheckin]:
    """The planned check-in with this id, or None (no longer in the protocol)."""
    return next((p for p in plan(protocol, treated_at, tz, treatment_number)
                 if p.checkin_id == checkin_id), None)
