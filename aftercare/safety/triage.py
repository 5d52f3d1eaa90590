"""Triage: the red-flag net and the NLU intent, combined. A pure function.

Rules (the more urgent of net and intent always wins):

1. The net's assessment of the text (see net.py) gives one level.
2. A red-flag intent (RED_FLAG_INTENTS) gives "urgent" -- at any confidence:
   the NLU's best guess that the patient reports infection signs, an allergic
   reaction, a cold sore or blisters is never ignored. (An allergic reaction is
   urgent unless the net already found an emergency; rule 4 does that.)
   Exception, kept deliberately narrow: when the net *positively saw* the
   topic's words only under a negation, a past-history, third-party or
   hypothetical cue ("no pus", "I had a cold sore last year", "what if it gets
   infected?") and found no sign of that topic, the intent alone does not
   flag. A message where the net saw nothing about the topic still flags on
   the intent, and so does one where the patient goes on to report something
   as hers now ("how long do cold sores last? I've got one": the net's
   `current_report`): then the discounted mention vetoes nothing.
3. A symptom intent (SYMPTOM_INTENTS, e.g. report_redness) on a day past that
   symptom's protocol `routine_after` gives "routine". With an unknown day the
   intent alone gives nothing (a symptom report is only "still there after the
   window" when the day says so); the net still reads the words, including
   durations such as "still red after three weeks".
4. level = max_level(net level, intent level).

`confidence` never lowers a level (a red-flag intent flags at any confidence);
it is accepted so that callers pass what the NLU gave and the rule can be
revisited in one place.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from aftercare.protocol import Protocol
from aftercare.safety.net import Assessment, RedFlagNet, Sign

LEVEL_ORDER: Dict[Optional[str], int] = {None: 0, "routine": 1, "urgent": 2, "emergency": 3}

# intent -> the net's sign topic whose discounted words can veto the intent alone
RED_FLAG_INTENTS: Dict[str, str] = {
    "report_infection_signs": "infection",
    "report_allergic_reaction": "allergy",
    "report_cold_sore": "cold_sore",
    "report_blistering": "blister",
    # a button only (action_clarify): "yes, one of those" to the warning signs
    "confirm_warning_signs": "warning_signs",
}
# intent -> protocol symptom
SYMPTOM_INTENTS: Dict[str, str] = {
    "report_redness": "redness",
    "report_swelling": "swelling",
    "report_dryness_peeling": "dryness_peeling",
    "report_itching": "itching",
    "report_pain_burning": "pain_burning",
    "report_bleeding_scabbing": "bleeding_scabbing",
    "report_bruising": "bruising",
    "report_breakout_bumps": "breakout_bumps",
    "report_pigmentation": "pigmentation",
}
_INTENT_REASONS = {      # short, for staff (the assistant may show them to the patient too)
    "report_infection_signs": "signs of infection reported",
    "report_allergic_reaction": "allergic reaction reported",
    "report_cold_sore": "cold sore reported",
    "report_blistering": "blistering reported",
    "confirm_warning_signs": "patient said yes to the warning signs after an unclear message",
}
_SYMPTOM_NAMES = {
    "dryness_peeling": "dryness/peeling", "pain_burning": "pain/burning",
    "bleeding_scabbing": "bleeding/scabbing", "breakout_bumps": "breakouts/bumps",
}
# The cold-sore topic also covers blisters on the lip, and blister reports can
# be a cold sore: a discount on either topic alone must not veto the other.
_RELATED_TOPICS = {"cold_sore": {"cold_sore", "blister"}, "blister": {"blister", "cold_sore"}}


def max_level(a: Optional[str], b: Optional[str]) -> Optional[str]:
    """The more urgent of two levels (None = no flag)."""
    for level in (a, b):
        if level not in LEVEL_ORDER:
            raise ValueError(f"unknown level {level!r}")
    return a if LEVEL_ORDER[a] >= LEVEL_ORDER[b] else b


@dataclass(frozen=True)
class Triage:
    level: Optional[str]
    reasons: List[str] = field(default_factory=list)
    signs: List[Sign] = field(default_factory=list)
    source: Optional[str] = None       # "net" | "intent" | "net+intent" | None
    assessment: Optional[Assessment] = None

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def _intent_level(intent: Optional[str], day: Optional[int], assessment: Assessment,
                  protocol: Protocol):
    """(level, reason) the intent alone supports."""
    if not intent:
        return None, None
    if intent in RED_FLAG_INTENTS:
        topics = _RELATED_TOPICS.get(RED_FLAG_INTENTS[intent], {RED_FLAG_INTENTS[intent]})
        saw_discounted = bool(topics & assessment.discounted_topics)
        saw_positive = bool(topics & assessment.topics)
        if saw_discounted and not saw_positive and not assessment.current_report:
            return None, None
        return "urgent", _INTENT_REASONS[intent]
    symptom = SYMPTOM_INTENTS.get(intent)
    if symptom is not None:
        course = protocol.symptoms[symptom]
        if day is not None and day > course.routine_after:
            return "routine", (f"{_SYMPTOM_NAMES.get(symptom, symptom)} still reported on day {day} "
                               f"(expected to settle by day {course.routine_after})")
    return None, None


def triage(text: Optional[str], intent: Optional[str], confidence: float, day: Optional[int],
           net: RedFlagNet, protocol: Protocol) -> Triage:
    """Combine the net's assessment of `text` with the NLU `intent` (see module doc)."""
    assessment = net.assess(text, day)
    day = assessment.day              # the net reads "9" as 9 and nonsense as unknown
    net_level = assessment.level
    intent_level, intent_reason = _intent_level(intent, day, assessment, protocol)
    level = max_level(net_level, intent_level)
    reasons = [sign.reason for sign in assessment.signs]
    reasons = list(dict.fromkeys(reasons))
    if intent_reason:
        reasons.append(intent_reason)
    if level is None:
        source = None
    elif LEVEL_ORDER[net_level] == LEVEL_ORDER[level] and LEVEL_ORDER[intent_level] == LEVEL_ORDER[level]:
        source = "net+intent"
    elif LEVEL_ORDER[net_level] == LEVEL_ORDER[level]:
        source = "net"
    else:
        source = "intent"
    return Triage(level=level, reasons=reasons, signs=list(assessment.signs), source=source,
                  assessment=assessment)
