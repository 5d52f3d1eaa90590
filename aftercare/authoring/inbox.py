"""The content authors' inbox: what is in it, labels, "not useful", consent,
and a nurse's "the assistant misread this".

The review page (/authoring) and `aftercare inbox` both call these. Rows
carry de-identified text only. A label (the right intent, optionally a
shortened text) or "not useful" is kept with who set it and when, and can be
changed until the item is exported. Like the store modules, each function
takes an open Session and the caller commits; an InboxError is a clear
message for the person who asked, and nothing has changed.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Collection, Optional, Sequence

from sqlalchemy import and_, delete, exists, func, inspect, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from aftercare.authoring.capture import (
    deidentify, NetLevel, Reading, capture_key, capture_reading, consenting_patient, said_after,
)
from aftercare.rasa_data import FALLBACK_INTENT
from aftercare.staff import has_role
from aftercare.store.models import (
    INBOX_REASONS, INBOX_STATUS_FILTERS, INTENT_MAX, InboxItem, InboxReason, Message, Staff,
)
from aftercare.store.repository import get_patient

STATUS_FILTERS = INBOX_STATUS_FILTERS
_STATUSES = {"open": ("new", "labelled"), "new": ("new",), "labelled": ("labelled",),
             "not_useful": ("not_useful",), "exported": ("exported",), "all": None}
PAGE_MAX = 500
LABEL_TEXT_MAX = 500
# Rasa reads [..](..) and [..]{..} in an example as entity annotations.
FORBIDDEN_IN_EXAMPLES = "[]{}"
TRACKER_TABLE = "events"
# A logged message and Rasa's event of it are written within moments of each other.
MATCH_WINDOW = timedelta(minutes=10)


class InboxError(ValueError):
    """A request the inbox refuses, with a message for the person who asked."""


@dataclass(frozen=True)
class InboxFilter:
    """What to list. since/until: aware datetimes (until exclusive)."""
    reason: Optional[str] = None
    intent: Optional[str] = None
    since: Optional[datetime] = None
    until: Optional[datetime] = None
    status: str = "open"

    def check(self) -> "InboxFilter":
        if self.reason is not None and self.reason not in INBOX_REASONS:
            raise InboxError(f"unknown reason {self.reason!r}; the reasons are "
                             f"{', '.join(INBOX_REASONS)}")
        if self.status not in STATUS_FILTERS:
            raise InboxError(f"unknown status {self.status!r}; choose one of "
                             f"{', '.join(STATUS_FILTERS)}")
        for moment in (self.since, self.until):
            if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
                raise InboxError("dates to filter by must carry a time zone")
        return self


@dataclass(frozen=True)
class InboxRow:
    id: int
    received_at: datetime
    day: Optional[int]
    text: str                          # de-identified
    intent: Optional[str]              # the classifier's best reading
    confidence: Optional[float]
    runner_up: Optional[str]
    runner_up_confidence: Optional[float]
    net_level: Optional[str]
    answer: Optional[str]              # de-identified; None until the next turn showed it
    reasons: tuple[str, ...]
    status: str
    label_intent: Optional[str]
    label_text: Optional[str]
    labelled_by: Optional[int]         # staff id
    labelled_by_email: Optional[str]
    labelled_via: Optional[str]
    labelled_at: Optional[datetime]
    exported_at: Optional[datetime]

    @property
    def example(self) -> str:
        """The text an export writes: the author's shortened text, else the message."""
        return self.label_text or self.text


@dataclass(frozen=True)
class InboxPage:
    rows: list[InboxRow]
    total: int                                   # items matching the filter
    counts: dict[str, int] = field(default_factory=dict)  # per reason, the filter but its reason
    offset: int = 0
    limit: int = 50


def _conditions(filters: InboxFilter, *, with_reason: bool = True) -> list:
    conditions = []
    statuses = _STATUSES[filters.status]
    if statuses is not None:
        conditions.append(InboxItem.status.in_(statuses))
    if filters.intent:
        conditions.append(InboxItem.intent == filters.intent)
    if filters.since is not None:
        conditions.append(InboxItem.received_at >= filters.since)
    if filters.until is not None:
        conditions.append(InboxItem.received_at < filters.until)
    if with_reason and filters.reason:
        conditions.append(exists().where(InboxReason.item_id == InboxItem.id,
                                         InboxReason.reason == filters.reason))
    return conditions


