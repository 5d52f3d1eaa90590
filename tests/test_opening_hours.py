"""aftercare/opening_hours.py (is the clinic open, when does it next open) and
aftercare/safety/messages.py (which safety message a red flag gets then).

The shipped protocol: Monday-Wednesday and Friday 09:00-18:00, Thursday
09:00-20:00, Saturday 10:00-16:00, Sunday closed; Europe/London.
"""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
import yaml

from aftercare.opening_hours import is_open, next_opening, open_period
from aftercare.protocol import Protocol
from aftercare.safety.messages import RESPONSES, safety_message
from aftercare.settings import PROJECT_ROOT

PROTOCOL_PATH = PROJECT_ROOT / "clinic" / "protocol.yml"
DOMAIN_PATH = PROJECT_ROOT / "domain.yml"
LONDON = ZoneInfo("Europe/London")


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


# 2026-11-23 is a Monday.
MONDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY = 23, 26, 27, 28, 29


def _protocol_with_hours(**hours: str) -> Protocol:
    raw = yaml.safe_load(PROTOCOL_PATH.read_text(encoding="utf-8"))
    raw["clinic"]["opening_hours"] = hours
    return Protocol.parse_obj(raw)


@pytest.mark.parametrize("moment,expected", [
    (london(2026, 11, MONDAY, 9, 0), True),          # opening time is included
    (london(2026, 11, MONDAY, 12, 30), True),
    (london(2026, 11, MONDAY, 17, 59), True),
    (london(2026, 11, MONDAY, 18, 0), False),        # closing time is not
    (london(2026, 11, MONDAY, 8, 59), False),        # before opening
    (london(2026, 11, THURSDAY, 19, 30), True),      # late opening on Thursday
    (london(2026, 11, FRIDAY, 19, 30), False),
    (london(2026, 11, SATURDAY, 9, 30), False),      # Saturday opens at 10:00
    (london(2026, 11, SATURDAY, 15, 0), True),
    (london(2026, 11, SUNDAY, 12, 0), False),        # closed all day
])
def test_is_open(protocol, moment, expected):
    assert is_open(protocol, moment) is expected


@pytest.mark.parametrize("moment,expected", [
    # before opening on an open day: today
    (london(2026, 11, MONDAY, 7, 15), london(2026, 11, MONDAY, 9, 0)),
    # after closing: the next day
    (london(2026, 11, MONDAY, 18, 0), london(2026, 11, 24, 9, 0)),
    (london(2026, 11, MONDAY, 23, 59), london(2026, 11, 24, 9, 0)),
    # Friday night: Saturday's later opening
    (london(2026, 11, FRIDAY, 22, 0), london(2026, 11, SATURDAY, 10, 0)),
    # Saturday after closing and all of Sunday: Monday
    (london(2026, 11, SATURDAY, 16, 0), london(2026, 11, 30, 9, 0)),
    (london(2026, 11, SUNDAY, 3, 0), london(2026, 11, 30, 9, 0)),
    # while open: the next day's opening
    (london(2026, 11, MONDAY, 10, 0), london(2026, 11, 24, 9, 0)),
])
def test_next_opening(protocol, moment, expected):
    opening = next_opening(protocol, moment)
    assert opening == expected
    assert opening.tzinfo is not None and opening.utcoffset() == expected.utcoffset()
    assert is_open(protocol, opening)


def test_a_whole_closed_weekend_is_skipped():
    protocol = _protocol_with_hours(monday="08:30-17:00", tuesday="08:30-17:00",
                                    wednesday="08:30-17:00", thursday="08:30-17:00",
                                    friday="08:30-16:00", saturday="closed", sunday="closed")
    assert next_opening(protocol, london(2026, 11, FRIDAY, 16, 0)) == london(2026, 11, 30, 8, 30)
    assert next_opening(protocol, london(2026, 11, SATURDAY, 11, 0)) == london(2026, 11, 30, 8, 30)
    assert not is_open(protocol, london(2026, 11, SUNDAY, 11, 0))


def test_days_missing_from_the_hours_are_closed():
    protocol = _protocol_with_hours(wednesday="10:00-14:00")
    assert next_opening(protocol, london(2026, 11, 25, 14, 0)) == london(2026, 12, 2, 10, 0)
    assert not is_open(protocol, london(2026, 11, MONDAY, 12, 0))


def test_no_opening_hours_at_all():
    protocol = _protocol_with_hours(monday="closed")
    assert next_opening(protocol, london(2026, 11, MONDAY, 12, 0)) is None
    assert not is_open(protocol, london(2026, 11, MONDAY, 12, 0))


