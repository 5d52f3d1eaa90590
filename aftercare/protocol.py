"""The clinic's aftercare protocol: load, validate and look up.

Every threshold the assistant answers from lives in the protocol YAML file
(clinic/protocol.yml by default). A wrong value stops start-up with a
ProtocolError that names the file, the field and what is wrong.
"""
from __future__ import annotations

import re
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Extra, Field, ValidationError, root_validator, validator

from aftercare.yaml_files import read_yaml

SYMPTOMS = (
    "redness", "swelling", "dryness_peeling", "itching", "pain_burning",
    "bleeding_scabbing", "bruising", "breakout_bumps", "pigmentation",
)
AFTERCARE_TOPICS = (
    "washing", "hyaluronic_serum", "moisturiser", "makeup", "sunscreen", "retinoids",
    "vitamin_c", "exfoliants", "exercise", "sauna_steam", "swimming", "alcohol",
    "shaving", "waxing", "injectables_laser", "anti_inflammatory_painkillers",
    "cool_compress",
)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class ProtocolError(ValueError):
    """The protocol file is missing, unreadable or has a wrong value."""


def _parse_hhmm(value: str) -> time:
    if not isinstance(value, str) or not _HHMM.match(value):
        raise ValueError(f"must be a time as HH:MM, got {value!r}")
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


class _Strict(BaseModel):
    class Config:
        extra = Extra.forbid
        allow_mutation = False


class Clinic(_Strict):
    name: str = Field(..., min_length=1)
    phone: str = Field(..., min_length=3)
    emergency_number: str = Field(..., min_length=2)
    timezone: str
    booking: str = Field(..., min_length=1)
    opening_hours: Dict[str, str]

    @validator("timezone")
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @validator("opening_hours")
    def _opening_hours(cls, value: Dict[str, str]) -> Dict[str, str]:
        unknown = set(value) - set(WEEKDAYS)
        if unknown:
            raise ValueError(f"unknown day(s) {sorted(unknown)}; use {', '.join(WEEKDAYS)}")
        for day, hours in value.items():
            if hours == "closed":
                continue
            start, _, end = str(hours).partition("-")
            if _parse_hhmm(start.strip()) >= _parse_hhmm(end.strip()):
                raise ValueError(f"{day}: opening time must be before closing time")
        return value

    def hours_on(self, weekday: int) -> Optional[tuple[time, time]]:
        """Opening and closing time on a weekday (0 = Monday), or None when closed."""
        hours = self.opening_hours.get(WEEKDAYS[weekday], "closed")
        if hours == "closed":
            return None
        start, _, end = hours.partition("-")
        return _parse_hhmm(start.strip()), _parse_hhmm(end.strip())


class SymptomCourse(_Strict):
    expected_from: int = Field(..., ge=0)
    expected_until: int = Field(..., ge=0)
    routine_after: int = Field(..., ge=0)
    urgent_if_worse_after: Optional[int] = Field(None, ge=0)

    @root_validator(skip_on_failure=True)
    def _ordered(cls, values: dict) -> dict:
        if values["expected_from"] > values["expected_until"]:
            raise ValueError("expected_from must not be after expected_until")
        if values["routine_after"] < values["expected_until"]:
            raise ValueError("routine_after must not be before expected_until")
        return values


class Course(_Strict):
    sessions: int = Field(..., ge=1, le=12)
    interval_weeks: int = Field(..., ge=1, le=26)
    results_glow_weeks: int = Field(..., ge=0)
    results_collagen_weeks: int = Field(..., ge=0)
    results_full_months: int = Field(..., ge=0)


class CheckIn(_Strict):
    id: str = Field(..., regex=r"^[a-z0-9_]+$")
    time: str
    grace_hours: float = Field(..., gt=0)
    day: Optional[int] = Field(None, ge=0)
    days_before_next_session: Optional[int] = Field(None, ge=1)
    days_after_last_session: Optional[int] = Field(None, ge=1)

    _time = validator("time", allow_reuse=True)(lambda cls, v: (_parse_hhmm(v), v)[1])

    @property
    def local_time(self) -> time:
        return _parse_hhmm(self.time)

    @root_validator(skip_on_failure=True)
    def _one_anchor(cls, values: dict) -> dict:
        anchors = [k for k in ("day", "days_before_next_session", "days_after_last_session")
                   if values.get(k) is not None]
        if len(anchors) != 1:
            raise ValueError(
                "give exactly one of day, days_before_next_session, days_after_last_session")
        return values


