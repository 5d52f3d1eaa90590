"""The word lists behind de-identification, read from data/privacy/.

given_names.txt, family_names.txt: names to mask; word_names.txt: names that
are also everyday words (masked only in a name position); not_names.txt: words
and phrases never taken for names; cues.yml: the words around an identifier.
Each file's header says how content authors extend it.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

from spacy.lang.en.stop_words import STOP_WORDS
from spacy.lookups import load_lookups

from aftercare.yaml_files import read_yaml

CUE_LISTS = (
    "strong_name_cues", "titles", "honorifics", "introductions", "weak_name_cues",
    "speech_verbs", "greetings", "after_name_cues",
    "sign_offs", "not_after_sign_off", "place_cues", "street_suffixes",
    "ambiguous_street_suffixes", "id_keywords", "units",
)

MONTHS = frozenset(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split())
WEEKDAYS = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday "
    "mon tue tues wed thu thur thurs fri sat sun".split())


class LexiconError(ValueError):
    """A data/privacy file is missing or malformed; the message names the file."""


def fold(word: str) -> str:
    """Lower case without accents: "Sinéad" and "sinead" are the same name."""
    decomposed = unicodedata.normalize("NFKD", word.lower().replace("’", "'"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def read_word_list(path: Path) -> list[str]:
    """Non-empty lines without # comments, as written."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise LexiconError(f"{path}: file not found") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


@dataclass(frozen=True)
class Lexicon:
    given: frozenset[str]
    family: frozenset[str]
    word_names: frozenset[str]
    not_names: frozenset[str]  # single words
    not_name_phrases: tuple[str, ...]  # several words, protected only together
    everyday: frozenset[str]  # English words (WordNet lemmas, their forms, stop words)
    cues: dict[str, tuple[str, ...]]

    def is_name(self, folded: str) -> bool:
        return folded in self.given or folded in self.family

    def is_word_name(self, folded: str) -> bool:
        """A name that is also an everyday word, or a month or weekday."""
        return (folded in self.word_names or folded in STOP_WORDS or folded in MONTHS
                or folded in WEEKDAYS)

    def is_everyday(self, folded: str) -> bool:
        return folded in self.everyday or folded in STOP_WORDS


def _english_words() -> frozenset[str]:
    """Everyday English: WordNet's verbs, adjectives and adverbs, and the nouns that have
    inflected forms. A noun without any ("delacroix", "london") is most likely a name."""
    lookups = load_lookups("en", ["lemma_index", "lemma_lookup"])
    index = lookups.get_table("lemma_index")
    words: set[str] = set()
    for pos in ("verb", "adj", "adv"):
        words.update(index[pos])
    # The lookup table's keys are hashes; its values are the lemmas of inflected forms.
    inflected = {value for value in lookups.get_table("lemma_lookup").values()
                 if isinstance(value, str)}
    words.update(set(index["noun"]) & inflected)
    return frozenset(w.lower() for w in words if "_" not in w)


def _read_cues(path: Path) -> dict[str, tuple[str, ...]]:
    data = read_yaml(path, LexiconError) or {}
    if not isinstance(data, dict):
        raise LexiconError(f"{path}: expected a mapping of list name: [words]")
    cues = {}
    for name in CUE_LISTS:
        entries = data.get(name)
        if not isinstance(entries, list) or not all(isinstance(e, str) and e.strip()
                                                     for e in entries):
            raise LexiconError(f"{path}: {name}: expected a list of words or phrases")
        cues[name] = tuple(fold(e.strip()) for e in entries)
    unknown = set(data) - set(CUE_LISTS)
    if unknown:
        raise LexiconError(f"{path}: unknown list(s): {', '.join(sorted(unknown))}")
    return cues


def _names(path: Path) -> frozenset[str]:
    names = set()
    for line in read_word_list(path):
        for part in line.replace("-", " ").split():
            if len(part) >= 2:
                names.add(fold(part))
    return frozenset(names)


def load_lexicon(data_dir: Path) -> Lexicon:
    data_dir = Path(data_dir)
    not_names = [fold(w) for w in read_word_list(data_dir / "not_names.txt")]
    return Lexicon(
        given=_names(data_dir / "given_names.txt"),
        family=_names(data_dir / "family_names.txt"),
        word_names=frozenset(fold(w) for w in read_word_list(data_dir / "word_names.txt")),
        not_names=frozenset(w for w in not_names if " " not in w),
        not_name_phrases=tuple(w for w in not_names if " " in w),
        everyday=_english_words(),
        cues=_read_cues(data_dir / "cues.yml"),
    )
