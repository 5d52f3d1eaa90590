"""One message, read: every match and what the words around it say about it.

A `Reading` holds the matches of one parsed message (key -> spans, from
matchers.py), splits the message into sentences, clauses and sentence parts,
and gives each span of a sign's words a status:

- negated: "no pus", "swelling has gone down", "Pus? No.", "lips are fine",
  "lips were fine the whole time", "... I have none" (a denial at the end of
  a clause, or one opening the sentence after a question or someone else's
  story: "Is pus ever normal? I don't have any"; never for an emergency);
- history / third_party / hypothetical: "last year", "my friend had", "what
  if" -- unless the patient then reports it as hers now ("... I've got one");
- resolved: an episode that is over ("On day 1 my lip tingled. It turned out
  to be nothing."); never for an emergency;
- positive: anything else, questions included (when in doubt, flag).

`evaluate` then says whether a sign's rules are met by positive words close
together (in the written order for an `ordered` rule). The header of
data/safety/red_flags.yml tells the same for clinicians, cue by cue.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Set

from spacy.tokens import Doc

from aftercare.safety.matchers import AT_CLAUSE_END, Span
from aftercare.safety.patterns import RETURN, Rule, SignSpec

_SENTENCE_PUNCT = set(".!?;…")
_KEEP_TOGETHER = {"'", "/", "&", "+", "%", "#", "@", "*", "=", "~", "^", "`", "_"}
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
# words after a comma that open a list of examples ("signs, LIKE pus or heat")
_EXAMPLE_WORDS = {"like", "such", "e.g.", "eg", "e.g", "including", "especially", "particularly"}
# words that may open a sentence before a denial ("Honestly, I don't.")
_OPENERS = {"but", "and", "no", "nope", "nah", "honestly", "well", "oh", "though", "actually",
            "so", "personally", "myself", "me", "thankfully", "luckily", "phew", "as", "for"}
_ANSWER_SEPARATORS = {":", "?", "-", "–", "—", "=", "->"}
# "... and MINE looks infected", "... and I've got one": the patient turns to herself
_TURN_WORDS = {"mine", "mines", "i", "i'm", "im", "i've", "ive"}

POSITIVE = "positive"


@dataclass(frozen=True)
class ReadingSetup:
    """What every reading needs from the net, fixed when the net is built."""
    negation_window: int
    after_window: int
    hypothetical_window: int
    concept_keys: FrozenSet[str]              # sign words: word groups and rule phrases
    group_topics: Mapping[str, FrozenSet[str]]   # key -> topics of the signs using it


@dataclass(frozen=True)
class Discount:
    cue: str          # negated | history | third_party | hypothetical | resolved
    matched: str


@dataclass(frozen=True)
class Verdict:
    """A sign in one message: its words when positively present, else (maybe)
    how they were discounted."""
    matched: Optional[str] = None
    discount: Optional[Discount] = None


class Reading:
    """Matches and the status of each match, for one parsed message."""

    def __init__(self, doc: Doc, found: Dict[str, List[Span]], setup: ReadingSetup):
        self.doc = doc
        self.setup = setup
        self.neg_window = setup.negation_window
        self.after_window = setup.after_window
        self.hyp_window = setup.hypothetical_window
        self.by_key = dict(found)
        self._status_cache: Dict[tuple, str] = {}
        self._read_units()
        self._read_negation()
        self._read_people()
        self._read_episodes()

    # ---------------------------------------------------------------- reading
    def _read_units(self) -> None:
        """Sentence, clause and sentence-part ids ("history clause": a sentence
        split at but/because...); matches that must end a clause."""
        doc, n = self.doc, len(self.doc)
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
        self.sent_id = _ids(self.sentence_end)
        self.clause_id = _ids(self.clause_bound)
        self.hclause_id = _ids(self.sentence_end,
                               starts_at=self._tokens("cue:clause_ends", starts_only=True))
        self.scope_end = self._tokens("cue:negation_scope_ends")
        # "signs of infection, LIKE pus or heat": a comma that opens examples
        # does not end a hypothetical or third-party cue's reach
        self.list_commas = set()
        for i, token in enumerate(doc):
            if token.text != ",":
                continue
            k = i + 1
            while k < n and doc[k].is_space:
                k += 1
            if k < n and (doc[k].lower_ in _EXAMPLE_WORDS or (
                    doc[k].lower_ == "for" and k + 1 < n
                    and doc[k + 1].lower_ in ("example", "instance"))):
                self.list_commas.add(i)
        # a phrase: a clause cut also at and/but/so...
        self.phrase_id = _ids(self.clause_bound, starts_at=self.scope_end)
        self.question_sentences = {self.sent_id[i] for i, token in enumerate(doc)
                                   if "?" in token.text}
        for key in [k for k in self.by_key if k.endswith(AT_CLAUSE_END)]:
            base = key[:-len(AT_CLAUSE_END)]
            kept = [s for s in self.by_key.pop(key)
                    if s.end >= n or self.clause_bound[s.end] or s.end in self.scope_end
                    or doc[s.end].is_space]
            if kept:
                self.by_key[base] = sorted(set(self.by_key.get(base, [])) | set(kept))

    def _read_negation(self) -> None:
        """Negation cues before a sign, resolution/"fine"/answer cues after it,
        and denials at the end of a clause."""
        doc, n = self.doc, len(self.doc)
        # a pseudo negation inside a longer "fine" cue does not count: "lips
        # WERE FINE" may be over, "lips were fine THE WHOLE TIME" is a denial
        fine_spans = self.by_key.get("cue:fine_after", ())
        self.pseudo = {j for s, e in self.by_key.get("cue:pseudo_negation", ())
                       if not any(fs <= s and e <= fe and fe - fs > e - s for fs, fe in fine_spans)
                       for j in range(s, e)}
        negations = self._tokens("cue:negation")
        used_up = set()      # "can't breathe", "won't stop", "not helping": part of a sign
        for key in self.setup.concept_keys:
            for start, end in self.by_key.get(key, ()):
                for j in range(start, end):
                    if j in negations and any(k not in negations for k in range(j + 1, end)):
                        used_up.add(j)
        self.neg_tokens = negations - self.pseudo - used_up
        self.after_starts = {s for s, _ in self.by_key.get("cue:negation_after", ())
                             if s not in self.pseudo}
        self.after_tokens = {j for s, e in self.by_key.get("cue:negation_after", ())
                             if s not in self.pseudo for j in range(s, e)}
        self.answer_starts = {s for s, _ in self.by_key.get("cue:negation_answer", ())
                              if s not in self.pseudo}
        # "lips are fine": never in a question ("swollen lips are fine, right?")
        # nor where a pseudo-negation overlaps it ("fine but they feel puffy")
        self.fine_starts = {s for s, e in self.by_key.get("cue:fine_after", ())
                            if self.sent_id[s] not in self.question_sentences
                            and not any(j in self.pseudo for j in range(s, e))}
        self.fine_tokens = self._tokens("cue:fine_after") - self.pseudo
        # concept groups of each span, for "lips and tongue are fine"
        self.span_groups: Dict[Span, Set[str]] = {}
        for key in self.setup.concept_keys:
            for span in self.by_key.get(key, ()):
                self.span_groups.setdefault(span, set()).add(key)
        # words of a sign other than a fine_targets body part: a "fine" cue
        # never reaches past one ("lips swollen ok")
        self.sign_tokens = {j for s, e in self.span_groups for j in range(s, e)} \
            - self._tokens("cue:fine_targets")
        self.return_sentences = {self.sent_id[s] for s, _ in self.by_key.get(RETURN, ())}
        # "my husband had a cold sore, I HAVE NONE", "there was pus but NOT
        # ANYMORE" -- at the very end of a clause: "I haven't YET" is no denial
        self.denials = [s for s, e in self.by_key.get("cue:denial", ())
                        if e >= n or self.clause_bound[e] or doc[e].is_space
                        or doc[e].lower_ in _DENIAL_ENDS]
        # "Is pus ever normal? I DON'T HAVE ANY, ...", "my mum keeps asking
        # whether I've got an infection. I DON'T.": a denial that opens its
        # sentence answers the sentence just before, when that one asks or
        # tells of someone else, the past or a worry ("Pus is coming out. I
        # don't, though, have a fever" keeps the pus)
        asking = set(self.question_sentences) | {
            self.sent_id[s] for kind in ("third_party", "hypothetical", "history", "worry")
            for s, _ in self.by_key.get(f"cue:{kind}", ())}
        self.opening_denials = [d for d in self.denials if self._opens_sentence(d)
                                and self.sent_id[d] - 1 in asking]

    def _read_people(self) -> None:
        """Whose sign and when: history, the patient herself, now, turns."""
        # "I had microneedling THREE MONTHS AGO and still have red marks": a
        # time word that dates the treatment says nothing of the sign
        treatment_time = self._tokens("cue:treatment_time")
        self.history_clauses = {self.hclause_id[s] for s, e in self.by_key.get("cue:history", ())
                                if not any(j in treatment_time for j in range(s, e))}
        # "... I have none", "mine are fine": a self cue the patient negates at
        # once does not make the sign hers
        denied = self.neg_tokens | self.fine_tokens | self.after_tokens
        third_party = self._tokens("cue:third_party")
        # "... I don't see anything ON ME": a self cue in a negated phrase is no report
        self.self_spans = [s for s in self.by_key.get("cue:self", ())
                           if not any(j in third_party for j in range(*s))
                           and not self._followed_by(s, denied)
                           and not self._negated_before(s.start)]
        self.self_too_spans = [s for s in self.by_key.get("cue:self_too", ())
                               if not any(j in third_party for j in range(*s))
                               and not self._followed_by(s, denied)]
        # "do I need to worry now": a pseudo-current "now" cancels history only
        # where the patient also describes herself ("... now that my lip tingles")
        pseudo_current = self._tokens("cue:pseudo_current")
        self_clauses = {self.hclause_id[s] for s, _ in self.self_spans}
        currents = self.by_key.get("cue:current", ())
        self.current_clauses = {self.hclause_id[s] for s, e in currents
                                if self.hclause_id[s] in self_clauses
                                or not any(j in pseudo_current for j in range(s, e))}
        now_starts = {s for s, e in currents if not any(j in pseudo_current for j in range(s, e))}
        # a time word in a phrase told in the past ("I thought I had blisters
        # THIS MORNING") dates the episode, it does not say the sign is there now
        present = {self.phrase_id[s] for s, _ in self.by_key.get("cue:present_tense", ())}
        past = {self.phrase_id[s] for s, _ in self.by_key.get("cue:past_episode", ())}
        self.now_phrases = {self.phrase_id[s] for s in now_starts
                            if self.phrase_id[s] not in past} | present
        # a clause word (and, but, so...) right before the patient turns to
        # herself or to now: a hypothetical or third-party cue stops there
        turn_starts = {s for s, _ in self.self_spans} | {s for s, _ in self.self_too_spans} \
            | now_starts | {i for i, token in enumerate(self.doc) if token.lower_ in _TURN_WORDS}
        self.turns = {j for j in self.scope_end if j + 1 in turn_starts}
        self.nothing_happened = bool(self.by_key.get("cue:nothing_happened"))
        # "... I've got one", "they're swelling now": a current report that
        # refers back to a sign mentioned as past, someone else's or hypothetical
        n = len(self.doc)
        self.refers_back_starts = sorted(
            s for s, e in self.by_key.get("cue:refers_back", ())
            if not self._negated_before(s)
            and not any(j in self.neg_tokens for j in range(s, e))
            and not any(j in self.fine_tokens or j in self.after_tokens
                        for j in range(s, min(n, e + self.after_window))
                        if self.clause_id[j] == self.clause_id[s])
            and not self._cue_before("hypothetical", s)
            and not (self.nothing_happened and self._cue_before("possibility", s)))

    def _read_episodes(self) -> None:
        """A scare that is over: "On day 1 my lip tingled. It turned out to be
        nothing" (past_episode + a later `resolved` cue), "I was worried about
        infection. There's no yellow crust" (a past `worry` + a later negated
        sign of the same topic). The past marker must be in the sign's clause,
        and its phrase must not be in the present ("my lip tingled on day 1 |
        and THERE'S a blister" keeps the blister)."""
        self.past_clauses = {self.clause_id[s] for s, _ in self.by_key.get("cue:past_episode", ())}
        returns = [s for s, _ in self.by_key.get(RETURN, ())]
        # not in a question, not negated ("it's NOT fine now"), not where a
        # pseudo negation goes on past it ("fine APART FROM...", "settled A
        # BIT"), and void when the message says afterwards that something came back
        pseudo_spans = self.by_key.get("cue:pseudo_negation", ())
        self.resolutions = [
            s for s, e in self.by_key.get("cue:resolved", ())
            if self.sent_id[s] not in self.question_sentences
            and not self._negated_before(s)
            and not any(ps < e and s < pe and pe > e for ps, pe in pseudo_spans)
            and not any(r >= e for r in returns)]

    # ---------------------------------------------------------------- status
    def status(self, span: Span, denial: bool = True) -> str:
        """negated | history | third_party | hypothetical | resolved | positive.
        With `denial` False (emergency signs) neither a denial cue nor a
        resolution counts."""
        key = (span, denial)
        cached = self._status_cache.get(key)
        if cached is None:
            cached = self._status(span, denial)
            self._status_cache[key] = cached
        return cached

    def _status(self, span: Span, denial: bool) -> str:
        start, end = span
        if self._negated_before(start) or self._negated_after(span) \
                or (denial and self._denied_after(span)):
            return "negated"
        discounted = self._discounted(start)
        if discounted is None and denial and self._resolved(span):
            discounted = "resolved"     # "... It turned out to be nothing."
        if discounted and any(s >= end for s in self.refers_back_starts):
            return POSITIVE         # "... I've got one", "they're swelling now"
        return discounted or POSITIVE

    def _discounted(self, start: int) -> Optional[str]:
        """history | third_party | hypothetical, or None."""
        clause = self.hclause_id[start]
        if clause in self.history_clauses and clause not in self.current_clauses:
            return "history"
        if not self._self_in(clause) and self._cue_before("third_party", start, pointed_at=True):
            return "third_party"
        if self._cue_before("hypothetical", start, pointed_at=True):
            return "hypothetical"
        if self.nothing_happened and self._cue_before("possibility", start, pointed_at=True):
            return "hypothetical"
        return None

    def _resolved(self, span: Span) -> bool:
        """A non-emergency sign from an episode that is over (see _read_episodes)."""
        start, end = span
        if self.phrase_id[start] in self.now_phrases:
            return False
        worried = self._cue_before("worry", start)
        if not worried and self.clause_id[start] not in self.past_clauses:
            return False
        if any(r >= end for r in self.resolutions):
            return True
        if not worried:
            return False
        # "I was worried about infection. There's no yellow crust or anything."
        topics = self._topics(self.span_groups.get(span, ()))
        return any(other.start >= end and self.sent_id[other.start] > self.sent_id[start]
                   and topics & self._topics(groups)
                   and (self._negated_before(other.start) or self._negated_after(other))
                   for other, groups in self.span_groups.items())

    def _topics(self, keys: Iterable[str]) -> Set[str]:
        return {topic for key in keys for topic in self.setup.group_topics.get(key, ())}

    def _cue_before(self, kind: str, start: int, pointed_at: bool = False) -> bool:
        """A `kind` cue at most hyp_window words before `start`, in the same
        sentence part, with no clause break in between, and not past a turn to
        the patient herself ("I read about cold sores AND NOW I've got one").
        With `pointed_at`, a cue does not count when the patient points at the
        thing between cue and symptom ("what if THIS yellow crust is
        infection?"; "what if this gets infected?" is still hypothetical)."""
        clause = self.hclause_id[start]
        for cue_start, cue_end in self.by_key.get(f"cue:{kind}", ()):
            if cue_start > start or self.hclause_id[cue_start] != clause:
                continue
            if start - cue_end > self.hyp_window:
                continue
            between = range(min(cue_end, start), start)
            if any((self.clause_bound[j] and j not in self.list_commas) or j in self.turns
                   for j in between):
                continue
            if pointed_at and self._pointed_at(cue_end, start):
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
        ("... and so do I", "Me too!"), other than in a hypothetical."""
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

    def _negated_after(self, span: Span) -> bool:
        """A resolution, answer or "fine" cue right after the span, in its clause."""
        start, end = span
        if self.sent_id[start] in self.return_sentences:
            return False
        n = len(self.doc)
        j = end
        if j < n and self.doc[j].text in _ANSWER_SEPARATORS:       # "Pus? No."
            j += 1
            while j < n and self.doc[j].is_space:
                j += 1
            if j in self.answer_starts or j in self.after_starts:
                return True
        j = walk_start = self._past_coordinated(span)
        steps = 0
        while j < n and steps < self.after_window:
            if self.clause_bound[j] or j in self.scope_end:
                return False
            if j in self.after_starts:
                return True
            if j in self.fine_starts and self._fine_target(span) \
                    and not any(k in self.sign_tokens for k in range(walk_start, j)):
                return True
            j += 1
            steps += 1
        return False

    def _denied_after(self, span: Span) -> bool:
        """A denial cue later in the same sentence, in the span's clause or the
        next one. Not where the sentence says something came back."""
        sentence = self.sent_id[span.start]
        if not self.denials or sentence in self.return_sentences:
            return False
        clause = self.clause_id[span.start]
        if any(d >= span.end and self.sent_id[d] == sentence
               and self.clause_id[d] - clause in (0, 1) for d in self.denials):
            return True
        return any(self.sent_id[d] == sentence + 1 and self.sent_id[d] not in self.return_sentences
                   for d in self.opening_denials)

    def _opens_sentence(self, start: int) -> bool:
        """Only openers ("but", "honestly", "no,") before `start` in its sentence."""
        j = start - 1
        while j >= 0 and not self.sentence_end[j]:
            token = self.doc[j]
            if not (token.is_space or token.is_punct or token.lower_ in _OPENERS):
                return False
            j -= 1
        return True

    def _fine_target(self, span: Span) -> bool:
        """A "fine" cue speaks for a body part ("lips are fine"), never for a
        sign itself ("the pus is fine" still reports pus), nor for a body
        part that only says where a sign is ("the swelling IN MY lips is fine")."""
        j = span.start - 1
        while j >= 0 and self.doc[j].lower_ in _DETERMINERS:
            j -= 1
        if j >= 0 and (self.doc[j].lower_ in _PREPOSITIONS or j in self.sign_tokens):
            return False        # "the swelling IN MY lips", "SWOLLEN lips are fine"
        return any(s <= span.start and span.end <= e
                   for s, e in self.by_key.get("cue:fine_targets", ()))

    def _past_coordinated(self, span: Span) -> int:
        """Where to look for a resolution cue after the span: past "and|or
        [my|the] WORD" when WORD shares a word group with the span ("lips and
        tongue are fine"); else the span's end."""
        groups = self.span_groups.get(span)
        doc, n, end = self.doc, len(self.doc), span.end
        while groups and end < n and doc[end].lower_ in _COORDINATORS:
            k = end + 1
            if k < n and doc[k].lower_ in _DETERMINERS:
                k += 1
            joined = [e for (s, e), g in self.span_groups.items() if s == k and g & groups]
            if not joined:
                break
            end = max(joined)
        return end

    def _followed_by(self, span: Span, tokens: set) -> bool:
        """One of `tokens` within negation_after_window words after the span, in
        its clause ("I have NONE", "mine are FINE", "I have N'T")."""
        clause = self.clause_id[span.start]
        return any(j in tokens and self.clause_id[j] == clause
                   for j in range(span.end, min(len(self.doc), span.end + self.after_window)))

    def _tokens(self, key: str, starts_only: bool = False) -> Set[int]:
        tokens: Set[int] = set()
        for start, end in self.by_key.get(key, ()):
            tokens.update([start] if starts_only else range(start, end))
        return tokens

    # ---------------------------------------------------------------- signs
    def evaluate(self, spec: SignSpec, rules: Optional[Sequence[Rule]] = None) -> Verdict:
        """Whether `spec` (or these of its rules) is positively present."""
        unless = self.by_key.get(spec.unless_key, ()) if spec.unless_key else ()
        discount = None
        for rule in (spec.rules if rules is None else rules):
            candidates = []
            for keys in rule.parts:
                spans = {s for key in keys for s in self.by_key.get(key, ())
                         if not any(s.start < u.end and u.start < s.end for u in unless)}
                if not spans:
                    break
                candidates.append(sorted(spans))
            else:
                verdict = self._combine(rule, candidates, denial=spec.level != "emergency")
                if verdict.matched is not None:
                    return verdict
                discount = discount or verdict.discount
        return Verdict(discount=discount)

    def _combine(self, rule: Rule, candidates: List[List[Span]], denial: bool) -> Verdict:
        """One span per part, all positive, close together in one unit."""
        if rule.scope == "message":
            chosen, discount_kind = [], None
            for spans in candidates:
                positives = [s for s in spans if self.status(s, denial) == POSITIVE]
                if positives:
                    chosen.append(positives[0])
                else:
                    chosen.append(spans[0])
                    discount_kind = discount_kind or self.status(spans[0], denial)
            matched = " ... ".join(self.doc[s:e].text for s, e in chosen)
            if discount_kind is None:
                return Verdict(matched=matched)
            return Verdict(discount=Discount(discount_kind, matched))
        unit = self.clause_id if rule.scope == "clause" else self.sent_id
        by_unit: Dict[int, List[List[Span]]] = {}
        for index, spans in enumerate(candidates):
            for span in spans:
                by_unit.setdefault(unit[span.start], [[] for _ in candidates])[index].append(span)
        discount = None
        for unit_id in sorted(by_unit):
            lists = by_unit[unit_id]
            if any(not spans for spans in lists):
                continue
            for combo in itertools.product(*lists):
                if not _close(combo, rule.window) or not _in_order(combo[:rule.ordered]):
                    continue
                bad = [status for status in (self.status(s, denial) for s in combo)
                       if status != POSITIVE]
                if not bad:
                    return Verdict(matched=self._text(combo))
                discount = discount or Discount(bad[0], self._text(combo))
        return Verdict(discount=discount)

    def _text(self, spans: Sequence[Span]) -> str:
        text = self.doc[min(s.start for s in spans):max(s.end for s in spans)].text
        return text if len(text) <= 120 else text[:117] + "..."


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


def _in_order(spans: Sequence[Span]) -> bool:
    """Each span starts after the one before ends ("IMPROVED + WORSE", ordered)."""
    return all(a.end <= b.start for a, b in zip(spans, spans[1:]))


def _close(combo: Sequence[Span], window: int) -> bool:
    for a, b in itertools.combinations(combo, 2):
        if max(a.start, b.start) - min(a.end, b.end) > window:
            return False
    return True
