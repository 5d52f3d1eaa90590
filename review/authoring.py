"""Read models for the content authors' pages: the inbox, one item, and the
model quality history.

The inbox itself (filters, counts, labels) is aftercare.authoring.inbox; this
module turns a query string into its filter (a value that is not one of ours
gives the default, and a date that cannot be read is reported, never an
error page), words for the codes the inbox stores, and the quality history
laid out for the page with its plots. Authors see de-identified text only:
nothing here reads a patient's name, id or chat.

aftercare.authoring is imported when an authoring page is first asked for:
it loads spaCy (for de-identifying an author's shortened text), which a
review process serving nurses only never needs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from markupsafe import Markup
from sqlalchemy.orm import Session

from aftercare.answer_words import meanings
from aftercare.quality import history
from aftercare.quality.crossval import focus
from aftercare.rasa_data import FALLBACK_INTENT, RasaDataError, trainable_intents
from aftercare.store.models import INBOX_REASONS, INBOX_STATUS_FILTERS, InboxItem
from review import plots

if TYPE_CHECKING:
    from aftercare.authoring.inbox import InboxFilter, InboxPage, InboxRow

PER_PAGE = 25
PAGE_MAX = 100_000
DEFAULT_STATUS = "open"
QUALITY_MODELS = history.DEFAULT_LAST

# Intents the domain gives no words of their own (utter_meaning_<intent>).
AUTHORING_WORDS: Dict[str, str] = {
    "greet": "Hello",
    "goodbye": "Goodbye",
    "thank": "Thank you",
    "bot_challenge": "Are you a bot?",
    "inform_treatment_date": "Telling the date of their treatment",
    "out_of_scope": "Something the assistant does not cover",
    FALLBACK_INTENT: "No clear reading (the assistant fell back)",
}
STATUS_CHOICES: Dict[str, str] = {
    "open": "to do (new or labelled, not exported)",
    "new": "new",
    "labelled": "labelled, waiting for export",
    "not_useful": "set aside as not useful",
    "exported": "exported to the training data",
    "all": "all",
}
assert tuple(STATUS_CHOICES) == INBOX_STATUS_FILTERS


def reason_words(reason: str, threshold: float) -> str:
    """Why an item is in the inbox, in words."""
    return {
        "fallback": "the assistant fell back or asked “Did you mean …?”",
        "low_confidence": f"answered with low confidence (under {threshold:.0%})",
        "misunderstood": "the patient said it misunderstood",
        "nurse_flagged": "a nurse marked it “the assistant misread this”",
        "net_disagreed": "the red-flag net and the intent disagreed",
    }.get(reason, reason.replace("_", " "))


@lru_cache(maxsize=4)
def _domain_intents(path: str, mtime: float) -> Tuple[str, ...]:
    return tuple(trainable_intents(Path(path)))


def domain_intents(domain_path: Path) -> List[str]:
    """The intents an item can be labelled with, in the domain's order (re-read
    when domain.yml changes); empty when it cannot be read."""
    try:
        return list(_domain_intents(str(domain_path), domain_path.stat().st_mtime))
    except (OSError, RasaDataError):
        return []


def intent_meaning(intent: Optional[str], domain_path: Path) -> str:
    if not intent:
        return ""
    return meanings(domain_path).get(intent) or AUTHORING_WORDS.get(intent) or ""


# --------------------------------------------------------------------------- the inbox

def _day(text: Optional[str]) -> Optional[date]:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


@dataclass(frozen=True)
class InboxQuery:
    """The inbox's filters as the query string gives them."""
    reason: Optional[str] = None
    intent: Optional[str] = None
    since: Optional[date] = None       # from this day, in the clinic's time zone
    until: Optional[date] = None       # up to and including this day
    status: str = DEFAULT_STATUS
    page: int = 1
    problems: Tuple[str, ...] = ()     # what in the query was not understood

    @classmethod
    def parse(cls, query: Mapping[str, str], intents: Sequence[str]) -> "InboxQuery":
        problems: List[str] = []
        reason = query.get("reason") or None
        if reason is not None and reason not in INBOX_REASONS:
            reason = None
        intent = query.get("intent") or None
        if intent is not None and intent not in intents and intent != FALLBACK_INTENT:
            problems.append("That intent is not one of the domain's, so the list is not "
                            "narrowed by intent.")
            intent = None
        dates = {}
        for name, words in (("since", "from"), ("until", "to")):
            raw = (query.get(name) or "").strip()
            dates[name] = _day(raw)
            if raw and dates[name] is None:
                problems.append(f"The “{words}” date was not understood (write it as "
                                f"YYYY-MM-DD), so it is not used.")
        if dates["since"] and dates["until"] and dates["since"] > dates["until"]:
            problems.append("The “from” date is after the “to” date, so nothing can match.")
        status = query.get("status") or DEFAULT_STATUS
        page_text = (query.get("page") or "").strip()
        page = int(page_text) if page_text.isascii() and page_text.isdigit() and \
            len(page_text) <= 6 else 1
        return cls(reason=reason, intent=intent, since=dates["since"], until=dates["until"],
                   status=status if status in STATUS_CHOICES else DEFAULT_STATUS,
                   page=min(max(page, 1), PAGE_MAX), problems=tuple(problems))

    def inbox_filter(self, zone: ZoneInfo, status: Optional[str] = None) -> "InboxFilter":
        from aftercare.authoring.inbox import InboxFilter

        since = datetime.combine(self.since, time(), zone) if self.since else None
        until = (datetime.combine(self.until + timedelta(days=1), time(), zone)
                 if self.until else None)
        return InboxFilter(reason=self.reason, intent=self.intent, since=since, until=until,
                           status=status or self.status)

    def link(self, **changes: object) -> str:
        """The inbox's address with these filters (and the changes); defaults left
        out, and back to page 1 unless a page is given."""
        changes.setdefault("page", 1)
        target = replace(self, **changes)
        params: List[Tuple[str, str]] = []
        for name in ("reason", "intent"):
            if getattr(target, name):
                params.append((name, getattr(target, name)))
        for name in ("since", "until"):
            if getattr(target, name):
                params.append((name, getattr(target, name).isoformat()))
        if target.status != DEFAULT_STATUS:
            params.append(("status", target.status))
        if target.page > 1:
            params.append(("page", str(target.page)))
        return "/authoring?" + urlencode(params) if params else "/authoring"

    @property
    def narrowed(self) -> bool:
        return (self.reason, self.intent, self.since, self.until, self.status) != \
            (None, None, None, None, DEFAULT_STATUS)