class QuietHours(_Strict):
    start: str
    end: str

    _times = validator("start", "end", allow_reuse=True)(lambda cls, v: (_parse_hhmm(v), v)[1])

    def contains(self, moment: time) -> bool:
        """Whether a local wall-clock time falls in the quiet hours (start inclusive)."""
        start, end = _parse_hhmm(self.start), _parse_hhmm(self.end)
        if start <= end:
            return start <= moment < end
        return moment >= start or moment < end

    @property
    def end_time(self) -> time:
        return _parse_hhmm(self.end)


class Enrolment(_Strict):
    link_expiry_days: int = Field(..., ge=1, le=90)


class Escalation(_Strict):
    realert_minutes: Dict[str, int]

    @validator("realert_minutes")
    def _levels(cls, value: Dict[str, int]) -> Dict[str, int]:
        unknown = set(value) - {"emergency", "urgent", "routine", "human"}
        if unknown:
            raise ValueError(f"unknown level(s) {sorted(unknown)}")
        if any(minutes <= 0 for minutes in value.values()):
            raise ValueError("minutes must be positive")
        return value


class Protocol(_Strict):
    clinic: Clinic
    symptoms: Dict[str, SymptomCourse]
    aftercare: Dict[str, float]
    cool_compress_allowed: bool = True
    course: Course
    checkins: List[CheckIn]
    quiet_hours: QuietHours
    enrolment: Enrolment
    escalation: Escalation

    @validator("symptoms")
    def _all_symptoms(cls, value: Dict[str, SymptomCourse]) -> Dict[str, SymptomCourse]:
        _exact_keys(value, SYMPTOMS, "symptom")
        return value

    @validator("aftercare")
    def _all_topics(cls, value: Dict[str, float]) -> Dict[str, float]:
        _exact_keys(value, AFTERCARE_TOPICS, "topic")
        negative = sorted(topic for topic, hours in value.items() if hours < 0)
        if negative:
            raise ValueError(f"hours must be 0 or more: {', '.join(negative)}")
        return value

    @validator("checkins")
    def _unique_ids(cls, value: List[CheckIn]) -> List[CheckIn]:
        ids = [c.id for c in value]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate check-in id(s): {', '.join(duplicates)}")
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.clinic.timezone)


def _exact_keys(value: dict, allowed: tuple, kind: str) -> None:
    unknown = sorted(set(value) - set(allowed))
    missing = sorted(set(allowed) - set(value))
    if unknown:
        raise ValueError(f"unknown {kind}(s): {', '.join(unknown)} (known: {', '.join(allowed)})")
    if missing:
        raise ValueError(f"missing {kind}(s): {', '.join(missing)}")


# The text of check-in <id> is the response utter_checkin_<id> in domain.yml; a
# check-in without one is sent as the generic check-in.
CHECKIN_RESPONSE_PREFIX = "utter_checkin_"
GENERIC_CHECKIN_RESPONSE = "utter_checkin_generic"


def checkin_response_name(checkin_id: str) -> str:
    return f"{CHECKIN_RESPONSE_PREFIX}{checkin_id}"


def checkins_without_text(protocol: Protocol, response_names: Iterable[str]) -> list[str]:
    """Ids of the protocol's check-ins with no utter_checkin_<id> among the
    domain's responses (they go out as the generic check-in)."""
    names = set(response_names)
    return [c.id for c in protocol.checkins if checkin_response_name(c.id) not in names]


def domain_response_names(domain_path: Path) -> set[str]:
    """The response names in a Rasa domain file; ProtocolError naming the file
    if it cannot be read."""
    raw = read_yaml(Path(domain_path), ProtocolError)
    responses = raw.get("responses") if isinstance(raw, dict) else None
    if not isinstance(responses, dict):
        raise ProtocolError(f"{domain_path}: no responses section")
    return set(responses)


def load_protocol(path: Path | str) -> Protocol:
    """Read and validate a protocol file; raise ProtocolError naming file and field."""
    path = Path(path)
    raw = read_yaml(path, ProtocolError)
    if not isinstance(raw, dict):
        raise ProtocolError(f"{path}: expected a mapping at the top level")
    try:
        return Protocol.parse_obj(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"] if part != "__root__")
            message = error["msg"]
            if error["type"] == "value_error.extra":
                message = "unknown field"
            problems.append(f"{path}: {field or '(top level)'}: {message}")
        raise ProtocolError("\n".join(problems)) from None


@lru_cache(maxsize=4)
def _cached(path: str, mtime: float) -> Protocol:
    return load_protocol(path)


def current_protocol(path: Path | str) -> Protocol:
    """The protocol at path, re-read whenever the file changes."""
    path = Path(path)
    return _cached(str(path), path.stat().st_mtime if path.exists() else 0.0)
