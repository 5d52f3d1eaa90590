"""People's names, and towns after "I live in", in a patient's message.

A spaCy pipeline built from data in the repository (blank English with lookup
lemmas, aftercare/language.py) with an entity ruler: PERSON for the names in
data/privacy/, and the phrases that are never names (products, symptoms, body
areas and times of data/spacy/entities.yml, data/privacy/not_names.txt), which
win where they overlap a name ("aloe vera", "witch hazel").

Whether a word is masked depends on the word and on where it stands:
  - a name that is not an everyday word: always, in any case ("my friend priya");
  - a surname: capitalised, or next to a first name or after a title;
  - a name that is an everyday word (word_names.txt: "Hope", "Will", "Mark"):
    capitalised in the middle of a sentence (first names), or after a cue of
    data/privacy/cues.yml, or next to another name;
  - a word on no list: only after a cue, capitalised ("I'm Okonkwo"), or in any
    case after a strong cue or a title ("my name is zanele", "dr adeyemi"),
    and never an everyday English word.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from spacy.language import Language
from spacy.tokens import Doc, Token

from aftercare.language import blank_with_lemmas, load_entity_phrases
from aftercare.privacy.lexicon import MONTHS, WEEKDAYS, Lexicon, fold
from aftercare.privacy.patterns import Found

PERSON = "PERSON"
NOT_NAME = "NOT_NAME"
SENTENCE_ENDS = frozenset(
    {".", "!", "?", "…", "...", "!!", "??", "?!", ":", ";", "-", "–", "—", "*", "•", ")"})
DASHES = frozenset({"-", "–", "—", "~", "--"})
KISSES = frozenset({"x", "xx", "xxx", "xxxx", "xo", "xoxo"})
SEPARATORS = frozenset({",", ":"})
# Words before a month or a weekday that make it one ("in June", "it's May", "next April").
MONTH_CONTEXT = frozenset(
    "in on since by until till from of last next this early late mid end before after during "
    "through throughout every each 's it's its around about".split())
PAST_TENSE = frozenset(
    "said told paid went came took gave saw did had got made put thought felt left kept ran sent "
    "brought bought found knew wrote drove rang spoke met sat stood rode".split())
# Lower-case parts of surnames: "Van der Berg", "de la Cruz", "al Rashid".
PARTICLES = frozenset("van von der den de del della la le da di du dos das al el bin ibn bint ap"
                      .split())
SAINT = frozenset({"st", "saint"})
DETERMINERS = frozenset("a an the my your our his her their this that".split())
PLACE_JOINERS = frozenset({"upon", "on", "le", "in", "under", "by", "the", "de", "of"})


def build_pipeline(lexicon: Lexicon, entities_path: Path) -> Language:
    nlp = blank_with_lemmas()
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    patterns: list[dict] = []
    protected: set[str] = set()
    for label, phrases in load_entity_phrases(entities_path).items():
        for phrase in phrases:
            if isinstance(phrase, str):
                patterns.append({"label": label, "pattern": phrase.lower()})
                protected.add(fold(phrase))
            else:
                patterns.append({"label": label, "pattern": phrase})
    for phrase in lexicon.not_name_phrases:
        patterns.append({"label": NOT_NAME, "pattern": phrase})
    for name in sorted(lexicon.given | lexicon.family):
        if name not in protected and name not in lexicon.not_names:
            patterns.append({"label": PERSON, "pattern": name})
    ruler.add_patterns(patterns)
    return nlp


@dataclass(frozen=True)
class _Cues:
    """Cue phrases as tuples of folded tokens, tokenised like the messages."""
    strong: tuple[tuple[str, ...], ...]
    titles: frozenset[str]
    introductions: tuple[tuple[str, ...], ...]
    weak: tuple[tuple[str, ...], ...]
    speech_verbs: frozenset[str]
    greetings: tuple[tuple[str, ...], ...]
    after: tuple[tuple[str, ...], ...]
    sign_offs: tuple[tuple[str, ...], ...]
    not_after_sign_off: frozenset[str]
    places: tuple[tuple[str, ...], ...]
    honorifics: frozenset[str]


def _cue_tokens(nlp: Language, phrases: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    return tuple(sorted({tuple(_norm(t.text) for t in nlp.make_doc(p)) for p in phrases},
                        key=len, reverse=True))


def _norm(text: str) -> str:
    folded = fold(text)
    return folded.rstrip(".") if len(folded) > 1 and folded not in ("...",) else folded


class NameFinder:
    def __init__(self, nlp: Language, lexicon: Lexicon) -> None:
        self.nlp = nlp
        self.lexicon = lexicon
        cues = lexicon.cues
        self.cues = _Cues(
            strong=_cue_tokens(nlp, cues["strong_name_cues"]),
            titles=frozenset(_norm(t) for t in cues["titles"]),
            introductions=_cue_tokens(nlp, cues["introductions"]),
            weak=_cue_tokens(nlp, cues["weak_name_cues"]),
            speech_verbs=frozenset(cues["speech_verbs"]),
            greetings=_cue_tokens(nlp, cues["greetings"]),
            after=_cue_tokens(nlp, cues["after_name_cues"]),
            sign_offs=_cue_tokens(nlp, cues["sign_offs"]),
            not_after_sign_off=frozenset(fold(w) for w in cues["not_after_sign_off"]),
            places=_cue_tokens(nlp, cues["place_cues"]),
            honorifics=frozenset(_norm(t) for t in cues["honorifics"]),
        )
        # Words of greetings, sign-offs and titles are never part of a name.
        self.cue_words = frozenset(
            word for group in (self.cues.greetings, self.cues.sign_offs, self.cues.weak,
                               self.cues.introductions)
            for cue in group for word in cue) | self.cues.titles

    def find(self, text: str, known_names: frozenset[str] = frozenset()) -> list[Found]:
        doc = self.nlp(text)
        return _Reading(doc, self, known_names).spans()


class _Reading:
    """One message: its tokens without whitespace, and the decisions about them."""

    def __init__(self, doc: Doc, finder: NameFinder, known: frozenset[str]) -> None:
        self.finder = finder
        self.lexicon = finder.lexicon
        self.cues = finder.cues
        self.known = known
        self.tokens: list[Token] = [t for t in doc if not t.is_space]
        self.low = [_norm(t.text) for t in self.tokens]
        self.newline_before = [False] * len(self.tokens)
        for i in range(1, len(self.tokens)):
            prev, tok = self.tokens[i - 1], self.tokens[i]
            self.newline_before[i] = "\n" in doc.text[prev.idx + len(prev.text):tok.idx]
        self.masked: set[int] = set()
        self.places: list[tuple[int, int]] = []

    # --- what a token is -------------------------------------------------------

    def _protected(self, i: int) -> bool:
        tok = self.tokens[i]
        return bool(tok.ent_type_) and tok.ent_type_ != PERSON

    def _in_list(self, i: int) -> bool:
        low = self.low[i]
        return (low in self.known or self.tokens[i].ent_type_ == PERSON
                or (not self.tokens[i].ent_type_ and low not in self.lexicon.not_names
                    and self.lexicon.is_name(low)))

    def _given(self, i: int) -> bool:
        return self.low[i] in self.known or self.low[i] in self.lexicon.given

    def _word_like(self, i: int) -> bool:
        """A name that is also an everyday word: only masked in a name position."""
        low = self.low[i]
        if self.lexicon.is_word_name(low):
            return True
        if low in self.known or low in self.lexicon.given:
            return False
        return self._everyday(i)  # a surname such as "Burns", "Mills"

    def _everyday(self, i: int) -> bool:
        lemma = fold(self.tokens[i].lemma_)
        return self.lexicon.is_everyday(self.low[i]) or self.lexicon.is_everyday(lemma)

    def _wordy(self, i: int) -> bool:
        text = self.tokens[i].text
        return len(text) >= 2 and text.replace("'", "").replace("’", "").isalpha()

    def _capitalised(self, i: int) -> bool:
        """Capitalised like a name: "Anna", "O'Neill"; not "MY" or "HELP" (shouting)."""
        text = self.tokens[i].text
        return text[0].isupper() and not (len(text) > 1 and text.isupper())

    def _sentence_start(self, i: int) -> bool:
        return i == 0 or self.newline_before[i] or self.low[i - 1] in SENTENCE_ENDS

    def _followed_by_digit(self, i: int) -> bool:
        return i + 1 < len(self.tokens) and self.tokens[i + 1].text[:1].isdigit()

    def _candidate(self, i: int) -> bool:
        saint = self.low[i] in SAINT or i > 0 and self.low[i - 1] in SAINT  # "St Patrick's"
        return (self._wordy(i) and not self._protected(i) and not saint
                and self.low[i] not in self.cues.titles and not self._followed_by_digit(i))

    # --- cues -------------------------------------------------------------------

    def _cue_before(self, i: int, cues: tuple[tuple[str, ...], ...],
                    at_start: bool = False, min_words: int = 1) -> bool:
        end = i
        if end > 0 and self.low[end - 1] in SEPARATORS:
            end -= 1
        for cue in cues:
            if len(cue) < min_words:
                continue
            begin = end - len(cue)
            if begin >= 0 and tuple(self.low[begin:end]) == cue:
                if not at_start or begin == 0 or self.newline_before[begin]:
                    return True
        return False

    def _cue_after(self, i: int, known_word: bool = True) -> bool:
        """A cue right after the word; "and I" only after a word on a name list."""
        for cue in self.cues.after:
            if not known_word and cue[0] == "and":
                continue
            if tuple(self.low[i + 1:i + 1 + len(cue)]) == cue:
                return True
        return False

    def _title_before(self, i: int, titles: frozenset[str] | None = None) -> bool:
        """"Dr Okonkwo", "nurse Dawn"; not "a nurse pls", "the doctor said"."""
        titles = self.cues.titles if titles is None else titles
        if i == 0 or self.low[i - 1] not in titles:
            return False
        return i < 2 or self.low[i - 2] not in DETERMINERS

    def _ends_phrase(self, i: int) -> bool:
        """Nothing, punctuation, a kiss or a line break after the word ("Hi Will,")."""
        j = i + 1
        return (j >= len(self.tokens) or self.newline_before[j] or not self._wordy(j)
                or self.low[j] in KISSES)

    # --- decisions -----------------------------------------------------------------

    def _decide(self, i: int) -> bool:
        if not self._candidate(i):
            return False
        in_list, low = self._in_list(i), self.low[i]
        strong = self._cue_before(i, self.cues.strong)
        title = self._title_before(i)
        intro = self._cue_before(i, self.cues.introductions)
        relation = self._cue_before(i, self.cues.weak)
        weak = (relation or self._cue_after(i, in_list) or self._speech_follows(i)
                or (self._cue_before(i, self.cues.greetings, at_start=True)
                    and self._ends_phrase(i)))
        capitalised = self._capitalised(i)
        if in_list and not self._word_like(i):
            return self._given(i) or capitalised or strong or title or weak or intro
        if in_list:
            if strong and low not in self.cues.not_after_sign_off:
                return True
            if not capitalised:
                # The patient's own "june" or "sunny": after "it's", only as a whole phrase.
                return intro and low in self.known and self._name_phrase_ends(i)
            if low in MONTHS or low in WEEKDAYS:
                return self._calendar_name(i, title or weak or (intro and low in self.known))
            if title or weak or intro:
                return True
            if not self._given(i):
                return False
            return not self._sentence_start(i) or self._past_verb(i + 1)
        if self._everyday(i) or low in self.lexicon.not_names:
            return strong and capitalised
        if capitalised:
            return strong or title or weak or intro
        opening = self._sentence_start(i) and i + 1 < len(self.low) and self.low[i + 1] == "here"
        honorific = self._title_before(i, self.cues.honorifics)
        # "my husband jamal", but not "mum pls": a bare kin word is too common before chat.
        relation = relation and self._cue_before(i, self.cues.weak, min_words=2)
        return strong or honorific or relation or opening

    def _name_phrase_ends(self, i: int) -> bool:
        j = i + 1
        return (self._ends_phrase(i) or self.low[j] in self.known
                or self.low[j] in ("here", "again", "from", "btw"))

    def _speech_follows(self, i: int) -> bool:
        """"Grace at the front desk said ...": a speech verb a few lower-case words on."""
        for j in range(i + 1, min(i + 7, len(self.tokens))):
            if self.low[j] in self.cues.speech_verbs:
                return True
            if not self._wordy(j) or self._capitalised(j) or self.newline_before[j]:
                return False
        return False

    def _past_verb(self, j: int) -> bool:
        """"Bill paid", "Rose looked": a name starting a sentence, then what they did."""
        if j >= len(self.tokens) or not self.tokens[j].text.islower():
            return False
        low = self.low[j]
        return low in PAST_TENSE or (low.endswith("ed") and fold(self.tokens[j].lemma_) != low)

    def _calendar_name(self, i: int, cued: bool) -> bool:
        """"June" the person, not the month: "Is June in today", not "in June", "it's June"."""
        if cued:
            return True
        if self._sentence_start(i) or not self._given(i):
            return False
        return self.low[i - 1] not in MONTH_CONTEXT

    def _sign_off(self) -> None:
        """A name alone at the end: "thanks, Anna", "- Priya", "x Jo x", a last line."""
        end = len(self.tokens)
        while end > 0 and (not self._wordy(end - 1) or self.low[end - 1] in KISSES):
            end -= 1
        begin = end
        while (begin > 0 and end - begin < 3 and self._candidate(begin - 1)
               and self.low[begin - 1] not in self.cues.not_after_sign_off
               and not self._is_sign_off_word(begin - 1)):
            begin -= 1
        if begin == end:
            return
        # The shortest tail first: "thanks so much Anna" is Anna, not "much Anna".
        for start in range(end - 1, begin - 1, -1):
            if self._signed_at(start, end):
                single = end - start == 1
                if all(self._sign_off_name(i, single) for i in range(start, end)):
                    self.masked.update(range(start, end))
                return

    def _is_sign_off_word(self, i: int) -> bool:
        return any(self.low[i] == cue[-1] for cue in self.cues.sign_offs)

    def _signed_at(self, start: int, end: int) -> bool:
        kissed_after = end < len(self.tokens) and self.low[end] in KISSES
        if start == 0:
            return kissed_after
        if self.newline_before[start]:
            return True
        before = start - 1
        if self.low[before] in SEPARATORS and before > 0:
            before -= 1
        if self.low[before] in DASHES or self.low[before] in KISSES:
            return True
        if self._cue_before(start, self.cues.sign_offs):
            return True
        return kissed_after and self.low[start - 1] in SENTENCE_ENDS

    def _sign_off_name(self, i: int, single: bool) -> bool:
        if self._in_list(i) and not self._word_like(i):
            return True
        if self._in_list(i):
            # "thanks, grace" is a name; "cheers, will do" and "thanks, nick" are not.
            low = self.low[i]
            plain_word = low in self.lexicon.word_names and low not in self.lexicon.given
            return self._capitalised(i) or (single and not plain_word and not self._stop(i))
        return self._capitalised(i) and not self._everyday(i)

    def _stop(self, i: int) -> bool:
        return self.tokens[i].is_stop

    def _extend(self) -> None:
        """Surnames and first names next to a masked name: "Grace Kelly", "Anna K."."""
        changed = True
        while changed:
            changed = False
            for i in sorted(self.masked):
                for j in (i + 1, i - 1):
                    if self._joins(i, j):
                        self.masked.add(j)
                        changed = True
                hyphen = i + 1
                if (hyphen + 1 < len(self.tokens) and self.low[hyphen] == "-"
                        and not self.tokens[i].whitespace_
                        and not self.tokens[hyphen].whitespace_
                        and hyphen + 1 not in self.masked and self._wordy(hyphen + 1)
                        and self._capitalised(hyphen + 1)):
                    self.masked.update((hyphen, hyphen + 1))
                    changed = True

    def _particles(self, j: int) -> int | None:
        """The end of "der Berg" / "de la Cruz" starting at j, or None."""
        k = j
        while (k < len(self.tokens) and k - j < 3 and self.low[k] in PARTICLES
               and not self.newline_before[k]):
            k += 1
        if k == j or k >= len(self.tokens) or self.newline_before[k]:
            return None
        if self._wordy(k) and self._capitalised(k) and not self._protected(k):
            return k + 1
        return None

    def _mask_particles(self) -> None:
        for i in range(len(self.tokens)):
            if i - 1 in self.masked or self._title_before(i):
                end = self._particles(i)
                if end is not None:
                    self.masked.update(range(i, end))

    def _joins(self, i: int, j: int) -> bool:
        if j < 0 or j >= len(self.tokens) or j in self.masked:
            return False
        later = max(i, j)
        if self.newline_before[later] or not self.tokens[min(i, j)].whitespace_:
            return False
        text = self.tokens[j].text
        if len(text.rstrip(".")) == 1 and text[0].isupper() and text != "I":
            return True  # an initial: "Anna K.", "P. Sharma"
        if not self._candidate(j) or self._stop(j) and not self._in_list(j):
            return False
        if self.low[j] in self.finder.cue_words:
            return False
        if self.low[j] in self.known and self.low[i] in self.known:
            return True  # two parts of the patient's own name: "june okoro"
        if self._in_list(j):
            if not self._word_like(j):
                return True
            return self._capitalised(j)
        return (j > i and self._capitalised(j) and not self._everyday(j)
                and self.low[j] not in self.lexicon.not_names)

    def _find_places(self) -> None:
        for i in range(len(self.tokens)):
            if not self._cue_before(i, self.cues.places) or not self._candidate(i):
                continue
            if self._stop(i) and not self._capitalised(i):
                continue
            if self._capitalised(i) and not self._stop(i):
                j = i + 1
                while j < len(self.tokens) and j - i < 4 and not self.newline_before[j]:
                    if self._wordy(j) and self._capitalised(j) and not self._protected(j):
                        j += 1
                    elif (self.low[j] in PLACE_JOINERS or self.low[j] == "-") and \
                            j + 1 < len(self.tokens) and self._capitalised(j + 1):
                        j += 2
                    else:
                        break
                self.places.append((i, j))
            elif not self._everyday(i) and self.low[i] not in self.lexicon.not_names:
                self.places.append((i, i + 1))

    # --- result -------------------------------------------------------------------------

    def spans(self) -> list[Found]:
        for i in range(len(self.tokens)):
            if self._decide(i):
                self.masked.add(i)
        self._sign_off()
        self._mask_particles()
        self._extend()
        self._find_places()
        found = []
        for i in sorted(self.masked):
            tok = self.tokens[i]
            found.append(Found("name", tok.idx, tok.idx + len(tok.text)))
        for begin, end in self.places:
            first, last = self.tokens[begin], self.tokens[end - 1]
            found.append(Found("place", first.idx, last.idx + len(last.text)))
        return found
