"""k-fold cross-validation of the intent classifier on its training data.

The classifier is aftercare.understanding.intent_model with the settings of
the trained model; each fold fits it on the other folds with scikit-learn (no
Rasa training), so every training example is read once by a model that never
saw it. Folds run in worker processes, started before the caller measures the
sets so both proceed together; `result()` waits for them.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path
from typing import Optional, Sequence

from aftercare.understanding.intent_model import ModelSettings, SentenceAwareIntentModel

FOLDS = 3
SEED = 42
TOP_PAIRS = 15


class CrossValidationError(ValueError):
    """The training data cannot be cross-validated (too few examples or intents)."""


@dataclass(frozen=True)
class ConfusedPair:
    a: str
    b: str
    a_as_b: int   # examples of a read as b
    b_as_a: int

    @property
    def total(self) -> int:
        return self.a_as_b + self.b_as_a

    def as_json(self) -> dict:
        return {"a": self.a, "b": self.b, "a_as_b": self.a_as_b, "b_as_a": self.b_as_a,
                "total": self.total}


@dataclass(frozen=True)
class CrossValidation:
    folds: int
    n: int
    accuracy: float
    macro_f1: float
    labels: list[str]
    matrix: list[list[int]]          # rows: the example's intent, columns: the one read
    per_intent_f1: dict[str, float]
    seconds: float                   # wall time, from start to the last fold
    cpu_seconds: float               # the folds' processor time, whatever else the machine ran

    def confused_pairs(self, top: int = TOP_PAIRS) -> list[ConfusedPair]:
        return confused_pairs(self.labels, self.matrix, top)

    def as_json(self) -> dict:
        return {"folds": self.folds, "seed": SEED, "n": self.n,
                "accuracy": round(self.accuracy, 4), "macro_f1": round(self.macro_f1, 4),
                "seconds": round(self.seconds, 1), "cpu_seconds": round(self.cpu_seconds, 1),
                "labels": self.labels, "matrix": self.matrix,
                "per_intent_f1": {k: round(v, 4) for k, v in self.per_intent_f1.items()},
                "confused_pairs": [p.as_json() for p in self.confused_pairs()]}


def inputs_key(training_sha256: str, settings: ModelSettings, treatment_names: Sequence[str],
               folds: int = FOLDS) -> str:
    """A hash of everything the cross-validation's result depends on: the
    examples, the classifier's settings and code, the folds and scikit-learn.
    It is deterministic, so the same key gives the same figures."""
    import sklearn

    from aftercare.understanding import intent_model, sentences

    code = [Path(module.__file__).read_bytes() for module in (intent_model, sentences)]
    digest = hashlib.sha256(json.dumps({
        "training": training_sha256, "settings": asdict(settings),
        "treatment_names": sorted(treatment_names), "folds": folds, "seed": SEED,
        "sklearn": sklearn.__version__}, sort_keys=True).encode())
    for source in code:
        digest.update(hashlib.sha256(source).digest())
    return digest.hexdigest()


def confused_pairs(labels: Sequence[str], matrix: Sequence[Sequence[int]],
                   top: int = TOP_PAIRS) -> list[ConfusedPair]:
    """The pairs of intents most often read as each other, both directions
    counted; most confused first, ties by name."""
    pairs = []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            pair = ConfusedPair(labels[i], labels[j], int(matrix[i][j]), int(matrix[j][i]))
            if pair.total:
                pairs.append(pair)
    pairs.sort(key=lambda p: (-p.total, p.a, p.b))
    return pairs[:top]


@dataclass(frozen=True)
class ConfusionView:
    labels: list[str]
    matrix: list[list[int]]
    row_totals: list[int]   # each intent's examples in the whole matrix


def focus(labels: Sequence[str], matrix: Sequence[Sequence[int]],
          pairs: Sequence[ConfusedPair], limit: int = 10) -> ConfusionView:
    """The part of the matrix a phone can show: the intents of the most confused
    pairs (at most `limit`), in that order, with their full row totals so
    shares stay true."""
    keep: list[str] = []
    for pair in pairs:
        keep += [name for name in (pair.a, pair.b) if name not in keep]
    keep = keep[:limit]
    index = [list(labels).index(name) for name in keep]
    return ConfusionView(keep, [[int(matrix[i][j]) for j in index] for i in index],
                         [int(sum(matrix[i])) for i in index])


def fold_predictions(texts: Sequence[str], intents: Sequence[str], train: Sequence[int],
                     test: Sequence[int], settings: ModelSettings,
                     treatment_names: Sequence[str]) -> tuple[list[str], float]:
    """Fit on `train`, read `test`: the intent of each test example, and the
    processor time it took. Runs in a worker: one BLAS thread, as the folds
    already share the cores."""
    from threadpoolctl import threadpool_limits

    started = time.process_time()
    with threadpool_limits(1):
        model = SentenceAwareIntentModel(settings, list(treatment_names)).fit(
            [texts[i] for i in train], [intents[i] for i in train])
        probabilities = model.predict_proba([texts[i] for i in test])
    return [model.intents[k] for k in probabilities.argmax(axis=1)], time.process_time() - started


class PendingCrossValidation:
    """Folds under way; result() collects them."""

    def __init__(self, texts: Sequence[str], intents: Sequence[str], settings: ModelSettings,
                 treatment_names: Sequence[str], folds: int = FOLDS,
                 workers: Optional[int] = None) -> None:
        from sklearn.model_selection import StratifiedKFold

        self._texts, self._intents = list(texts), list(intents)
        counts = Counter(self._intents)
        if sum(1 for n in counts.values() if n >= folds) < 2:
            raise CrossValidationError(
                f"{folds}-fold cross-validation needs two intents with at least {folds} "
                f"examples each, got {dict(counts)}")
        self._folds = folds
        self._started = time.perf_counter()
        splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
                      .split(self._texts, self._intents))
        self._tests = [list(test) for _, test in splits]
        if workers is None:
            # One process per fold, even on two cores: the last fold does not
            # then run alone at the end while a core idles.
            workers = folds if (os.cpu_count() or 1) > 1 else 1
        self._pool: Optional[Pool] = None
        self._running: list[AsyncResult] = []
        self._jobs = [(self._texts, self._intents, list(train), list(test), settings,
                       list(treatment_names)) for train, test in splits]
        if workers > 1:
            # spawn: the caller may go on to load TensorFlow (Rasa), which must
            # not be forked into the workers.
            self._pool = get_context("spawn").Pool(workers)
            self._running = [self._pool.apply_async(fold_predictions, job) for job in self._jobs]

    def result(self) -> CrossValidation:
        if not self._running:
            folds = [fold_predictions(*job) for job in self._jobs]
        else:
            try:
                folds = [running.get() for running in self._running]
            finally:
                self.cancel()
        predicted = [""] * len(self._texts)
        for test, (fold, _) in zip(self._tests, folds):
            for index, intent in zip(test, fold):
                predicted[index] = intent
        return _scored(self._intents, predicted, self._folds,
                       time.perf_counter() - self._started, sum(cpu for _, cpu in folds))

    def cancel(self) -> None:
        """Stop the workers (they hold nothing worth keeping)."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


def _scored(gold: list[str], predicted: list[str], folds: int, seconds: float,
            cpu_seconds: float) -> CrossValidation:
    from sklearn.metrics import confusion_matrix, f1_score

    labels = sorted(set(gold))
    matrix = confusion_matrix(gold, predicted, labels=labels)
    per_intent = f1_score(gold, predicted, labels=labels, average=None, zero_division=0)
    return CrossValidation(
        folds=folds, n=len(gold),
        accuracy=sum(g == p for g, p in zip(gold, predicted)) / len(gold),
        macro_f1=float(per_intent.mean()),
        labels=labels, matrix=[[int(c) for c in row] for row in matrix],
        per_intent_f1={label: float(f) for label, f in zip(labels, per_intent)},
        seconds=seconds, cpu_seconds=cpu_seconds)