def list_inbox(session: Session, filters: InboxFilter = InboxFilter(), *,
               offset: int = 0, limit: int = 50) -> InboxPage:
    """Newest first, with the number that match and the count per reason
    (under the same filter, whatever its reason)."""
    filters.check()
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InboxError("offset must be a whole number, 0 or more")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= PAGE_MAX:
        raise InboxError(f"limit must be between 1 and {PAGE_MAX}")
    where = and_(True, *_conditions(filters))
    total = session.execute(select(func.count(InboxItem.id)).where(where)).scalar_one()
    items = session.execute(
        select(InboxItem).where(where)
        .order_by(InboxItem.received_at.desc(), InboxItem.id.desc())
        .offset(offset).limit(limit)).scalars().all()
    counts = dict.fromkeys(INBOX_REASONS, 0)
    counted = session.execute(
        select(InboxReason.reason, func.count(InboxReason.item_id))
        .join(InboxItem, InboxItem.id == InboxReason.item_id)
        .where(and_(True, *_conditions(filters, with_reason=False)))
        .group_by(InboxReason.reason))
    counts.update({reason: int(n) for reason, n in counted})
    return InboxPage(rows=_rows(session, items), total=int(total), counts=counts,
                     offset=offset, limit=limit)


def _rows(session: Session, items: Sequence[InboxItem]) -> list[InboxRow]:
    staff_ids = {i.labelled_by for i in items if i.labelled_by is not None}
    emails = dict(session.execute(select(Staff.id, Staff.email).where(
        Staff.id.in_(staff_ids))).all()) if staff_ids else {}
    return [InboxRow(
        id=i.id, received_at=i.received_at, day=i.day, text=i.text, intent=i.intent,
        confidence=i.confidence, runner_up=i.runner_up,
        runner_up_confidence=i.runner_up_confidence, net_level=i.net_level, answer=i.answer,
        reasons=tuple(r.reason for r in i.reasons), status=i.status,
        label_intent=i.label_intent, label_text=i.label_text, labelled_by=i.labelled_by,
        labelled_by_email=emails.get(i.labelled_by), labelled_via=i.labelled_via,
        labelled_at=i.labelled_at, exported_at=i.exported_at) for i in items]


def _item(session: Session, item_id: int) -> InboxItem:
    item = session.get(InboxItem, item_id) if isinstance(item_id, int) else None
    if item is None:
        raise InboxError(f"there is no inbox item {item_id} (it may have been removed because "
                         f"the patient asked to be forgotten or withdrew their consent)")
    return item


def get_item(session: Session, item_id: int) -> InboxRow:
    return _rows(session, [_item(session, item_id)])[0]


def intent_choices(row: InboxRow, intents: Sequence[str]) -> list[str]:
    """The intents to label with: the predicted ones first, then the rest in the
    domain's order (intents: aftercare.rasa_data.trainable_intents)."""
    first = [name for name in (row.intent, row.runner_up)
             if name and name in intents and name != FALLBACK_INTENT]
    return list(dict.fromkeys(first)) + [name for name in intents if name not in first]


def _changeable(item: InboxItem) -> None:
    if item.status == "exported":
        when = f" on {item.exported_at:%Y-%m-%d}" if item.exported_at else ""
        raise InboxError(f"inbox item {item.id} was exported{when} and can no longer change; "
                         f"edit data/nlu/ instead")


def _author(session: Session, staff_id: Optional[int]) -> Optional[int]:
    if staff_id is None:
        return None
    staff = session.get(Staff, staff_id) if isinstance(staff_id, int) else None
    if staff is None or staff.disabled_at is not None:
        raise InboxError(f"staff account {staff_id} does not exist or is disabled")
    if not has_role(staff, "author"):
        raise InboxError(f"{staff.email} is not a content author (aftercare staff roles "
                         f"{staff.email} --role nurse,author)")
    return staff.id


