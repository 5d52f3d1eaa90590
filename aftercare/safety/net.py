"""The red-flag net: clinician-maintained patterns matched on lemmas.

The patterns live in data/safety/red_flags.yml (its header explains the format
to clinicians). This module compiles them once per net into spaCy matchers over
the project's blank English pipeline with lookup lemmas (plain word sequences
into PhraseMatchers on LEMMA and LOWER, everything with wildcards, optional
words or word beginnings into a token `Matcher`), and `RedFlagNet.assess`
returns the most urgent level a message reaches and the signs behind it.

How one message is read
-----------------------
1. Run-together words listed under `spellings:` are respelled ("mylips" ->
   "my lips"; patients' messages only, never the patterns). The text is
   normalised (lower case, straight quotes, a space after a full stop that
   runs into the next word, letters repeated 3+ times squeezed to 2, "its"
   read as "it's") and tokenised; a few contraction lemmas are fixed so
   that "does"/"ca"/"wo"/"'s" read as do/can/will/be, and comparatives keep
   their own form (the lookup table turns "worse" into "wrong" and "redder"
   into "red").
2. Every word group (`words:`), every literal phrase used in a sign, and every
   cue list (`cues:`) is matched, overlapping matches included.
3. Each match of a word group gets a status:
   - negated: a negation cue ("no", "not", "n't", "without", "no sign of") in
     the few words before it, in the same clause (a clause ends at , ; : . ? !
     and at words like but / just / and / still), unless the cue is part of a
     pseudo-negation ("not sure", "no better", "won't stop") or of a sign
     phrase itself ("can't breathe"); or a resolution/answer cue right after it
     ("swelling has gone down", "Pus? No.") -- not when the sentence says
     something came back; or, for a body part listed in `fine_targets`, a
     "fine" cue right after it ("lips are fine"; "the pus is fine" and "the
     swelling in my lips is fine" still report the sign) -- not in a question
     ("swollen lips are fine, right?") and not when a pseudo-negation overlaps
     it ("fine but they feel puffy", "they were fine"). A resolution or "fine"
     cue also covers a word joined by and/or that shares a word group ("lips
     AND tongue are fine"), never a different kind of word ("swelling and
     tongue fine" leaves the swelling alone), never past a sign word
     ("lips swollen ok"), never for a body part right after a sign word ("my
     swollen lips are fine"); or a denial cue at the very end of a later
     clause of the same sentence, in the span's own clause or the next one
     ("my husband had a cold sore, I HAVE NONE", "there was pus but NOT
     ANYMORE"; not "I haven't YET") -- never for an emergency sign, and not
     when the sentence says something came back.
   - history: a distant-past cue ("last year", "used to", "prone to") in the
     same sentence part (split at but / however / because ...).
   - third_party / hypothetical: a cue a few words before it, with no comma
     or other clause break in between ("my friend had", "what if", "how would
     I know if", "what does ... look like"). A "possibility" cue ("could I be
     allergic") counts as hypothetical only when the message also says that
     nothing has happened (`nothing_happened`: "nothing's happened", "no
     reaction so far"); otherwise the question is read as a report. A cue does
     not count when the patient points at the sign between cue and symptom
     ("what if THIS yellow crust is infection?").
   History cues are cancelled when the same sentence part also has a "current"
   marker (now, today, again, already...). In a pseudo-current phrase ("do I
   need to worry now", "for now") the marker counts only when that sentence
   part also has a "self" cue ("should I worry now that my lip tingles?").
   Third-party cues are cancelled when the same sentence part also has a
   "self" cue outside the third-party phrase itself: the patient says she has
   it too or is the one looked at ("... and I've got one", "on my lip",
   "gave me", "my boyfriend has noticed"), or when the message has a
   "self_too" cue anywhere ("... and so do I", "Me too!"); a self cue with a
   negation or "fine" right after it does not count ("I have NONE", "mine
   are FINE"). A time word alone
   ("my son has a fever today") does not make someone else's sign the
   patient's.
   A history, third-party or hypothetical status is cancelled when, later in
   the message, the patient reports the thing as her own now with words that
   refer back to it (`refers_back`: "how long do cold sores last? I'VE GOT ONE
   on my lip", "what if my lips swell? THEY'RE SWELLING now", "the nurse said
   blisters can happen, I'VE GOT TWO", "... but IT'S REALLY YELLOW"). Such a
   cue does not count when it is negated ("I haven't got one"), followed by a
   resolution or "fine" cue ("it's fine now"), or itself hypothetical ("will
   I have one?"). A plain negation is never cancelled this way.
   A hypothetical or third-party cue does not reach past a clause word
   (and/but/so...) after which the patient turns to herself or to now ("I
   read about cold sores AND NOW I've got one", "... AND MINE looks
   infected").
   A non-emergency sign is "resolved" when it was an episode that is over:
   its clause has a `past_episode` cue ("on day 1", "there was") or it follows
   a past `worry` cue ("I was worried about"), its phrase is not in the
   present (`present_tense`, `current`), and a `resolved` cue comes later in
   the message ("It turned out to be nothing", "it's completely fine now") --
   not in a question, not negated, not partly over ("settled a bit"), and not
   followed by a RETURN word. A past worry is also resolved by a later
   sentence that negates a sign of the same topic ("I was worried about
   infection. There's no yellow crust or anything."). An emergency sign is
   never resolved.
   Anything else is positive: questions such as "is this pus?" or "should I
   worry about pus?" count as reports (when in doubt, flag).
4. A sign fires when one of its rules has all parts matched positively close
   together (same clause / sentence / message, within `window` words) and its
   day conditions hold. An unknown day (None) satisfies min_day and worse_after
   (the safe direction) but not after_symptom_window / after_expected: without
   a day nothing is "still there after the window" unless the words say so.
5. The assessment's level is the most urgent fired sign. Rules that matched only
   through negated/history/hypothetical words are kept as `discounted`, which
   triage uses to decide when an intent alone must not flag; `current_report`
   says the message has a refers_back cue (see 3.), and then triage never
   lets a discounted mention veto a red-flag intent.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import yaml
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc

from aftercare.language import blank_with_lemmas
from aftercare.protocol import Protocol, load_protocol

LEVELS = ("routine", "urgent", "emergency")
_RANK = {None: 0, "routine": 1, "urgent": 2, "emergency": 3}
SCOPES = ("clause", "sentence", "message")
CUE_KINDS = (
    "negation", "negation_after", "negation_answer", "pseudo_negation",
    "negation_scope_ends", "history", "third_party", "hypothetical", "current",
    "clause_ends", "fine_after", "fine_targets", "pseudo_current", "self", "self_too",
    "possibility", "nothing_happened", "refers_back", "denial",
    "past_episode", "present_tense", "worry", "resolved",
)
SETTING_DEFAULTS = {
    "window": 8,                  # words allowed between the parts of an "A + B" rule
    "negation_window": 6,         # words a negation cue may stand before its target
    "negation_after_window": 3,   # words a resolution cue may stand after its target
    "hypothetical_window": 8,     # words a hypothetical/third-party cue may stand before
    "max_patterns_per_phrase": 3000,
}
TOP_LEVEL_KEYS = {"version", "settings", "spellings", "words", "cues", "signs"}
SIGN_KEYS = {
    "id", "level", "reason", "topic", "any", "unless", "scope", "window", "min_day",
    "after_symptom_window", "after_expected", "worse_after", "returning",
    "unknown_day_needs", "note",
}
_GROUP_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_GROUP_ALTS = re.compile(r"^[A-Z][A-Z0-9_]*(\|[A-Z][A-Z0-9_]*)*$")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_SPELLING = re.compile(r"^[^\s]+$")
# Lemmas the lookup table gets wrong for contractions and chat spellings.
_LEMMA_FIXES = {
    "does": "do", "'s": "be", "ca": "can", "wo": "will", "ai": "be", "sha": "shall",
    "'re": "be", "'ll": "will", "'d": "would", "'ve": "have", "'m": "be", "ve": "have",
    "n't": "not", "nt": "not",
}
_AT_CLAUSE_END = "$"      # key suffix: matches that count only where a clause ends
_KEEP_FORM = {"worse", "worst", "better", "best", "more", "most", "less", "least"}
_CHAT_SPELLINGS = [
    (re.compile(r"\bits\b"), "it's"),
    (re.compile(r"\btheres\b"), "there's"),
    (re.compile(r"\bthats\b"), "that's"),
    (re.compile(r"\bwhats\b"), "what's"),
]
_KEEP_TOGETHER = {"'", "/", "&", "+", "%", "#", "@", "*", "=", "~", "^", "`", "_"}
_SENTENCE_PUNCT = set(".!?;…")
_COORDINATORS = {"and", "or", "&", "n", "nor"}
_DETERMINERS = {"my", "the", "his", "her", "both", "your", "our"}
_PREPOSITIONS = {"in", "on", "of", "around", "round", "near", "under", "at", "by", "inside",
                 "across", "along", "over", "to", "into", "from", "above", "below", "behind",
                 "with", "within", "towards", "toward"}
# "what if THIS yellow crust is infection": a pointed-at sign is there, unless a
# verb follows the pointer ("what if this GETS infected")
_DEMONSTRATIVES = {"this", "these", "those"}
_VERB_LEMMAS = {"be", "get", "become", "turn", "go", "look", "seem", "start", "could",
                "might", "will", "would", "may", "can", "should", "have", "do", "happen",
                "develop", "end", "come", "break", "leave", "cause", "make", "mean", "need"}
# words that may follow a denial cue: "..., I have none BUT my lip tingles"
_DENIAL_ENDS = {"but", "and", "though", "tho", "although", "however", "whereas", "except"}
_ANSWER_SEPARATORS = {":", "?", "-", "–", "—", "=", "->"}
# "... and MINE looks infected": the patient turns to her own skin
_TURN_WORDS = {"mine", "mines", "i", "i'm", "im", "i've", "ive"}


class PatternError(ValueError):
    """The red-flag patterns file is missing, unreadable or has a wrong entry."""


@dataclass(frozen=True)
class Sign:
    """One red-flag sign found in a message."""
    id: str
    level: str
    reason: str
    matched: str
    topic: Optional[str] = None


@dataclass(frozen=True)
class Discounted:
    """A sign whose words were present but negated, past, third-party or hypothetical."""
    id: str
    level: str
    topic: Optional[str]
    cue: str          # negated | history | third_party | hypothetical (possibility too) | resolved
    matched: str


@dataclass
class Assessment:
    level: Optional[str]
    signs: List[Sign] = field(default_factory=list)
    discounted: List[Discounted] = field(default_factory=list)
    gated: List[Sign] = field(default_factory=list)   # matched, but the day rules it out
    day: Optional[int] = None
    current_report: bool = False   # a refers_back cue: "... I've got one", "they're swelling now"

    @property
    def reason(self) -> str:
        seen: List[str] = []
        for sign in self.signs:
            if sign.reason not in seen:
                seen.append(sign.reason)
        return "; ".join(seen)

    @property
    def flagged(self) -> bool:
        return self.level is not None

    @property
    def topics(self) -> set:
        return {s.topic for s in self.signs if s.topic}

    @property
    def discounted_topics(self) -> set:
        return {d.topic for d in self.discounted if d.topic}


# --------------------------------------------------------------------------- patterns

@dataclass(frozen=True)
class _Rule:
    parts: Tuple[Tuple[str, ...], ...]   # each part: alternative group keys
    scope: str
    window: int
    text: str


@dataclass(frozen=True)
class _SignSpec:
    id: str
    level: str
    reason: str
    topic: Optional[str]
    rules: Tuple[_Rule, ...]
    unless_key: Optional[str]
    min_day: Optional[int]
    after_symptom_window: Optional[str]
    after_expected: Optional[str]
    worse_after: Optional[str]
    returning: bool
    unknown_day_rules: Tuple[_Rule, ...] = ()


def _as_list(value: Any, where: str) -> List[Any]:
    if value is None:
        return []
    if isinstance(value, (str, dict)):
        return [value]
    if not isinstance(value, list):
        raise PatternError(f"{where}: expected a list")
    return value


class RedFlagNet:
    """Red-flag patterns compiled once; `assess` is safe to call for every message."""

    def __init__(self, data: Dict[str, Any], protocol: Protocol, source: str = "<patterns>"):
        if not isinstance(data, dict):
            raise PatternError(f"{source}: expected a mapping at the top level")
        unknown = set(data) - TOP_LEVEL_KEYS
        if unknown:
            raise PatternError(f"{source}: unknown top-level key(s) {sorted(unknown)}; "
                               f"known: {', '.join(sorted(TOP_LEVEL_KEYS))}")
        self.source = source
        self.protocol = protocol
        self.nlp: Language = blank_with_lemmas()
        # Patterns are generated by this module, not typed by hand: spaCy's schema
        # check of each one would only cost start-up time (seconds).
        self.matcher = Matcher(self.nlp.vocab, validate=False)
        self.phrase_matchers = {"LEMMA": PhraseMatcher(self.nlp.vocab, attr="LEMMA"),
                                "LOWER": PhraseMatcher(self.nlp.vocab, attr="LOWER")}
        settings = dict(SETTING_DEFAULTS)
        for key, value in (data.get("settings") or {}).items():
            if key not in SETTING_DEFAULTS:
                raise PatternError(f"{source}: settings.{key}: unknown setting")
            if not isinstance(value, int) or value < 0:
                raise PatternError(f"{source}: settings.{key}: must be a whole number >= 0")
            settings[key] = value
        self.settings = settings
        self.spellings, self._spelling_re = self._compile_spellings(data.get("spellings"))
        self._literal_keys: Dict[str, str] = {}
        self.groups: Dict[str, List[str]] = {}

        words = data.get("words") or {}
        if not isinstance(words, dict):
            raise PatternError(f"{source}: words: expected a mapping NAME: [phrases]")
        for name, phrases in words.items():
            if not isinstance(name, str) or not _GROUP_NAME.match(name):
                raise PatternError(f"{source}: words.{name}: names are UPPER_CASE")
            phrases = _as_list(phrases, f"{source}: words.{name}")
            if not phrases:
                raise PatternError(f"{source}: words.{name}: needs at least one phrase")
            self._add_group(name, phrases, f"words.{name}")

        cues = data.get("cues") or {}
        unknown = set(cues) - set(CUE_KINDS)
        if unknown:
            raise PatternError(f"{source}: cues: unknown kind(s) {sorted(unknown)}; "
                               f"known: {', '.join(CUE_KINDS)}")
        for kind in CUE_KINDS:
            phrases = _as_list(cues.get(kind), f"{source}: cues.{kind}")
            if phrases:
                self._add_group(f"cue:{kind}", phrases, f"cues.{kind}")

        self.signs: List[_SignSpec] = []
        seen_ids = set()
        for index, raw in enumerate(_as_list(data.get("signs"), f"{source}: signs")):
            spec = self._compile_sign(raw, index)
            if spec.id in seen_ids:
                raise PatternError(f"{source}: signs: duplicate id {spec.id!r}")
            seen_ids.add(spec.id)
            self.signs.append(spec)
        if not self.signs:
            raise PatternError(f"{source}: signs: no signs defined")
        self._concept_keys = {k for k in self.groups if not k.startswith(("cue:", "unless:"))}
        # word group -> topics of the signs that use it ("no yellow crust" speaks
        # to an earlier worry about infection)
        self._group_topics: Dict[str, set] = {}
        for spec in self.signs:
            for rule in spec.rules:
                for names in rule.parts:
                    for name in names:
                        if spec.topic and name not in ("WORSE", "RETURN"):
                            self._group_topics.setdefault(name, set()).add(spec.topic)

    # ------------------------------------------------------------------ loading
    def _compile_spellings(self, raw: Any) -> Tuple[Dict[str, str], Optional["re.Pattern[str]"]]:
        """`spellings:` run-together or chat spellings of one word -> the words
        meant ("mylips: my lips"). Applied to patients' messages only, before
        anything else is read; never to the patterns."""
        if raw is None:
            return {}, None
        if not isinstance(raw, dict):
            raise PatternError(f"{self.source}: spellings: expected a mapping typed: meant")
        spellings: Dict[str, str] = {}
        for typed, meant in raw.items():
            typed = str(typed).strip().lower() if isinstance(typed, (str, int)) else ""
            if not typed or not _SPELLING.match(typed):
                raise PatternError(f"{self.source}: spellings.{typed or '?'}: what the patient "
                                   "typed is one word (no spaces)")
            if not isinstance(meant, str) or not meant.strip():
                raise PatternError(f"{self.source}: spellings.{typed}: give the words meant")
            spellings[typed] = " ".join(meant.lower().split())
        if not spellings:
            return {}, None
        alternatives = "|".join(re.escape(t) for t in sorted(spellings, key=len, reverse=True))
        return spellings, re.compile(rf"(?<![\w'])({alternatives})(?![\w'])", re.IGNORECASE)

    def _respell(self, text: str) -> str:
        if self._spelling_re is None:
            return text
        return self._spelling_re.sub(lambda m: self.spellings[m.group(1).lower()], text)

    @classmethod
    def from_file(cls, path: Union[Path, str], protocol: Union[Protocol, Path, str]) -> "RedFlagNet":
        path = Path(path)
        if not isinstance(protocol, Protocol):
            protocol = load_protocol(protocol)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PatternError(f"{path}: file not found") from None
        except yaml.YAMLError as exc:
            raise PatternError(f"{path}: not valid YAML: {exc}") from None
        return cls(data, protocol, source=str(path))

    def _compile_sign(self, raw: Any, index: int) -> _SignSpec:
        where = f"{self.source}: signs[{index}]"
        if not isinstance(raw, dict):
            raise PatternError(f"{where}: expected a mapping")
        sign_id = raw.get("id")
        if not isinstance(sign_id, str) or not _ID.match(sign_id):
            raise PatternError(f"{where}: id: give a lower_case id")
        where = f"{self.source}: signs.{sign_id}"
        unknown = set(raw) - SIGN_KEYS
        if unknown:
            raise PatternError(f"{where}: unknown key(s) {sorted(unknown)}; "
                               f"known: {', '.join(sorted(SIGN_KEYS))}")
        level = raw.get("level")
        if level not in LEVELS:
            raise PatternError(f"{where}: level: must be one of {', '.join(LEVELS)}")
        reason = raw.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise PatternError(f"{where}: reason: give a short reason for staff")
        symptoms = self.protocol.symptoms
        for key in ("after_symptom_window", "after_expected", "worse_after"):
            if raw.get(key) is not None and raw[key] not in symptoms:
                raise PatternError(f"{where}: {key}: unknown symptom {raw[key]!r} "
                                   f"(known: {', '.join(symptoms)})")
        min_day = raw.get("min_day")
        if min_day is not None and (not isinstance(min_day, int) or min_day < 0):
            raise PatternError(f"{where}: min_day: must be a whole number >= 0")
        scope = raw.get("scope", "sentence")
        if scope not in SCOPES:
            raise PatternError(f"{where}: scope: must be one of {', '.join(SCOPES)}")
        window = raw.get("window", self.settings["window"])
        if not isinstance(window, int) or window < 0:
            raise PatternError(f"{where}: window: must be a whole number >= 0")
        returning = raw.get("returning", False)
        if not isinstance(returning, bool):
            raise PatternError(f"{where}: returning: must be true or false")
        extra_parts: List[str] = []
        if raw.get("worse_after"):
            extra_parts.append("WORSE")
        if returning:
            extra_parts.append("RETURN")
        for name in extra_parts:
            if name not in self.groups:
                raise PatternError(f"{where}: needs the word group {name} in words:")
        needs = raw.get("unknown_day_needs")
        if needs is not None:
            if not raw.get("after_symptom_window"):
                raise PatternError(f"{where}: unknown_day_needs only goes with after_symptom_window")
            if not isinstance(needs, str) or not _GROUP_ALTS.match(needs) or any(
                    name not in self.groups for name in needs.split("|")):
                raise PatternError(f"{where}: unknown_day_needs: name a word group from words:")
        rules = []
        entries = _as_list(raw.get("any"), f"{where}: any")
        if not entries:
            raise PatternError(f"{where}: any: give at least one rule")
        for entry in entries:
            rule_scope, rule_window = scope, window
            if isinstance(entry, dict):
                unknown = set(entry) - {"rule", "scope", "window"}
                if unknown or "rule" not in entry:
                    raise PatternError(f"{where}: any: a rule mapping has keys rule, scope, window")
                rule_scope = entry.get("scope", scope)
                rule_window = entry.get("window", window)
                if rule_scope not in SCOPES:
                    raise PatternError(f"{where}: scope: must be one of {', '.join(SCOPES)}")
                entry = entry["rule"]
            if not isinstance(entry, str) or not entry.strip():
                raise PatternError(f"{where}: any: rules are non-empty strings")
            parts = []
            for part in [p.strip() for p in entry.split(" + ")] + extra_parts:
                if not part:
                    raise PatternError(f"{where}: rule {entry!r}: empty part")
                if _GROUP_ALTS.match(part):
                    names = tuple(part.split("|"))
                    for name in names:
                        if name not in self.groups:
                            raise PatternError(f"{where}: rule {entry!r}: unknown word group {name}")
                    parts.append(names)
                else:
                    parts.append((self._literal(part, where),))
            rules.append(_Rule(tuple(parts), rule_scope, rule_window, entry))
        unless = _as_list(raw.get("unless"), f"{where}: unless")
        unless_key = None
        if unless:
            unless_key = f"unless:{sign_id}"
            self._add_group(unless_key, unless, f"signs.{sign_id}.unless")
        topic = raw.get("topic")
        if topic is not None and not isinstance(topic, str):
            raise PatternError(f"{where}: topic: must be a word")
        unknown_day_rules: Tuple[_Rule, ...] = ()
        if needs:
            unknown_day_rules = tuple(
                _Rule(rule.parts + (tuple(needs.split("|")),), rule.scope, rule.window,
                      f"{rule.text} + {needs}") for rule in rules)
        return _SignSpec(sign_id, level, reason.strip(), topic, tuple(rules), unless_key,
                         min_day, raw.get("after_symptom_window"), raw.get("after_expected"),
                         raw.get("worse_after"), returning, unknown_day_rules)

    def _literal(self, phrase: str, where: str) -> str:
        key = self._literal_keys.get(phrase)
        if key is None:
            key = f"lit:{phrase}"
            self._literal_keys[phrase] = key
            self._add_group(key, [phrase], where)
        return key

    def _add_group(self, key: str, phrases: Iterable[Any], where: str) -> None:
        patterns: List[List[dict]] = []
        at_clause_end: List[str] = []
        for phrase in phrases:
            if isinstance(phrase, (int, float)):
                phrase = str(phrase)
            if not isinstance(phrase, str) or not phrase.strip():
                raise PatternError(f"{self.source}: {where}: phrases are non-empty strings")
            phrase = phrase.strip()
            if phrase.endswith(" $"):
                at_clause_end.append(phrase[:-2].strip())
                continue
            if "$" in phrase.split():
                raise PatternError(f"{self.source}: {where}: {phrase!r}: '$' only at the end")
            patterns.extend(self._compile_phrase(phrase, where))
        if at_clause_end:
            self._add_group(key + _AT_CLAUSE_END, at_clause_end, where)
        self.groups.setdefault(key, []).extend(phrases)
        token_patterns = []
        for pattern in patterns:
            if not self._add_as_phrases(key, pattern):
                token_patterns.append(pattern)
        if token_patterns:
            self.matcher.add(key, token_patterns)

    def _add_as_phrases(self, key: str, pattern: List[dict]) -> bool:
        """Plain word sequences go to a PhraseMatcher (much faster than the Matcher)."""
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
        total = 1
        for options in choices:
            total *= len(options)
        if len(attrs) != 1 or total > 400:
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

    def _find(self, doc: Doc) -> List[Tuple[int, int, int]]:
        matches = list(self.matcher(doc)) if len(self.matcher) else []
        for matcher in self.phrase_matchers.values():
            if len(matcher):
                matches.extend(matcher(doc))
        return matches

    def _compile_phrase(self, phrase: str, where: str) -> List[List[dict]]:
        """One phrase -> Matcher token patterns (see the file header for the syntax)."""
        patterns = [p for p in self._sequences(phrase, where)
                    if any(spec.get("OP") not in ("?", "{0,4}") for spec in p)]
        if not patterns:
            raise PatternError(f"{self.source}: {where}: {phrase!r} matches nothing")
        return patterns

    @staticmethod
    def _split_chunks(phrase: str, where: str) -> List[Tuple[str, Any, bool]]:
        """Split a phrase into ("word", chunk, False) and ("group", [alternatives], optional)."""
        chunks: List[Tuple[str, Any, bool]] = []
        i, n = 0, len(phrase)
        while i < n:
            if phrase[i].isspace():
                i += 1
                continue
            if phrase[i] == "(":
                close = phrase.find(")", i)
                if close < 0 or "(" in phrase[i + 1:close]:
                    raise PatternError(f"{where}: {phrase!r}: unbalanced or nested brackets")
                alternatives = [a.strip() for a in phrase[i + 1:close].split("|")]
                if any(not a for a in alternatives):
                    raise PatternError(f"{where}: {phrase!r}: empty alternative in brackets")
                i = close + 1
                optional = i < n and phrase[i] == "?"
                if optional:
                    i += 1
                if i < n and not phrase[i].isspace():
                    raise PatternError(f"{where}: {phrase!r}: put a space after ')'")
                chunks.append(("group", alternatives, optional))
                continue
            j = i
            while j < n and not phrase[j].isspace():
                j += 1
            word = phrase[i:j]
            if "(" in word or ")" in word:
                raise PatternError(f"{where}: {phrase!r}: put a space before '('")
            chunks.append(("word", word, False))
            i = j
        return chunks

    def _sequences(self, phrase: str, where: str) -> List[List[dict]]:
        where_full = f"{self.source}: {where}"
        options_per_chunk: List[List[List[dict]]] = []
        for kind, chunk, optional in self._split_chunks(phrase, where_full):
            if kind == "group":
                options = []
                for alternative in chunk:
                    options.extend(self._sequences(alternative, where))
            elif chunk == "...":
                options_per_chunk.append(
                    [[{"IS_PUNCT": False, "IS_SPACE": False, "OP": "{0,4}"}]])
                continue
            else:
                optional = len(chunk) > 1 and chunk.endswith("?")
                if optional:
                    chunk = chunk[:-1]
                options = self._word_options(chunk, phrase, where_full)
            if optional:
                new_options: List[List[dict]] = []
                for option in options:
                    if len(option) == 1 and "OP" not in option[0]:
                        new_options.append([dict(option[0], OP="?")])
                    else:
                        new_options.append(option)
                if any(len(o) != 1 or o[0].get("OP") != "?" for o in new_options):
                    new_options.append([])
                options = new_options
            options_per_chunk.append(options)
        total = 1
        for options in options_per_chunk:
            total *= max(1, len(options))
        if total > self.settings["max_patterns_per_phrase"]:
            raise PatternError(f"{where_full}: {phrase!r} expands to {total} "
                               "patterns; split it into several phrases")
        return [[spec for option in combo for spec in option]
                for combo in itertools.product(*options_per_chunk)]

    def _word_options(self, chunk: str, phrase: str, where: str) -> List[List[dict]]:
        if chunk == "*":
            return [[{"IS_PUNCT": False, "IS_SPACE": False}]]
        options: List[List[dict]] = []
        lemmas, lowers, prefixes = [], [], []
        for alt in chunk.split("|"):
            if not alt:
                raise PatternError(f"{where}: {phrase!r}: empty alternative")
            if alt.endswith("~") and len(alt) > 1:
                prefixes.append(re.escape(self._normalise(alt[:-1])))
            elif alt.startswith("=") and len(alt) > 1:
                tokens = [t.lower_ for t in self.nlp.make_doc(self._normalise(alt[1:]))]
                if len(tokens) == 1:
                    lowers.append(tokens[0])
                else:
                    options.append([{"LOWER": t} for t in tokens])
            else:
                tokens = [t.lemma_ for t in self._parse(alt) if not t.is_space]
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

    # ------------------------------------------------------------------ parsing
    @staticmethod
    def _normalise(text: str) -> str:
        text = text.lower()
        text = (text.replace("\u2019", "'").replace("\u2018", "'").replace("\u02bc", "'")
                .replace("\u201c", '"').replace("\u201d", '"').replace("`", "'"))
        text = re.sub(r"([.!?,;])(?=[^\W\d_])", r"\1 ", text)
        text = re.sub(r"([^\W\d_])\1{2,}", r"\1\1", text)
        for pattern, replacement in _CHAT_SPELLINGS:
            text = pattern.sub(replacement, text)
        return text

    def _parse(self, text: str) -> Doc:
        doc = self.nlp(self._normalise(text))
        for token in doc:
            lower = token.lower_
            fixed = _LEMMA_FIXES.get(lower)
            if fixed is not None:
                token.lemma_ = fixed
            elif not token.lemma_:
                token.lemma_ = lower
            elif lower in _KEEP_FORM or (lower.endswith(("er", "est"))
                                         and token.lemma_ != lower):
                # comparatives keep their meaning: "worse" is not "wrong",
                # "redder" is not just "red", "better" is not "well"
                token.lemma_ = lower
        return doc

    # ------------------------------------------------------------------ assessing
    def assess(self, text: Optional[str], day: Optional[int] = None) -> Assessment:
        """The red-flag level of one patient message on recovery day `day`
        (0 = treatment day; None = unknown). Never raises on odd text."""
        if text is None:
            text = ""
        if not isinstance(text, str):
            text = str(text)
        if day is not None:
            try:
                day = int(day)
            except (TypeError, ValueError):
                day = None          # an unreadable day is an unknown day
        if not text.strip():
            return Assessment(level=None, day=day)
        fired: Dict[str, Sign] = {}
        gated: Dict[str, Sign] = {}
        discounted: Dict[str, Discounted] = {}
        current_report = False
        for piece in _pieces(text):
            current_report = self._assess_piece(piece, day, fired, gated, discounted) \
                or current_report
        for sign_id in fired:
            discounted.pop(sign_id, None)
            gated.pop(sign_id, None)
        signs = sorted(fired.values(), key=lambda s: -_RANK[s.level])
        level = signs[0].level if signs else None
        return Assessment(level=level, signs=signs, discounted=list(discounted.values()),
                          gated=list(gated.values()), day=day, current_report=current_report)

    def _assess_piece(self, text: str, day: Optional[int], fired: Dict[str, Sign],
                      gated: Dict[str, Sign], discounted: Dict[str, "Discounted"]) -> bool:
        """Adds what one piece of text fires or discounts; True when it has a
        refers_back cue (Assessment.current_report)."""
        reading = _Reading(self, self._parse(self._respell(text)))
        for spec in self.signs:
            if spec.id in fired:
                continue
            positive, discount = reading.evaluate(spec)
            if positive is not None:
                sign = Sign(spec.id, spec.level, spec.reason, positive, spec.topic)
                if self._day_allows(spec, day):
                    fired[spec.id] = sign
                elif day is None and spec.unknown_day_rules:
                    matched, _ = reading.evaluate(spec, spec.unknown_day_rules)
                    if matched is not None:
                        fired[spec.id] = Sign(spec.id, spec.level, spec.reason, matched,
                                              spec.topic)
                    else:
                        gated[spec.id] = sign
                else:
                    gated[spec.id] = sign
            elif discount is not None and spec.id not in discounted:
                cue, matched = discount
                discounted[spec.id] = Discounted(spec.id, spec.level, spec.topic, cue, matched)
        return bool(reading.refers_back_starts)

    def _day_allows(self, spec: _SignSpec, day: Optional[int]) -> bool:
        """Day conditions. With an unknown day, min_day and worse_after count as
        met -- the safe direction: a patient who writes that it is getting worse
        is taken at her word -- but "still there after the window"
        (after_symptom_window) and "present after the normal course"
        (after_expected) cannot be claimed without a day; the patient's own
        words cover those ("still red", "after three weeks": unknown_day_needs
        and symptom_persisting_long)."""
        if day is None:
            return not (spec.after_symptom_window or spec.after_expected)
        if spec.min_day is not None and day < spec.min_day:
            return False
        if spec.after_symptom_window:
            if day <= self.protocol.symptoms[spec.after_symptom_window].routine_after:
                return False
        if spec.after_expected:
            if day <= self.protocol.symptoms[spec.after_expected].expected_until:
                return False
        if spec.worse_after:
            course = self.protocol.symptoms[spec.worse_after]
            limit = course.urgent_if_worse_after
            if limit is None:
                limit = course.expected_until
            if day <= limit:
                return False
        return True


_Span = Tuple[int, int]
_PIECE_CHARS = 20_000


def _pieces(text: str) -> List[str]:
    """Very long input is read in pieces of about 20,000 characters, cut at a
    line break or sentence end where possible, so that no input is too long
    for spaCy and every part of it is read."""
    if len(text) <= _PIECE_CHARS:
        return [text]
    pieces, start = [], 0
    while start < len(text):
        end = min(len(text), start + _PIECE_CHARS)
        if end < len(text):
            cut = max(text.rfind("\n", start, end), text.rfind(". ", start, end))
            if cut > start + _PIECE_CHARS // 2:
                end = cut + 1
        pieces.append(text[start:end])
        start = end
    return pieces


class _Reading:
    """Matches and the status of each match, for one parsed message."""

    def __init__(self, net: RedFlagNet, doc: Doc):
        self.net = net
        self.doc = doc
        settings = net.settings
        self.neg_window = settings["negation_window"]
        self.after_window = settings["negation_after_window"]
        self.hyp_window = settings["hypothetical_window"]
        n = len(doc)
        self.by_key: Dict[str, List[_Span]] = {}
        for match_id, start, end in net._find(doc):
            key = net.nlp.vocab.strings[match_id]
            self.by_key.setdefault(key, []).append((start, end))
        for key in self.by_key:
            self.by_key[key] = sorted(set(self.by_key[key]))

        # sentence, clause and "history clause" (sentence split at but/because...) ids
        self.sentence_end = [False] * n
        self.clause_bound = [False] * n
        for i, token in enumerate(doc):
            text = token.text
            if "\n" in text or (text and all(ch in _SENTENCE_PUNCT for ch in text)):
                self.sentence_end[i] = True
                self.clause_bound[i] = True
            elif token.is_space:
                continue
            elif not any(ch.isalnum() for ch in text) and text not in _KEEP_TOGETHER:
                infix = (text in {"-", "–"} and i > 0 and not doc[i - 1].whitespace_
                         and not token.whitespace_)
                if not infix:
                    self.clause_bound[i] = True
        self.sent_id = self._ids(self.sentence_end)
        self.clause_id = self._ids(self.clause_bound)
        clause_end_tokens = self._tokens("cue:clause_ends", starts_only=True)
        self.hclause_id = self._ids(self.sentence_end, starts_at=clause_end_tokens)
        self.scope_end = self._tokens("cue:negation_scope_ends")
        for key in [k for k in self.by_key if k.endswith(_AT_CLAUSE_END)]:
            base = key[:-len(_AT_CLAUSE_END)]
            kept = [(s, e) for s, e in self.by_key.pop(key)
                    if e >= n or self.clause_bound[e] or e in self.scope_end
                    or doc[e].is_space]
            if kept:
                self.by_key[base] = sorted(set(self.by_key.get(base, [])) | set(kept))
        pseudo = self._tokens("cue:pseudo_negation")
        negations = self._tokens("cue:negation")
        used_up = set()      # "can't breathe", "won't stop", "not helping": part of a sign
        for key in net._concept_keys:
            for start, end in self.by_key.get(key, ()):
                for j in range(start, end):
                    if j in negations and any(k not in negations for k in range(j + 1, end)):
                        used_up.add(j)
        self.neg_tokens = negations - pseudo - used_up
        self.after_starts = {s for s, _ in self.by_key.get("cue:negation_after", ())
                             if s not in pseudo}
        # "lips are fine": a state cue after the symptom; never in a question
        # ("swollen lips are fine, right?") nor where a pseudo-negation
        # overlaps it ("fine but they feel puffy")
        question_sentences = {self.sent_id[i] for i, token in enumerate(doc)
                              if "?" in token.text}
        self.fine_starts = {s for s, e in self.by_key.get("cue:fine_after", ())
                            if self.sent_id[s] not in question_sentences
                            and not any(j in pseudo for j in range(s, e))}
        # concept groups of each span, for "lips and tongue are fine"
        self.span_groups: Dict[_Span, set] = {}
        for key in net._concept_keys:
            for span in self.by_key.get(key, ()):
                self.span_groups.setdefault(span, set()).add(key)
        # words of a sign other than a fine_targets body part: a "fine" cue
        # never reaches past one ("lips swollen ok")
        self.sign_tokens = {j for s, e in self.span_groups for j in range(s, e)} \
            - self._tokens("cue:fine_targets")
        self.answer_starts = {s for s, _ in self.by_key.get("cue:negation_answer", ())
                              if s not in pseudo}
        self.return_sentences = {self.sent_id[s] for s, _ in self.by_key.get("RETURN", ())}
        self.history_clauses = {self.hclause_id[s] for s, _ in self.by_key.get("cue:history", ())}
        # "... I have none", "mine are fine": a self cue the patient negates at
        # once does not make the sign hers
        fine_tokens = self._tokens("cue:fine_after") - pseudo
        after_tokens = {j for s, e in self.by_key.get("cue:negation_after", ())
                        if s not in pseudo for j in range(s, e)}
        denied = self.neg_tokens | fine_tokens | after_tokens
        third_party = self._tokens("cue:third_party")
        self.self_spans = [(s, e) for s, e in self.by_key.get("cue:self", ())
                           if not any(j in third_party for j in range(s, e))
                           and not self._followed_by(s, e, denied)]
        # "do I need to worry now": a pseudo-current "now" cancels history only
        # where the patient also describes herself ("... now that my lip tingles")
        pseudo_current = self._tokens("cue:pseudo_current")
        self_clauses = {self.hclause_id[s] for s, _ in self.self_spans}
        self.current_clauses = {self.hclause_id[s] for s, e in self.by_key.get("cue:current", ())
                                if self.hclause_id[s] in self_clauses
                                or not any(j in pseudo_current for j in range(s, e))}
        self.self_too_spans = [(s, e) for s, e in self.by_key.get("cue:self_too", ())
                               if not any(j in third_party for j in range(s, e))
                               and not self._followed_by(s, e, denied)]
        # "my husband had a cold sore, I HAVE NONE", "there was pus but NOT
        # ANYMORE": a denial that ends a clause negates the signs before it in
        # its own clause or the one just before (same sentence)
        # ... at the very end of a clause: "I haven't YET" (called, done...) is no denial
        self.denials = [s for s, e in self.by_key.get("cue:denial", ())
                        if e >= n or self.clause_bound[e] or doc[e].is_space
                        or doc[e].lower_ in _DENIAL_ENDS]
        self.nothing_happened = bool(self.by_key.get("cue:nothing_happened"))
        # a clause word (and, but, so...) right before the patient turns to
        # herself or to now: a hypothetical or third-party cue stops there
        turn_starts = {s for s, _ in self.self_spans} | {s for s, _ in self.self_too_spans} \
            | {s for s, e in self.by_key.get("cue:current", ())
               if not any(j in pseudo_current for j in range(s, e))} \
            | {i for i, token in enumerate(doc) if token.lower_ in _TURN_WORDS}
        self.turns = {j for j in self.scope_end if j + 1 in turn_starts}
        self._status_cache: Dict[Tuple[_Span, bool], str] = {}
        # "... I've got one", "they're swelling now": a current report that
        # refers back to a sign mentioned as past, someone else's or hypothetical
        self.refers_back_starts = sorted(
            s for s, e in self.by_key.get("cue:refers_back", ())
            if not self._negated_before(s)
            and not any(j in self.neg_tokens for j in range(s, e))
            and not any(j in fine_tokens or j in after_tokens
                        for j in range(s, min(n, e + self.after_window))
                        if self.clause_id[j] == self.clause_id[s])
            and not self._cue_before("hypothetical", s))
        self._read_episodes(pseudo_current)

    def _read_episodes(self, pseudo_current: set) -> None:
        """A scare that is over: "On day 1 my lip tingled. It turned out to be
        nothing" (past_episode + a later `resolved` cue), "I was worried about
        infection. There's no yellow crust" (a past `worry` + a later negated
        sign of the same topic). The past marker must be in the sign's clause,
        and its phrase (a clause split also at and/but/so...) must not be in
        the present ("my lip tingled on day 1 | and THERE'S a blister" keeps
        the blister)."""
        doc, n = self.doc, len(self.doc)
        self.phrase_id = self._ids(self.clause_bound, starts_at=self.scope_end)
        self.past_clauses = {self.clause_id[s] for s, _ in self.by_key.get("cue:past_episode", ())}
        self.now_phrases = {self.phrase_id[s] for s, e in self.by_key.get("cue:current", ())
                            if not any(j in pseudo_current for j in range(s, e))}
        self.now_phrases |= {self.phrase_id[s] for s, _ in self.by_key.get("cue:present_tense", ())}
        question_sentences = {self.sent_id[i] for i, token in enumerate(doc) if "?" in token.text}
        returns = [s for s, _ in self.by_key.get("RETURN", ())]
        # "it's completely fine now", "it turned out to be nothing": not in a
        # question, not negated ("it's NOT fine now"), not where a pseudo
        # negation goes on past it ("fine APART FROM...", "settled A BIT"),
        # and void when the message says afterwards that something came back
        pseudo_spans = self.by_key.get("cue:pseudo_negation", ())
        self.resolutions = [
            s for s, e in self.by_key.get("cue:resolved", ())
            if self.sent_id[s] not in question_sentences
            and not self._negated_before(s)
            and not any(ps < e and s < pe and pe > e for ps, pe in pseudo_spans)
            and not any(r >= e for r in returns)]

    def _resolved(self, start: int, end: int) -> bool:
        """A non-emergency sign from an episode that is over (see _read_episodes)."""
        phrase = self.phrase_id[start]
        if phrase in self.now_phrases:
            return False
        worried = self._cue_before("worry", start)
        if not worried and self.clause_id[start] not in self.past_clauses:
            return False
        if any(r >= end for r in self.resolutions):
            return True
        if not worried:
            return False
        # "I was worried about infection. There's no yellow crust or anything."
        topics = set()
        for key in self.span_groups.get((start, end), ()):
            topics |= self.net._group_topics.get(key, set())
        return any(s >= end and self.sent_id[s] > self.sent_id[start]
                   and topics & {t for key in groups for t in self.net._group_topics.get(key, ())}
                   and (self._negated_before(s) or self._negated_after(e, s))
                   for (s, e), groups in self.span_groups.items())

    def _followed_by(self, start: int, end: int, tokens: set) -> bool:
        """One of `tokens` within negation_after_window words after the span, in
        its clause ("I have NONE", "mine are FINE", "I have N'T")."""
        clause = self.clause_id[start]
        return any(j in tokens and self.clause_id[j] == clause
                   for j in range(end, min(len(self.doc), end + self.after_window)))

    @staticmethod
    def _ids(ends_after: Sequence[bool], starts_at: Iterable[int] = ()) -> List[int]:
        """Unit number of each token: a unit ends after an `ends_after` token and a
        new one starts at each `starts_at` token."""
        ids, current = [], 0
        starts = set(starts_at)
        for i, end in enumerate(ends_after):
            if i in starts and i > 0:
                current += 1
            ids.append(current)
            if end:
                current += 1
        return ids

    def _tokens(self, key: str, starts_only: bool = False) -> set:
        tokens = set()
        for start, end in self.by_key.get(key, ()):
            tokens.update([start] if starts_only else range(start, end))
        return tokens

    # ---------------------------------------------------------------- status
    def status(self, span: _Span, denial: bool = True) -> str:
        """negated | history | third_party | hypothetical | positive. With
        `denial` False (emergency signs), a denial cue does not negate."""
        key = (span, denial)
        cached = self._status_cache.get(key)
        if cached is None:
            cached = self._status(span, denial)
            self._status_cache[key] = cached
        return cached

    def _status(self, span: _Span, denial: bool) -> str:
        start, end = span
        if self._negated_before(start) or self._negated_after(end, start) \
                or (denial and self._denied_after(start, end)):
            return "negated"
        discounted = self._discounted(start)
        if discounted is None and denial and self._resolved(start, end):
            discounted = "resolved"     # "... It turned out to be nothing."
        if discounted and any(s >= end for s in self.refers_back_starts):
            return "positive"       # "... I've got one", "they're swelling now"
        return discounted or "positive"

    def _discounted(self, start: int) -> Optional[str]:
        """history | third_party | hypothetical, or None."""
        clause = self.hclause_id[start]
        current = clause in self.current_clauses
        if clause in self.history_clauses and not current:
            return "history"
        if not self._self_in(clause) and self._cue_before("third_party", start, pointed_at=True):
            return "third_party"
        if self._cue_before("hypothetical", start, pointed_at=True):
            return "hypothetical"
        if self.nothing_happened and self._cue_before("possibility", start, pointed_at=True):
            return "hypothetical"
        return None

    def _cue_before(self, kind: str, start: int, pointed_at: bool = False) -> bool:
        """A `kind` cue at most hyp_window words before `start`, in the same
        sentence part, with no clause break in between. With `pointed_at`, a
        cue does not count when the patient points at the thing between cue
        and symptom ("what if THIS yellow crust is infection?", "does everyone
        get THIS swollen?": it is there; "what if this gets infected?" is
        still hypothetical)."""
        clause = self.hclause_id[start]
        for cue_start, cue_end in self.by_key.get(f"cue:{kind}", ()):
            if cue_start > start or self.hclause_id[cue_start] != clause:
                continue
            if start - cue_end > self.hyp_window:
                continue
            # "can I get an appointment, my lips are swelling": a comma (or
            # any clause break) between cue and symptom ends the cue
            if any(self.clause_bound[j] for j in range(min(cue_end, start), start)):
                continue
            if pointed_at and self._pointed_at(cue_end, start):
                continue
            # "I read about cold sores AND NOW I've got one", "... AND MINE
            # looks infected": the patient turns to herself
            if any(j in self.turns for j in range(cue_end, start)):
                continue
            return True
        return False

    def _pointed_at(self, begin: int, start: int) -> bool:
        """A demonstrative (this/these/those) between `begin` and the symptom at
        `start`, with no verb after it: "this yellow crust", "these blisters"."""
        for j in range(max(begin, start - 4), start):
            if self.doc[j].lower_ in _DEMONSTRATIVES and not any(
                    self.doc[k].lemma_ in _VERB_LEMMAS for k in range(j + 1, start)):
                return True
        return False

    def _self_in(self, clause: int) -> bool:
        """The patient speaks of herself in this sentence part ("and I've got
        one", "on my lip") or says she has it too anywhere in the message
        ("... and so do I", "Me too!"), other than in a hypothetical ("will I
        get them?")."""
        return any(self.hclause_id[s] == clause and not self._cue_before("hypothetical", s)
                   for s, _ in self.self_spans) or any(
            not self._cue_before("hypothetical", s) for s, _ in self.self_too_spans)

    def _negated_before(self, start: int) -> bool:
        j, steps = start - 1, 0
        while j >= 0 and steps < self.neg_window:
            if self.clause_bound[j] or j in self.scope_end:
                return False
            if j in self.neg_tokens:
                return True
            j -= 1
            steps += 1
        return False

    def _negated_after(self, end: int, start: int) -> bool:
        if self.sent_id[start] in self.return_sentences:
            return False
        n = len(self.doc)
        j = end
        if j < n and self.doc[j].text in _ANSWER_SEPARATORS:
            j += 1
            while j < n and self.doc[j].is_space:
                j += 1
            if j in self.answer_starts or j in self.after_starts:
                return True
        j, steps = self._past_coordinated(start, end), 0
        walk_start = j
        while j < n and steps < self.after_window:
            if self.clause_bound[j] or j in self.scope_end:
                return False
            if j in self.after_starts:
                return True
            if j in self.fine_starts and self._fine_target(start, end) \
                    and not any(k in self.sign_tokens for k in range(walk_start, j)):
                return True
            j += 1
            steps += 1
        return False

    def _denied_after(self, start: int, end: int) -> bool:
        """A denial cue later in the same sentence, in the span's clause or the
        next one: "my husband had a cold sore, I have none", "there was pus
        but not anymore". Not where the sentence says something came back."""
        sentence = self.sent_id[start]
        if not self.denials or sentence in self.return_sentences:
            return False
        clause = self.clause_id[start]
        return any(d >= end and self.sent_id[d] == sentence
                   and self.clause_id[d] - clause in (0, 1) for d in self.denials)

    def _fine_target(self, start: int, end: int) -> bool:
        """A "fine" cue speaks for a body part ("lips are fine"), never for a
        sign itself ("the pus is fine" still reports pus), nor for a body
        part that only says where a sign is ("the swelling IN MY lips is fine")."""
        j = start - 1
        while j >= 0 and self.doc[j].lower_ in _DETERMINERS:
            j -= 1
        if j >= 0 and (self.doc[j].lower_ in _PREPOSITIONS or j in self.sign_tokens):
            return False        # "the swelling IN MY lips", "SWOLLEN lips are fine"
        return any(s <= start and end <= e for s, e in self.by_key.get("cue:fine_targets", ()))

    def _past_coordinated(self, start: int, end: int) -> int:
        """Where to look for a resolution cue after the span (start, end): past
        "and|or [my|the] WORD" when WORD shares a word group with the span
        ("lips and tongue are fine"); else `end`."""
        groups = self.span_groups.get((start, end))
        doc, n = self.doc, len(self.doc)
        while groups and end < n and doc[end].lower_ in _COORDINATORS:
            k = end + 1
            if k < n and doc[k].lower_ in _DETERMINERS:
                k += 1
            joined = [e for (s, e), g in self.span_groups.items() if s == k and g & groups]
            if not joined:
                break
            end = max(joined)
        return end

    # ---------------------------------------------------------------- signs
    def evaluate(self, spec: _SignSpec, rules: Optional[Sequence[_Rule]] = None
                 ) -> Tuple[Optional[str], Optional[Tuple[str, str]]]:
        """(matched text if the sign is positively present, (cue, matched) if only discounted)."""
        unless = self.by_key.get(spec.unless_key, ()) if spec.unless_key else ()
        discount = None
        for rule in (spec.rules if rules is None else rules):
            candidates = []
            for names in rule.parts:
                spans = set()
                for name in names:
                    spans.update(self.by_key.get(name, ()))
                spans = [s for s in spans
                         if not any(s[0] < u_end and u_start < s[1] for u_start, u_end in unless)]
                if not spans:
                    break
                candidates.append(sorted(spans))
            else:
                positive, found_discount = self._combine(rule, candidates,
                                                         denial=spec.level != "emergency")
                if positive is not None:
                    return positive, None
                if discount is None and found_discount is not None:
                    discount = found_discount
        return None, discount

    def _text(self, spans: Sequence[_Span]) -> str:
        start = min(s for s, _ in spans)
        end = max(e for _, e in spans)
        text = self.doc[start:end].text
        return text if len(text) <= 120 else text[:117] + "..."

    def _combine(self, rule: _Rule, candidates: List[List[_Span]], denial: bool = True):
        if rule.scope == "message":
            chosen, discount_kind = [], None
            for spans in candidates:
                positives = [s for s in spans if self.status(s, denial) == "positive"]
                if positives:
                    chosen.append(positives[0])
                else:
                    chosen.append(spans[0])
                    discount_kind = discount_kind or self.status(spans[0], denial)
            matched = " ... ".join(self.doc[s:e].text for s, e in chosen)
            if discount_kind is None:
                return matched, None
            return None, (discount_kind, matched)
        unit = self.clause_id if rule.scope == "clause" else self.sent_id
        by_unit: Dict[int, List[List[_Span]]] = {}
        for index, spans in enumerate(candidates):
            for span in spans:
                lists = by_unit.setdefault(unit[span[0]], [[] for _ in candidates])
                lists[index].append(span)
        discount = None
        for unit_id in sorted(by_unit):
            lists = by_unit[unit_id]
            if any(not spans for spans in lists):
                continue
            for combo in itertools.product(*lists):
                if not self._close(combo, rule.window):
                    continue
                statuses = [self.status(s, denial) for s in combo]
                bad = [s for s in statuses if s != "positive"]
                if not bad:
                    return self._text(combo), None
                if discount is None:
                    discount = (bad[0], self._text(combo))
        return None, discount

    @staticmethod
    def _close(combo: Sequence[_Span], window: int) -> bool:
        for a, b in itertools.combinations(combo, 2):
            gap = max(a[0], b[0]) - min(a[1], b[1])
            if gap > window:
                return False
        return True
