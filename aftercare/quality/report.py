"""One quality report for a trained model, ready to be kept as JSON.

For each measuring set: the headline figures and per-intent F1 with support
(aftercare.evaluation does the measuring). From the training data: the
cross-validation (crossval.py) and the intents with too few examples. The
report keeps figures and counts only, never the messages themselves.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Optional, Sequence

from aftercare.evaluation import (
    Assessor, Classifier, Example, Report, evaluate, read_examples,
)
from aftercare.quality.archive import identify, intent_classifier
from aftercare.quality.crossval import FOLDS, PendingCrossValidation, inputs_key
from aftercare.quality.history import CROSS_VALIDATION
from aftercare.quality.record import SCHEMA
from aftercare.quality.training import (
    THIN_INTENT_EXAMPLES, load_training_set, thin_intents, trained_on,
)
from aftercare.understanding.intent_model import ModelSettings


class QualityInputError(ValueError):
    """The measuring sets given cannot be told apart."""


@dataclass(frozen=True)
class MeasuringSet:
    name: str        # the file's name without .tsv: how the history matches sets
    path: Path
    sha256: str
    examples: list[Example]


@dataclass
class QualityRun:
    record: dict                                   # what history.py keeps
    reports: dict[str, Report]                     # per set, for the bars
    warnings: list[str] = field(default_factory=list)


def read_measuring_sets(paths: Sequence[Path]) -> list[MeasuringSet]:
    sets: list[MeasuringSet] = []
    for path in paths:
        examples = read_examples(path)  # EvaluationInputError names the file
        name = Path(path).stem
        if name == CROSS_VALIDATION:
            raise QualityInputError(f"{path}: the name {name!r} is kept for the cross-validation's "
                                    "figures in the history: rename the file")
        if any(s.name == name for s in sets):
            raise QualityInputError(f"two measuring sets are named {name!r}: the history tells "
                                    "sets apart by file name, so give files with different names")
        sets.append(MeasuringSet(name, Path(path), _file_sha256(path), examples))
    return sets


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def set_figures(measuring: MeasuringSet, report: Report) -> dict:
    return {
        "path": str(measuring.path), "sha256": measuring.sha256, "n": report.n,
        "intent_accuracy": round(report.intent_accuracy, 4),
        "intent_macro_f1": round(report.intent_macro_f1, 4),
        "red_flag_recall": round(report.red_flag_recall, 4),
        "red_flag_precision": round(report.red_flag_precision, 4),
        "per_intent": {intent: {"f1": round(f1, 4),
                                "support": report.per_intent_support.get(intent, 0)}
                       for intent, f1 in sorted(report.per_intent_f1.items())},
        "misclassified": len(report.misclassified),
        "missed_red_flags": len(report.missed_red_flags),
        "false_red_flags": len(report.false_red_flags),
    }


def build_report(model: Path, set_paths: Sequence[Path], training_dir: Path,
                 load_classifier: Callable[[Path], Classifier], assess_level: Assessor,
                 now: datetime, folds: int = FOLDS,
                 earlier_run: Callable[[str], Optional[dict]] = lambda key: None) -> QualityRun:
    """Measure `model` on each set and cross-validate its classifier on
    `training_dir`. `now` (timezone-aware) is when the report is recorded.
    `earlier_run(key)` gives a stored cross-validation of the same inputs
    (history.cross_validation_for), which is kept instead of run again: the
    result would be the same."""
    started = time.perf_counter()
    sets = read_measuring_sets(set_paths)
    identity = identify(model)
    training = load_training_set(training_dir)
    warnings: list[str] = []
    archived = intent_classifier(model)
    if archived is None:
        warnings.append(f"{model} has no sentence-aware intent classifier: cross-validation "
                        "uses the classifier's default settings")
        settings, names, matches = ModelSettings(), training.treatment_names, None
    else:
        settings, names = archived.settings, list(archived.treatment_names)
        matches = trained_on(archived, training)
        if not matches:
            warnings.append(f"the model was not trained on {training_dir} as it is now: the "
                            "cross-validation reads the data as it is (run `aftercare train` "
                            "first to measure them together)")
    key = inputs_key(training.sha256, settings, names, folds)
    stored = earlier_run(key)
    pending = (None if stored is not None else
               PendingCrossValidation(training.texts, training.intents, settings, names, folds))
    try:
        classify = load_classifier(model)
        reports = {s.name: evaluate(s.examples, classify, assess_level) for s in sets}
    except BaseException:
        if pending is not None:
            pending.cancel()
        raise
    cv = stored if pending is None else {**pending.result().as_json(), "reused_from": None}
    counts = training.counts()
    record = {
        "schema": SCHEMA,
        "recorded_at": now.isoformat(),
        "model": identity.as_json(),
        "sets": {s.name: set_figures(s, reports[s.name]) for s in sets},
        "cross_validation": {**cv, "key": key, "training_data": str(training_dir),
                             "training_sha256": training.sha256,
                             "model_trained_on_it": matches},
        "training_examples": counts,
        "thin_intents": {"threshold": THIN_INTENT_EXAMPLES, "intents": thin_intents(counts)},
        "seconds": round(time.perf_counter() - started, 1),
    }
    return QualityRun(record, reports, warnings)
