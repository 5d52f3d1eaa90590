"""De-identification of patients' messages for the content authors' inbox.

`deidentify(text, known_names)` returns the text with names, phone numbers,
e-mail and web addresses, exact dates, addresses and long identifying numbers
replaced by placeholders, and the spans it replaced. The word lists and cues
are data in data/privacy/ (content authors extend them); the measuring set is
tests/deidentify_cases.tsv (`aftercare privacy measure`).
"""
from aftercare.privacy.deidentify import (
    KINDS,
    PLACEHOLDERS,
    Deidentified,
    Deidentifier,
    MaskedSpan,
    default_deidentifier,
    deidentify,
)
from aftercare.privacy.lexicon import LexiconError

__all__ = [
    "KINDS", "PLACEHOLDERS", "Deidentified", "Deidentifier", "LexiconError", "MaskedSpan",
    "default_deidentifier", "deidentify",
]
