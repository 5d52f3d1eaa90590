"""Pattern phrases compiled into spaCy matchers (the syntax is in the header of
data/safety/red_flags.yml).

Each phrase becomes token patterns over lemmas (a plain word), the lower-case
form (`=word`) or a word beginning (`word~`). Plain word sequences go to a
PhraseMatcher on LEMMA or LOWER (much faster at reading time); everything with
optional words, `*`, `...` or word beginnings goes to a token `Matcher`.
Alternatives of one word each are kept in one token ("(a|b|c)" is one IN list,
not three patterns): that keeps the Matcher small and start-up quick.

`Matchers.find` returns, for one parsed message, every key's spans (overlapping
matches included). Phrases ending in " $" count only where a clause ends; they
are found under key + AT_CLAUSE_END and the reading keeps those that do.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, NamedTuple, Tuple

from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc

from aftercare.safety.patterns import PatternError
from aftercare.safety.text import normalise, parse

AT_CLAUSE_END = "$"           # key suffix: matches that count only where a clause ends
_PHRASE_DOCS_MAX = 400        # more word combinations than this go to the token Matcher
_GAP = {"IS_PUNCT": False, "IS_SPACE": False}    # `*` and `...`: words, not punctuation

TokenPattern = List[dict]


class Span(NamedTuple):
    """Tokens start..end (exclusive) of one match."""
    start: int
    end: int


@dataclass(frozen=True)
class _Chunk:
    """One piece of a phrase: a word (with its | alternatives) or a (bracketed|group)."""
    text: str = ""
    alternatives: Tuple[str, ...] = ()
    optional: bool = False

    @property
    def is_group(self) -> bool:
        return bool(self.alternatives)


class Matchers:
    """Every key's phrases, compiled once; `find` is safe to call for every message."""

    def __init__(self, nlp: Language, source: str, max_patterns_per_phrase: int):
        self.nlp = nlp
        self.source = source
        self.max_patterns = max_patterns_per_phrase
        # Patterns are generated here, not typed by hand: spaCy's schema check of
        # each one would only cost start-up time.
        self.matcher = Matcher(nlp.vocab, validate=False)
        self.phrase_matchers = {"LEMMA": PhraseMatcher(nlp.vocab, attr="LEMMA"),
                                "LOWER": PhraseMatcher(nlp.vocab, attr="LOWER")}
        self.phrases: Dict[str, List[str]] = {}      # key -> the phrases as written

    def __contains__(self, key: str) -> bool:
        return key in self.phrases

    # ---------------------------------------------------------------- compiling
    def add(self, key: str, phrases: Iterable[str], where: str) -> None:
        """Compile `phrases` under `key`; `where` names the field in errors."""
        phrases = list(phrases)
        at_clause_end = [p[:-2].strip() for p in phrases if p.endswith(" $")]
        token_patterns: List[TokenPattern] = []
        for phrase in phrases:
            if phrase.endswith(" $"):
                continue
            if "$" in phrase.split():
                raise PatternError(f"{self.source}: {where}: {phrase!r}: '$' only at the end")
            for pattern in self._compile(phrase, where):
                if not self._add_as_phrases(key, pattern):
                    token_patterns.append(pattern)
        if at_clause_end:
            self.add(key + AT_CLAUSE_END, at_clause_end, where)
        self.phrases.setdefault(key, []).extend(phrases)
        if token_patterns:
            self.matcher.add(key, token_patterns)

    def _compile(self, phrase: str, where: str) -> List[TokenPattern]:
        """One phrase -> token patterns; a pattern of optional words only is dropped."""
        patterns = [p for p in self._sequences(phrase, where)
                    if any(spec.get("OP") not in ("?", "{0,4}") for spec in p)]
        if not patterns:
            raise PatternError(f"{self.source}: {where}: {phrase!r} matches nothing")
        return patterns

    def _sequences(self, phrase: str, where: str) -> List[TokenPattern]:
        options_per_chunk: List[List[TokenPattern]] = []
        for chunk in self._chunks(phrase, where):
            if chunk.is_group:
                options = _merge([option for alternative in chunk.alternatives
                                  for option in self._sequences(alternative, where)])
                optional = chunk.optional
            elif chunk.text == "...":
                options_per_chunk.append([[dict(_GAP, OP="{0,4}")]])
                continue
            else:
                optional = len(chunk.text) > 1 and chunk.text.endswith("?")
                word = chunk.text[:-1] if optional else chunk.text
                options = self._word_options(word, phrase, where)
            options_per_chunk.append(_optional(options) if optional else options)
        total = 1
        for options in options_per_chunk:
            total *= max(1, len(options))
        if total > self.max_patterns:
            raise PatternError(f"{self.source}: {where}: {phrase!r} expands to {total} "
                               "patterns; split it into several phrases")
        return [[spec for option in combo for spec in option]
                for combo in itertools.product(*options_per_chunk)]

    def _chunks(self, phrase: str, where: str) -> List[_Chunk]:
        chunks: List[_Chunk] = []
        i, n = 0, len(phrase)
        while i < n:
            if phrase[i].isspace():
                i += 1
                continue
            if phrase[i] == "(":
                close = phrase.find(")", i)
                if close < 0 or "(" in phrase[i + 1:close]:
                    raise self._error(where, phrase, "unbalanced or nested brackets")
                alternatives = tuple(a.strip() for a in phrase[i + 1:close].split("|"))
                if any(not a for a in alternatives):
                    raise self._error(where, phrase, "empty alternative in brackets")
                i = close + 1
                optional = i < n and phrase[i] == "?"
                i += optional
                if i < n and not phrase[i].isspace():
                    raise self._error(where, phrase, "put a space after ')'")
                chunks.append(_Chunk(alternatives=alternatives, optional=optional))
                continue
            j = i
            while j < n and not phrase[j].isspace():
                j += 1
            word = phrase[i:j]
            if "(" in word or ")" in word:
                raise self._error(where, phrase, "put a space before '('")
            chunks.append(_Chunk(text=word))
            i = j
        return chunks

    def _word_options(self, chunk: str, phrase: str, where: str) -> List[TokenPattern]:
        """"a|=b|c~" -> one token spec per kind of comparison (lemma, exact form,
        word beginning); several words in one alternative make a sequence."""
        if chunk == "*":
            return [[dict(_GAP)]]
        options: List[TokenPattern] = []
        lemmas, lowers, prefixes = [], [], []
        for alt in chunk.split("|"):
            if not alt:
                raise self._error(where, phrase, "empty alternative")
            if alt.endswith("~") and len(alt) > 1:
                prefixes.append(re.escape(normalise(alt[:-1])))
            elif alt.startswith("=") and len(alt) > 1:
                tokens = _contraction(normalise(alt[1:])) or [
                    t.lower_ for t in self.nlp.make_doc(normalise(alt[1:]))]
                if len(tokens) == 1:
                    lowers.append(tokens[0])
                else:
                    options.append([{"LOWER": t} for t in tokens])
            else:
                tokens = _contraction(normalise(alt), lemma=True) or [
                    t.lemma_ for t in parse(self.nlp, alt) if not t.is_space]
                if len(tokens) == 1:
                    lemmas.append(tokens[0])
                elif tokens:
                    options.append([{"LEMMA": t} for t in tokens])
        if lemmas:
            options.append([{"LEMMA": {"IN": sorted(set(lemmas))}}])
        if lowers:
            options.append([{"LOWER": {"IN": sorted(set(lowers))}}])
        if prefixes:
            options.append([{"LOWER": {"REGEX": "^(?:" + "|".join(prefixes) + ")"}}])
        return options

    def _add_as_phrases(self, key: str, pattern: TokenPattern) -> bool:
        """A plain word sequence on one attribute goes to a PhraseMatcher."""
        attrs, choices = set(), []
        for spec in pattern:
            if len(spec) != 1 or next(iter(spec)) not in ("LEMMA", "LOWER"):
                return False
            attr, value = next(iter(spec.items()))
            attrs.add(attr)
            if isinstance(value, dict):
                if set(value) != {"IN"}:
                    return False
                choices.append(list(value["IN"]))
            else:
                choices.append([value])
        if len(attrs) != 1 or _product(len(c) for c in choices) > _PHRASE_DOCS_MAX:
            return False
        attr = attrs.pop()
        docs = []
        for words in itertools.product(*choices):
            doc = Doc(self.nlp.vocab, words=list(words))
            if attr == "LEMMA":
                for token, word in zip(doc, words):
                    token.lemma_ = word
            docs.append(doc)
        self.phrase_matchers[attr].add(key, docs)
        return True

    def _error(self, where: str, phrase: str, problem: str) -> PatternError:
        return PatternError(f"{self.source}: {where}: {phrase!r}: {problem}")

    # ---------------------------------------------------------------- reading
    def find(self, doc: Doc) -> Dict[str, List[Span]]:
        """key -> sorted spans of every match in `doc`."""
        matches = list(self.matcher(doc)) if len(self.matcher) else []
        for matcher in self.phrase_matchers.values():
            if len(matcher):
                matches.extend(matcher(doc))
        strings = self.nlp.vocab.strings
        found: Dict[str, set] = {}
        for match_id, start, end in matches:
            found.setdefault(strings[match_id], set()).add(Span(start, end))
        return {key: sorted(spans) for key, spans in found.items()}


