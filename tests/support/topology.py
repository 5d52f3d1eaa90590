"""What tests/test_topology.py reads and plans: check-in waves with the real
clock through a protocol copy, Rasa's tracker (the `events` table) turned into
the Telegram messages the bot should have sent, and the busiest second of a
list of send times."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from typing import Optional
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.outgoing import compose
from bot.responses import Button

EXTERNAL_PREFIX = "EXTERNAL: "     # what Rasa records as the text of trigger_intent


def midday_zone(now: datetime) -> str:
    """A fixed-offset zone (no daylight saving) in which it is now between
    12:00 and 13:00: check-ins a few minutes ahead never cross local midnight
    nor meet quiet hours, whatever the time the tests run."""
    offset = 12 - now.astimezone(timezone.utc).hour      # -11 .. 12
    if offset == 0:
        return "Etc/GMT"
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"   # Etc/GMT-3 is UTC+3


def next_minute(moment: datetime, at_least: timedelta) -> datetime:
    """The first whole minute at least `at_least` after moment."""
    later = moment + at_least
    return later.replace(second=0, microsecond=0) + timedelta(minutes=1)


@dataclass(frozen=True)
class Waves:
    """Two groups of patients, one treated this morning (day 0) and one
    yesterday evening (day 1), and four check-ins: wave 1 for both groups at
    `first` (day0_evening for the first, day1_morning for the second), wave 2
    for the first group at `second` (day2_morning) and for the second group a
    minute later (day3_morning), and day7 days away for everyone. A group's
    instance of the other group's check-in is tomorrow (a job that stays) or
    before its treatment (not planned at all), so every planned check-in is
    either sent in the run or scheduled for later."""
    zone: str
    first: datetime
    second: datetime
    third: datetime
    treated_today: datetime
    treated_yesterday: datetime
    checkins: list = field(default_factory=list)


def plan_waves(now: datetime, lead: timedelta) -> Waves:
    zone = ZoneInfo(midday_zone(now))
    first = next_minute(now, lead).astimezone(zone)
    second, third = first + timedelta(minutes=1), first + timedelta(minutes=2)
    today = first.date()
    treated_today = datetime.combine(today, time(8, 0), tzinfo=zone)
    treated_yesterday = datetime.combine(today - timedelta(days=1), time(18, 0), tzinfo=zone)
    checkins = [
        {"id": "day0_evening", "day": 0, "time": f"{first:%H:%M}", "grace_hours": 3},
        {"id": "day1_morning", "day": 1, "time": f"{first:%H:%M}", "grace_hours": 3},
        {"id": "day2_morning", "day": 0, "time": f"{second:%H:%M}", "grace_hours": 3},
        {"id": "day3_morning", "day": 1, "time": f"{third:%H:%M}", "grace_hours": 3},
        {"id": "day7", "day": 7, "time": "10:00", "grace_hours": 24},
    ]
    return Waves(str(zone), first.astimezone(timezone.utc), second.astimezone(timezone.utc),
                 third.astimezone(timezone.utc), treated_today.astimezone(timezone.utc),
                 treated_yesterday.astimezone(timezone.utc), checkins)


@dataclass
class Turn:
    """One turn of a conversation in Rasa's tracker: a patient's message or a
    check-in the bot triggered, and the Telegram messages its replies make."""
    user_text: Optional[str]
    checkin: Optional[str]            # the check-in id of a triggered check-in
    replies: list[tuple[str, tuple[Button, ...]]] = field(default_factory=list)

    @property
    def messages(self) -> list[str]:
        return [m.text for m in compose(self.replies)]


def tracker_turns(engine: Engine, sender_id: str) -> list[Turn]:
    """The conversation's turns in the order Rasa recorded them."""
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT type_name, data FROM events WHERE sender_id = :s ORDER BY id"),
            {"s": sender_id}).all()
    turns: list[Turn] = []
    for kind, data in rows:
        event = json.loads(data)
        if kind == "user":
            said = event.get("text") or ""
            parse = event.get("parse_data") or {}
            intent = (parse.get("intent") or {}).get("name")
            if said.startswith(EXTERNAL_PREFIX) or intent == "EXTERNAL_checkin":
                entities = {e.get("entity"): e.get("value")
                            for e in parse.get("entities") or []}
                turns.append(Turn(None, str(entities.get("checkin") or intent)))
            else:
                turns.append(Turn(said, None))
        elif kind == "bot" and turns:
            extra = event.get("data") or {}
            buttons = tuple(Button(str(b.get("title", "")), str(b.get("payload", "")))
                            for b in extra.get("buttons") or [] if b.get("payload"))
            said = event.get("text") or ""
            if said or buttons:
                turns[-1].replies.append((said, buttons))
    return turns


def most_in_one_second(times: list[float]) -> int:
    """The most sends accepted within any one second (a sliding window)."""
    times, most, start = sorted(times), 0, 0
    for end, moment in enumerate(times):
        while times[start] <= moment - 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most
