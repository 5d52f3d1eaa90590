"""The assistant's Rasa data read as data: the domain's intents, every NLU
training example under data/, and Rasa's own validation of a data folder.

`aftercare validate` (cli/commands/validate.py) and the authoring inbox's
export (aftercare/authoring/export.py) both use these, so an export is held
to the same checks as the data the content authors write by hand.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

import yaml

from aftercare.yaml_files import read_yaml

# Rasa's convention for intents the bot sends with trigger_intent: no examples.
EXTERNAL_INTENT_PREFIX = "EXTERNAL_"
# Intents only a button sends (a payload such as "/confirm_warning_signs"): no examples.
BUTTON_ONLY_INTENTS = frozenset({"confirm_warning_signs"})
FALLBACK_INTENT = "nlu_fallback"   # FallbackClassifier's: never a training label
YAML_SUFFIXES = (".yml", ".yaml")

# "[Dermapen](product)", "[red]{"entity": "symptom"}": Rasa's entity annotations.
_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")
_NOT_WORD = re.compile(r"[^\w'<>]+")


class RasaDataError(ValueError):
    """A domain or training-data file cannot be read; the message names the file."""


def normalise_example(text: str) -> str:
    """An example's identity for finding duplicates: annotations, case,
    punctuation and spacing do not count ("Can I wear make up?" is "can i wear make up")."""
    text = _ANNOTATION.sub(r"\1", text).casefold().replace("’", "'").replace("‘", "'")
    return " ".join(_NOT_WORD.sub(" ", text).split()).strip("'")


def domain_intents(domain_path: Path) -> list[str]:
    """The intents listed in the domain file, in its order."""
    domain = read_yaml(domain_path, RasaDataError)
    intents = domain.get("intents") if isinstance(domain, dict) else None
    if not isinstance(intents, list):
        raise RasaDataError(f"{domain_path}: no list of intents")
    names = []
    for entry in intents:
        name = next(iter(entry), None) if isinstance(entry, dict) else entry
        if isinstance(name, str) and name:
            names.append(name)
    return names


def trainable_intents(domain_path: Path) -> list[str]:
    """Intents patients' words can be labelled with: not external, not button-only."""
    return [name for name in domain_intents(domain_path)
            if not name.startswith(EXTERNAL_INTENT_PREFIX) and name not in BUTTON_ONLY_INTENTS
            and name != FALLBACK_INTENT]


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    path: Path


def _examples_of(value: object) -> Iterator[str]:
    """The example texts of one `examples:` value (Rasa's block or list form)."""
    if isinstance(value, str):
        for line in value.splitlines():
            line = line.strip()
            if line.startswith("-"):
                yield line[1:].strip()
    elif isinstance(value, list):
        for entry in value:
            text = entry.get("text") if isinstance(entry, dict) else entry
            if isinstance(text, str):
                yield text.strip()


def training_examples(data_dir: Path) -> list[Example]:
    """Every intent example in the YAML training files under data_dir (recursively)."""
    examples = []
    for path in sorted(p for p in Path(data_dir).rglob("*") if p.suffix in YAML_SUFFIXES):
        content = read_yaml(path, RasaDataError)
        if not isinstance(content, dict) or not isinstance(content.get("nlu"), list):
            continue
        for block in content["nlu"]:
            if isinstance(block, dict) and isinstance(block.get("intent"), str):
                examples += [Example(text, block["intent"], path)
                             for text in _examples_of(block.get("examples")) if text]
    return examples


def examples_by_text(examples: list[Example]) -> Mapping[str, set[str]]:
    """normalised text -> the intents it is an example of."""
    found: dict[str, set[str]] = {}
    for example in examples:
        found.setdefault(normalise_example(example.text), set()).add(example.intent)
    return found


@dataclass
class RasaValidation:
    ok: bool                                   # Rasa's own checks passed
    warnings: list[str] = field(default_factory=list)
    responses: set[str] = field(default_factory=set)


def rasa_validation(data_dir: Path, domain_path: Path, config_path: Path) -> RasaValidation:
    """The checks of `rasa data validate` on data_dir, strict on stories, with
    the warnings Rasa raised (its expected ones left out) for the caller to judge."""
    from rasa.cli.utils import _validate_domain, _validate_story_structure
    from rasa.shared.exceptions import RasaException
    from rasa.shared.importers.importer import TrainingDataImporter
    from rasa.utils.common import EXPECTED_WARNINGS
    from rasa.validator import Validator

    importer = TrainingDataImporter.load_from_config(
        config_path=str(config_path), domain_path=str(domain_path),
        training_data_paths=[str(data_dir)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            validator = Validator.from_importer(importer)
        except (RasaException, yaml.YAMLError, ValueError) as exc:
            return RasaValidation(ok=False, warnings=[f"cannot read the data: {exc}"])
        ok = all([
            _validate_domain(validator),
            validator.verify_nlu(ignore_warnings=True),
            _validate_story_structure(validator, None, fail_on_warnings=True),
        ])

    def expected(warning: warnings.WarningMessage) -> bool:
        return any(issubclass(warning.category, category)
                   and re.match(pattern, str(warning.message))
                   for category, pattern in EXPECTED_WARNINGS)

    messages = [str(w.message) for w in caught
                if issubclass(w.category, UserWarning) and not expected(w)]
    return RasaValidation(ok=ok, warnings=messages, responses=set(validator.domain.responses))
