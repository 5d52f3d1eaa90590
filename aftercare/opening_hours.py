"""Is the clinic open, and when does it next open? Pure functions of the
protocol's `clinic.opening_hours` and `clinic.timezone` and one moment.

- Opening hours are local wall-clock times in the clinic's time zone; a day
  is open from its opening time (included) to its closing time (excluded).
- `now` must be timezone-aware (any zone); the answers are aware datetimes in
  the clinic's zone.
- A wall-clock time that a daylight-saving change skips (02:30 on the night
  the clocks go forward) is read as the same moment an hour later.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Optional, Tuple
from zoneinfo import ZoneInfo

from aftercare.protocol import Protocol

_WEEK = 7


def _local(protocol: Protocol, now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(protocol.tz)


def _at(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """`clock` on `day` in `tz`, as a real moment (see the module doc on DST)."""
    return datetime.combine(day, clock, tzinfo=tz).astimezone(timezone.utc).astimezone(tz)


def _period(protocol: Protocol, day: date) -> Optional[Tuple[datetime, datetime]]:
    hours = protocol.clinic.hours_on(day.weekday())
    if hours is None:
        return None
    tz = protocol.tz
    return _at(day, hours[0], tz), _at(day, hours[1], tz)


def open_period(protocol: Protocol, now: datetime) -> Optional[Tuple[datetime, datetime]]:
    """(opening, closing) of today's opening hours if the clinic is open at
    `now`, else None."""
    local = _local(protocol, now)
    period = _period(protocol, local.date())
    if period is not None and period[0] <= local < period[1]:
        return period
    return None


def is_open(protocol: Protocol, now: datetime) -> bool:
    """Whether the clinic is open at `now`."""
    return open_period(protocol, now) is not None


def next_opening(protocol: Protocol, now: datetime) -> Optional[datetime]:
    """The next moment after `now` at which the clinic opens: later today
    before opening time, else the next open day (a closed weekend is skipped).
    While the clinic is open this is its next day's opening. None when no day
    of the week has opening hours."""
    local = _local(protocol, now)
    for ahead in range(_WEEK + 1):
        period = _period(protocol, local.date() + timedelta(days=ahead))
        if period is not None and period[0] > local:
            return period[0]
    return None
