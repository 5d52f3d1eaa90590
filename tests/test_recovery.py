"""Recovery-day arithmetic around midnight and the clocks changing."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from aftercare.recovery import (
    Phase, allowed_from, describe_moment, recovery_day, symptom_phase, waiting_status,
)
from tests.conftest import LONDON, london


def test_day_zero_is_the_local_calendar_day_of_the_treatment():
    treated = london(2026, 11, 25, 10, 0)
    assert recovery_day(treated, LONDON, london(2026, 11, 25, 23, 59)) == 0
    assert recovery_day(treated, LONDON, london(2026, 11, 26, 0, 0)) == 1
    assert recovery_day(treated, LONDON, london(2026, 12, 3, 8, 0)) == 8


def test_late_evening_treatment_is_day_one_after_midnight_local_not_utc():
    # 23:30 in New York is already the next day in UTC.
    new_york = __import__("zoneinfo").ZoneInfo("America/New_York")
    treated = datetime(2026, 11, 25, 23, 30, tzinfo=new_york)
    assert recovery_day(treated, new_york, datetime(2026, 11, 26, 4, 45, tzinfo=timezone.utc)) == 0
    assert recovery_day(treated, new_york, datetime(2026, 11, 26, 5, 0, tzinfo=timezone.utc)) == 1


def test_makeup_example_from_the_issue(protocol):
    treated = london(2026, 11, 25, 10, 0)
    asked = london(2026, 11, 25, 15, 0)
    waiting = waiting_status(treated, protocol.aftercare["makeup"], asked)
    assert not waiting.allowed_now
    assert describe_moment(waiting.from_moment, asked, LONDON) == "tomorrow at 10:00"
    assert waiting_status(treated, 24, london(2026, 11, 27, 9, 0)).allowed_now


def test_waiting_is_in_elapsed_hours_across_the_clocks_going_back():
    # Clocks go back at 02:00 on Sunday 25 October 2026: 24 h after 10:00 Saturday is 09:00 Sunday.
    treated = london(2026, 10, 24, 10, 0)
    assert allowed_from(treated, 24).astimezone(LONDON).hour == 9
    assert recovery_day(treated, LONDON, london(2026, 10, 25, 0, 30)) == 1


def test_waiting_across_the_clocks_going_forward():
    # Clocks go forward at 01:00 on Sunday 29 March 2026: 24 h after 10:00 Saturday is 11:00 Sunday.
    treated = london(2026, 3, 28, 10, 0)
    assert allowed_from(treated, 24).astimezone(LONDON).hour == 11


def test_describe_moment_names_weekdays_and_dates():
    now = london(2026, 11, 25, 15, 0)  # a Wednesday
    assert describe_moment(london(2026, 11, 25, 18, 0), now, LONDON) == "today at 18:00"
    assert describe_moment(london(2026, 11, 27, 10, 0), now, LONDON) == "Friday at 10:00"
    assert describe_moment(london(2026, 12, 9, 10, 0), now, LONDON) == "Wednesday 9 December at 10:00"


@pytest.mark.parametrize("day, phase", [
    (0, Phase.EXPECTED), (3, Phase.EXPECTED), (4, Phase.LINGERING), (7, Phase.LINGERING),
    (8, Phase.OVERDUE),
])
def test_redness_phase_by_day(protocol, day, phase):
    assert symptom_phase(protocol.symptoms["redness"], day) is phase


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        recovery_day(datetime(2026, 11, 25, 10), LONDON, london(2026, 11, 25, 11, 0))
