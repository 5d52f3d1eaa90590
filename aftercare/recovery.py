"""Recovery-day arithmetic: which day a patient is on and when things are allowed.

Day 0 is the calendar day of the treatment in the patient's own time zone.
Waiting periods are elapsed hours (24 h after a 10:00 treatment is 10:00 the
next day, or 09:00/11:00 local when the clocks change overnight).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from zoneinfo import ZoneInfo

from aftercare.protocol import SymptomCourse


class Phase(str, Enum):
    EXPECTED = "expected"      # within the normal window
    LINGERING = "lingering"    # past the usual end, not yet a reason to follow up
    OVERDUE = "overdue"        # past routine_after: the clinic follows up


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def recovery_day(treated_at: datetime, tz: ZoneInfo, now: datetime) -> int:
    """Calendar days from the treatment's local date to now's local date."""
    _require_aware(treated_at, "treated_at")
    _require_aware(now, "now")
    return (now.astimezone(tz).date() - treated_at.astimezone(tz).date()).days


def hours_since(treated_at: datetime, now: datetime) -> float:
    _require_aware(treated_at, "treated_at")
    _require_aware(now, "now")
    # In UTC: Python subtracts two datetimes of the same zone by their wall clocks.
    return (now.astimezone(timezone.utc) - treated_at.astimezone(timezone.utc)).total_seconds() / 3600


def allowed_from(treated_at: datetime, hours: float) -> datetime:
    """The moment a waiting period of `hours` after the treatment ends."""
    _require_aware(treated_at, "treated_at")
    # In UTC: Python adds to the wall clock of a zoned datetime, ignoring DST.
    return treated_at.astimezone(timezone.utc) + timedelta(hours=hours)


def symptom_phase(course: SymptomCourse, day: int) -> Phase:
    if day > course.routine_after:
        return Phase.OVERDUE
    if day > course.expected_until:
        return Phase.LINGERING
    return Phase.EXPECTED


def local_date_of_day(treated_at: datetime, tz: ZoneInfo, day: int) -> datetime:
    """Local midnight at the start of recovery day `day`."""
    start = treated_at.astimezone(tz).date() + timedelta(days=day)
    return datetime(start.year, start.month, start.day, tzinfo=tz)


def describe_moment(moment: datetime, now: datetime, tz: ZoneInfo) -> str:
    """Say when `moment` is, relative to now, in the patient's zone:
    "today at 18:00", "tomorrow at 10:00", "Friday at 10:00" or
    "Friday 4 December at 10:00" when more than six days ahead."""
    local, today = moment.astimezone(tz), now.astimezone(tz).date()
    clock = local.strftime("%H:%M")
    days_ahead = (local.date() - today).days
    if days_ahead == 0:
        return f"today at {clock}"
    if days_ahead == 1:
        return f"tomorrow at {clock}"
    if 1 < days_ahead <= 6:
        return f"{local.strftime('%A')} at {clock}"
    return f"{local.strftime('%A')} {local.day} {local.strftime('%B')} at {clock}"


def describe_day(day_start: datetime, now: datetime, tz: ZoneInfo) -> str:
    """Say which day `day_start` is: "today", "tomorrow", "Friday", "Friday 4 December"."""
    local, today = day_start.astimezone(tz).date(), now.astimezone(tz).date()
    days_ahead = (local - today).days
    if days_ahead == 0:
        return "today"
    if days_ahead == 1:
        return "tomorrow"
    if days_ahead == -1:
        return "yesterday"
    if 1 < days_ahead <= 6:
        return local.strftime("%A")
    return f"{local.strftime('%A')} {local.day} {local.strftime('%B')}"


@dataclass(frozen=True)
class Waiting:
    """Whether a thing is allowed now and, if not, from when."""
    allowed_now: bool
    from_moment: datetime
    hours: float


def waiting_status(treated_at: datetime, hours: float, now: datetime) -> Waiting:
    moment = allowed_from(treated_at, hours)
    return Waiting(allowed_now=now.astimezone(timezone.utc) >= moment, from_moment=moment, hours=hours)
