"""Rasa intent classifier that reads a message whole and sentence by sentence.

The model itself is aftercare.understanding.intent_model (plain scikit-learn,
tested and benchmarked without Rasa); this class is its Rasa wrapper: it
trains on the intent examples, learns the treatment's names from the lookup
table `treatment_name`, and saves the model in Rasa's model storage.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

import joblib
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from aftercare.understanding.intent_model import ModelSettings, SentenceAwareIntentModel

logger = logging.getLogger(__name__)

TREATMENT_LOOKUP = "treatment_name"
MODEL_FILE = "sentence_aware_intent_model.joblib"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class SentenceAwareIntentClassifier(GraphComponent, IntentClassifier):

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        defaults = ModelSettings()
        return {"whole_weight": defaults.whole_weight,
                "question_weight": defaults.question_weight,
                "C": defaults.c, "max_iter": defaults.max_iter,
                "random_state": defaults.random_state, "ranking_length": 10}

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage,
                 resource: Resource, model: Optional[SentenceAwareIntentModel] = None) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.model = model

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "SentenceAwareIntentClassifier":
        return cls(config, model_storage, resource)

    def _settings(self) -> ModelSettings:
        return ModelSettings(whole_weight=float(self.config["whole_weight"]),
                             question_weight=float(self.config["question_weight"]),
                             c=float(self.config["C"]), max_iter=int(self.config["max_iter"]),
                             random_state=int(self.config["random_state"]))

    def train(self, training_data: TrainingData) -> Resource:
        examples = [e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)]
        if not examples:
            logger.debug("no intent examples: the classifier is not trained")
            return self._resource
        names = [name for table in training_data.lookup_tables
                 if table.get("name") == TREATMENT_LOOKUP for name in table.get("elements", [])]
        self.model = SentenceAwareIntentModel(self._settings(), names).fit(
            [e.get(TEXT) for e in examples], [e.get(INTENT) for e in examples])
        with self._model_storage.write_to(self._resource) as directory:
            joblib.dump(self.model, directory / MODEL_FILE)
        return self._resource

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any
             ) -> "SentenceAwareIntentClassifier":
        try:
            with model_storage.read_from(resource) as directory:
                model = joblib.load(directory / MODEL_FILE)
        except (ValueError, FileNotFoundError):
            logger.debug("no trained intent model in this archive")
            model = None
        return cls(config, model_storage, resource, model)

    def process(self, messages: List[Message]) -> List[Message]:
        if self.model is None:
            return messages
        texts = [m.get(TEXT) or "" for m in messages]
        probabilities = self.model.predict_proba(texts)
        intents = self.model.intents
        length = int(self.config["ranking_length"])
        for message, row in zip(messages, probabilities):
            ranking = sorted(({"name": name, "confidence": float(p)}
                              for name, p in zip(intents, row)),
                             key=lambda r: -r["confidence"])
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set("intent_ranking", ranking[:length] if length > 0 else ranking,
                        add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data
