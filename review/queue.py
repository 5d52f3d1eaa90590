"""The escalation queue on the review list: what a nurse works from.

The list's filters come from the query string (GET forms and links: the pages
run no script), checked by QueueFilters.parse: a value that is not one of ours
gives the default, never an error. load() answers with plain frozen data, so a
template can never start a lazy load.

Order of the unresolved queue: by level (emergency, urgent, asked for a
person, routine), then those nobody has acknowledged before those someone has,
then oldest first. Level first because it is the clinical priority, and an
acknowledged emergency is still the most serious thing in the clinic. Within a
level, an escalation nobody has taken is the one without an owner, so it comes
before one somebody is already handling; and the oldest of those has waited
longest and is the first to pass (or has passed) its re-alert time, so a nurse
takes the oldest untaken emergency first. Resolved ones are listed newest
resolution first: they are looked up, not worked through.

Queries, however long the queue: one grouped count for the level counts at
the top, one count of what the filters match, and one query for the page of
escalations with their patients (also a patient found through the sender id
for an escalation recorded before the chat was linked) and their latest
treatment. The acknowledger is a column of the escalation (a staff email, or
the name the Telegram group gave), so it needs no lookup. Staff accounts have
no display name, so a nurse is shown by the email she signs in with.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, case, false, func, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from aftercare.protocol import current_protocol
from aftercare.recovery import recovery_day
from aftercare.store.escalations import LEVEL_ORDER
from aftercare.store.models import Escalation, Patient, Treatment
from review.filters import actor_label

PER_PAGE = 25
WORDS_CHARS = 100          # the patient's words shown in the list, cut at a word
SEARCH_MAX = 100           # characters of a search kept
PAGE_MAX = 1_000_000
STATUS_CHOICES: Dict[str, str] = {
    "all_open": "all open (not resolved)",
    "open": "open (nobody has acknowledged)",
    "acknowledged": "acknowledged",
    "resolved": "resolved",
}
DEFAULT_STATUS = "all_open"
YES = frozenset({"1", "on", "yes", "true"})
NUMBER = re.compile(r"#?\s*([0-9]{1,18})")
CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class QueueFilters:
    q: str = ""
    level: Optional[str] = None
    status: str = DEFAULT_STATUS
    mine: bool = False
    page: int = 1

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> "QueueFilters":
        """The filters in a query string; anything unknown or malformed is the default."""
        q = " ".join(CONTROL.sub(" ", query.get("q") or "").split())[:SEARCH_MAX]
        level = query.get("level")
        status = query.get("status")
        page_text = (query.get("page") or "").strip()
        page = int(page_text) if page_text.isascii() and page_text.isdigit() and \
            len(page_text) <= 7 else 1
        return cls(q=q, level=level if level in LEVEL_ORDER else None,
                   status=status if status in STATUS_CHOICES else DEFAULT_STATUS,
                   mine=(query.get("mine") or "").lower() in YES,
                   page=min(max(page, 1), PAGE_MAX))

    def link(self, **changes: object) -> str:
        """The list's address with these filters (and the changes); defaults left out,
        and back to page 1 unless a page is given."""
        changes.setdefault("page", 1)
        target = replace(self, **changes)
        params: List[Tuple[str, str]] = []
        if target.q:
            params.append(("q", target.q))
        if target.level:
            params.append(("level", target.level))
        if target.status != DEFAULT_STATUS:
            params.append(("status", target.status))
        if target.mine:
            params.append(("mine", "1"))
        if target.page > 1:
            params.append(("page", str(target.page)))
        return "/?" + urlencode(params) if params else "/"

    @property
    def narrowed(self) -> bool:
        """Anything other than the whole unresolved queue."""
        return self != QueueFilters(page=self.page)


@dataclass(frozen=True)
class QueueItem:
    id: int
    level: str
    status: str
    created_at: datetime
    words: str                      # the start of what the patient wrote
    reason: str
    day_then: Optional[int]
    acknowledged_at: Optional[datetime]
    acknowledged_by: Optional[str]  # for people to read (see actor_label)
    acknowledged_by_me: bool
    resolved_at: Optional[datetime]
    overdue: bool                   # open and not acknowledged within the re-alert time
    realert_minutes: Optional[int]
    sender_id: Optional[str]
    patient_id: Optional[int]
    patient_name: Optional[str]
    day_now: Optional[int]


@dataclass(frozen=True)
class LevelCount:
    level: str
    waiting: int        # not resolved
    unacknowledged: int
    overdue: int


@dataclass(frozen=True)
class Queue:
    filters: QueueFilters
    items: List[QueueItem]
    total: int          # what the filters match, over all pages
    page: int
    pages: int
    counts: List[LevelCount]
    realert: Dict[str, int]

    @property
    def first(self) -> int:
        return (self.page - 1) * PER_PAGE + 1 if self.items else 0

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1 if self.items else 0

    @property
    def waiting(self) -> int:
        return sum(c.waiting for c in self.counts)

    @property
    def overdue(self) -> int:
        return sum(c.overdue for c in self.counts)


def realert_minutes(protocol_path: Path) -> Tuple[Dict[str, int], Optional[str]]:
    """Minutes per level after which an unacknowledged escalation is re-alerted,
    from the protocol as the bot's staff relay reads it (re-read when the file
    changes); with the error instead when the protocol cannot be read."""
    try:
        return dict(current_protocol(protocol_path).escalation.realert_minutes), None
    except Exception as exc:  # noqa: BLE001  (any protocol problem: the page says so)
        return {}, str(exc) or type(exc).__name__


def words(text: str, limit: int = WORDS_CHARS) -> str:
    """The start of a message on one line: whole words up to limit characters,
    with an ellipsis when some were cut."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit + 1]
    space = cut.rfind(" ")
    if space >= limit // 2:      # else one very long word: cut it
        cut = cut[:space]
    else:
        cut = cut[:limit]
    return cut.rstrip(" ,;:.-") + "…"


