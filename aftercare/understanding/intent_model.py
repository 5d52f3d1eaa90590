"""The intent classifier: a message read whole and sentence by sentence.

A bag of words read over a five-sentence story loses its point: the question
at the end is outweighed by the story. This model scores the whole message and
each of its sentences with one linear classifier (word 1–2-grams and character
2–5-grams, TF-IDF, logistic regression) and mixes them:

    p = whole_weight * p(message) + (1 - whole_weight) * Σ w_s p(sentence_s) / Σ w_s

where a sentence that asks something weighs `question_weight` and one that
only tells weighs 1. A single-sentence message is scored whole.

The names of the treatment ("micro needling", "skinpen", "my facial") are read
as one word, `treatmentname`, so that naming the treatment does not pull a
message towards the intents whose examples name it most. The names come from
the Rasa lookup table `treatment_name` in data/nlu/.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from aftercare.understanding.sentences import split_sentences

TREATMENT_TOKEN = "treatmentname"
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "`": "'"})
_REPEATS = re.compile(r"(\w)\1{2,}")


@dataclass
class ModelSettings:
    whole_weight: float = 0.5
    question_weight: float = 2.0
    c: float = 30.0
    max_iter: int = 1000
    random_state: int = 42


@dataclass
class SentenceAwareIntentModel:
    settings: ModelSettings = field(default_factory=ModelSettings)
    treatment_names: Sequence[str] = ()

    def __post_init__(self) -> None:
        self._names_re = _names_pattern(self.treatment_names)
        self.words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True,
                                     token_pattern=r"(?u)\b\w+\b|[?!]", min_df=1)
        self.chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True,
                                     min_df=2)
        self.classifier = LogisticRegression(
            C=self.settings.c, max_iter=self.settings.max_iter, class_weight="balanced",
            random_state=self.settings.random_state)

    # ------------------------------------------------------------------ text
    def normalise(self, text: str) -> str:
        text = text.translate(_QUOTES).lower()
        text = _REPEATS.sub(r"\1\1", text)
        if self._names_re is not None:
            text = self._names_re.sub(TREATMENT_TOKEN, text)
        return " ".join(text.split())

    def _features(self, texts: Sequence[str]):
        normalised = [self.normalise(t) for t in texts]
        return hstack([self.words.transform(normalised), self.chars.transform(normalised)]).tocsr()

    # ------------------------------------------------------------------ fit / predict
    def fit(self, texts: Sequence[str], intents: Sequence[str]) -> "SentenceAwareIntentModel":
        normalised = [self.normalise(t) for t in texts]
        self.words.fit(normalised)
        self.chars.fit(normalised)
        self.classifier.fit(self._features(texts), list(intents))
        return self

    @property
    def intents(self) -> list[str]:
        return [str(c) for c in self.classifier.classes_]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """One row of intent probabilities (in `intents` order) per message."""
        rows = []
        for text in texts:
            sentences = [s for s in split_sentences(text) if _has_words(s.text)]
            if len(sentences) < 2:
                rows.append(self.classifier.predict_proba(self._features([text]))[0])
                continue
            probabilities = self.classifier.predict_proba(
                self._features([text] + [s.text for s in sentences]))
            weights = np.array([self.settings.question_weight if s.is_question else 1.0
                                for s in sentences])
            per_sentence = (probabilities[1:] * weights[:, None]).sum(axis=0) / weights.sum()
            whole = self.settings.whole_weight
            rows.append(whole * probabilities[0] + (1 - whole) * per_sentence)
        return np.vstack(rows) if rows else np.zeros((0, len(self.intents)))

    def rank(self, text: str) -> list[tuple[str, float]]:
        """(intent, probability), most likely first."""
        probabilities = self.predict_proba([text])[0]
        order = np.argsort(-probabilities)
        return [(self.intents[i], float(probabilities[i])) for i in order]


def _has_words(text: str) -> bool:
    return len(re.findall(r"[a-zA-Z]{2,}", text)) >= 1


def _names_pattern(names: Iterable[str]):
    """One regex for every treatment name, longest first, whole words, with any
    spacing or hyphen between its words ("micro-needling", "skin pen")."""
    alternatives = []
    for name in sorted({n.strip().lower() for n in names if n.strip()}, key=len, reverse=True):
        words = [re.escape(w) for w in re.split(r"[\s\-]+", name)]
        alternatives.append(r"[\s\-]*".join(words))
    if not alternatives:
        return None
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b")
