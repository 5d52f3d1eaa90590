"""Pick the protocol topics a "when can I ...?" message is about (data/aftercare_topics.yml)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from aftercare.protocol import AFTERCARE_TOPICS
from aftercare.settings import PROJECT_ROOT

TOPICS_FILE = PROJECT_ROOT / "data" / "aftercare_topics.yml"


@dataclass(frozen=True)
class TopicRules:
    default: tuple[str, ...]
    choose_from: tuple[str, ...]


@dataclass(frozen=True)
class TopicMap:
    intents: dict[str, TopicRules]
    keywords: dict[str, re.Pattern]

    def topics_for(self, intent: str, text: str) -> list[str]:
        rules = self.intents.get(intent)
        if rules is None:
            return []
        lowered = text.lower()
        named = [t for t in rules.choose_from if self.keywords[t].search(lowered)]
        return named or list(rules.default)


def _keyword_pattern(words: list[str]) -> re.Pattern:
    # A keyword matches at the start of a word, so "wax" finds "waxing".
    alternatives = "|".join(re.escape(w.lower()) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![a-z0-9])(?:{alternatives})")


def load_topic_map(path: Path = TOPICS_FILE) -> TopicMap:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    keywords = {topic: _keyword_pattern(words) for topic, words in data["keywords"].items()}
    intents = {}
    for intent, rules in data["intents"].items():
        rules = TopicRules(tuple(rules.get("default", [])), tuple(rules.get("choose_from", [])))
        for topic in rules.default + rules.choose_from:
            if topic not in AFTERCARE_TOPICS:
                raise ValueError(f"{path}: intents.{intent}: unknown topic {topic!r}")
            if topic in rules.choose_from and topic not in keywords:
                raise ValueError(f"{path}: keywords: no keywords for topic {topic!r}")
        intents[intent] = rules
    return TopicMap(intents=intents, keywords=keywords)


@lru_cache(maxsize=1)
def topic_map() -> TopicMap:
    return load_topic_map()