def _contraction(word: str, lemma: bool = False) -> List[str]:
    """A contraction written on its own ("'ve", "'m") is one word, as it is in
    a message ("they've" -> they + 've); the tokenizer alone would split it
    into a quote and a word that no message has."""
    if word in _CONTRACTIONS:
        return [_CONTRACTIONS[word] if lemma else word]
    return []


_CONTRACTIONS = {"'ve": "have", "'m": "be", "'s": "be", "'re": "be", "'d": "would", "'ll": "will"}


def _merge(options: List[TokenPattern]) -> List[TokenPattern]:
    """Alternatives that are one token compared on one attribute become one IN
    list: the same words match, with far fewer patterns."""
    merged: Dict[str, set] = {}
    rest: List[TokenPattern] = []
    for option in options:
        if len(option) == 1 and len(option[0]) == 1:
            attr, value = next(iter(option[0].items()))
            if attr in ("LEMMA", "LOWER") and isinstance(value, str):
                merged.setdefault(attr, set()).add(value)
                continue
            if attr in ("LEMMA", "LOWER") and isinstance(value, dict) and set(value) == {"IN"}:
                merged.setdefault(attr, set()).update(value["IN"])
                continue
        rest.append(option)
    return [[{attr: {"IN": sorted(values)}}] for attr, values in merged.items()] + rest


def _optional(options: List[TokenPattern]) -> List[TokenPattern]:
    """A one-token option gets OP "?"; longer ones get an empty alternative."""
    result = [[dict(option[0], OP="?")] if len(option) == 1 and "OP" not in option[0] else option
              for option in options]
    if any(len(o) != 1 or o[0].get("OP") != "?" for o in result):
        result.append([])
    return result


def _product(numbers: Iterable[int]) -> int:
    total = 1
    for number in numbers:
        total *= number
    return total