def _clean_text(value: str) -> str:
    if not isinstance(value, str):
        raise InboxError("the text must be text")
    cleaned = " ".join(value.split())
    if not cleaned:
        raise InboxError("the text is empty; leave it out to keep the message as it is")
    if len(cleaned) > LABEL_TEXT_MAX:
        raise InboxError(f"the text is too long ({len(cleaned)} characters, at most "
                         f"{LABEL_TEXT_MAX})")
    if any(ch in cleaned for ch in FORBIDDEN_IN_EXAMPLES):
        raise InboxError("the text may not contain [ ] { } (Rasa reads them as entity "
                         "annotations); use ( ) instead")
    return cleaned


def label(session: Session, item_id: int, intent: str, *, intents: Collection[str],
          now: datetime, via: str, text: Optional[str] = None,
          staff_id: Optional[int] = None) -> InboxRow:
    """Label an item with the right intent (one of `intents`), optionally with a
    shortened text (masked again: an author cannot put identifiers back)."""
    item = _item(session, item_id)
    _changeable(item)
    if not isinstance(intent, str) or intent not in intents:
        raise InboxError(f"there is no intent {intent!r} to label with; choose one of the "
                         f"domain's intents (aftercare inbox show ID lists them)")
    if len(intent) > INTENT_MAX:
        raise InboxError("intent name too long")
    staff_id = _author(session, staff_id)
    if text is not None:
        patient = get_patient(session, item.patient_id)
        names = (patient.name,) if patient is not None and patient.name else ()
        text = deidentify(_clean_text(text), names).text
    item.label_intent = intent
    item.label_text = text
    item.status = "labelled"
    _signed(item, staff_id, via, now)
    session.flush()
    return get_item(session, item.id)


def mark_not_useful(session: Session, item_id: int, *, now: datetime, via: str,
                    staff_id: Optional[int] = None) -> InboxRow:
    """Set the item aside: it is never exported (its label, if any, goes)."""
    item = _item(session, item_id)
    _changeable(item)
    staff_id = _author(session, staff_id)
    item.label_intent = None
    item.label_text = None
    item.status = "not_useful"
    _signed(item, staff_id, via, now)
    session.flush()
    return get_item(session, item.id)


def _signed(item: InboxItem, staff_id: Optional[int], via: str, now: datetime) -> None:
    if not isinstance(via, str) or not via.strip():
        raise InboxError("say who is labelling (via)")
    item.labelled_by = staff_id
    item.labelled_via = via.strip()[:255]
    item.labelled_at = now


# ---------------------------------------------------------------- consent
def set_improve_consent(session: Session, patient_id: int, agreed: bool) -> int:
    """Record the patient's yes or no to their messages improving the assistant;
    a no removes their inbox items (how many). Exported examples are already
    de-identified training data and stay in data/nlu/."""
    if not isinstance(agreed, bool):
        raise InboxError("consent is yes or no")
    patient = get_patient(session, patient_id) if isinstance(patient_id, int) else None
    if patient is None:
        raise InboxError(f"there is no patient {patient_id}")
    patient.improve_consent = agreed
    removed = 0
    if not agreed:
        removed = session.execute(
            delete(InboxItem).where(InboxItem.patient_id == patient.id)
            .execution_options(synchronize_session=False)).rowcount or 0
    session.flush()
    return removed


# ---------------------------------------------------------------- a nurse's flag
@dataclass(frozen=True)
class Flagged:
    item_id: int
    created: bool        # False: it was in the inbox already (the reason was added)


