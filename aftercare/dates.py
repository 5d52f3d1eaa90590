"""Understand when a treatment happened: a patient's words or a staff entry.

parse_treatment_time reads phrases such as "yesterday at 2pm", "3 days ago",
"last Monday", "25 Nov", "25/11" (day/month, UK style) or "2026-11-25 10:00"
anywhere in a sentence and returns an aware datetime in the patient's zone.

Choices where people are ambiguous:
- A weekday ("monday", "on monday", "last monday", "monday just gone") is the
  most recent such day before today. Only a plain or "on" weekday that is
  today, with an explicit time already past, means today.
- A date without a year is its most recent occurrence, today included.
- A bare hour without am/pm: 1-7 means afternoon/evening ("at 3" is 15:00),
  8-12 is taken as written; "morning"/"afternoon"/"evening" in the text
  decide instead when present. Hours with a leading zero or above 12 are 24 h.
- Without a time, "this morning"/"this afternoon"/"this evening" give
  09:00/14:00/18:00 and anything else the caller's default_time. If that
  lands later today than now, and the part of the day (if any) has begun,
  now is used instead: the latest moment that can be true.
- A time only ("at 2pm") means today.
- Local times the clocks skip (spring forward) move forward by the gap;
  repeated times (autumn) take the first occurrence.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable, List, Optional, Set, Tuple
from zoneinfo import ZoneInfo

MAX_DAYS_BACK = 400


class DateParseError(ValueError):
    """The text is not a usable past treatment time; the message can go to a patient."""


NOT_UNDERSTOOD = ("Sorry, I couldn't work out the date. Could you tell me the day, "
                  "for example \"yesterday at 2pm\" or \"25 November\"?")
TOO_VAGUE = ("Could you tell me the exact day? For example \"last Monday\", "
             "\"3 days ago\" or \"25 November\".")
BAD_DATE = "That date doesn't exist. Could you check it?"
BAD_TIME = "Sorry, I couldn't understand the time. You could say \"2pm\" or \"14:30\"."
TWO_DATES = "I found more than one date there. Which day was your treatment?"
TWO_TIMES = "I found more than one time there. What time was your treatment?"
IN_FUTURE = "That time is still in the future. When did you have your treatment?"
TOO_OLD = f"That is more than {MAX_DAYS_BACK} days ago. Could you check the date?"

_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6,
    "july": 7, "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8,
    "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14,
}
# Default clock time for a part of the day, and when that part begins.
_PARTS = {
    "morning": (time(9, 0), time(5, 0)),
    "afternoon": (time(14, 0), time(12, 0)),
    "evening": (time(18, 0), time(17, 0)),
}

_MONTH = "(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")(?![a-z])\.?"
_NUMBER = r"(?P<n>\d{1,3}|" + "|".join(sorted(_NUMBERS, key=len, reverse=True)) + ")"
_ORD = r"(?:st|nd|rd|th)?"
_AMPM = r"(?P<ampm>a\.?m\.?|p\.?m\.?)(?![a-z])"


def _re(pattern: str) -> re.Pattern:
    return re.compile(pattern)


# Date patterns, tried in this order; each match is blanked out of the text.
_ISO = _re(r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?:t(?=\d))?")
_SLASH = _re(r"\b(?P<d>\d{1,2})/(?P<m>\d{1,2})(?:/(?P<y>\d{4}|\d{2}))?(?![\d/])")
_DOTTED = _re(r"(?<!at )\b(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4}|\d{2})?(?!\d)")
_DAY_MONTH = _re(rf"\b(?P<d>\d{{1,2}}){_ORD}(?:\s+of)?\s+{_MONTH}(?:,?\s+(?P<y>\d{{4}}))?\b")
_MONTH_DAY = _re(rf"\b{_MONTH}\s+(?:the\s+)?(?P<d>\d{{1,2}}){_ORD}(?:,?\s+(?P<y>\d{{4}}))?\b")
_THE_NTH = _re(r"\bthe\s+(?P<d>\d{1,2})(?:st|nd|rd|th)\b(?!\s+(?:treatment|session|time|one)\b)")
_DAY_BEFORE_YESTERDAY = _re(r"\b(?:the\s+)?day\s+before\s+yesterday\b")
_YESTERDAY = _re(r"\byesterday\b")
_TOMORROW = _re(r"\btomorrow\b")  # read only to say "that is in the future"
# Words that put the treatment ahead: "next tuesday", "in 3 days", "coming friday".
_AHEAD = _re(r"\bnext\s+(?:week|month|\w+day)\b|\bin\s+(?:a|\d+|\w+)\s+(?:days?|weeks?)\b"
             r"|\b(?:this\s+)?coming\s+\w+day\b|\bupcoming\b")
_LAST_NIGHT = _re(r"\blast\s+night\b")
_TODAY = _re(r"\b(?:earlier\s+)?today\b|\btonight\b|\bthis\s+(?P<part>morning|afternoon|evening)\b")
_AGO = _re(rf"\b{_NUMBER}\s+(?P<unit>days?|weeks?)\s+ago\b")
_FORTNIGHT = _re(r"\ba\s+fortnight\s+ago\b")
_WEEKDAY = _re(r"\b(?:(?P<prefix>last|on|this\s+past|past)\s+)?(?P<day>"
               + "|".join(_WEEKDAYS) + r")\b(?P<gone>\s+(?:just\s+gone|gone|last))?")
_VAGUE = _re(r"\blast\s+(?:week|month|year)\b|\b(?:a\s+)?few\s+(?:days|weeks)\b"
             r"|\bcouple\s+of\s+(?:days|weeks)\b|\ba\s+while\b|\brecently\b|\bthe\s+other\s+day\b"
             r"|\bweeks?\s+ago\b|\bdays\s+ago\b")

# Time patterns.
_TIME_AMPM = _re(rf"\b(?:at\s+)?(?P<h>\d{{1,2}})(?:[:.](?P<m>\d{{2}}))?\s*{_AMPM}")
_TIME_COLON = _re(r"\b(?:at\s+)?(?P<h>\d{1,2}):(?P<m>\d{2})\b")
# "at 3", "at 10.30", but not "at 25/11" or "at 25th of November".
_TIME_AT = _re(rf"\bat\s+(?P<h>\d{{1,2}})(?:\.(?P<m>\d{{2}}))?"
               rf"(?![\d/:]|\.\d|\s*{_ORD}\s*(?:of\s+)?{_MONTH})")
_NOON = _re(r"\b(?:noon|midday|lunch\s*time)\b")
_PART = _re(r"\b(?P<part>morning|afternoon|evening|night)\b")


@dataclass
class _Found:
    dates: Set[date] = field(default_factory=set)
    times: Set[time] = field(default_factory=set)
    part: Optional[str] = None       # morning / afternoon / evening
    weekdays: List[Tuple[int, bool]] = field(default_factory=list)  # (weekday, strictly past)
    bare_hours: List[Tuple[int, int]] = field(default_factory=list)  # "at 3": (hour, minute)


def _blank(text: str, match: re.Match) -> str:
    return text[:match.start()] + " " * (match.end() - match.start()) + text[match.end():]


def _take(pattern: re.Pattern, text: str, handle: Callable[[re.Match], None]) -> str:
    for match in list(pattern.finditer(text)):
        handle(match)
        text = _blank(text, match)
    return text


def _make_date(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise DateParseError(BAD_DATE) from None


def _year(raw: Optional[str]) -> Optional[int]:
    if raw is None:
        return None
    return 2000 + int(raw) if len(raw) == 2 else int(raw)


def _recent(today: date, month: int, day: int, year: Optional[int]) -> date:
    """The date itself when the year is given, else its latest occurrence up to today."""
    if year is not None:
        return _make_date(year, month, day)
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        raise DateParseError(BAD_DATE)
    for back in range(0, 9):  # 29 February may be up to 8 years back
        try:
            candidate = date(today.year - back, month, day)
        except ValueError:
            continue
        if candidate <= today:
            return candidate
    raise DateParseError(BAD_DATE)


def _recent_day_of_month(today: date, day: int) -> date:
    if not 1 <= day <= 31:
        raise DateParseError(BAD_DATE)
    year, month = today.year, today.month
    for _ in range(12):
        try:
            candidate = date(year, month, day)
            if candidate <= today:
                return candidate
        except ValueError:
            pass
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    raise DateParseError(BAD_DATE)


def _hour(h: int, m: int, ampm: Optional[str]) -> time:
    if ampm:
        if not 1 <= h <= 12 or m > 59:
            raise DateParseError(BAD_TIME)
        h = h % 12 + (12 if ampm.startswith("p") else 0)
    elif h > 23 or m > 59:
        raise DateParseError(BAD_TIME)
    return time(h, m)


def _scan(text: str, today: date) -> _Found:
    """Pick the dates, times and parts of the day out of text, each match once."""
    found = _Found()
    add_date = found.dates.add

    def numeric(match: re.Match) -> None:
        add_date(_recent(today, int(match["m"]), int(match["d"]), _year(match["y"])))

    def dotted(match: re.Match) -> None:
        # "10.30." at the end of a sentence is a time, not the 30th month.
        if match["y"] is None and int(match["m"]) > 12 and len(match["m"]) == 2:
            found.bare_hours.append((int(match["d"]), int(match["m"])))
        else:
            numeric(match)

    def named(match: re.Match) -> None:
        add_date(_recent(today, _MONTHS[match["month"]], int(match["d"]), _year(match["y"])))

    def offset(days: int) -> Callable[[re.Match], None]:
        return lambda match: add_date(today - timedelta(days=days))

    def ago(match: re.Match) -> None:
        n = _NUMBERS.get(match["n"]) or int(match["n"])
        add_date(today - timedelta(days=n * (7 if match["unit"].startswith("week") else 1)))

    def weekday(match: re.Match) -> None:
        strict = match["prefix"] in ("last", "this past", "past") or bool(match["gone"])
        found.weekdays.append((_WEEKDAYS.index(match["day"]), strict))

    def ampm_time(match: re.Match) -> None:
        found.times.add(_hour(int(match["h"]), int(match["m"] or 0), match["ampm"]))

    def plain_time(match: re.Match) -> None:
        raw_hour, minute = match["h"], int(match["m"] or 0)
        if raw_hour.startswith("0") and len(raw_hour) == 2 or int(raw_hour) > 12:
            found.times.add(_hour(int(raw_hour), minute, None))
        else:
            found.bare_hours.append((int(raw_hour), minute))

    def today_words(match: re.Match) -> None:
        add_date(today)
        if match.groupdict().get("part"):
            found.part = match["part"]
        elif match.group(0) == "tonight":
            found.part = "evening"

    def last_night(match: re.Match) -> None:
        add_date(today - timedelta(days=1))
        found.part = "evening"

    def part(match: re.Match) -> None:
        found.part = "evening" if match["part"] == "night" else match["part"]

    # Dates with digits first, then times, so "at 10.30" and "25.11." stay apart.
    text = _take(_ISO, text, lambda m: add_date(_make_date(int(m["y"]), int(m["m"]), int(m["d"]))))
    text = _take(_SLASH, text, numeric)
    text = _take(_TIME_AMPM, text, ampm_time)
    text = _take(_TIME_COLON, text, plain_time)
    text = _take(_TIME_AT, text, plain_time)
    text = _take(_NOON, text, lambda m: found.times.add(time(12, 0)))
    text = _take(_DOTTED, text, dotted)
    text = _take(_DAY_MONTH, text, named)
    text = _take(_MONTH_DAY, text, named)
    text = _take(_THE_NTH, text, lambda m: add_date(_recent_day_of_month(today, int(m["d"]))))
    text = _take(_DAY_BEFORE_YESTERDAY, text, offset(2))
    text = _take(_LAST_NIGHT, text, last_night)
    text = _take(_YESTERDAY, text, offset(1))
    text = _take(_TOMORROW, text, offset(-1))
    text = _take(_AGO, text, ago)
    text = _take(_FORTNIGHT, text, offset(14))
    text = _take(_WEEKDAY, text, weekday)
    text = _take(_TODAY, text, today_words)
    text = _take(_PART, text, part)
    if not found.dates and not found.weekdays and _VAGUE.search(text):
        raise DateParseError(TOO_VAGUE)
    return found


def _resolve_bare(hour: int, minute: int, part: Optional[str]) -> time:
    """A written hour without am/pm, read with the part of the day if there is one."""
    if hour > 23 or minute > 59:
        raise DateParseError(BAD_TIME)
    if hour >= 12:
        return time(hour, minute)
    if part in ("afternoon", "evening") or (part is None and 1 <= hour <= 7):
        return time(hour + 12, minute)
    return time(hour, minute)


def _weekday_date(today: date, weekday: int, strict: bool, clock: Optional[time],
                  now_clock: time) -> date:
    back = (today.weekday() - weekday) % 7
    if back == 0 and (strict or clock is None or clock > now_clock):
        back = 7
    return today - timedelta(days=back)


def _localize(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """Local wall time in tz; skipped times move forward, repeated ones take the first."""
    naive = datetime.combine(day, clock)
    return naive.replace(tzinfo=tz).astimezone(timezone.utc).astimezone(tz)


def is_skipped_local_time(naive: datetime, tz: ZoneInfo) -> bool:
    """True when the clocks jump over this wall time in tz (spring forward)."""
    roundtrip = naive.replace(tzinfo=tz).astimezone(timezone.utc).astimezone(tz)
    return roundtrip.replace(tzinfo=None) != naive


def check_treatment_window(treated_at: datetime, now: datetime) -> None:
    """Refuse a time in the future or more than MAX_DAYS_BACK calendar days back.

    Days are counted in treated_at's own zone.
    """
    _require_aware(treated_at, "treated_at")
    _require_aware(now, "now")
    if treated_at > now:
        raise DateParseError(IN_FUTURE)
    local_now = now.astimezone(treated_at.tzinfo)
    if (local_now.date() - treated_at.date()).days > MAX_DAYS_BACK:
        raise DateParseError(TOO_OLD)


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def parse_treatment_time(text: str, now: datetime, tz: ZoneInfo, default_time: time) -> datetime:
    """The treatment time a patient describes, as an aware datetime in tz."""
    _require_aware(now, "now")
    if not isinstance(text, str) or not text.strip():
        raise DateParseError(NOT_UNDERSTOOD)
    local_now = now.astimezone(tz)
    today = local_now.date()
    cleaned = " " + re.sub(r"\s+", " ", text.lower().replace("\u2019", "'")) + " "
    if _AHEAD.search(cleaned):
        raise DateParseError(IN_FUTURE)
    found = _scan(cleaned, today)

    times = set(found.times) | {_resolve_bare(h, m, found.part) for h, m in found.bare_hours}
    if len(times) > 1:
        raise DateParseError(TWO_TIMES)
    clock = next(iter(times), None)

    now_clock = local_now.time().replace(tzinfo=None)
    dates = set(found.dates)
    dates |= {_weekday_date(today, wd, strict, clock, now_clock) for wd, strict in found.weekdays}
    if len(dates) > 1:
        raise DateParseError(TWO_DATES)
    if not dates:
        if clock is None and found.part is None:
            raise DateParseError(NOT_UNDERSTOOD)
        dates = {today}  # "at 2pm", "in the morning": today
    day = dates.pop()

    if clock is None:
        clock = _PARTS[found.part][0] if found.part else default_time
        result = _localize(day, clock, tz)
        part_started = found.part is None or now_clock >= _PARTS[found.part][1]
        if day == today and result > local_now and part_started:
            result = local_now.replace(second=0, microsecond=0)
    else:
        result = _localize(day, clock, tz)
    check_treatment_window(result, now)
    return result


_CLINIC_FORMAT = re.compile(
    r"^\s*(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[T ]\s*(?P<h>\d{1,2}):(?P<mi>\d{2})\s*$")


def parse_clinic_datetime(text: str, tz: ZoneInfo) -> datetime:
    """Staff entry "YYYY-MM-DD HH:MM" (or with T), local to tz, as an aware datetime.

    A time the clocks skip is refused (the message names the first valid
    time); a time that happens twice takes the first occurrence.
    """
    match = _CLINIC_FORMAT.match(text or "")
    if not match:
        raise DateParseError(f"expected a date and time as YYYY-MM-DD HH:MM, got {text!r}")
    try:
        naive = datetime(int(match["y"]), int(match["mo"]), int(match["d"]),
                         int(match["h"]), int(match["mi"]))
    except ValueError as exc:
        raise DateParseError(f"{text!r} is not a valid date and time ({exc})") from None
    if is_skipped_local_time(naive, tz):
        shifted = _localize(naive.date(), naive.time(), tz)
        raise DateParseError(
            f"{naive:%Y-%m-%d %H:%M} does not exist in {tz.key} (the clocks go forward); "
            f"did you mean {shifted:%Y-%m-%d %H:%M}?")
    return naive.replace(tzinfo=tz, fold=0)
