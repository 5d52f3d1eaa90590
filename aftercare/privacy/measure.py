"""How well de-identification does on a measuring set (tests/deidentify_cases.tsv).

The file is tab-separated with a header line: text, planted, known_names, keep.
`planted` are the exact substrings that must be masked, `keep` those that must
stay as written, `known_names` the patient's own names as the inbox would pass
them; each separated by " | ". A literal \\n in the text is a line break.

Recall is per planted item: every occurrence must be masked (spaces inside it
aside). A kept item is wrongly masked when any mask touches it.
"""
from __future__ import annotations

import csv
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from aftercare.privacy.deidentify import Deidentified, MaskedSpan

COLUMNS = ["text", "planted", "known_names", "keep"]
SEPARATOR = " | "


class CaseFileError(ValueError):
    """The measuring set cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Case:
    line: int
    text: str
    planted: tuple[str, ...]
    known_names: tuple[str, ...]
    keep: tuple[str, ...]


def split_items(cell: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (cell or "").split(SEPARATOR.strip())
                 if part.strip())


def read_cases(path: Path) -> list[Case]:
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8", newline="")
    except FileNotFoundError:
        raise CaseFileError(f"{path}: file not found") from None
    with handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        if reader.fieldnames != COLUMNS:
            raise CaseFileError(f"{path}: the header must be {' <tab> '.join(COLUMNS)}, "
                                f"got {reader.fieldnames}")
        cases = []
        for row in reader:
            line = reader.line_num
            if None in row or row["text"] is None:
                raise CaseFileError(f"{path}:{line}: expected {len(COLUMNS)} tab-separated "
                                    f"columns")
            text = row["text"].replace("\\n", "\n")
            case = Case(line, text, split_items(row["planted"]), split_items(row["known_names"]),
                        split_items(row["keep"]))
            for item in case.planted + case.keep:
                if item not in text:
                    raise CaseFileError(f"{path}:{line}: {item!r} is not in the text")
            cases.append(case)
    if not cases:
        raise CaseFileError(f"{path}: no cases")
    return cases


@dataclass(frozen=True)
class Finding:
    line: int
    kind: str
    item: str
    masked_text: str


@dataclass
class Report:
    messages: int = 0
    messages_with_planted: int = 0
    planted: int = 0
    masked: int = 0
    by_kind: dict[str, list[int]] = field(default_factory=dict)  # kind: [masked, planted]
    kept: int = 0
    kept_masked: int = 0
    misses: list[Finding] = field(default_factory=list)
    overmasked: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def recall(self) -> float:
        return self.masked / self.planted if self.planted else 1.0

    @property
    def overmasking_rate(self) -> float:
        return self.kept_masked / self.kept if self.kept else 0.0

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else float("inf")

    @property
    def ms_per_message(self) -> float:
        return 1000 * self.seconds / self.messages if self.messages else 0.0


def _occurrences(text: str, item: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(re.escape(item), text)]


def _covered(spans: Sequence[MaskedSpan], start: int, end: int, text: str) -> bool:
    return all(text[i].isspace() or any(s.start <= i < s.end for s in spans)
               for i in range(start, end))


def _touched(spans: Sequence[MaskedSpan], start: int, end: int) -> bool:
    return any(s.start < end and start < s.end for s in spans)


def _kind_at(spans: Sequence[MaskedSpan], position: int) -> str | None:
    return next((s.kind for s in spans if s.start <= position < s.end), None)


_MONTH_WORD = re.compile(r"\b(jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|"
                         r"sept?(ember)?|oct(ober)?|nov(ember)?|dec(ember)?)\b|\d(st|nd|rd|th)\b")
_NUMERIC_DATE = re.compile(r"\d{1,4}[/.\-]\d{1,2}([/.\-]\d{2,4})?")
_POSTCODE_LIKE = re.compile(r"\b[a-z]{1,2}\d[a-z\d]?\s?\d[a-z]{2}\b")


def guess_kind(item: str) -> str:
    """What a planted item is, for the per-kind figures when it was not masked."""
    lower = item.lower()
    digits = sum(ch.isdigit() for ch in item)
    if re.search(r"@\w+\.", item) or " at " in lower and " dot " in lower:
        return "email"
    if re.match(r"(https?://|www\.)", lower) or re.search(r"\.[a-z]{2,}/", lower):
        return "url"
    if item.startswith("@"):
        return "name"
    if _MONTH_WORD.search(lower) or _NUMERIC_DATE.fullmatch(item):
        return "date"
    if _POSTCODE_LIKE.search(lower) or digits and re.search(r"[a-z]{3,}", lower):
        return "address"
    if digits >= 9 and re.fullmatch(r"[+\d\s().\-]+", item):
        return "phone"
    return "number" if digits else "name"


def measure(cases: Sequence[Case], deidentify: Callable[[str, Sequence[str]], Deidentified],
            clock: Callable[[], float] = time.perf_counter) -> Report:
    report = Report(messages=len(cases))
    started = clock()
    results = [deidentify(case.text, case.known_names) for case in cases]
    report.seconds = clock() - started
    for case, result in zip(cases, results):
        report.messages_with_planted += bool(case.planted)
        for item in case.planted:
            occurrences = _occurrences(case.text, item)
            masked = all(_covered(result.spans, s, e, case.text) for s, e in occurrences)
            start = occurrences[0][0] + len(item) - len(item.lstrip())
            kind = _kind_at(result.spans, start) if masked else None
            kind = kind or guess_kind(item)
            counts = report.by_kind.setdefault(kind, [0, 0])
            counts[1] += 1
            report.planted += 1
            if masked:
                counts[0] += 1
                report.masked += 1
            else:
                report.misses.append(Finding(case.line, kind, item, result.text))
        for item in case.keep:
            report.kept += 1
            if any(_touched(result.spans, s, e) for s, e in _occurrences(case.text, item)):
                report.kept_masked += 1
                report.overmasked.append(Finding(case.line, "keep", item, result.text))
    return report
