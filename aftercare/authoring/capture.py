"""Which patient messages go into the content authors' inbox, and why.

Every patient message passes through the assistant's safety check
(actions/actions.py, ActionSafetyCheck), which calls `capture_turn` with
Rasa's parse data and the conversation's events. A message is kept with the
reasons (models.INBOX_REASONS) that apply:

- fallback: the assistant did not act on a reading: it fell back
  (nlu_fallback, then "Did you mean ...?" or "please rephrase") or, seen at
  the next turn, its dialogue fell back (action_default_fallback);
- low_confidence: it acted on a reading with a confidence under
  settings.inbox_confidence_threshold;
- net_disagreed: exactly one of the red-flag net (urgent or emergency) and
  the intent the assistant acted on (a red-flag intent) saw a red flag;
- misunderstood: the patient's next message says so (the phrases in
  data/authoring/misunderstood.yml): the earlier message gets the reason;
- nurse_flagged: a nurse marked it from the conversation view
  (inbox.flag_misread, built on `capture_reading` below).

Only a patient who said yes to their messages improving the assistant
(Patient.improve_consent is True; None, not asked yet, is no) is captured,
and only the masked text (aftercare.privacy) is stored, for the message and
the assistant's answer alike. The answer is known only once the turn is
over, so the next message's turn fills it in. Logs carry ids and kinds only.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from aftercare.rasa_data import EXTERNAL_INTENT_PREFIX, FALLBACK_INTENT
from aftercare.store.models import InboxItem, InboxReason, Patient
from aftercare.store.repository import find_patient_by_sender, patient_day
from aftercare.yaml_files import read_yaml

logger = logging.getLogger(__name__)

NET_RED_FLAG_LEVELS = frozenset({"urgent", "emergency"})
# Actions that mean the assistant did not act on what it read (seen a turn later).
FALLBACK_ACTIONS = frozenset({"action_default_fallback", "action_clarify"})
EXTERNAL_TEXT_PREFIX = "EXTERNAL: "
# Far longer than a chat message (Telegram's limit is 4,096 characters): not captured.
TEXT_MAX = 20_000

NetLevel = Callable[[str, Optional[int]], Optional[str]]   # (text, day) -> the net's level


class AuthoringDataError(ValueError):
    """data/authoring/ is missing or malformed; the message names the file."""


# ---------------------------------------------------------------- the message as read
@dataclass(frozen=True)
class Reading:
    """A patient's message as the assistant read it (from Rasa's parse data).

    `chosen` is the intent the assistant acted on (nlu_fallback when it fell
    back); `intent` and `runner_up` are the classifier's best two readings.
    """
    text: str
    chosen: Optional[str]
    chosen_confidence: Optional[float]
    intent: Optional[str]
    confidence: Optional[float]
    runner_up: Optional[str] = None
    runner_up_confidence: Optional[float] = None
    message_id: Optional[str] = None
    timestamp: Optional[float] = None

    @property
    def fell_back(self) -> bool:
        return self.chosen == FALLBACK_INTENT

    @classmethod
    def from_parse_data(cls, parse_data: Mapping, *, message_id: Optional[str] = None,
                        timestamp: Optional[float] = None) -> Optional["Reading"]:
        """The reading of a message in the patient's own words; None for a
        button payload ("/ask_makeup"), an intent the bot triggered, or no text."""
        if not isinstance(parse_data, Mapping):
            return None
        text = parse_data.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > TEXT_MAX:
            return None
        if text.lstrip().startswith("/") or text.startswith(EXTERNAL_TEXT_PREFIX):
            return None
        intent = parse_data.get("intent") if isinstance(parse_data.get("intent"), Mapping) else {}
        chosen = intent.get("name") if isinstance(intent.get("name"), str) else None
        if chosen and chosen.startswith(EXTERNAL_INTENT_PREFIX):
            return None
        chosen_confidence = _confidence(intent.get("confidence"))
        ranking = [(r["name"], _confidence(r.get("confidence")))
                   for r in parse_data.get("intent_ranking") or []
                   if isinstance(r, Mapping) and isinstance(r.get("name"), str)
                   and r["name"] != FALLBACK_INTENT]
        if not ranking and chosen and chosen != FALLBACK_INTENT:
            ranking = [(chosen, chosen_confidence)]
        best = ranking[0] if ranking else (None, None)
        second = ranking[1] if len(ranking) > 1 else (None, None)
        given_id = parse_data.get("message_id")
        return cls(text=text, chosen=chosen, chosen_confidence=chosen_confidence,
                   intent=best[0], confidence=best[1], runner_up=second[0],
                   runner_up_confidence=second[1],
                   message_id=message_id or (given_id if isinstance(given_id, str) else None),
                   timestamp=timestamp)

    @classmethod
    def from_event(cls, event: Mapping) -> Optional["Reading"]:
        """The reading of a Rasa user event (a tracker event as a dict)."""
        parse_data = dict(event.get("parse_data") or {})
        parse_data.setdefault("text", event.get("text"))
        message_id = event.get("message_id")
        return cls.from_parse_data(parse_data,
                                   message_id=message_id if isinstance(message_id, str) else None,
                                   timestamp=_number(event.get("timestamp")))


def _number(value: object) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _confidence(value: object) -> Optional[float]:
    number = _number(value)
    return min(max(number, 0.0), 1.0) if number is not None else None


def capture_key(sender_id: str, reading: Reading) -> str:
    """One key per message: Rasa's message id in its chat (else its time and words)."""
    if reading.message_id:
        source = f"{sender_id}\x00id\x00{reading.message_id}"
    else:
        source = f"{sender_id}\x00at\x00{reading.timestamp!r}\x00{reading.text}"
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- why it is kept
def reasons_for(reading: Reading, net_level: Optional[str], threshold: float) -> list[str]:
    """The reasons a message is worth a look, from how it was read (module doc)."""
    reasons = []
    if reading.fell_back:
        reasons.append("fallback")
    elif reading.chosen_confidence is not None and reading.chosen_confidence < threshold:
        reasons.append("low_confidence")
    # Imported here: the safety package loads spaCy, which the review page's
    # inbox never needs (it lists items already kept).
    from aftercare.safety.triage import RED_FLAG_INTENTS
    net_flags = net_level in NET_RED_FLAG_LEVELS
    intent_flags = reading.chosen in RED_FLAG_INTENTS
    if net_flags != intent_flags:
        reasons.append("net_disagreed")
    return reasons


