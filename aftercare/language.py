"""The project's own spaCy pipeline, built from data the project keeps.

Official spaCy model packages cannot be downloaded here, so the pipeline is
blank English + the lookup lemmatizer (from spacy-lookups-data) + an entity
ruler whose phrases content authors keep in data/spacy/entities.yml.
Rasa loads the saved pipeline by path through SpacyNLP.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import spacy
import yaml
from spacy.language import Language

FINGERPRINT_FILE = "aftercare-fingerprint.txt"


def load_entity_phrases(path: Path) -> dict[str, list[Any]]:
    """Label -> phrases (strings, or raw spaCy token patterns) from the YAML file."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of LABEL: [phrases]")
    for label, phrases in data.items():
        if not isinstance(phrases, list) or not phrases:
            raise ValueError(f"{path}: {label}: expected a non-empty list of phrases")
    return data


def _ruler_patterns(nlp: Language, phrases: dict[str, list[Any]]) -> list[dict]:
    patterns = []
    for label, entries in phrases.items():
        for entry in entries:
            if isinstance(entry, str):
                tokens = [{"LOWER": token.lower_} for token in nlp.make_doc(entry)]
            else:
                tokens = entry
            patterns.append({"label": label, "pattern": tokens})
    return patterns


def blank_with_lemmas() -> Language:
    """Blank English with the lookup lemmatizer, initialised (no entity ruler)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    return nlp


def build_pipeline(entities_path: Path) -> Language:
    nlp = blank_with_lemmas()
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    ruler.add_patterns(_ruler_patterns(nlp, load_entity_phrases(entities_path)))
    return nlp


def _fingerprint(entities_path: Path) -> str:
    digest = hashlib.sha256(Path(entities_path).read_bytes())
    digest.update(spacy.about.__version__.encode())
    return digest.hexdigest()


def ensure_pipeline(entities_path: Path, target: Path) -> bool:
    """Build the pipeline into target unless it is up to date. True if it was built."""
    target = Path(target)
    fingerprint = _fingerprint(entities_path)
    marker = target / FINGERPRINT_FILE
    if marker.is_file() and marker.read_text() == fingerprint:
        return False
    nlp = build_pipeline(entities_path)
    nlp.meta["name"] = "aftercare"
    nlp.meta["description"] = "Blank English, lookup lemmas, clinic entity ruler"
    target.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(target)
    marker.write_text(fingerprint)
    return True


def entity_summary(nlp: Language, text: str) -> list[dict]:
    """Entities in text as plain dicts (for debugging and authoring checks)."""
    return [{"label": e.label_, "text": e.text, "start": e.start_char, "end": e.end_char}
            for e in nlp(text).ents]


if __name__ == "__main__":  # pragma: no cover - convenience for authors
    import sys
    print(json.dumps(entity_summary(build_pipeline(Path(sys.argv[1])), sys.argv[2]), indent=1))
