"""De-identify a patient's message for content authors: names, phone numbers,
e-mail and web addresses, exact dates, street addresses, postcodes, towns after
"I live in", and long identifying numbers become placeholders; every other
character stays exactly as the patient wrote it.

The placeholders (`<name>`, `<phone>`, ...) use angle brackets only: square and
curly brackets would be read as entity annotations in Rasa's training data.

    >>> deidentify("thanks, Anna - call me on 07700 900123").text
    'thanks, <name> - call me on <phone>'

The spans say what was replaced (kind, start, end in the original text); the
originals themselves are never kept, logged or returned.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from aftercare.privacy.lexicon import Lexicon, fold, load_lexicon
from aftercare.privacy.names import NameFinder, build_pipeline
from aftercare.privacy.patterns import (
    Found, find_addresses, find_dates, find_emails_urls, find_numbers,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
DATA_DIR = PROJECT_ROOT / "data" / "privacy"
ENTITIES_PATH = PROJECT_ROOT / "data" / "spacy" / "entities.yml"

KINDS = ("name", "phone", "email", "url", "date", "address", "place", "number")
PLACEHOLDERS = {kind: f"<{kind}>" for kind in KINDS}
# Where two kinds overlap, the region takes the first of these.
_PRIORITY = ("email", "url", "address", "date", "phone", "number", "place", "name")


@dataclass(frozen=True)
class MaskedSpan:
    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class Deidentified:
    text: str
    spans: tuple[MaskedSpan, ...]

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(span.kind for span in self.spans)


class Deidentifier:
    """Built once (the spaCy pipeline and the word lists), then used per message."""

    def __init__(self, data_dir: Path = DATA_DIR, entities_path: Path = ENTITIES_PATH) -> None:
        self.lexicon: Lexicon = load_lexicon(data_dir)
        self.names = NameFinder(build_pipeline(self.lexicon, entities_path), self.lexicon)
        self._units = frozenset(self.lexicon.cues["units"])

    def __call__(self, text: str, known_names: Sequence[str] = ()) -> Deidentified:
        if not isinstance(text, str):
            raise TypeError(f"deidentify() needs the message as text, got {type(text).__name__}")
        found = find_emails_urls(text)
        found += [f for f in find_dates(text, self._units) if not _overlaps(found, f)]
        found += find_numbers(text, self.lexicon.cues["id_keywords"], found)
        found += find_addresses(text, self.lexicon, found)
        taken = list(found)
        found += [f for f in self.names.find(text, _known(known_names))
                  if not _overlaps(taken, f)]
        spans = _merge(text, found)
        return Deidentified(_replace(text, spans), spans)


def _known(known_names: Sequence[str]) -> frozenset[str]:
    """The patient's own names as folded words: "Anne-Marie O'Neill" -> anne, marie, o'neill."""
    if isinstance(known_names, str):
        known_names = [known_names]
    words = set()
    for name in known_names:
        for part in re.split(r"[\s,\-]+", str(name)):
            part = re.sub(r"['’]s$", "", part.strip(".'’\"()"))
            if len(part) >= 2:
                words.add(fold(part))
    return frozenset(words)


def _overlaps(spans: list[Found], span: Found) -> bool:
    return any(s.start < span.end and span.start < s.end for s in spans)


def _merge(text: str, found: list[Found]) -> tuple[MaskedSpan, ...]:
    """Overlapping spans become one region with the strongest kind; names or addresses
    separated only by spaces, a hyphen or a comma (addresses) become one."""
    regions: list[list] = []
    for span in sorted(found, key=lambda s: (s.start, -s.end)):
        if span.end <= span.start:
            continue
        if regions and span.start < regions[-1][2]:
            region = regions[-1]
            region[2] = max(region[2], span.end)
            if _PRIORITY.index(span.kind) < _PRIORITY.index(region[0]):
                region[0] = span.kind
            continue
        if regions and regions[-1][0] == span.kind and span.kind in ("name", "address", "place"):
            gap = text[regions[-1][2]:span.start]
            joins = r"[ \t]*-?[ \t]*" if span.kind != "address" else r"[ \t]*[,\-]?[ \t]*"
            if re.fullmatch(joins, gap):
                regions[-1][2] = span.end
                continue
        regions.append([span.kind, span.start, span.end])
    return tuple(MaskedSpan(kind, start, end) for kind, start, end in regions)


def _replace(text: str, spans: tuple[MaskedSpan, ...]) -> str:
    parts, position = [], 0
    for span in spans:
        parts.append(text[position:span.start])
        parts.append(PLACEHOLDERS[span.kind])
        position = span.end
    parts.append(text[position:])
    return "".join(parts)


@lru_cache(maxsize=1)
def default_deidentifier() -> Deidentifier:
    """The shipped word lists and pipeline, built on first use and kept."""
    return Deidentifier()


def deidentify(text: str, known_names: Sequence[str] = ()) -> Deidentified:
    """The message with identifiers replaced by placeholders, and what was replaced."""
    return default_deidentifier()(text, known_names)
