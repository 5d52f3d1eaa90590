"""The red-flag net: clinician-maintained patterns matched on lemmas.

The patterns live in data/safety/red_flags.yml (its header explains the format
to clinicians, cue by cue). `RedFlagNet` ties the parts together:

- patterns.py validates the file (a PatternError names the file and field);
- matchers.py compiles every word group, cue list and rule phrase once into
  spaCy matchers over the project's blank English pipeline with lookup lemmas;
- text.py respells, normalises and parses a message;
- reading.py reads one message: each match is negated, past, someone else's,
  hypothetical, resolved or positive, and a sign's rules are met or not;
- here, `assess` applies each sign's day conditions from the clinic's protocol
  and returns the most urgent level a message reaches and the signs behind it.

An unknown day satisfies min_day and worse_after (the safe direction) but not
after_symptom_window / after_expected: without a day nothing is "still there
after the window" unless the words say so (unknown_day_needs). Signs matched
only through discounted words are kept as `discounted`, which triage uses to
decide when an intent alone must not flag; `current_report` says the message
has a refers_back cue ("... I've got one"), and then triage never lets a
discounted mention veto a red-flag intent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional, Union

from spacy.language import Language

from aftercare.language import blank_with_lemmas
from aftercare.protocol import Protocol, load_protocol
from aftercare.safety.matchers import Matchers
from aftercare.safety.patterns import (LEVELS, RETURN, WORSE, PatternError, Patterns, SignSpec,
                                       literal_key, load_patterns, parse_patterns)
from aftercare.safety.reading import Reading, ReadingSetup
from aftercare.safety.text import Spellings, parse, pieces

__all__ = ["LEVELS", "Assessment", "Discounted", "PatternError", "RedFlagNet", "Sign"]

_RANK = {None: 0, "routine": 1, "urgent": 2, "emergency": 3}


@dataclass(frozen=True)
class Sign:
    """One red-flag sign found in a message."""
    id: str
    level: str
    reason: str
    matched: str
    topic: Optional[str] = None


@dataclass(frozen=True)
class Discounted:
    """A sign whose words were present but negated, past, third-party,
    hypothetical or resolved."""
    id: str
    level: str
    topic: Optional[str]
    cue: str          # negated | history | third_party | hypothetical | resolved
    matched: str


@dataclass
class Assessment:
    level: Optional[str]
    signs: List[Sign] = field(default_factory=list)
    discounted: List[Discounted] = field(default_factory=list)
    gated: List[Sign] = field(default_factory=list)   # matched, but the day rules it out
    day: Optional[int] = None
    current_report: bool = False   # a refers_back cue: "... I've got one", "they're swelling now"

    @property
    def reason(self) -> str:
        return "; ".join(dict.fromkeys(sign.reason for sign in self.signs))

    @property
    def flagged(self) -> bool:
        return self.level is not None

    @property
    def topics(self) -> set:
        return {s.topic for s in self.signs if s.topic}

    @property
    def discounted_topics(self) -> set:
        return {d.topic for d in self.discounted if d.topic}


class RedFlagNet:
    """Red-flag patterns compiled once; `assess` is safe to call for every message."""

    def __init__(self, data: Union[Dict[str, Any], Patterns], protocol: Protocol,
                 source: str = "<patterns>"):
        patterns = data if isinstance(data, Patterns) else parse_patterns(data, source)
        patterns.check_symptoms(protocol.symptoms)
        self.source = patterns.source
        self.protocol = protocol
        self.settings = patterns.settings
        self.spellings = Spellings(patterns.spellings)
        self.signs: List[SignSpec] = list(patterns.signs)
        self.nlp: Language = blank_with_lemmas()
        self.matchers = Matchers(self.nlp, self.source, self.settings.max_patterns_per_phrase)
        for name, phrases in patterns.words.items():
            self.matchers.add(name, phrases, f"words.{name}")
        for kind, phrases in patterns.cues.items():
            if phrases:
                self.matchers.add(f"cue:{kind}", phrases, f"cues.{kind}")
        for spec in self.signs:
            for phrase in spec.literals:
                if literal_key(phrase) not in self.matchers:
                    self.matchers.add(literal_key(phrase), [phrase], f"signs.{spec.id}")
            if spec.unless:
                self.matchers.add(spec.unless_key, spec.unless, f"signs.{spec.id}.unless")
        self._setup = ReadingSetup(
            negation_window=self.settings.negation_window,
            after_window=self.settings.negation_after_window,
            hypothetical_window=self.settings.hypothetical_window,
            concept_keys=frozenset(k for k in self.matchers.phrases
                                   if not k.startswith(("cue:", "unless:"))),
            group_topics=_group_topics(self.signs))

    @classmethod
    def from_file(cls, path: Union[Path, str],
                  protocol: Union[Protocol, Path, str]) -> "RedFlagNet":
        if not isinstance(protocol, Protocol):
            protocol = load_protocol(protocol)
        return cls(load_patterns(path), protocol)

    # ------------------------------------------------------------------ assessing
    def read(self, text: str) -> Reading:
        """One piece of a patient's message, read (see reading.py)."""
        doc = parse(self.nlp, self.spellings.respell(text))
        return Reading(doc, self.matchers.find(doc), self._setup)

    def assess(self, text: Optional[str], day: Optional[int] = None) -> Assessment:
        """The red-flag level of one patient message on recovery day `day`
        (0 = treatment day; None = unknown). Never raises on odd text."""
        text = "" if text is None else text if isinstance(text, str) else str(text)
        if day is not None:
            try:
                day = int(day)
            except (TypeError, ValueError):
                day = None          # an unreadable day is an unknown day
        if not text.strip():
            return Assessment(level=None, day=day)
        fired: Dict[str, Sign] = {}
        gated: Dict[str, Sign] = {}
        discounted: Dict[str, Discounted] = {}
        current_report = False
        for piece in pieces(text):
            reading = self.read(piece)
            self._judge(reading, day, fired, gated, discounted)
            current_report = current_report or bool(reading.refers_back_starts)
        for sign_id in fired:
            discounted.pop(sign_id, None)
            gated.pop(sign_id, None)
        signs = sorted(fired.values(), key=lambda s: -_RANK[s.level])
        return Assessment(level=signs[0].level if signs else None, signs=signs,
                          discounted=list(discounted.values()), gated=list(gated.values()),
                          day=day, current_report=current_report)

    def _judge(self, reading: Reading, day: Optional[int], fired: Dict[str, Sign],
               gated: Dict[str, Sign], discounted: Dict[str, Discounted]) -> None:
        """Adds what one reading fires, rules out by the day, or discounts."""
        for spec in self.signs:
            if spec.id in fired:
                continue
            verdict = reading.evaluate(spec)
            if verdict.matched is not None:
                sign = Sign(spec.id, spec.level, spec.reason, verdict.matched, spec.topic)
                if self._day_allows(spec, day):
                    fired[spec.id] = sign
                    continue
                if day is None and spec.unknown_day_rules:    # "STILL red"
                    matched = reading.evaluate(spec, spec.unknown_day_rules).matched
                    if matched is not None:
                        fired[spec.id] = Sign(spec.id, spec.level, spec.reason, matched,
                                              spec.topic)
                        continue
                gated[spec.id] = sign
            elif verdict.discount is not None and spec.id not in discounted:
                discounted[spec.id] = Discounted(spec.id, spec.level, spec.topic,
                                                 verdict.discount.cue, verdict.discount.matched)

    def _day_allows(self, spec: SignSpec, day: Optional[int]) -> bool:
        """Day conditions. With an unknown day, min_day and worse_after count as
        met -- the safe direction: a patient who writes that it is getting worse
        is taken at her word -- but "still there after the window"
        (after_symptom_window) and "present after the normal course"
        (after_expected) cannot be claimed without a day; the patient's own
        words cover those ("still red", "after three weeks": unknown_day_needs
        and symptom_persisting_long)."""
        if day is None:
            return not (spec.after_symptom_window or spec.after_expected)
        symptoms = self.protocol.symptoms
        if spec.min_day is not None and day < spec.min_day:
            return False
        if spec.after_symptom_window and day <= symptoms[spec.after_symptom_window].routine_after:
            return False
        if spec.after_expected and day <= symptoms[spec.after_expected].expected_until:
            return False
        if spec.worse_after:
            course = symptoms[spec.worse_after]
            limit = course.urgent_if_worse_after
            if day <= (course.expected_until if limit is None else limit):
                return False
        return True


def _group_topics(signs: List[SignSpec]) -> Dict[str, FrozenSet[str]]:
    """Word group -> topics of the signs that use it ("no yellow crust" speaks to
    an earlier worry about infection). WORSE and RETURN belong to no topic."""
    topics: Dict[str, set] = {}
    for spec in signs:
        if not spec.topic:
            continue
        for rule in spec.rules:
            for keys in rule.parts:
                for key in keys:
                    if key not in (WORSE, RETURN):
                        topics.setdefault(key, set()).add(spec.topic)
    return {key: frozenset(value) for key, value in topics.items()}
