"""Which safety message a red flag gets, and its time-dependent values. Used by
the assistant's safety check (actions/actions.py) and by the bot's own net
when the assistant is down (bot/safety.py), so both say the same thing.

- emergency: always `utter_red_flag_emergency` (call the emergency number
  now), whatever the time.
- urgent and routine: `utter_red_flag_<level>` while the clinic is open
  ("a nurse will contact you today"); `utter_red_flag_<level>_closed` when it
  is closed, with `{opens_when}` ("tomorrow at 09:00", "Monday at 09:00")
  from the protocol's opening hours (aftercare/opening_hours.py).
"""
from __future__ import annotations

from datetime import datetime
from typing import Dict, Tuple

from aftercare.opening_hours import is_open, next_opening
from aftercare.protocol import Protocol
from aftercare.recovery import describe_moment

LEVELS = ("emergency", "urgent", "routine")
CLOSED_SUFFIX = "_closed"
TIMED_LEVELS = ("urgent", "routine")     # their message depends on the opening hours
# Every response a red flag can get (for `aftercare validate`).
RESPONSES = frozenset({f"utter_red_flag_{level}" for level in LEVELS}
                      | {f"utter_red_flag_{level}{CLOSED_SUFFIX}" for level in TIMED_LEVELS})
# {opens_when} when no day of the week has opening hours
NO_OPENING_HOURS = "again"


def safety_message(level: str, protocol: Protocol, now: datetime) -> Tuple[str, Dict[str, str]]:
    """(response name, values) for a red flag of `level` at `now`. The values
    always include `opens_when` (empty while the clinic is open); callers add
    the clinic's details and the reason."""
    if level not in LEVELS:
        raise ValueError(f"unknown red-flag level {level!r}")
    name = f"utter_red_flag_{level}"
    if level not in TIMED_LEVELS or is_open(protocol, now):
        return name, {"opens_when": ""}
    opening = next_opening(protocol, now)
    when = describe_moment(opening, now, protocol.tz) if opening else NO_OPENING_HOURS
    return name + CLOSED_SUFFIX, {"opens_when": when}
