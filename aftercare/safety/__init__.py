"""The red-flag safety net: signs that need a person, found in patients' messages.

`RedFlagNet` (net.py) reads the clinician-maintained patterns in
data/safety/red_flags.yml and assesses one message; `triage` (triage.py)
combines that assessment with the NLU intent. A missed red flag is the one
failure this product cannot have, so every rule errs towards the more urgent
level.

The net's parts: patterns.py (the file's schema), matchers.py (phrases
compiled into spaCy matchers), text.py (respelling and parsing a message),
reading.py (one message read: the status of every match).
"""
from aftercare.safety.net import (
    LEVELS,
    Assessment,
    Discounted,
    PatternError,
    RedFlagNet,
    Sign,
)
from aftercare.safety.triage import (
    LEVEL_ORDER,
    RED_FLAG_INTENTS,
    SYMPTOM_INTENTS,
    Triage,
    max_level,
    triage,
)

__all__ = [
    "LEVELS", "LEVEL_ORDER", "RED_FLAG_INTENTS", "SYMPTOM_INTENTS",
    "Assessment", "Discounted", "PatternError", "RedFlagNet", "Sign", "Triage",
    "max_level", "triage",
]
