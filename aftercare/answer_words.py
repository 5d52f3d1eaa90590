"""Patients' button presses and recorded symptoms in words, for staff.

A tapped button reaches the store as its payload ("/report_redness"); staff
read the words the assistant itself uses for that meaning, the
utter_meaning_<intent> responses of domain.yml ("My skin is red"). The few
intents without such a response have their words here. The review page and
`aftercare patients show` both read answers through this module.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Dict, Optional

import yaml

from aftercare.settings import PROJECT_ROOT

DOMAIN_PATH = PROJECT_ROOT / "domain.yml"
MEANING_PREFIX = "utter_meaning_"
# Intents a button sends that have no utter_meaning_ response (never offered
# in "Did you mean...?"), and the "fine" the actions record for "all good".
OWN_WORDS: Dict[str, str] = {
    "report_feeling_fine": "All good",
    "fine": "All good",
    "report_no_change": "Same as yesterday",
    "affirm": "Yes",
    "deny": "No",
    "ask_human": "Talk to a person",
    "confirm_warning_signs": "Yes, one of those warning signs",
}
# "/intent" or "/intent{...entities}", as Rasa reads a payload.
_PAYLOAD = re.compile(r"/([A-Za-z_][A-Za-z0-9_]*)(\{.*\})?", re.S)


@lru_cache(maxsize=4)
def _meanings(path: str, mtime: float) -> Dict[str, str]:
    try:
        responses = (yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}).get(
            "responses") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        return {}
    words = {}
    for name, variations in responses.items():
        if not str(name).startswith(MEANING_PREFIX) or not isinstance(variations, list):
            continue
        text = variations[0].get("text") if variations and isinstance(variations[0], dict) \
            else None
        if isinstance(text, str) and text.strip():
            words[str(name)[len(MEANING_PREFIX):]] = text.strip()
    return words


def meanings(path: Path = DOMAIN_PATH) -> Dict[str, str]:
    """intent -> words, from domain.yml (re-read when it changes) and OWN_WORDS."""
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = 0.0
    return {**OWN_WORDS, **_meanings(str(path), mtime)}


def intent_words(intent: str, path: Path = DOMAIN_PATH) -> Optional[str]:
    """The words for an intent or recorded symptom code; None if there are none."""
    return meanings(path).get(intent)


def payload_intent(text: str) -> Optional[str]:
    """The intent of a button payload ("/report_redness" -> "report_redness"), or None
    for anything a patient typed."""
    match = _PAYLOAD.fullmatch(text.strip()) if isinstance(text, str) else None
    return match.group(1) if match else None


def answer_words(text: str, path: Path = DOMAIN_PATH) -> str:
    """What the patient said, in words: a tapped button as its meaning with
    "(tapped)" after it, typed text as it is."""
    intent = payload_intent(text)
    if intent is None:
        return text
    words = intent_words(intent, path)
    if words is None:
        words = intent.replace("_", " ")
    return f"“{words}” (tapped)"


def symptom_words(code: str) -> str:
    """A recorded symptom code in a few plain words: report_redness -> redness,
    fine -> all good."""
    if code in ("fine", "report_feeling_fine"):
        return "all good"
    if code == "report_no_change":
        return "same as before"
    if code.startswith("report_"):
        code = code[len("report_"):]
    return code.replace("_", " ")
