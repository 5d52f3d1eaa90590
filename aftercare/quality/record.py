"""The stored form of a quality report (report.py builds it), checked on the
way in and out of the history: one reader for the CLI and the authoring page."""
from __future__ import annotations

from datetime import datetime
from typing import Dict, List, Optional

from pydantic import BaseModel, Field, ValidationError, root_validator, validator

SCHEMA = 1


class RecordError(ValueError):
    """A stored report is not one this version can read."""


class _Figures(BaseModel):
    class Config:
        allow_population_by_field_name = True


class ModelInfo(_Figures):
    id: str
    sha256: str
    trained_at: datetime
    path: str

    @validator("trained_at")
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry its time zone")
        return value


class IntentFigure(_Figures):
    f1: float
    support: int


class SetFigures(_Figures):
    path: str
    sha256: str
    n: int
    intent_accuracy: float
    intent_macro_f1: float
    red_flag_recall: float
    red_flag_precision: float
    per_intent: Dict[str, IntentFigure]
    misclassified: int
    missed_red_flags: int
    false_red_flags: int


class Pair(_Figures):
    a: str
    b: str
    a_as_b: int
    b_as_a: int
    total: int


class CrossValidationFigures(_Figures):
    folds: int
    seed: int
    n: int
    accuracy: float
    macro_f1: float
    seconds: float
    cpu_seconds: float
    labels: List[str]
    matrix: List[List[int]]
    per_intent_f1: Dict[str, float]
    confused_pairs: List[Pair]
    training_data: str
    training_sha256: str
    model_trained_on_it: Optional[bool]
    key: str                            # crossval.inputs_key
    reused_from: Optional[str] = None   # the model whose identical run this is

    @root_validator(skip_on_failure=True)
    def _square(cls, values: dict) -> dict:
        size = len(values["labels"])
        if len(values["matrix"]) != size or any(len(row) != size for row in values["matrix"]):
            raise ValueError(f"matrix: must be {size} x {size}, one row and column per label")
        return values


class ThinIntents(_Figures):
    threshold: int
    intents: Dict[str, int]


class QualityRecord(_Figures):
    schema_version: int = Field(alias="schema")
    recorded_at: datetime
    model: ModelInfo
    sets: Dict[str, SetFigures]
    cross_validation: CrossValidationFigures
    training_examples: Dict[str, int]
    thin_intents: ThinIntents
    seconds: float

    @validator("schema_version")
    def _known(cls, value: int) -> int:
        if value != SCHEMA:
            raise ValueError(f"schema {value} is not {SCHEMA}, the one this version reads")
        return value

    @validator("recorded_at")
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry its time zone")
        return value


def parse_record(data: object) -> QualityRecord:
    """The record, or RecordError naming the first wrong field."""
    if not isinstance(data, dict):
        raise RecordError("not a JSON object")
    try:
        return QualityRecord.parse_obj(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise RecordError(f"{where}: {first['msg']}") from None
