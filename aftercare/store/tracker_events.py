"""What was said in a conversation, read from Rasa's tracker store.

The product's own message log (`messages`) is written by the Telegram bot
only. Rasa's SQL tracker store keeps every user and bot event of every
channel (Telegram, the terminal chat, the REST channel) in its `events`
table, in the patient store's SQLite file by default (endpoints.yml,
aftercare/services.py). This module reads the said-aloud part of it for
staff: the table may not exist yet (a fresh database, Rasa never started,
or a tracker store elsewhere), and an event's JSON may be anything; neither
is ever an error here, such events are left out.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, List, Optional, Sequence, Tuple

from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

TRACKER_TABLE = "events"
SAID = ("user", "bot")
# Rasa writes a trigger_intent (the bot's scheduled check-ins, the enrolment
# welcome) as a user event "EXTERNAL: <intent>": not the patient's words.
EXTERNAL_PREFIX = "EXTERNAL_"
EXTERNAL_TEXT = "EXTERNAL: "


@dataclass(frozen=True)
class TrackerMessage:
    event_id: int
    sender_id: str
    direction: str                    # "in" from the patient, "out" from the assistant
    text: str
    created_at: Optional[datetime]    # None when the event has no usable time


def _has_table(session: Session, table: str) -> bool:
    try:
        return inspect(session.connection()).has_table(table)
    except SQLAlchemyError:
        return False


def _moment(*candidates: Any) -> Optional[datetime]:
    for value in candidates:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(value):
            continue
        try:
            return datetime.fromtimestamp(float(value), timezone.utc)
        except (OverflowError, OSError, ValueError):
            continue
    return None


def _external(event: dict, intent_column: Optional[str]) -> bool:
    if (intent_column or "").startswith(EXTERNAL_PREFIX):
        return True
    metadata = event.get("metadata")
    if isinstance(metadata, dict) and metadata.get("is_external"):
        return True
    parse = event.get("parse_data")
    intent = parse.get("intent") if isinstance(parse, dict) else None
    name = intent.get("name") if isinstance(intent, dict) else None
    return isinstance(name, str) and name.startswith(EXTERNAL_PREFIX)


def _message(row: Tuple) -> Optional[TrackerMessage]:
    event_id, sender_id, type_name, timestamp, intent_name, data = row
    try:
        event = json.loads(data) if isinstance(data, (str, bytes)) else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(event, dict):
        return None
    said = event.get("text")
    if not isinstance(said, str) or not said.strip():
        return None
    if type_name == "user":
        if _external(event, intent_name) or said.startswith(EXTERNAL_TEXT):
            return None
        direction = "in"
    else:
        direction = "out"
    return TrackerMessage(event_id=int(event_id), sender_id=str(sender_id), direction=direction,
                          text=said, created_at=_moment(event.get("timestamp"), timestamp))


def conversation(session: Session, sender_ids: Sequence[str], limit: int,
                 table: str = TRACKER_TABLE) -> Tuple[List[TrackerMessage], int]:
    """The messages among the newest `limit` user and bot events of these
    conversations, oldest first, and how many older events were left out;
    ([], 0) without a tracker table."""
    senders = sorted({s for s in sender_ids if s})
    if not senders or limit <= 0 or not _has_table(session, table):
        return [], 0
    params = {f"s{i}": sender for i, sender in enumerate(senders)}
    where = (f"sender_id IN ({', '.join(':' + name for name in params)}) "
             f"AND type_name IN ('user', 'bot')")
    try:
        with session.begin_nested():   # a failure here leaves the page's transaction usable
            total = session.execute(
                text(f'SELECT count(*) FROM "{table}" WHERE {where}'), params).scalar_one()
            rows = session.execute(
                text(f'SELECT id, sender_id, type_name, timestamp, intent_name, data '
                     f'FROM "{table}" WHERE {where} ORDER BY id DESC LIMIT :limit'),
                {**params, "limit": int(limit)}).all()
    except SQLAlchemyError:   # not Rasa's layout: nothing to show rather than a broken page
        return [], 0
    messages = [m for m in (_message(tuple(row)) for row in reversed(rows)) if m is not None]
    return messages, max(0, int(total or 0) - len(rows))