def test_now_in_another_zone_is_read_in_the_clinics_zone(protocol):
    # 08:30 in New York on a Monday is 13:30 in London: open
    new_york = datetime(2026, 11, 23, 8, 30, tzinfo=ZoneInfo("America/New_York"))
    assert is_open(protocol, new_york)
    # 23:30 UTC on Saturday is Saturday night in London: closed until Monday
    utc = datetime(2026, 11, 28, 23, 30, tzinfo=timezone.utc)
    assert next_opening(protocol, utc) == london(2026, 11, 30, 9, 0)


def test_opening_hours_across_a_clock_change(protocol):
    # the clocks go back on Sunday 25 October 2026: Monday opens at 09:00 GMT
    opening = next_opening(protocol, london(2026, 10, 24, 17, 0))
    assert opening == london(2026, 10, 26, 9, 0)
    assert opening.utcoffset().total_seconds() == 0
    # before the change Saturday 10:00 is BST (UTC+1)
    saturday = next_opening(protocol, london(2026, 10, 23, 19, 0))
    assert saturday.utcoffset().total_seconds() == 3600


def test_open_period_gives_the_closing_time(protocol):
    opening, closing = open_period(protocol, london(2026, 11, THURSDAY, 12, 0))
    assert (opening, closing) == (london(2026, 11, THURSDAY, 9, 0), london(2026, 11, THURSDAY, 20, 0))
    assert open_period(protocol, london(2026, 11, SUNDAY, 12, 0)) is None


def test_a_naive_moment_is_refused(protocol):
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(protocol, datetime(2026, 11, 23, 12, 0))


# ----------------------------------------------------------------- safety message

@pytest.mark.parametrize("moment", [
    london(2026, 11, MONDAY, 12, 0), london(2026, 11, MONDAY, 23, 0), london(2026, 11, SUNDAY, 4, 0),
])
def test_emergency_is_always_call_now(protocol, moment):
    assert safety_message("emergency", protocol, moment) == ("utter_red_flag_emergency",
                                                              {"opens_when": ""})


@pytest.mark.parametrize("level", ["urgent", "routine"])
def test_open_clinic_contacts_today(protocol, level):
    assert safety_message(level, protocol, london(2026, 11, MONDAY, 12, 0)) == (
        f"utter_red_flag_{level}", {"opens_when": ""})


@pytest.mark.parametrize("level,moment,opens_when", [
    ("urgent", london(2026, 11, MONDAY, 22, 30), "tomorrow at 09:00"),
    ("urgent", london(2026, 11, MONDAY, 6, 45), "today at 09:00"),
    ("urgent", london(2026, 11, FRIDAY, 20, 0), "tomorrow at 10:00"),
    ("urgent", london(2026, 11, SATURDAY, 17, 0), "Monday at 09:00"),
    ("routine", london(2026, 11, SUNDAY, 11, 0), "tomorrow at 09:00"),
])
def test_closed_clinic_says_when_it_opens(protocol, level, moment, opens_when):
    assert safety_message(level, protocol, moment) == (
        f"utter_red_flag_{level}_closed", {"opens_when": opens_when})


def test_closed_without_any_opening_hours():
    protocol = _protocol_with_hours(monday="closed")
    assert safety_message("urgent", protocol, london(2026, 11, MONDAY, 12, 0)) == (
        "utter_red_flag_urgent_closed", {"opens_when": "again"})


def test_unknown_level_is_refused(protocol):
    with pytest.raises(ValueError):
        safety_message("human", protocol, london(2026, 11, MONDAY, 12, 0))


def test_every_safety_response_is_in_the_domain_with_its_placeholders():
    domain = yaml.safe_load(DOMAIN_PATH.read_text(encoding="utf-8"))
    responses = domain["responses"]
    assert RESPONSES <= set(responses)
    for name in RESPONSES:
        text = responses[name][0]["text"]
        # staff see the reasons; the patient reads plain words, never a reason string
        assert "{reason}" not in text, name
        if not name.startswith("utter_red_flag_routine"):
            assert "{emergency_number}" in text, name
        if name.endswith("_closed"):
            assert "{opens_when}" in text and "closed" in text
            assert "today" not in text          # no promise the closed clinic cannot keep
    assert "now" in responses["utter_red_flag_emergency"][0]["text"]
    assert "nurse" in responses["utter_red_flag_urgent_closed"][0]["text"]