def _fold(text: str) -> str:
    """Lower case, no apostrophes, punctuation as spaces: how phrases are compared."""
    text = text.casefold().replace("’", "").replace("'", "").replace("‘", "")
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def deidentify(text: str, names: Sequence[str] = ()):
    """aftercare.privacy.deidentify, imported on first use: it loads spaCy (and
    with it TensorFlow, seconds and hundreds of MB), which a process that only
    lists or labels stored items never needs."""
    from aftercare.privacy import deidentify as mask
    return mask(text, names)

@dataclass(frozen=True)
class MisunderstoodPhrases:
    """What patients say when the assistant misunderstood them (the data file's doc)."""
    phrases: tuple[str, ...]
    openings: tuple[str, ...]

    def said_in(self, text: str) -> bool:
        folded = f" {_fold(text)} "
        return (any(f" {phrase} " in folded for phrase in self.phrases)
                or any(folded.startswith(f" {opening} ") for opening in self.openings))


def load_misunderstood(path: Path) -> MisunderstoodPhrases:
    """The phrases file, read again whenever it changes."""
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        raise AuthoringDataError(f"{path}: file not found") from None
    return _load_misunderstood(Path(path), stamp)


@lru_cache(maxsize=4)
def _load_misunderstood(path: Path, stamp: int) -> MisunderstoodPhrases:
    content = read_yaml(path, AuthoringDataError)
    if not isinstance(content, dict):
        raise AuthoringDataError(f"{path}: expected the lists 'phrases' and 'openings'")
    lists = {}
    for key in ("phrases", "openings"):
        value = content.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) and _fold(v) for v in value):
            raise AuthoringDataError(f"{path}: '{key}' must be a list of phrases (text)")
        lists[key] = tuple(dict.fromkeys(_fold(v) for v in value))
    unknown = set(content) - {"phrases", "openings"}
    if unknown:
        raise AuthoringDataError(f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))}"
                                 f" (expected 'phrases' and 'openings')")
    return MisunderstoodPhrases(lists["phrases"], lists["openings"])


