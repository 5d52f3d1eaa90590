"""Split a patient's message into sentences.

Patients write with chat punctuation: "day 3!! still red... is that ok??",
line breaks instead of full stops, emoji at the end of a thought. A sentence
ends at . ! ? … (any run of them), at a line break, and after an emoji that is
followed by more words. Decimal numbers ("38.5") and abbreviations such as
"e.g." are not ends.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "approx.", "dr.", "mrs.", "mr.", "ms.", "vs.")
# an end mark (run of .!?…) followed by space, or a line break, or an emoji
_BOUNDARY = re.compile(
    r"(?<=[.!?…])(?<!\d\.)\s+"          # "still red. is that ok" (not "38. 5")
    r"|\s*\n+\s*"                       # line breaks
    r"|(?<=[\U0001F300-\U0001FAFF\u2600-\u27BF])\s+(?=[A-Za-z])"  # "ugh 😭 can I ..."
)
_QUESTION_START = re.compile(
    r"^(is|are|am|was|were|can|could|should|shall|will|would|do|does|did|how|what|when|"
    r"where|why|which|who|may|might|any|ok|okay|normal)\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]")


@dataclass(frozen=True)
class Sentence:
    text: str
    is_question: bool


def split_sentences(text: str) -> list[Sentence]:
    """The message's sentences in order; a message without any end mark is one
    sentence. Pieces without a letter (a lone emoji, "!!") join the previous one."""
    protected = text
    for abbreviation in _ABBREVIATIONS:
        protected = re.sub(re.escape(abbreviation), abbreviation.replace(".", "\x00"),
                           protected, flags=re.IGNORECASE)
    pieces: list[str] = []
    for piece in _BOUNDARY.split(protected):
        piece = piece.replace("\x00", ".").strip()
        if not piece:
            continue
        if pieces and not _WORD.search(piece):
            pieces[-1] = f"{pieces[-1]} {piece}"
        else:
            pieces.append(piece)
    return [Sentence(p, _is_question(p)) for p in pieces]


def _is_question(sentence: str) -> bool:
    return "?" in sentence or bool(_QUESTION_START.match(sentence.strip()))