def _zone(name: Optional[str]) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _overdue(realert: Dict[str, int], now: datetime) -> ColumnElement:
    """Open (nobody acknowledged) and raised longer ago than its level's re-alert time."""
    late = [and_(Escalation.level == level, Escalation.created_at < now - timedelta(minutes=m))
            for level, m in realert.items()]
    return and_(Escalation.status == "open", or_(*late)) if late else false()


def _level_rank() -> ColumnElement:
    return case({level: rank for rank, level in enumerate(LEVEL_ORDER)},
                value=Escalation.level, else_=len(LEVEL_ORDER))


def _counts(session: Session, realert: Dict[str, int], now: datetime) -> List[LevelCount]:
    query = (select(Escalation.level, func.count(),
                    func.sum(case((Escalation.status == "open", 1), else_=0)),
                    func.sum(case((_overdue(realert, now), 1), else_=0)))
             .where(Escalation.status != "resolved").group_by(Escalation.level))
    found = {level: (n, unacked or 0, late or 0) for level, n, unacked, late
             in session.execute(query)}
    return [LevelCount(level, *found.get(level, (0, 0, 0))) for level in LEVEL_ORDER]


def _with_patient(query: Select) -> Tuple[Select, Any]:
    """query joined to the escalation's patient: its own, else (recorded before the
    chat was linked) the one that sender id belongs to now. Returns the alias."""
    by_sender = aliased(Patient)
    patient = aliased(Patient)
    query = (query.outerjoin(by_sender, and_(Escalation.patient_id.is_(None),
                                             by_sender.sender_id == Escalation.sender_id))
             .outerjoin(patient, patient.id == func.coalesce(Escalation.patient_id,
                                                             by_sender.id)))
    return query, patient


def _filtered(query: Select, filters: QueueFilters, staff_email: str) -> Select:
    """query narrowed to what the filters ask for."""
    if filters.status == "all_open":
        query = query.where(Escalation.status != "resolved")
    else:
        query = query.where(Escalation.status == filters.status)
    if filters.level:
        query = query.where(Escalation.level == filters.level)
    if filters.mine:
        query = query.where(Escalation.acknowledged_by == staff_email)
    if filters.q:
        number = NUMBER.fullmatch(filters.q)
        if number:
            n = int(number.group(1))
            found = Patient.id == n
            query = query.where(or_(Escalation.id == n, _of_patients(found)))
        else:
            # lower() on both sides: PostgreSQL's LIKE minds case, SQLite's does not.
            found = func.lower(Patient.name).contains(filters.q.lower(), autoescape=True)
            query = query.where(or_(_of_patients(found), Escalation.sender_id == filters.q))
    return query


def _of_patients(found: ColumnElement) -> ColumnElement:
    """Escalations of the patients found (also those recorded under a patient's chat
    before it was linked); through the indexes on patient_id and sender_id."""
    return or_(Escalation.patient_id.in_(select(Patient.id).where(found)),
               and_(Escalation.patient_id.is_(None),
                    Escalation.sender_id.in_(select(Patient.sender_id).where(found))))


def _order(filters: QueueFilters) -> Tuple[ColumnElement, ...]:
    if filters.status == "resolved":
        return (Escalation.resolved_at.desc(), Escalation.id.desc())
    return (_level_rank(), case((Escalation.status == "open", 0), else_=1),
            Escalation.created_at, Escalation.id)


def load(session: Session, filters: QueueFilters, staff_email: str,
         realert: Dict[str, int], now: datetime) -> Queue:
    """The page of the queue the filters ask for, with the level counts."""
    total = session.execute(_filtered(select(func.count()).select_from(Escalation), filters,
                                      staff_email)).scalar_one()
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(filters.page, pages)
    # The page's ids first (sorting only the columns the order needs), then the
    # rest for those rows alone: SQLite would otherwise work out every column of
    # every matching row before sorting them.
    chosen = (_filtered(select(Escalation.id).select_from(Escalation), filters, staff_email)
              .order_by(*_order(filters)).limit(PER_PAGE).offset((page - 1) * PER_PAGE)
              .subquery())
    query, patient = _with_patient(select(
        Escalation.id, Escalation.level, Escalation.status, Escalation.created_at,
        func.substr(Escalation.message, 1, WORDS_CHARS * 3), Escalation.reason, Escalation.day,
        Escalation.acknowledged_at, Escalation.acknowledged_by, Escalation.resolved_at,
        _overdue(realert, now), Escalation.sender_id).join(chosen, chosen.c.id == Escalation.id))
    latest = (select(func.max(Treatment.treated_at))
              .where(Treatment.patient_id == patient.id).scalar_subquery())
    query = query.add_columns(patient.id, patient.name, patient.timezone, latest)
    items = [
        QueueItem(id=i, level=level, status=status, created_at=created, words=words(text or ""),
                  reason=reason, day_then=day, acknowledged_at=ack_at,
                  acknowledged_by=actor_label(ack_by),
                  acknowledged_by_me=bool(ack_by) and ack_by == staff_email,
                  resolved_at=resolved, overdue=bool(late), realert_minutes=realert.get(level),
                  sender_id=sender, patient_id=pid, patient_name=name,
                  day_now=recovery_day(treated, _zone(tz), now) if treated else None)
        for (i, level, status, created, text, reason, day, ack_at, ack_by, resolved, late,
             sender, pid, name, tz, treated) in session.execute(query.order_by(*_order(filters)))]
    return Queue(filters=replace(filters, page=page), items=items, total=total, page=page,
                 pages=pages, counts=_counts(session, realert, now), realert=realert)