# ---------------------------------------------------------------- storing
def known_names(patient: Patient) -> tuple[str, ...]:
    return (patient.name,) if patient.name else ()


def consenting_patient(session: Session, sender_id: str) -> Optional[Patient]:
    """The chat's patient if they agreed to their messages improving the assistant."""
    patient = find_patient_by_sender(session, sender_id)
    return patient if patient is not None and patient.improve_consent is True else None


def _moment(reading: Reading, now: datetime) -> datetime:
    if reading.timestamp is not None:
        try:
            return datetime.fromtimestamp(reading.timestamp, timezone.utc)
        except (OverflowError, OSError, ValueError):
            pass
    return now


def capture_reading(session: Session, patient: Patient, sender_id: str, reading: Reading, *,
                    reasons: Iterable[str], now: datetime, net_level: Optional[NetLevel] = None,
                    answer: Optional[str] = None, staff_id: Optional[int] = None
                    ) -> InboxItem:
    """Keep the message (masked) with these reasons, or add them to its item
    when it is kept already; the caller has checked the patient's consent."""
    key = capture_key(sender_id, reading)
    item = _item_by_key(session, key)
    if item is None:
        received_at = _moment(reading, now)
        day = patient_day(patient, received_at)
        names = known_names(patient)
        candidate = InboxItem(
            capture_key=key, patient_id=patient.id, sender_id=sender_id,
            received_at=received_at, day=day, text=deidentify(reading.text, names).text,
            intent=reading.intent, confidence=reading.confidence, runner_up=reading.runner_up,
            runner_up_confidence=reading.runner_up_confidence,
            net_level=net_level(reading.text, day) if net_level is not None else None,
            answer=deidentify(answer, names).text if answer else None,
            status="new", captured_at=now)
        # Rasa handles one message of a conversation at a time, so the key is
        # free here; if two captures of one message ever raced, the unique key
        # fails the second one's flush (IntegrityError) and the first stands.
        session.add(candidate)
        session.flush()
        item = candidate
    elif answer and item.answer is None:
        item.answer = deidentify(answer, known_names(patient)).text
    have = {r.reason for r in item.reasons}
    for reason in reasons:
        if reason not in have:
            item.reasons.append(InboxReason(reason=reason, staff_id=staff_id, added_at=now))
            have.add(reason)
    session.flush()
    return item


def _item_by_key(session: Session, key: str) -> Optional[InboxItem]:
    return session.execute(select(InboxItem).where(InboxItem.capture_key == key)).scalar()


# ---------------------------------------------------------------- one turn
@dataclass(frozen=True)
class CaptureResult:
    item_id: Optional[int] = None            # the latest message's item, when kept
    reasons: tuple[str, ...] = ()
    previous_item_id: Optional[int] = None   # an earlier message's item that was updated


def said_after(events: Sequence[Mapping], index: int) -> Optional[str]:
    """What the assistant said after the user event at `index`, up to the next one."""
    said = []
    for event in events[index + 1:]:
        if event.get("event") == "user":
            break
        if event.get("event") != "bot":
            continue
        text = event.get("text") if isinstance(event.get("text"), str) else ""
        data = event.get("data") if isinstance(event.get("data"), Mapping) else {}
        buttons = [b.get("title") for b in data.get("buttons") or []
                   if isinstance(b, Mapping) and isinstance(b.get("title"), str)]
        if buttons:
            text = f"{text} (buttons: {' / '.join(buttons)})".strip()
        if text:
            said.append(text)
    return "\n".join(said) or None


