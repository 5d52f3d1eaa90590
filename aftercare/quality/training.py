"""The intent classifier's training data (data/nlu) as the quality report reads it."""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from aftercare.understanding.intent_model import SentenceAwareIntentModel

# An intent with fewer training examples than this is listed as thin: the one
# place the threshold is set.
THIN_INTENT_EXAMPLES = 30
TREATMENT_LOOKUP = "treatment_name"  # as components/sentence_aware_classifier.py reads it


class TrainingDataError(ValueError):
    """The training data cannot be read."""


@dataclass(frozen=True)
class TrainingSet:
    texts: list[str]
    intents: list[str]
    treatment_names: list[str]
    sha256: str  # of the examples and their intents, in order

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.intents).items()))


def load_training_set(directory: Path) -> TrainingSet:
    """The intent examples and treatment names, loaded by Rasa's own reader as
    `rasa train` loads them for the classifier."""
    from rasa.shared.exceptions import RasaException
    from rasa.shared.nlu.training_data.loading import load_data

    if not Path(directory).exists():
        raise TrainingDataError(f"{directory}: no such training data")
    try:
        data = load_data(str(directory))
    except (RasaException, OSError, ValueError) as exc:
        raise TrainingDataError(f"{directory}: cannot read the training data: {exc}") from None
    examples = [e for e in data.intent_examples if e.get("intent") and e.get("text")]
    if not examples:
        raise TrainingDataError(f"{directory}: no intent examples")
    texts = [str(e.get("text")) for e in examples]
    intents = [str(e.get("intent")) for e in examples]
    names = [str(name) for table in data.lookup_tables if table.get("name") == TREATMENT_LOOKUP
             for name in table.get("elements", [])]
    digest = hashlib.sha256()
    for text, intent in zip(texts, intents):
        digest.update(f"{intent}\t{text}\n".encode())
    return TrainingSet(texts, intents, names, digest.hexdigest())


def thin_intents(counts: dict[str, int], threshold: int = THIN_INTENT_EXAMPLES) -> dict[str, int]:
    """Intents with fewer than `threshold` examples, fewest first."""
    return dict(sorted(((i, n) for i, n in counts.items() if n < threshold),
                       key=lambda item: (item[1], item[0])))


def trained_on(model: SentenceAwareIntentModel, training: TrainingSet) -> bool:
    """Whether the archived classifier was fitted on these examples: the same
    intents and treatment names, and the same word vocabulary and document
    frequencies (an added, removed or reworded example changes those). An
    example moved from one existing intent to another is not seen."""
    import numpy as np
    from sklearn.base import clone

    if model.intents != sorted(set(training.intents)):
        return False
    if sorted(model.treatment_names) != sorted(training.treatment_names):
        return False
    words = clone(model.words).fit([model.normalise(t) for t in training.texts])
    return (words.vocabulary_ == model.words.vocabulary_
            and np.allclose(words.idf_, model.words.idf_))