@dataclass(frozen=True)
class InboxView:
    query: InboxQuery
    page: "InboxPage"
    pages: int
    waiting_export: int    # labelled items, whatever the filters

    @property
    def first(self) -> int:
        return self.page.offset + 1 if self.page.rows else 0

    @property
    def last(self) -> int:
        return self.page.offset + len(self.page.rows)


def load_inbox(session: Session, query: InboxQuery, zone: ZoneInfo) -> InboxView:
    from aftercare.authoring.inbox import InboxFilter, list_inbox

    filters = query.inbox_filter(zone)
    page = list_inbox(session, filters, offset=(query.page - 1) * PER_PAGE, limit=PER_PAGE)
    pages = max(1, math.ceil(page.total / PER_PAGE))
    if query.page > pages:   # past the end (the list got shorter): the last page
        query = replace(query, page=pages)
        page = list_inbox(session, filters, offset=(pages - 1) * PER_PAGE, limit=PER_PAGE)
    waiting = list_inbox(session, InboxFilter(status="labelled"), limit=1).total
    return InboxView(query=query, page=page, pages=pages, waiting_export=waiting)


# --------------------------------------------------------------------------- one item

@dataclass(frozen=True)
class Choice:
    intent: str
    words: str
    predicted: bool    # the classifier's best or second reading


@dataclass(frozen=True)
class ItemView:
    row: "InboxRow"
    choices: List[Choice]
    next_id: Optional[int]     # the newest new item under the list's filters, not this one


def load_item(session: Session, item_id: int, intents: Sequence[str], domain_path: Path,
              query: InboxQuery, zone: ZoneInfo) -> Optional[ItemView]:
    """The item with the intents to label it with (predicted first), or None
    if it is not there (never was, or its patient was erased or said no)."""
    from aftercare.authoring.inbox import get_item, intent_choices, list_inbox

    if session.get(InboxItem, item_id) is None:
        return None
    row = get_item(session, item_id)
    predicted = {row.intent, row.runner_up}
    choices = [Choice(name, intent_meaning(name, domain_path), name in predicted)
               for name in intent_choices(row, intents)]
    newest = list_inbox(session, query.inbox_filter(zone, status="new"), limit=2).rows
    next_id = next((r.id for r in newest if r.id != item_id), None)
    return ItemView(row=row, choices=choices, next_id=next_id)


def back_query(target: Optional[str], intents: Sequence[str]) -> InboxQuery:
    """The list's filters from the item page's `back` address (only ever an
    inbox address; anything else is the plain inbox)."""
    from urllib.parse import parse_qsl, urlsplit

    if not target or len(target) > 1000:
        return InboxQuery()
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path != "/authoring":
        return InboxQuery()
    query = dict(parse_qsl(parts.query, max_num_fields=20))
    return InboxQuery.parse(query, intents)


# --------------------------------------------------------------------------- quality

@dataclass(frozen=True)
class SetRow:
    label: str            # the model, when it was trained
    model_id: str
    figures: Optional[history.SetFigures]
    changed: bool         # the set's file differs from the one the previous model saw


