"""Jinja filters: times in the clinic's zone, ages, and words for stored codes."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, Iterable, List, Optional, Tuple
from zoneinfo import ZoneInfo

import jinja2

LEVEL_LABELS = {"emergency": "emergency", "urgent": "urgent", "human": "asked for a person",
                "routine": "routine"}
EVENT_LABELS = {"acknowledged": "acknowledged", "replied": "replied to the patient",
                "resolved": "resolved", "note": "note", "reminded": "reminder posted",
                "reopened": "reopened"}
KIND_LABELS = {"text": "", "photo": "photo", "checkin": "check-in", "clinic": "from the clinic",
               "notice": "notice"}
REPLY_LABELS = {"pending": "queued", "sent": "sent", "failed": "failed"}


def actor_label(actor: Optional[str]) -> Optional[str]:
    """Who acted, for people: a staff email as it is, "Sam Lee (Telegram)" for a
    staff-group member without an account, "sam (command line)"."""
    if not actor:
        return None
    if actor.startswith("telegram:"):
        user_id, _, name = actor[len("telegram:"):].partition(" ")
        return f"{name.strip()} (Telegram)" if name.strip() else f"Telegram user {user_id}"
    if actor.startswith("cli:"):
        return f"{actor[len('cli:'):]} (command line)"
    return actor


def age(moment: Optional[datetime], now: datetime) -> str:
    """How long ago, in the largest sensible unit: "4 min", "3 h 20 min", "2 days"."""
    if moment is None:
        return ""
    minutes = max(0, int((now - moment).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days = hours // 24
    return "1 day" if days == 1 else f"{days} days"


def symptom(code: str) -> str:
    """report_redness -> redness; anything else as it is, underscores as spaces."""
    if code.startswith("report_"):
        code = code[len("report_"):]
    return code.replace("_", " ")


def groupby_day(reports: Iterable[Any]) -> List[Tuple[Optional[int], List[Any]]]:
    """Reports grouped by recovery day, days in order, reports without a day last."""
    groups: Dict[Optional[int], List[Any]] = {}
    for report in reports:
        groups.setdefault(report.day, []).append(report)
    return sorted(groups.items(), key=lambda item: (item[0] is None, item[0] or 0))


def install(env: jinja2.Environment, clinic_tz: ZoneInfo) -> None:
    def when(moment: Optional[datetime]) -> str:
        if moment is None:
            return ""
        local = moment.astimezone(clinic_tz)
        return f"{local:%a %d %b %Y %H:%M} {local.tzname()}"

    def short_when(moment: Optional[datetime]) -> str:
        if moment is None:
            return ""
        return f"{moment.astimezone(clinic_tz):%d %b %H:%M}"

    env.filters.update(
        when=when, short_when=short_when, age=age, symptom=symptom, groupby_day=groupby_day,
        level_label=lambda level: LEVEL_LABELS.get(level, level),
        event_label=lambda kind: EVENT_LABELS.get(kind, kind),
        kind_label=lambda kind: KIND_LABELS.get(kind, kind),
        reply_label=lambda status: REPLY_LABELS.get(status, status),
        actor=actor_label,
    )
