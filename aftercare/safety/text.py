"""Text as the safety net reads it: respelled, normalised, tokenised with lemmas.

The same parsing serves the patterns (each pattern word is compared by its
dictionary form) and the patients' messages; respelling (`Spellings`) and
cutting very long input into pieces apply to messages only.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional

from spacy.language import Language
from spacy.tokens import Doc

# Lemmas the lookup table gets wrong for contractions and chat spellings.
_LEMMA_FIXES = {
    "does": "do", "'s": "be", "ca": "can", "wo": "will", "ai": "be", "sha": "shall",
    "'re": "be", "'ll": "will", "'d": "would", "'ve": "have", "'m": "be", "ve": "have",
    "n't": "not", "nt": "not",
}
# comparatives keep their meaning: "worse" is not "wrong", "better" is not "well"
_KEEP_FORM = {"worse", "worst", "better", "best", "more", "most", "less", "least"}
_CHAT_SPELLINGS = [
    (re.compile(r"\bits\b"), "it's"),
    (re.compile(r"\btheres\b"), "there's"),
    (re.compile(r"\bthats\b"), "that's"),
    (re.compile(r"\bwhats\b"), "what's"),
]
PIECE_CHARS = 20_000


def normalise(text: str) -> str:
    """Lower case, straight quotes, a space after a full stop that runs into the
    next word, letters repeated 3+ times squeezed to 2, "its" read as "it's"."""
    text = text.lower()
    text = (text.replace("\u2019", "'").replace("\u2018", "'").replace("\u02bc", "'")
            .replace("\u201c", '"').replace("\u201d", '"').replace("`", "'"))
    text = re.sub(r"([.!?,;])(?=[^\W\d_])", r"\1 ", text)
    text = re.sub(r"([^\W\d_])\1{2,}", r"\1\1", text)
    for pattern, replacement in _CHAT_SPELLINGS:
        text = pattern.sub(replacement, text)
    return text


def parse(nlp: Language, text: str) -> Doc:
    """Normalised text -> Doc whose lemmas the patterns can rely on: contractions
    fixed ("does" -> do, "ca" -> can, "'s" -> be) and comparatives kept ("worse"
    is not "wrong", "redder" is not just "red")."""
    doc = nlp(normalise(text))
    for token in doc:
        lower = token.lower_
        fixed = _LEMMA_FIXES.get(lower)
        if fixed is not None:
            token.lemma_ = fixed
        elif not token.lemma_:
            token.lemma_ = lower
        elif lower in _KEEP_FORM or (lower.endswith(("er", "est")) and token.lemma_ != lower):
            token.lemma_ = lower
    return doc


class Spellings:
    """`spellings:` run-together or chat spellings of one word -> the words meant
    ("mylips" -> "my lips"). Whole words only, any case; messages only."""

    def __init__(self, table: Dict[str, str]):
        self.table = dict(table)
        self._pattern: Optional[re.Pattern[str]] = None
        if self.table:
            alternatives = "|".join(re.escape(t) for t in sorted(self.table, key=len, reverse=True))
            self._pattern = re.compile(rf"(?<![\w'])({alternatives})(?![\w'])", re.IGNORECASE)

    def __getitem__(self, typed: str) -> str:
        return self.table[typed]

    def __contains__(self, typed: object) -> bool:
        return typed in self.table

    def respell(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self.table[m.group(1).lower()], text)


def pieces(text: str) -> List[str]:
    """Very long input is read in pieces of about 20,000 characters, cut at a
    line break or sentence end where possible, so that no input is too long
    for spaCy and every part of it is read."""
    if len(text) <= PIECE_CHARS:
        return [text]
    result, start = [], 0
    while start < len(text):
        end = min(len(text), start + PIECE_CHARS)
        if end < len(text):
            cut = max(text.rfind("\n", start, end), text.rfind(". ", start, end))
            if cut > start + PIECE_CHARS // 2:
                end = cut + 1
        result.append(text[start:end])
        start = end
    return result