@dataclass(frozen=True)
class SetTable:
    name: str
    rows: List[SetRow]


@dataclass(frozen=True)
class CrossValidationRow:
    label: str
    model_id: str
    n: int
    folds: int
    accuracy: float
    macro_f1: float
    reused_from: Optional[str]


@dataclass(frozen=True)
class QualityView:
    directory: Path
    total: int                                  # models recorded
    labels: List[str]                           # the models shown, oldest first
    model_ids: List[str]
    newest_trained_at: Optional[datetime]
    sets: List[SetTable]
    cross_validation: List[CrossValidationRow]
    source: str                                 # the per-intent table's set
    sources: List[str]
    intent_rows: List[history.IntentRow]
    pairs: list                                 # the newest model's most confused pairs
    thin_threshold: Optional[int]
    thin: List[Tuple[str, int]]
    heatmap: Markup = Markup("")
    f1_plot: Markup = Markup("")
    thin_plot: Markup = Markup("")
    warnings: List[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.labels


def load_quality(directory: Path, source: Optional[str] = None,
                 last: int = QUALITY_MODELS) -> QualityView:
    """The last models' figures, tables and plots (empty when nothing is recorded)."""
    loaded = history.load(directory)
    entries = loaded.last(last)
    if not entries:
        return QualityView(directory=directory, total=0, labels=[], model_ids=[],
                           newest_trained_at=None, sets=[], cross_validation=[],
                           source=history.CROSS_VALIDATION, sources=[], intent_rows=[], pairs=[],
                           thin_threshold=None, thin=[], warnings=loaded.warnings)
    labels = [e.label for e in entries]
    ids = [e.record.model.id for e in entries]
    set_names = history.set_names(entries)
    sets = []
    for name in set_names:
        measured = history.figures(entries, name)
        changed = history.set_changed(entries, name)
        sets.append(SetTable(name, [SetRow(label, model_id, figures, moved) for
                                    label, model_id, figures, moved in
                                    zip(labels, ids, measured, changed)]))
    cross = [CrossValidationRow(label, e.record.model.id, e.record.cross_validation.n,
                                e.record.cross_validation.folds,
                                e.record.cross_validation.accuracy,
                                e.record.cross_validation.macro_f1,
                                e.record.cross_validation.reused_from)
             for label, e in zip(labels, entries)]
    sources = [history.CROSS_VALIDATION, *set_names]
    source = source if source in sources else history.CROSS_VALIDATION
    newest = entries[-1].record
    cv = newest.cross_validation
    view = focus(cv.labels, cv.matrix, cv.confused_pairs)
    thin = sorted(newest.thin_intents.intents.items(), key=lambda item: (item[1], item[0]))
    threshold = newest.thin_intents.threshold
    return QualityView(
        directory=directory, total=len(loaded.entries), labels=labels, model_ids=ids,
        newest_trained_at=newest.model.trained_at, sets=sets, cross_validation=cross,
        source=source, sources=sources, intent_rows=history.per_intent_f1(entries, source),
        pairs=list(cv.confused_pairs), thin_threshold=threshold, thin=thin,
        heatmap=Markup(plots.confusion_heatmap_svg(
            view.labels, view.matrix, view.row_totals, title="Most confused intents")),
        f1_plot=Markup(_f1_plot(entries, source)),
        thin_plot=Markup(plots.bar_chart_svg(
            [(name, float(count)) for name, count in thin],
            title="Training examples",
            maximum=float(threshold), digits=0)) if thin else Markup(""),
        warnings=loaded.warnings)


def _f1_plot(entries: Sequence[history.Entry], source: str) -> str:
    """F1 per intent over the models; with one model, its weakest intents as bars
    (a line needs two models)."""
    if len(entries) > 1:
        return plots.f1_over_models_svg(history.f1_series(entries, source))
    weakest = [(row.intent, row.f1[-1]) for row in history.per_intent_f1(entries, source)
               if row.f1[-1] is not None][:10]
    return plots.bar_chart_svg(weakest, title="F1 of the weakest intents", maximum=1.0)


def source_words(source: str) -> str:
    if source == history.CROSS_VALIDATION:
        return "cross-validation on the training data"
    return f"measuring set {source}"


# --------------------------------------------------------------------------- a nurse's flag

MISREAD_DONE = {
    "new": "Sent to the content authors' inbox as misread (de-identified). Thank you.",
    "added": "It was in the content authors' inbox already; your mark was added to it.",
}


def misread_notice(query: Mapping[str, str]) -> Optional[dict]:
    """The confirmation after a nurse's flag, for the conversation it came back to."""
    words = MISREAD_DONE.get(query.get("misread", ""))
    if words is None:
        return None
    return {"words": words, "message": (query.get("m") or "")[:40]}
