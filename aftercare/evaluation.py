"""Measure the assistant on a labelled TSV: intents and red flags.

Each message is parsed by the trained Rasa model and run through the
red-flag triage as if a patient on that day had sent it.
"""
from __future__ import annotations

import asyncio
import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from sklearn.metrics import f1_score

from aftercare.settings import Settings

REQUIRED_COLUMNS = ("text", "intent", "red_flag", "day")


class EvaluationInputError(ValueError):
    """The TSV file is missing, or a row or column is wrong."""


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    red_flag: bool
    day: Optional[int]
    line: int


@dataclass(frozen=True)
class Prediction:
    intent: str
    confidence: float
    level: Optional[str]


@dataclass
class Report:
    n: int
    intent_accuracy: float
    intent_macro_f1: float
    per_intent_f1: dict[str, float]
    red_flag_recall: float
    red_flag_precision: float
    misclassified: list[dict] = field(default_factory=list)
    missed_red_flags: list[dict] = field(default_factory=list)
    false_red_flags: list[dict] = field(default_factory=list)
    per_intent_support: dict[str, int] = field(default_factory=dict)  # messages labelled so

    def as_json(self) -> dict:
        return {
            "n": self.n,
            "intent_accuracy": round(self.intent_accuracy, 4),
            "intent_macro_f1": round(self.intent_macro_f1, 4),
            "red_flag_recall": round(self.red_flag_recall, 4),
            "red_flag_precision": round(self.red_flag_precision, 4),
            "per_intent_f1": {k: round(v, 4) for k, v in self.per_intent_f1.items()},
            "per_intent_support": self.per_intent_support,
            "misclassified": self.misclassified,
            "missed_red_flags": self.missed_red_flags,
            "false_red_flags": self.false_red_flags,
        }


def read_examples(path: Path) -> list[Example]:
    try:
        handle = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise EvaluationInputError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise EvaluationInputError(f"{path}: missing column(s): {', '.join(missing)} "
                                       f"(expected a header with {', '.join(REQUIRED_COLUMNS)})")
        examples = []
        for line, row in enumerate(reader, start=2):
            flag = (row["red_flag"] or "").strip().lower()
            if flag not in ("yes", "no"):
                raise EvaluationInputError(f"{path}:{line}: red_flag must be yes or no, got {flag!r}")
            day_text = (row["day"] or "").strip()
            try:
                day = int(day_text) if day_text else None
            except ValueError:
                raise EvaluationInputError(f"{path}:{line}: day must be blank or a whole number, "
                                           f"got {day_text!r}") from None
            examples.append(Example(text=row["text"] or "", intent=(row["intent"] or "").strip(),
                                    red_flag=flag == "yes", day=day, line=line))
    if not examples:
        raise EvaluationInputError(f"{path}: no rows to evaluate")
    return examples


def score(examples: list[Example], predictions: list[Prediction]) -> Report:
    gold = [e.intent for e in examples]
    predicted = [p.intent for p in predictions]
    labels = sorted(set(gold))
    per_intent = f1_score(gold, predicted, labels=labels, average=None, zero_division=0)
    flagged = [p.level is not None for p in predictions]
    true_pos = sum(1 for e, f in zip(examples, flagged) if e.red_flag and f)
    positives = sum(1 for e in examples if e.red_flag)
    predicted_pos = sum(flagged)

    def row(e: Example, p: Prediction) -> dict:
        return {"line": e.line, "text": e.text, "day": e.day, "expected": e.intent,
                "predicted": p.intent, "confidence": round(p.confidence, 3),
                "red_flag": e.red_flag, "level": p.level}

    return Report(
        n=len(examples),
        intent_accuracy=sum(g == p for g, p in zip(gold, predicted)) / len(examples),
        intent_macro_f1=float(f1_score(gold, predicted, labels=labels, average="macro",
                                       zero_division=0)),
        per_intent_f1=dict(zip(labels, map(float, per_intent))),
        red_flag_recall=true_pos / positives if positives else 1.0,
        red_flag_precision=true_pos / predicted_pos if predicted_pos else 1.0,
        misclassified=[row(e, p) for e, p in zip(examples, predictions) if e.intent != p.intent],
        missed_red_flags=[row(e, p) for e, p in zip(examples, predictions)
                          if e.red_flag and p.level is None],
        false_red_flags=[row(e, p) for e, p in zip(examples, predictions)
                         if not e.red_flag and p.level is not None],
        per_intent_support={label: gold.count(label) for label in labels},
    )


Classifier = Callable[[str], tuple[str, float]]
Assessor = Callable[[str, str, float, Optional[int]], Optional[str]]


def quiet_rasa_logs() -> None:
    """Rasa logs each parsed message (its text) at debug level: keep patients'
    words out of the output."""
    import logging

    import structlog

    logging.getLogger("rasa").setLevel(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def load_rasa_classifier(model: Path) -> Classifier:
    """Parse messages with the trained Rasa model, in this process."""
    from rasa.core.agent import Agent

    quiet_rasa_logs()
    agent = Agent.load(str(model))
    loop = asyncio.new_event_loop()

    def classify(text: str) -> tuple[str, float]:
        return classifier_intent(loop.run_until_complete(agent.parse_message(text)))

    return classify


def classifier_intent(parse_result: dict) -> tuple[str, float]:
    """The classifier's best intent. The FallbackClassifier's nlu_fallback is a
    dialogue decision (ask to rephrase), not one of the contract's intents, so
    the best-ranked real intent is what is measured."""
    for ranked in parse_result.get("intent_ranking") or []:
        if ranked.get("name") and ranked["name"] != "nlu_fallback":
            return ranked["name"], float(ranked.get("confidence") or 0.0)
    intent = parse_result.get("intent") or {}
    return intent.get("name") or "nlu_fallback", float(intent.get("confidence") or 0.0)


def load_red_flag_assessor(settings: Settings) -> Assessor:
    """assess_level for evaluate(): the shipped red-flag net and triage, as the
    assistant runs them for a patient on the message's day."""
    from aftercare.protocol import load_protocol
    from aftercare.safety import RedFlagNet
    from aftercare.safety.triage import triage

    protocol = load_protocol(settings.protocol_path)
    net = RedFlagNet.from_file(settings.red_flag_patterns_path, protocol)

    def assess_level(text: str, intent: str, confidence: float,
                     day: Optional[int]) -> Optional[str]:
        return triage(text, intent, confidence, day, net, protocol).level

    return assess_level


def evaluate(examples: list[Example], classify: Classifier, assess_level) -> Report:
    """assess_level(text, intent, confidence, day) -> red-flag level or None."""
    predictions = []
    for example in examples:
        intent, confidence = classify(example.text)
        predictions.append(Prediction(intent, confidence,
                                      assess_level(example.text, intent, confidence, example.day)))
    return score(examples, predictions)
