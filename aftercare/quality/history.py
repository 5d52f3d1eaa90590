"""The quality history: one report per trained model, in a directory
(settings.quality_dir, results/quality/ by default).

save() writes `<model id>.json`; a newer report of the same model replaces
it. load() reads them all back, oldest model first, and skips, with a warning
naming the file, anything that is not a readable report. The rest lines up
figures across models for `aftercare evaluate --history` and the authoring
page: per-intent F1 with the change since the previous model, and the series
review/plots.py draws.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from aftercare.quality.record import QualityRecord, RecordError, SetFigures, parse_record

CROSS_VALIDATION = "cross-validation"  # a source of per-intent F1 besides the sets
DEFAULT_LAST = 5


@dataclass(frozen=True)
class Entry:
    path: Path
    record: QualityRecord

    @property
    def label(self) -> str:
        """Short, for plots: when the model was trained (UTC)."""
        return f"{self.record.model.trained_at:%d %b %H:%M}"


@dataclass(frozen=True)
class History:
    entries: list[Entry]   # oldest model first
    warnings: list[str]    # one per file skipped

    def last(self, count: int = DEFAULT_LAST) -> list[Entry]:
        return self.entries[-count:] if count > 0 else []


@dataclass(frozen=True)
class IntentRow:
    intent: str
    f1: list[Optional[float]]   # one per model, oldest first; None: not measured there
    change: Optional[float]     # newest minus the model before it
    support: Optional[int]      # the newest model's examples of it (set, or training data)


@dataclass(frozen=True)
class F1Series:
    """What f1_over_models_svg draws: one line per intent across the models."""
    models: list[str]
    lines: dict[str, list[Optional[float]]]


def save(record: dict, directory: Path) -> Path:
    """Write the report as `<model id>.json`, whole or not at all."""
    parsed = parse_record(record)  # never keep what could not be read back
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{parsed.model.id}.json"
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=directory,
                                         prefix=f".{parsed.model.id}.", suffix=".tmp",
                                         delete=False)
    try:
        with handle:
            json.dump(record, handle, ensure_ascii=False, indent=1)
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return target


def load(directory: Path) -> History:
    entries: list[Entry] = []
    warnings: list[str] = []
    paths = sorted(directory.glob("*.json")) if directory.is_dir() else []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            record = parse_record(data)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            warnings.append(f"skipped {path}: not a readable JSON file ({exc})")
            continue
        except RecordError as exc:
            warnings.append(f"skipped {path}: not a quality report ({exc})")
            continue
        if record.model.id != path.stem:
            warnings.append(f"skipped {path}: it holds the report of model {record.model.id}")
            continue
        entries.append(Entry(path, record))
    entries.sort(key=lambda e: (e.record.model.trained_at, e.record.recorded_at))
    return History(entries, warnings)


def cross_validation_for(directory: Path, key: str) -> Optional[dict]:
    """The stored cross-validation run on the same inputs (crossval.inputs_key),
    newest first, with `reused_from` naming the model it was run for."""
    for entry in reversed(load(directory).entries):
        cv = entry.record.cross_validation
        if cv.key == key:
            return {**cv.dict(), "reused_from": cv.reused_from or entry.record.model.id}
    return None


def set_names(entries: Sequence[Entry]) -> list[str]:
    """The sets measured, those of the newest model first, in its order."""
    names: list[str] = []
    for entry in reversed(entries):
        names += [name for name in entry.record.sets if name not in names]
    return names


def figures(entries: Sequence[Entry], set_name: str) -> list[Optional[SetFigures]]:
    return [entry.record.sets.get(set_name) for entry in entries]


def set_changed(entries: Sequence[Entry], set_name: str) -> list[bool]:
    """For each model, whether the set's file differs from the one the previous
    model that was measured on it saw: its figures do not compare like for like."""
    changed, previous = [], None
    for measured in figures(entries, set_name):
        if measured is None:
            changed.append(False)
            continue
        changed.append(previous is not None and measured.sha256 != previous)
        previous = measured.sha256
    return changed


def _intent_f1(entry: Entry, source: str) -> Optional[dict[str, float]]:
    if source == CROSS_VALIDATION:
        return entry.record.cross_validation.per_intent_f1
    measured = entry.record.sets.get(source)
    return None if measured is None else {i: f.f1 for i, f in measured.per_intent.items()}


def _support(entry: Entry, source: str) -> dict[str, int]:
    if source == CROSS_VALIDATION:
        return entry.record.training_examples
    measured = entry.record.sets.get(source)
    return {} if measured is None else {i: f.support for i, f in measured.per_intent.items()}


def per_intent_f1(entries: Sequence[Entry], source: str) -> list[IntentRow]:
    """Per-intent F1 on a set (or CROSS_VALIDATION) across the models; the
    intents the newest model does worst on first."""
    columns = [_intent_f1(entry, source) for entry in entries]
    support = _support(entries[-1], source) if entries else {}
    intents = sorted({i for column in columns if column for i in column})
    rows = []
    for intent in intents:
        values = [column.get(intent) if column else None for column in columns]
        change = (values[-1] - values[-2] if len(values) > 1 and values[-1] is not None
                  and values[-2] is not None else None)
        rows.append(IntentRow(intent, values, None if change is None else round(change, 4),
                              support.get(intent)))
    rows.sort(key=lambda r: (r.f1[-1] is None, r.f1[-1] if r.f1[-1] is not None else 0.0,
                             r.intent))
    return rows


def f1_series(entries: Sequence[Entry], source: str,
              intents: Optional[Sequence[str]] = None, limit: int = 6) -> F1Series:
    """Lines for the plot: the intents named, or else the `limit` whose F1
    moved most since the previous model, then the weakest."""
    rows = per_intent_f1(entries, source)
    if intents is None:
        moved = sorted((r for r in rows if r.change), key=lambda r: (-abs(r.change or 0), r.intent))
        chosen = [r.intent for r in moved[:limit]]
        chosen += [r.intent for r in rows if r.intent not in chosen][:limit - len(chosen)]
    else:
        chosen = list(intents)
    by_intent = {r.intent: r.f1 for r in rows}
    return F1Series(models=[entry.label for entry in entries],
                    lines={i: by_intent.get(i, [None] * len(entries)) for i in chosen})
