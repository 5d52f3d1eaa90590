"""The red-flag patterns file (data/safety/red_flags.yml): its schema.

The file's header explains the format to clinicians. `load_patterns` reads
and validates it; a wrong entry stops start-up with a PatternError that names
the file and the field ("red_flags.yml: signs.pus.level: must be one of ...").
The result, `Patterns`, holds the words, cues and signs as written plus each
sign's rules in the form the net compiles (`SignSpec`, `Rule`): a rule part is
the keys of its alternatives, word group names or `lit:<phrase>`.

Phrase syntax (brackets, `~`, `=`, `...`) is checked when the phrases are
compiled (matchers.py), with the same kind of message.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from pydantic import (BaseModel, Extra, StrictBool, StrictInt, StrictStr, ValidationError,
                      root_validator, validator)

from aftercare.yaml_files import read_yaml

LEVELS = ("routine", "urgent", "emergency")
SCOPES = ("clause", "sentence", "message")
CUE_KINDS = (
    "negation", "negation_after", "negation_answer", "pseudo_negation",
    "negation_scope_ends", "history", "third_party", "hypothetical", "current",
    "clause_ends", "fine_after", "fine_targets", "pseudo_current", "self", "self_too",
    "possibility", "nothing_happened", "refers_back", "denial",
    "past_episode", "present_tense", "worry", "resolved", "treatment_time",
)
# word groups a sign condition adds to every rule
WORSE, RETURN = "WORSE", "RETURN"
_GROUP_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_GROUP_ALTS = re.compile(r"^[A-Z][A-Z0-9_]*(\|[A-Z][A-Z0-9_]*)*$")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


class PatternError(ValueError):
    """The red-flag patterns file is missing, unreadable or has a wrong entry."""


def literal_key(phrase: str) -> str:
    """The matcher key of a phrase written in a rule ("looks infected")."""
    return f"lit:{phrase}"


def unless_key(sign_id: str) -> str:
    return f"unless:{sign_id}"


# --------------------------------------------------------------------------- the schema

def _as_list(value: Any) -> List[Any]:
    """A single entry may be written without the list around it."""
    if value is None:
        return []
    if isinstance(value, (str, dict)):
        return [value]
    if not isinstance(value, list):
        raise ValueError("expected a list")
    return value


def _phrases(value: Any) -> List[str]:
    phrases = []
    for phrase in _as_list(value):
        if isinstance(phrase, bool):
            # YAML reads a bare no, off, yes, on as false/true
            raise ValueError(f"{phrase}: write no, off, yes or on in quotes ('no'), "
                             "or YAML reads them as true/false")
        if not isinstance(phrase, (str, int, float)) or not str(phrase).strip():
            raise ValueError("phrases are non-empty strings")
        phrases.append(str(phrase).strip())
    return phrases


class _Strict(BaseModel):
    class Config:
        extra = Extra.forbid
        allow_mutation = False


class Settings(_Strict):
    window: StrictInt = 8                  # words allowed between the parts of an "A + B" rule
    negation_window: StrictInt = 6         # words a negation cue may stand before its target
    negation_after_window: StrictInt = 3   # words a resolution cue may stand after its target
    hypothetical_window: StrictInt = 8     # words a hypothetical/third-party cue may stand before
    max_patterns_per_phrase: StrictInt = 3000

    @validator("*")
    def _not_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be a whole number >= 0")
        return value


class RuleEntry(_Strict):
    """One entry under a sign's `any:` ("PUS", "LIP_AREA + SWELL", or a mapping)."""
    rule: StrictStr
    scope: Optional[StrictStr] = None
    window: Optional[StrictInt] = None
    ordered: StrictBool = False     # the written parts must come in this order

    @validator("rule")
    def _text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("rules are non-empty strings")
        return value

    @validator("scope")
    def _scope(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and value not in SCOPES:
            raise ValueError(f"must be one of {', '.join(SCOPES)}")
        return value

    @validator("window")
    def _window(cls, value: Optional[int]) -> Optional[int]:
        if value is not None and value < 0:
            raise ValueError("must be a whole number >= 0")
        return value

    @property
    def parts(self) -> List[str]:
        return [part.strip() for part in self.rule.split(" + ")]


class SignEntry(_Strict):
    id: StrictStr
    level: StrictStr
    reason: StrictStr
    any: List[RuleEntry]
    topic: Optional[StrictStr] = None
    unless: List[str] = []
    scope: StrictStr = "sentence"
    window: Optional[StrictInt] = None
    min_day: Optional[StrictInt] = None
    after_symptom_window: Optional[StrictStr] = None
    after_expected: Optional[StrictStr] = None
    worse_after: Optional[StrictStr] = None
    returning: StrictBool = False
    unknown_day_needs: Optional[StrictStr] = None
    note: Optional[StrictStr] = None

    @validator("id")
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("give a lower_case id")
        return value

    @validator("level")
    def _level(cls, value: str) -> str:
        if value not in LEVELS:
            raise ValueError(f"must be one of {', '.join(LEVELS)}")
        return value

    @validator("reason")
    def _reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("give a short reason for staff")
        return value.strip()

    @validator("any", pre=True)
    def _rules(cls, value: Any) -> List[Any]:
        entries = [{"rule": entry} if isinstance(entry, str) else entry
                   for entry in _as_list(value)]
        if not entries:
            raise ValueError("give at least one rule")
        return entries

    @validator("unless", pre=True)
    def _unless(cls, value: Any) -> List[str]:
        return _phrases(value)

    @validator("scope")
    def _scope(cls, value: str) -> str:
        if value not in SCOPES:
            raise ValueError(f"must be one of {', '.join(SCOPES)}")
        return value

    @validator("window", "min_day")
    def _whole(cls, value: Optional[int]) -> Optional[int]:
        if value is not None and value < 0:
            raise ValueError("must be a whole number >= 0")
        return value

    @validator("unknown_day_needs")
    def _needs(cls, value: Optional[str], values: dict) -> Optional[str]:
        if value is None:
            return value
        if not values.get("after_symptom_window"):
            raise ValueError("unknown_day_needs only goes with after_symptom_window")
        if not _GROUP_ALTS.match(value):
            raise ValueError("name a word group from words:")
        return value


class PatternsFile(_Strict):
    version: Optional[Any] = None
    settings: Settings = Settings()
    spellings: Dict[str, str] = {}
    words: Dict[str, List[str]] = {}
    cues: Dict[str, List[str]] = {}
    signs: List[SignEntry]

    @validator("settings", pre=True)
    def _settings(cls, value: Any) -> Any:
        return {} if value is None else value

    @validator("spellings", pre=True)
    def _spellings(cls, value: Any) -> Dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("expected a mapping typed: meant")
        table = {}
        for typed, meant in value.items():
            typed = str(typed).strip().lower() if isinstance(typed, (str, int)) else ""
            if not typed or any(ch.isspace() for ch in typed):
                raise ValueError(f"{typed or '?'}: what the patient typed is one word (no spaces)")
            if not isinstance(meant, str) or not meant.strip():
                raise ValueError(f"{typed}: give the words meant")
            table[typed] = " ".join(meant.lower().split())
        return table

    @validator("words", pre=True)
    def _words(cls, value: Any) -> Dict[str, List[str]]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("expected a mapping NAME: [phrases]")
        groups = {}
        for name, phrases in value.items():
            if not isinstance(name, str) or not _GROUP_NAME.match(name):
                raise ValueError(f"{name}: names are UPPER_CASE")
            try:
                groups[name] = _phrases(phrases)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
            if not groups[name]:
                raise ValueError(f"{name}: needs at least one phrase")
        return groups

    @validator("cues", pre=True)
    def _cues(cls, value: Any) -> Dict[str, List[str]]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("expected a mapping kind: [phrases]")
        unknown = set(value) - set(CUE_KINDS)
        if unknown:
            raise ValueError(f"unknown kind(s) {sorted(unknown)}; known: {', '.join(CUE_KINDS)}")
        cues = {}
        for kind, phrases in value.items():
            try:
                cues[kind] = _phrases(phrases)
            except ValueError as exc:
                raise ValueError(f"{kind}: {exc}") from None
        return cues

    @validator("signs", pre=True)
    def _signs(cls, value: Any) -> List[Any]:
        signs = _as_list(value)
        if not signs:
            raise ValueError("no signs defined")
        return signs

    @root_validator(skip_on_failure=True)
    def _references(cls, values: dict) -> dict:
        """Every word group a sign names exists; ids are unique."""
        groups = values["words"]
        seen = set()
        for sign in values["signs"]:
            where = f"signs.{sign.id}"
            if sign.id in seen:
                raise ValueError(f"signs: duplicate id {sign.id!r}")
            seen.add(sign.id)
            for name, needed in ((WORSE, sign.worse_after), (RETURN, sign.returning)):
                if needed and name not in groups:
                    raise ValueError(f"{where}: needs the word group {name} in words:")
            if sign.unknown_day_needs and any(
                    name not in groups for name in sign.unknown_day_needs.split("|")):
                raise ValueError(f"{where}: unknown_day_needs: name a word group from words:")
            for entry in sign.any:
                for part in entry.parts:
                    _check_part(part, entry.rule, groups, where)
        return values


def _check_part(part: str, rule: str, groups: Mapping[str, Any], where: str) -> None:
    if not part:
        raise ValueError(f"{where}: rule {rule!r}: empty part")
    if _GROUP_ALTS.match(part):
        for name in part.split("|"):
            if name not in groups:
                raise ValueError(f"{where}: rule {rule!r}: unknown word group {name}")
        return
    # "ITCH|blotch~" would be read as the word "itch": groups and words do not mix
    named = [w for w in re.split(r"[\s|()]+", part) if w in groups]
    if named:
        raise ValueError(f"{where}: rule {rule!r}: {part!r} mixes the word group {named[0]} "
                         "with words; write one rule per kind")


# --------------------------------------------------------------------------- compiled form

@dataclass(frozen=True)
class Rule:
    parts: Tuple[Tuple[str, ...], ...]   # each part: the keys of its alternatives
    scope: str
    window: int
    text: str
    ordered: int = 0     # the first `ordered` parts must come in this order (0: any order)


@dataclass(frozen=True)
class SignSpec:
    id: str
    level: str
    reason: str
    topic: Optional[str]
    rules: Tuple[Rule, ...]
    unless: Tuple[str, ...]
    min_day: Optional[int]
    after_symptom_window: Optional[str]
    after_expected: Optional[str]
    worse_after: Optional[str]
    returning: bool
    unknown_day_rules: Tuple[Rule, ...] = ()   # with unknown_day_needs: the rules + those words

    @property
    def unless_key(self) -> Optional[str]:
        return unless_key(self.id) if self.unless else None

    @property
    def literals(self) -> Iterable[str]:
        """The phrases written straight into this sign's rules."""
        for entry in self.rules:
            for keys in entry.parts:
                for key in keys:
                    if key.startswith("lit:"):
                        yield key[len("lit:"):]


def _spec(sign: SignEntry, default_window: int) -> SignSpec:
    extra = ((WORSE,),) * bool(sign.worse_after) + ((RETURN,),) * sign.returning
    rules = []
    for entry in sign.any:
        parts = tuple(tuple(part.split("|")) if _GROUP_ALTS.match(part) else (literal_key(part),)
                      for part in entry.parts) + extra
        window = entry.window if entry.window is not None else (
            sign.window if sign.window is not None else default_window)
        rules.append(Rule(parts, entry.scope or sign.scope, window, entry.rule,
                          len(entry.parts) if entry.ordered else 0))
    unknown_day_rules: Tuple[Rule, ...] = ()
    if sign.unknown_day_needs:
        needs = tuple(sign.unknown_day_needs.split("|"))
        unknown_day_rules = tuple(Rule(rule.parts + (needs,), rule.scope, rule.window,
                                       f"{rule.text} + {sign.unknown_day_needs}", rule.ordered)
                                  for rule in rules)
    return SignSpec(sign.id, sign.level, sign.reason, sign.topic, tuple(rules),
                    tuple(sign.unless), sign.min_day, sign.after_symptom_window,
                    sign.after_expected, sign.worse_after, sign.returning, unknown_day_rules)


@dataclass(frozen=True)
class Patterns:
    """A validated patterns file."""
    source: str
    settings: Settings
    spellings: Dict[str, str]
    words: Dict[str, List[str]]
    cues: Dict[str, List[str]]
    signs: Tuple[SignSpec, ...]

    def check_symptoms(self, symptoms: Iterable[str]) -> None:
        """Day conditions name symptoms of the clinic's protocol."""
        known = list(symptoms)
        for spec in self.signs:
            for field in ("after_symptom_window", "after_expected", "worse_after"):
                value = getattr(spec, field)
                if value is not None and value not in known:
                    raise PatternError(f"{self.source}: signs.{spec.id}.{field}: unknown symptom "
                                       f"{value!r} (known: {', '.join(known)})")


# --------------------------------------------------------------------------- reading the file

def parse_patterns(data: Any, source: str = "<patterns>") -> Patterns:
    """Validate the file's content; a PatternError names the file and the field."""
    if not isinstance(data, dict):
        raise PatternError(f"{source}: expected a mapping at the top level")
    try:
        model = PatternsFile.parse_obj(data)
    except ValidationError as exc:
        raise PatternError("\n".join(_problems(exc, data, source))) from None
    signs = tuple(_spec(sign, model.settings.window) for sign in model.signs)
    return Patterns(source, model.settings, model.spellings, model.words, model.cues, signs)


def load_patterns(path: Union[Path, str]) -> Patterns:
    path = Path(path)
    return parse_patterns(read_yaml(path, PatternError), str(path))


def _problems(exc: ValidationError, data: dict, source: str) -> List[str]:
    """pydantic's errors as "file: signs.pus.level: message" lines."""
    problems = []
    for error in exc.errors():
        loc = [part for part in error["loc"] if part != "__root__"]
        if loc and loc[0] == "any" and len(loc) > 1 and loc[1] == "__root__":
            loc = loc[:1]
        field = _field_name(loc, data)
        message = error["msg"]
        if error["type"] == "value_error.extra":
            message = "unknown key" if len(loc) > 1 else "unknown top-level key"
        if error["type"] == "value_error.extra" and len(loc) > 1 and loc[-2] == "settings":
            message = "unknown setting"
        problems.append(f"{source}: {field + ': ' if field else ''}{message}")
    return problems


def _field_name(loc: List[Any], data: dict) -> str:
    """("signs", 3, "level") -> "signs.pus.level" (the id, when it has a good one)."""
    names: List[str] = []
    for i, part in enumerate(loc):
        if not isinstance(part, int):
            names.append(str(part))
        elif i == 1 and loc[0] == "signs" and _sign_id(data, part):
            names[-1] = f"signs.{_sign_id(data, part)}"
        elif names:
            names[-1] += f"[{part}]"
    return ".".join(names)


def _sign_id(data: dict, index: int) -> Optional[str]:
    signs = data.get("signs")
    raw = signs[index] if isinstance(signs, list) and index < len(signs) else None
    sign_id = raw.get("id") if isinstance(raw, dict) else None
    return sign_id if isinstance(sign_id, str) and _ID.match(sign_id) else None