def _ran_after(events: Sequence[Mapping], index: int) -> set[str]:
    names = set()
    for event in events[index + 1:]:
        if event.get("event") == "user":
            break
        if event.get("event") == "action" and isinstance(event.get("name"), str):
            names.add(event["name"])
    return names


def _latest_index(events: Sequence[Mapping], parse_data: Mapping) -> Optional[int]:
    """The index of the user event parse_data came from (else the last user event)."""
    message_id = parse_data.get("message_id")
    users = [i for i, e in enumerate(events) if e.get("event") == "user"]
    if message_id:
        for i in reversed(users):
            if events[i].get("message_id") == message_id:
                return i
    return users[-1] if users else None


def capture_turn(session: Session, *, sender_id: str, parse_data: Mapping,
                 events: Sequence[Mapping], net_level: NetLevel, threshold: float,
                 phrases: MisunderstoodPhrases, now: datetime) -> CaptureResult:
    """Capture what this turn shows is worth a look (module doc): the latest
    message, and the earlier one whose answer, fallback or misunderstanding
    only this turn reveals. Nothing at all for a patient without consent."""
    patient = consenting_patient(session, sender_id)
    if patient is None:
        return CaptureResult()
    net_level = _remembered(net_level)
    events = [e for e in events if isinstance(e, Mapping)]
    latest = _latest_index(events, parse_data)
    # The patient's earlier messages in their own words (not button presses,
    # not the bot's check-in triggers), oldest first.
    words = [i for i in range(latest if latest is not None else len(events))
             if events[i].get("event") == "user" and Reading.from_event(events[i]) is not None]
    previous_id = None
    if words:
        previous_id = _finish_previous(session, patient, sender_id, events, words[-1], now,
                                       net_level)
    timestamp = _number(events[latest].get("timestamp")) if latest is not None else None
    reading = Reading.from_parse_data(parse_data, timestamp=timestamp)
    if reading is None:
        return CaptureResult(previous_item_id=previous_id)
    if words and phrases.said_in(reading.text):
        index = words[-1]
        item = capture_reading(session, patient, sender_id, Reading.from_event(events[index]),
                               reasons=["misunderstood"], now=now, net_level=net_level,
                               answer=said_after(events, index))
        previous_id = item.id
    day = patient_day(patient, _moment(reading, now))
    reasons = reasons_for(reading, net_level(reading.text, day), threshold)
    if not reasons:
        return CaptureResult(previous_item_id=previous_id)
    item = capture_reading(session, patient, sender_id, reading, reasons=reasons, now=now,
                           net_level=net_level)
    return CaptureResult(item_id=item.id, reasons=tuple(reasons), previous_item_id=previous_id)


def _remembered(net_level: NetLevel) -> NetLevel:
    """The net reads each (text, day) once per turn, however often it is asked."""
    levels: dict[tuple[str, Optional[int]], Optional[str]] = {}

    def level(text: str, day: Optional[int]) -> Optional[str]:
        if (text, day) not in levels:
            levels[(text, day)] = net_level(text, day)
        return levels[(text, day)]
    return level


def _finish_previous(session: Session, patient: Patient, sender_id: str,
                     events: Sequence[Mapping], index: int, now: datetime,
                     net_level: NetLevel) -> Optional[int]:
    """Give the patient's previous message its answer, and the reason fallback
    if the assistant's dialogue fell back on it; the id of its item, if any."""
    reading = Reading.from_event(events[index])
    if reading is None:
        return None
    answer = said_after(events, index)
    if _ran_after(events, index) & FALLBACK_ACTIONS:
        item = capture_reading(session, patient, sender_id, reading, reasons=["fallback"],
                               now=now, net_level=net_level, answer=answer)
        return item.id
    item = _item_by_key(session, capture_key(sender_id, reading))
    if item is None:
        return None
    if answer and item.answer is None:
        item.answer = deidentify(answer, known_names(patient)).text
        session.flush()
    return item.id
