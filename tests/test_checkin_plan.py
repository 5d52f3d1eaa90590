"""The check-in schedule computed from the protocol (aftercare/checkins.py)."""
from __future__ import annotations

from datetime import timedelta, timezone
from zoneinfo import ZoneInfo

from aftercare import checkins
from tests.conftest import LONDON, london

NEW_YORK = ZoneInfo("America/New_York")


def _by_id(planned):
    return {p.checkin_id: p for p in planned}


def test_first_treatment_of_three_gets_the_recovery_checkins_and_a_reminder(protocol) -> None:
    planned = _by_id(checkins.plan(protocol, london(2026, 11, 2, 10, 0), LONDON, 1))
    assert list(planned) == ["day0_evening", "day1_morning", "day2_morning", "day3_morning",
                             "day7", "next_session_reminder"]
    assert planned["day0_evening"].due_at == london(2026, 11, 2, 19, 0).astimezone(timezone.utc)
    assert planned["day1_morning"].due_at == london(2026, 11, 3, 9, 0)
    assert planned["day1_morning"].day == 1
    assert planned["day7"].due_at == london(2026, 11, 9, 10, 0)
    # next session four weeks on (30 Nov), reminder three days before
    assert planned["next_session_reminder"].due_at == london(2026, 11, 27, 10, 0)
    assert planned["day1_morning"].expires_at - planned["day1_morning"].due_at == timedelta(hours=6)


def test_last_treatment_gets_the_results_checkin_and_no_reminder(protocol) -> None:
    planned = _by_id(checkins.plan(protocol, london(2026, 11, 2, 10, 0), LONDON, 3))
    assert "next_session_reminder" not in planned
    assert planned["results"].due_at == london(2027, 1, 31, 10, 0)
    assert planned["results"].day == 90


def test_a_checkin_before_the_treatment_is_left_out(protocol) -> None:
    planned = _by_id(checkins.plan(protocol, london(2026, 11, 2, 19, 30), LONDON, 1))
    assert "day0_evening" not in planned
    assert "day1_morning" in planned


def test_times_are_local_to_the_patient_across_a_dst_change(protocol) -> None:
    # Clocks go back in London on 25 Oct 2026: 09:00 local is 09:00 UTC after, 08:00 before.
    planned = _by_id(checkins.plan(protocol, london(2026, 10, 23, 11, 0), LONDON, 1))
    assert planned["day1_morning"].due_at.astimezone(timezone.utc).hour == 8
    assert planned["day3_morning"].due_at.astimezone(timezone.utc).hour == 9
    assert planned["day3_morning"].due_at.astimezone(LONDON).hour == 9


def test_patient_in_another_zone_gets_their_own_morning(protocol) -> None:
    treated = london(2026, 11, 2, 10, 0)
    planned = _by_id(checkins.plan(protocol, treated, NEW_YORK, 1))
    assert planned["day1_morning"].due_at.astimezone(NEW_YORK).hour == 9
    assert planned["day1_morning"].due_at.astimezone(NEW_YORK).day == 3


def test_a_checkin_in_quiet_hours_moves_to_their_end(protocol) -> None:
    late = protocol.copy(update={"checkins": [
        protocol.checkins[0].copy(update={"time": "22:30"})]})
    (only,) = checkins.plan(late, london(2026, 11, 2, 10, 0), LONDON, 1)
    assert only.due_at == london(2026, 11, 3, 8, 0)
    assert only.day == 1


def test_outside_quiet_hours(protocol) -> None:
    quiet = protocol.quiet_hours   # 21:00-08:00
    assert checkins.outside_quiet_hours(london(2026, 11, 2, 20, 59), quiet, LONDON) == \
        london(2026, 11, 2, 20, 59)
    assert checkins.outside_quiet_hours(london(2026, 11, 2, 21, 0), quiet, LONDON) == \
        london(2026, 11, 3, 8, 0)
    assert checkins.outside_quiet_hours(london(2026, 11, 3, 7, 59), quiet, LONDON) == \
        london(2026, 11, 3, 8, 0)
    assert checkins.outside_quiet_hours(london(2026, 11, 3, 8, 0), quiet, LONDON) == \
        london(2026, 11, 3, 8, 0)


def test_find_by_id(protocol) -> None:
    treated = london(2026, 11, 2, 10, 0)
    assert checkins.find(protocol, treated, LONDON, 1, "day7").day == 7
    assert checkins.find(protocol, treated, LONDON, 1, "no_such_checkin") is None
