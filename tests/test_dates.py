"""Reading treatment dates and times from patients' words and staff entries."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from aftercare.dates import (
    MAX_DAYS_BACK, DateParseError, check_treatment_window, parse_clinic_datetime,
    parse_treatment_time,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
DEFAULT = time(20, 0)
# Wednesday 25 November 2026, 15:30 in London (GMT, so also 15:30 UTC).
NOW = datetime(2026, 11, 25, 15, 30, tzinfo=LONDON)


def parse(text: str, now: datetime = NOW, tz: ZoneInfo = LONDON,
          default: time = DEFAULT) -> datetime:
    return parse_treatment_time(text, now, tz, default)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


@pytest.mark.parametrize("text, expected", [
    ("today", local(2026, 11, 25, 15, 30)),            # default 20:00 is later: now
    ("this morning", local(2026, 11, 25, 9, 0)),
    ("this afternoon", local(2026, 11, 25, 14, 0)),
    ("this morning at 10", local(2026, 11, 25, 10, 0)),
    ("yesterday", local(2026, 11, 24, 20, 0)),
    ("Yesterday!", local(2026, 11, 24, 20, 0)),
    ("the day before yesterday", local(2026, 11, 23, 20, 0)),
    ("day before yesterday at 9am", local(2026, 11, 23, 9, 0)),
    ("3 days ago", local(2026, 11, 22, 20, 0)),
    ("a day ago", local(2026, 11, 24, 20, 0)),
    ("two days ago", local(2026, 11, 23, 20, 0)),
    ("fourteen days ago", local(2026, 11, 11, 20, 0)),
    ("a week ago", local(2026, 11, 18, 20, 0)),
    ("2 weeks ago", local(2026, 11, 11, 20, 0)),
    ("a fortnight ago", local(2026, 11, 11, 20, 0)),
    ("last night", local(2026, 11, 24, 18, 0)),
    ("yesterday evening", local(2026, 11, 24, 18, 0)),
    ("yesterday evening at 7", local(2026, 11, 24, 19, 0)),
    ("monday morning", local(2026, 11, 23, 9, 0)),
    ("i had it done yesterday at 2pm", local(2026, 11, 24, 14, 0)),
    ("I HAD IT DONE YESTERDAY AT 2PM", local(2026, 11, 24, 14, 0)),
    ("yesterday at 10:00", local(2026, 11, 24, 10, 0)),
    ("yesterday at 14:30", local(2026, 11, 24, 14, 30)),
    ("yesterday at 10.30.", local(2026, 11, 24, 10, 30)),
    ("yesterday at 9.15am", local(2026, 11, 24, 9, 15)),
    ("yesterday at 2 p.m.", local(2026, 11, 24, 14, 0)),
    ("yesterday at 12am", local(2026, 11, 24, 0, 0)),
    ("yesterday at noon", local(2026, 11, 24, 12, 0)),
    ("10am", local(2026, 11, 25, 10, 0)),             # a time alone means today
    ("2pm", local(2026, 11, 25, 14, 0)),
    ("at 14:30", local(2026, 11, 25, 14, 30)),
    ("at 3", local(2026, 11, 25, 15, 0)),             # bare 1-7 is afternoon
    ("at 8", local(2026, 11, 25, 8, 0)),
    ("at 07:00", local(2026, 11, 25, 7, 0)),          # leading zero: 24 h clock
    ("25 Nov", local(2026, 11, 25, 15, 30)),
    ("25th November", local(2026, 11, 25, 15, 30)),
    ("november 25", local(2026, 11, 25, 15, 30)),
    ("on the 20th of November at 11", local(2026, 11, 20, 11, 0)),
    ("nov 20th, 2026 at 10am", local(2026, 11, 20, 10, 0)),
    ("25/11", local(2026, 11, 25, 15, 30)),
    ("20/11", local(2026, 11, 20, 20, 0)),
    ("20/11/2026", local(2026, 11, 20, 20, 0)),
    ("20/11/26", local(2026, 11, 20, 20, 0)),
    ("2026-11-20", local(2026, 11, 20, 20, 0)),
    ("2026-11-20 10:00", local(2026, 11, 20, 10, 0)),
    ("2026-11-20T10:00", local(2026, 11, 20, 10, 0)),
    ("20.11.", local(2026, 11, 20, 20, 0)),
    ("20.11.2026 at 10am", local(2026, 11, 20, 10, 0)),
    ("26 Nov", local(2025, 11, 26, 20, 0)),           # no year: most recent past one
    ("on 31 dec", local(2025, 12, 31, 20, 0)),
    ("the 3rd", local(2026, 11, 3, 20, 0)),
    ("the 30th", local(2026, 10, 30, 20, 0)),
    ("my 2nd treatment was on 20 Nov at 11", local(2026, 11, 20, 11, 0)),
    ("I may have had it 3 days ago", local(2026, 11, 22, 20, 0)),
])
def test_phrases(text: str, expected: datetime) -> None:
    result = parse(text)
    assert result == expected
    assert result.tzinfo is LONDON
    assert result.utcoffset() == expected.utcoffset()


# Weekdays: NOW is a Wednesday. The most recent past one, today excluded...
@pytest.mark.parametrize("text, expected", [
    ("monday", local(2026, 11, 23, 20, 0)),
    ("on monday", local(2026, 11, 23, 20, 0)),
    ("last monday", local(2026, 11, 23, 20, 0)),
    ("friday just gone", local(2026, 11, 20, 20, 0)),
    ("on Tuesday at 2pm", local(2026, 11, 24, 14, 0)),
    ("thursday", local(2026, 11, 19, 20, 0)),
    ("wednesday", local(2026, 11, 18, 20, 0)),
    ("last wednesday at 10am", local(2026, 11, 18, 10, 0)),
    ("on wednesday at 4pm", local(2026, 11, 18, 16, 0)),   # later than now: last week
    # ...except a plain weekday that is today with a time already past.
    ("on wednesday at 10am", local(2026, 11, 25, 10, 0)),
    ("wednesday at 15:00", local(2026, 11, 25, 15, 0)),
])
def test_weekdays(text: str, expected: datetime) -> None:
    assert parse(text) == expected


def test_default_time_used_when_no_time_given() -> None:
    assert parse("yesterday", default=time(17, 45)) == local(2026, 11, 24, 17, 45)


def test_today_with_earlier_default_keeps_default() -> None:
    assert parse("today", default=time(11, 0)) == local(2026, 11, 25, 11, 0)


def test_part_of_day_not_begun_is_future() -> None:
    with pytest.raises(DateParseError, match="future"):
        parse("this evening")       # 18:00, and evening starts 17:00: it is 15:30
    with pytest.raises(DateParseError, match="future"):
        parse("tonight")


def test_part_of_day_begun_is_clamped_to_now() -> None:
    early = local(2026, 11, 25, 8, 20)
    assert parse("this morning", now=early) == local(2026, 11, 25, 8, 20)


# --- around midnight and time zones ------------------------------------------

JUST_AFTER_MIDNIGHT = local(2026, 11, 26, 0, 15)


@pytest.mark.parametrize("text, expected", [
    ("yesterday", local(2026, 11, 25, 20, 0)),
    ("yesterday at 11pm", local(2026, 11, 25, 23, 0)),
    ("last night", local(2026, 11, 25, 18, 0)),
    ("today", local(2026, 11, 26, 0, 15)),
    ("at 00:05", local(2026, 11, 26, 0, 5)),
    ("1 day ago", local(2026, 11, 25, 20, 0)),
])
def test_just_after_midnight(text: str, expected: datetime) -> None:
    assert parse(text, now=JUST_AFTER_MIDNIGHT) == expected


def test_just_after_midnight_future_times() -> None:
    with pytest.raises(DateParseError, match="future"):
        parse("today at 11pm", now=JUST_AFTER_MIDNIGHT)
    with pytest.raises(DateParseError, match="future"):
        parse("this morning", now=JUST_AFTER_MIDNIGHT)


def test_days_count_in_the_patients_zone_not_utc() -> None:
    # 23:30 UTC on 1 July is already 00:30 on 2 July in London (BST).
    now = datetime(2026, 7, 1, 23, 30, tzinfo=timezone.utc)
    assert parse("yesterday at 10am", now=now) == local(2026, 7, 1, 10, 0)
    # ...while in New York it is still 1 July, 19:30.
    assert parse("yesterday at 10am", now=now, tz=NEW_YORK) == datetime(
        2026, 6, 30, 10, 0, tzinfo=NEW_YORK)


# --- clock changes (Europe/London: 29 March and 25 October 2026) -------------

def test_across_spring_forward() -> None:
    now = local(2026, 3, 30, 12, 0)                       # BST
    sunday = parse("yesterday at 10am", now=now)
    saturday = parse("2 days ago at 10am", now=now)
    assert sunday.astimezone(timezone.utc) == datetime(2026, 3, 29, 9, 0, tzinfo=timezone.utc)
    assert saturday.astimezone(timezone.utc) == datetime(2026, 3, 28, 10, 0, tzinfo=timezone.utc)


def test_skipped_hour_moves_forward() -> None:
    result = parse("29 march at 1:30am", now=local(2026, 3, 30, 12, 0))
    assert (result.hour, result.minute) == (2, 30)
    assert result.astimezone(timezone.utc) == datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)


def test_repeated_hour_takes_first_occurrence() -> None:
    result = parse("25 oct at 1:30am", now=local(2026, 10, 26, 12, 0))
    assert result.astimezone(timezone.utc) == datetime(2026, 10, 25, 0, 30, tzinfo=timezone.utc)


def test_across_fall_back_days_are_calendar_days() -> None:
    now = local(2026, 10, 26, 0, 30)                      # GMT, 25 hours after Sunday began
    assert parse("yesterday", now=now) == local(2026, 10, 25, 20, 0)
    assert parse("yesterday", now=now).utcoffset() == timedelta(0)
    assert parse("2 days ago at 10am", now=now).utcoffset() == timedelta(hours=1)


# --- refusals ----------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "tomorrow", "2026-12-01", "today at 23:00", "at 7", "27/11/2026", "2027-01-01",
])
def test_future_is_refused(text: str) -> None:
    with pytest.raises(DateParseError, match="future"):
        parse(text)


def test_400_days_is_the_limit() -> None:
    limit = (NOW - timedelta(days=MAX_DAYS_BACK)).date()
    assert parse(f"{limit:%Y-%m-%d} 10:00").date() == limit
    with pytest.raises(DateParseError, match="more than 400 days"):
        parse(f"{limit - timedelta(days=1):%Y-%m-%d} 10:00")


@pytest.mark.parametrize("text", ["500 days ago", "2025-10-01", "29/02"])
def test_too_old_is_refused(text: str) -> None:
    with pytest.raises(DateParseError, match="more than 400 days"):
        parse(text)


@pytest.mark.parametrize("text, message", [
    ("", "couldn't work out"),
    ("   ", "couldn't work out"),
    ("hello there", "couldn't work out"),
    ("asdf qwerty 12345", "couldn't work out"),
    ("on 25", "couldn't work out"),
    ("last week", "exact day"),
    ("a few days ago", "exact day"),
    ("the other day", "exact day"),
    ("last month", "exact day"),
    ("25/13", "doesn't exist"),
    ("31/11", "doesn't exist"),
    ("2026-02-30", "doesn't exist"),
    ("yesterday at 25:00", "time"),
    ("yesterday at 13pm", "time"),
    ("yesterday or 20 nov", "more than one date"),
    ("monday or tuesday", "more than one date"),
    ("yesterday at 2pm or 3pm", "more than one time"),
])
def test_not_understood(text: str, message: str) -> None:
    with pytest.raises(DateParseError, match=message):
        parse(text)


def test_date_parse_error_is_value_error() -> None:
    assert issubclass(DateParseError, ValueError)


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_treatment_time("yesterday", datetime(2026, 11, 25, 12, 0), LONDON, DEFAULT)


def test_check_treatment_window() -> None:
    check_treatment_window(NOW - timedelta(minutes=1), NOW)
    with pytest.raises(DateParseError, match="future"):
        check_treatment_window(NOW + timedelta(minutes=1), NOW)


# --- staff entries -----------------------------------------------------------

@pytest.mark.parametrize("text", ["2026-11-25 10:00", "2026-11-25T10:00", " 2026-11-25  10:00 "])
def test_clinic_datetime(text: str) -> None:
    result = parse_clinic_datetime(text, LONDON)
    assert result == local(2026, 11, 25, 10, 0)
    assert result.tzinfo is LONDON


def test_clinic_datetime_is_local_to_the_zone() -> None:
    result = parse_clinic_datetime("2026-07-01 10:00", NEW_YORK)
    assert result.astimezone(timezone.utc) == datetime(2026, 7, 1, 14, 0, tzinfo=timezone.utc)


def test_clinic_datetime_skipped_time_is_refused() -> None:
    with pytest.raises(DateParseError, match="does not exist.*2026-03-29 02:30"):
        parse_clinic_datetime("2026-03-29 01:30", LONDON)


def test_clinic_datetime_repeated_time_takes_first_occurrence() -> None:
    result = parse_clinic_datetime("2026-10-25 01:30", LONDON)
    assert result.utcoffset() == timedelta(hours=1)
    assert result.astimezone(timezone.utc) == datetime(2026, 10, 25, 0, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("text", [
    "2026-11-25", "25/11/2026 10:00", "2026-11-25 10", "yesterday", "", "2026-11-25 10:00pm",
])
def test_clinic_datetime_format_errors(text: str) -> None:
    with pytest.raises(DateParseError, match="YYYY-MM-DD HH:MM"):
        parse_clinic_datetime(text, LONDON)


@pytest.mark.parametrize("text", ["2026-02-30 10:00", "2026-11-25 24:00", "2026-13-01 10:00"])
def test_clinic_datetime_invalid_values(text: str) -> None:
    with pytest.raises(DateParseError, match="not a valid date and time"):
        parse_clinic_datetime(text, LONDON)


@pytest.mark.parametrize("text", ["the treatment is next tuesday", "in 3 days", "next week",
                                  "this coming friday", "it's in a week"])
def test_words_that_put_the_treatment_ahead_are_refused(text):
    from aftercare.dates import IN_FUTURE

    with pytest.raises(DateParseError) as error:
        parse_treatment_time(text, datetime(2026, 11, 25, 15, 0, tzinfo=LONDON), LONDON, time(18, 0))
    assert str(error.value) == IN_FUTURE