def flag_misread(session: Session, *, staff_id: int, now: datetime,
                 event_id: Optional[int] = None, message_id: Optional[int] = None,
                 net_level: Optional[NetLevel] = None,
                 tracker_table: str = TRACKER_TABLE) -> Flagged:
    """A nurse marks a patient message "the assistant misread this" from the
    conversation view: by Rasa's event id (conversations the page reads from
    Rasa) or the bot's message-log id (Telegram chats)."""
    staff = session.get(Staff, staff_id) if isinstance(staff_id, int) else None
    if staff is None or staff.disabled_at is not None or not has_role(staff, "nurse"):
        raise InboxError("only an enabled nurse account can mark a message as misread")
    if (event_id is None) == (message_id is None):
        raise InboxError("give the message either by its event id or by its message id")
    if message_id is not None:
        sender_id, event_id = _event_of_logged_message(session, message_id, tracker_table)
    else:
        sender_id = _sender_of_event(session, event_id, tracker_table)
    events = _events_from(session, sender_id, event_id, tracker_table)
    reading = Reading.from_event(events[0]) if events else None
    if reading is None:
        raise InboxError("that is not a message the patient wrote in their own words")
    patient = consenting_patient(session, sender_id)
    if patient is None:
        raise InboxError("this patient has not agreed to their messages being used to "
                         "improve the assistant, so it cannot go to the content authors")
    key_item = session.execute(select(InboxItem.id).where(
        InboxItem.capture_key == capture_key(sender_id, reading))).scalar()
    try:
        item = capture_reading(session, patient, sender_id, reading, reasons=["nurse_flagged"],
                               now=now, net_level=net_level, answer=said_after(events, 0),
                               staff_id=staff.id)
    except IntegrityError:   # the assistant captured it at this very moment
        raise InboxError("that message was being added to the inbox at the same moment; "
                         "try again") from None
    return Flagged(item_id=item.id, created=key_item is None)


def _has_table(session: Session, table: str) -> bool:
    try:
        return inspect(session.connection()).has_table(table)
    except SQLAlchemyError:
        return False


def _sender_of_event(session: Session, event_id: int, table: str) -> str:
    row = None
    if isinstance(event_id, int) and _has_table(session, table):
        row = session.execute(text(f'SELECT sender_id, type_name FROM "{table}" WHERE id = :id'),
                              {"id": event_id}).first()
    if row is None or row[1] != "user":
        raise InboxError(f"there is no patient message {event_id} in the conversations")
    return str(row[0])


def _event_dict(data: object) -> Optional[dict]:
    try:
        event = json.loads(data) if isinstance(data, (str, bytes)) else None
    except (ValueError, RecursionError):
        return None
    return event if isinstance(event, dict) else None


def _events_from(session: Session, sender_id: str, event_id: int, table: str,
                 limit: int = 200) -> list[dict]:
    """The user event `event_id` and the events after it in its conversation."""
    rows = session.execute(
        text(f'SELECT data FROM "{table}" WHERE sender_id = :sender AND id >= :id '
             f'ORDER BY id LIMIT :limit'),
        {"sender": sender_id, "id": event_id, "limit": limit}).scalars()
    return [e for e in (_event_dict(data) for data in rows) if e is not None]


def _event_of_logged_message(session: Session, message_id: int, table: str) -> tuple[str, int]:
    """(sender id, Rasa's user event id) of a patient message in the bot's log:
    the event with the same words closest in time."""
    message = session.get(Message, message_id) if isinstance(message_id, int) else None
    if message is None or message.direction != "in":
        raise InboxError(f"there is no patient message {message_id}")
    if message.status in ("unanswered", "held", "handed_off"):
        raise InboxError("the assistant never read that message (it was "
                         f"{message.status.replace('_', ' ')}), so it cannot have misread it")
    if not _has_table(session, table):
        raise InboxError("the assistant's record of that conversation is not available")
    sent = message.created_at.timestamp()
    rows = session.execute(
        text(f'SELECT id, timestamp, data FROM "{table}" WHERE sender_id = :sender '
             f"AND type_name = 'user' AND timestamp BETWEEN :start AND :end"),
        {"sender": message.sender_id, "start": sent - MATCH_WINDOW.total_seconds(),
         "end": sent + MATCH_WINDOW.total_seconds()}).all()
    best: Optional[tuple[float, int]] = None
    for row_id, stamp, data in rows:
        event = _event_dict(data)
        if event is None or (event.get("text") or "").strip() != message.text.strip():
            continue
        gap = abs(float(stamp) - sent) if isinstance(stamp, (int, float)) \
            and math.isfinite(stamp) else math.inf
        if best is None or gap < best[0]:
            best = (gap, int(row_id))
    if best is None:
        raise InboxError("the assistant's record of that message was not found (it may not "
                         "have reached the assistant)")
    return message.sender_id, best[1]
