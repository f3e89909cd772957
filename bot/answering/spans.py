"""Candidate answer spans of one sentence, and the features a learned scorer weighs them by.

SQuAD answers are mostly short noun phrases, and most of them ("what" answers above all) are no
named entity, so the candidates are every short run of words that no clause punctuation crosses
and that neither opens nor closes on a function word, plus the entities stored at ingest. No part
of speech is needed: function words and punctuation bound the phrases, and the scorer learns
which boundaries answer which kind of question (span_scorer.py, weights learned on
../shared/train by bot/evaluation/learn_spans.py).

Each candidate's features are strings (a weight each) with a value: its length, its shape
(capitals, digits), the stored entity it is and how often the question's key is answered by
that label, how much of the question it repeats (spans the question already says are no
answer), how far it stands from the question's words, the function words and punctuation around
it, and these crossed with the question's wh-word; then what the question's wording says of it
(span_question.py): how close its words are to the question's focus noun ("which river", in the
encoder's input word embeddings: a look-up), its shape and label against the question's most
specific key, and where it stands to the longest run of the question's words and to the clause
holding most of them. String work and table look-ups: no model is run, no spaCy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from embeddings.keyword import STOPWORDS, stem

from .answer_type import AUXILIARIES, NONE, AnswerType, question_keys
from .span_question import (clause_features, focus_features, focus_similarities, focus_words, key_features,
                            longest_run, main_clause, run_features)

# The longest candidate in words (entities stored at ingest may be longer). On ../shared/train,
# spans of at most 6 words hold 88% of the gold answers found in the evidence sentence, and the
# lead is the answer in a few words.
MAX_WORDS = 6
# A word: a number with its separators and signs ("$1,000.5", "45%"), or letters joined by
# hyphens and apostrophes ("Levi's", "non-profit").
_WORD = re.compile(r"[$€£¥]?\w+(?:[-'’.,/:]\w+)*%?")
# Gap text a span may run across: spaces, dashes, ampersands; a full stop only after a short
# capitalised abbreviation ("Jan. 10", "St. Louis").
_JOINING_GAP = re.compile(r"\s*[-–&/]?\s*")
_ABBREVIATION = re.compile(r"[A-Z][a-z]{0,3}|[A-Z](?:\.[A-Z])*")
_COPULA = frozenset({"is", "was", "are", "were", "be", "been", "being", "became", "becomes", "called",
                     "named", "known"})
_COARSE_WH = ("how many", "how much", "how long", "how old", "how far", "how large", "how big")


@dataclass(slots=True)  # built ~60 times a question: plain slots, no frozen __setattr__
class Candidate:
    """One candidate span: character offsets in the sentence, its words, and its features."""

    start: int
    end: int
    first: int  # index of its first word
    last: int  # index of its last word
    label: str | None  # the stored entity it is exactly, if any
    features: tuple[tuple[str, float], ...]


def wh_class(question: str) -> str:
    """The question's coarse kind, to cross features with: "when", "who", "how many", "what",
    "which", ... ("other" without a wh-word)."""
    keys = question_keys(question)
    if not keys:
        return "other"
    wh = keys[-1]
    if wh == "how":
        return next((k for k in _COARSE_WH if keys[0].startswith(k)), "how")
    return wh


def _gap_class(gap: str) -> str:
    """What separates two words: nothing but space (""), or its first punctuation mark."""
    marks = gap.strip()
    return marks[0] if marks else ""


@lru_cache(maxsize=1 << 16)
def _shape(text: str) -> str:
    if any(c.isdigit() for c in text):
        return "num"
    if text[:1].isupper():
        return "cap"
    return "low"


# A span's shape: the sorted, joined shapes of its words ("caplow", "num"), from a bit per shape.
_SHAPE_BITS = {"cap": 1, "low": 2, "num": 4}
SHAPE_NAMES = {bits: "".join(sorted(name for name, bit in _SHAPE_BITS.items() if bits & bit))
                for bits in range(1, 8)}
CLAUSE_FEATURES = ("clauses_left=0", "clauses_left=1", "clauses_left=2")


@lru_cache(maxsize=4096)
def crossed_features(wh: str, n: int, shape: str, ent: str, near: str) -> tuple[tuple[str, float], ...]:
    """The span's length, shape, entity label and distance to the question's words, each alone
    and with the question's wh-word (cached: a handful of values each)."""
    return ((f"len={n}", 1.0), (f"shape={shape}", 1.0), (f"ent={ent}", 1.0), (f"near={near}", 1.0),
            (f"wh={wh}|len={n}", 1.0), (f"wh={wh}|shape={shape}", 1.0), (f"wh={wh}|ent={ent}", 1.0),
            (f"wh={wh}|near={near}", 1.0))


def distance_bucket(distance: int | None) -> str:
    """A word distance as the ranker sees it: none, 0, 1, 2, 3, 4-6 or 7 and more."""
    if distance is None:
        return "none"
    if distance <= 3:
        return str(distance)
    return "4-6" if distance <= 6 else "7+"


@dataclass(frozen=True, slots=True, eq=False)
class SentenceWords:
    """What a sentence's candidates are made of that no question changes: its words, the spans
    they form (word spans, then the stored entities' spans, each once, in that order), and the
    per-word facts and feature pairs a span takes from its first or last word. Built once a
    sentence (`sentence_words`): the same sentences are read question after question."""

    starts: list[int]
    ends: list[int]
    texts: list[str]
    lower: list[str]
    stemmed: list[str]
    stop: list[bool]
    spans: dict[tuple[int, int], str | None]  # (first word, last word) -> stored entity label
    entity_of: list[int]  # the stored entity covering each word (-1: none)
    shape_bits: list[int]
    gap_marks: list[str]  # the punctuation before each word
    clause_marks: list[int]  # clause marks before each word, counted from the start
    caps: list[bool]
    previous: list[str]  # the function word before each word ("W" a content word, "^" none)
    following: list[str]
    stop_count: list[int]  # running count of function words


@lru_cache(maxsize=1024)  # a sentence table keeps its own (span_table.py)
def sentence_words(sentence: str, entities: tuple[tuple[int, int, str], ...]) -> SentenceWords | None:
    """The question-independent part of `sentence`'s candidates (None: it has no word)."""
    words = list(_WORD.finditer(sentence))
    if not words:
        return None
    texts = [w.group() for w in words]
    lower = [t.lower() for t in texts]
    gaps = [""] + [sentence[words[i - 1].end():words[i].start()] for i in range(1, len(words))]
    joins = [True] + [bool(_JOINING_GAP.fullmatch(g)) or
                      g.strip() == "." and bool(_ABBREVIATION.fullmatch(texts[i - 1]))
                      for i, g in enumerate(gaps) if i > 0]
    stop = [w in STOPWORDS for w in lower]

    # Word spans, then the stored entities' spans (mapped onto words), each once.
    count = len(words)
    starts = [w.start() for w in words]
    ends = [w.end() for w in words]
    spans: dict[tuple[int, int], str | None] = {}
    for i in range(count):
        if stop[i]:
            continue
        for j in range(i, min(count, i + MAX_WORDS)):
            if j > i and not joins[j]:
                break
            if not stop[j]:
                spans.setdefault((i, j), None)
    # Which word each stored entity covers: a span cutting one in part is rarely an answer.
    entity_of = [-1] * count
    for e, (a, b, name) in enumerate(entities):
        inside = [k for k in range(count) if ends[k] > a and starts[k] < b]
        if inside:
            spans[(inside[0], inside[-1])] = name
            for k in inside:
                entity_of[k] = e

    gap_marks = [_gap_class(g) for g in gaps]
    clause_marks = [0]
    for g in gap_marks[1:]:
        clause_marks.append(clause_marks[-1] + (g in ",;:()"))
    previous = [lower[k - 1] if k > 0 and stop[k - 1] else ("W" if k > 0 else "^") for k in range(count)]
    following = [lower[k + 1] if k + 1 < count and stop[k + 1] else ("W" if k + 1 < count else "$")
                 for k in range(count)]
    stop_count = [0]
    for k in range(count):
        stop_count.append(stop_count[-1] + stop[k])
    return SentenceWords(
        starts, ends, texts, lower, [stem(t) for t in texts], stop, spans, entity_of,
        [_SHAPE_BITS[_shape(t)] for t in texts], gap_marks, clause_marks, [t[:1].isupper() for t in texts],
        previous, following, stop_count)


@dataclass(frozen=True, slots=True)
class WordFeatures:
    """The feature pairs a span takes from its first or last word, per word. Built when needed
    from `SentenceWords`, not kept with it: these strings are most of a sentence's size."""

    before_prev: list[tuple[str, float]]
    gap_before: list[tuple[str, float]]
    after_next: list[tuple[str, float]]
    gap_after: list[tuple[str, float]]
    after_copula: list[tuple[str, float]]
    lexical_before: list[tuple[str, float]]
    lexical_after: list[tuple[str, float]]
    first_word: list[tuple[str, float]]
    last_word: list[tuple[str, float]]


def word_features(sw: SentenceWords) -> WordFeatures:
    """The per-word feature pairs of a sentence's words (see WordFeatures)."""
    lower, gap_marks, count = sw.lower, sw.gap_marks, len(sw.starts)
    return WordFeatures(
        before_prev=[(f"prev={p}", 1.0) for p in sw.previous],
        gap_before=[(f"gap_before={gap_marks[k]}", 1.0) for k in range(count)],
        after_next=[(f"next={n_}", 1.0) for n_ in sw.following],
        gap_after=[(f"gap_after={gap_marks[k + 1] if k + 1 < count else '$'}", 1.0) for k in range(count)],
        after_copula=[("after_copula", float(k > 0 and lower[k - 1] in _COPULA)) for k in range(count)],
        # The words themselves around and at the ends of a span (learned: "in" before a year, "of"
        # after a head noun, ...).
        lexical_before=[("w_prev=" + (lower[k - 1] if k > 0 else "^"), 1.0) for k in range(count)],
        lexical_after=[("w_next=" + (lower[k + 1] if k + 1 < count else "$"), 1.0) for k in range(count)],
        first_word=[("first=" + w, 1.0) for w in lower],
        last_word=[("last=" + w, 1.0) for w in lower])


@dataclass(frozen=True, slots=True)
class QuestionWords:
    """What the question makes of one sentence's words: its stems (`own`), its keywords
    (`terms`, a follow-up's subject's too when the question's own are not in the sentence), the
    sentence words that are keywords (`anchors`), the question's wh-class, head noun and most
    specific key; per word, how close it is to the question's focus nouns (`focus_sim`, None
    without a focus); the longest run of the question's words in the sentence (`run`: first and
    last word, words matched) and the clause holding most keywords (`main_clause`)."""

    own: set[str]
    terms: set[str]
    anchors: set[int]
    wh: str
    head: str | None
    key: str
    focus_sim: list[float] | None
    run: tuple[int, int, int] | None
    main_clause: int | None


def question_words(question: str, words: SentenceWords, context: str = "") -> QuestionWords:
    """The question's side of a sentence's candidates (see QuestionWords)."""
    stemmed = words.stemmed
    own = {stem(w) for w in _WORD_ONLY.findall(question)}
    terms = {stem(w) for w in _WORD_ONLY.findall(question) if w.lower() not in STOPWORDS}
    if context and not any(s in terms for s in stemmed):
        terms |= {stem(w) for w in _WORD_ONLY.findall(context) if w.lower() not in STOPWORDS}
        own |= {stem(w) for w in _WORD_ONLY.findall(context)}
    anchors = {i for i, s in enumerate(stemmed) if s in terms and words.lower[i] not in STOPWORDS}
    keys = question_keys(question)
    return QuestionWords(own, terms, anchors, wh_class(question), _head_noun(question), keys[0] if keys else "-",
                         focus_similarities(focus_words(question), words.lower, words.stop),
                         longest_run(stemmed, words.stop, words.gap_marks, own),
                         main_clause(anchors, words.clause_marks))


def candidates(question: str, kind: AnswerType | None, sentence: str,
               entities: Sequence[tuple[int, int, str]], context: str = "") -> list[Candidate]:
    """Every candidate span of `sentence` with its features. `entities` are the sentence's
    stored entities (offsets in it); `context` the earlier question a follow-up leans on (its
    words count as the question's when the question's own are not in the sentence)."""
    sw = sentence_words(sentence, tuple((a, b, label) for a, b, label in entities))
    if sw is None:
        return []
    qw = question_words(question, sw, context)
    own, anchor_set, wh, head = qw.own, qw.anchors, qw.wh, qw.head
    focus_sim, main = qw.focus_sim, qw.main_clause
    lower, stemmed, stop, spans, entity_of = sw.lower, sw.stemmed, sw.stop, sw.spans, sw.entity_of
    starts, ends, shape_bits, gap_marks, clause_marks, caps = (sw.starts, sw.ends, sw.shape_bits, sw.gap_marks,
                                                               sw.clause_marks, sw.caps)
    wf = word_features(sw)
    before_prev, after_next, gap_before, gap_after = wf.before_prev, wf.after_next, wf.gap_before, wf.gap_after
    after_copula, lexical_before, lexical_after = wf.after_copula, wf.lexical_before, wf.lexical_after
    first_word, last_word, stop_count = wf.first_word, wf.last_word, sw.stop_count
    count = len(starts)
    shares = kind.shares if kind is not None else {}
    expected = kind.labels if kind is not None else frozenset()
    none_share = shares.get(NONE, 0.0)
    wh_repeated, wh_proximity, wh_expected = f"wh={wh}|repeated", f"wh={wh}|proximity", f"wh={wh}|expected"

    # Per word, once: the nearest question word on each side, the features crossed with the
    # question's wh-word, and running counts so that a span's sums are two look-ups.
    last_anchor: list[int | None] = []
    seen: int | None = None
    for k in range(count):
        last_anchor.append(seen)
        if k in anchor_set:
            seen = k
    next_anchor: list[int | None] = [None] * count
    seen = None
    for k in range(count - 1, -1, -1):
        next_anchor[k] = seen
        if k in anchor_set:
            seen = k
    wh_before_prev = [(f"wh={wh}|prev={p}", 1.0) for p in sw.previous]
    wh_after_next = [(f"wh={wh}|next={n_}", 1.0) for n_ in sw.following]
    wh_lexical_before = [(f"wh={wh}|w_prev=" + (lower[k - 1] if k > 0 else "^"), 1.0) for k in range(count)]
    # Running counts (exact small integers, so a span's count is a difference): repeated
    # question words, the question's head noun, anchors.
    repeat_count, head_count, anchor_count = [0.0], [0], [0]
    for k in range(count):
        repeat_count.append(repeat_count[-1] + float(not stop[k] and stemmed[k] in own))
        head_count.append(head_count[-1] + (head is not None and stemmed[k] == head))
        anchor_count.append(anchor_count[-1] + (k in anchor_set))
    by_term: dict[str, list[int]] = {}
    for k in sorted(anchor_set):
        by_term.setdefault(stemmed[k], []).append(k)
    anchor_groups = list(by_term.values())

    out: list[Candidate] = []
    for (i, j), label in spans.items():
        n = j - i + 1
        content = n - (stop_count[j + 1] - stop_count[i])
        repeated = (repeat_count[j + 1] - repeat_count[i]) / max(content, 1)
        left = last_anchor[i]
        right = next_anchor[j]
        dl = i - left if left is not None else None
        dr = right - j if right is not None else None
        if dl is None:
            near = dr
        elif dr is None:
            near = dl
        else:
            near = dl if dl <= dr else dr
        clauses_left = clause_marks[i] - clause_marks[max(0, i - 6)]
        bits = 0
        for k in range(i, j + 1):
            bits |= shape_bits[k]
        # Closeness to the question's words: per distinct word, 1 / its distance, a clause mark
        # between them counting two words more (as the entity lead scores it, lead.py).
        proximity = 0.0
        for positions in anchor_groups:
            best = 0.0
            for k in positions:
                if i <= k <= j:
                    continue
                d = i - k + 2 * (clause_marks[i] - clause_marks[k]) if k < i else \
                    k - j + 2 * (clause_marks[k] - clause_marks[j])
                if 1.0 / d > best:  # max(best, 1.0 / d), without the call
                    best = 1.0 / d
            proximity += best
        cuts = (entity_of[i] >= 0 and i > 0 and entity_of[i - 1] == entity_of[i]
                or entity_of[j] >= 0 and j + 1 < count and entity_of[j + 1] == entity_of[j])
        cuts_caps = (caps[i] and i > 0 and caps[i - 1] and not gap_marks[i]
                     or caps[j] and j + 1 < count and caps[j + 1] and not gap_marks[j + 1])
        is_expected = float(label in expected)
        features = (
            ("bias", 1.0), ("repeated", repeated), ("all_repeated", float(repeated == 1.0)),
            ("before_anchor", float(dr is not None and (dl is None or dr < dl))),
            before_prev[i], after_next[j], gap_before[i], gap_after[j],
            (CLAUSE_FEATURES[min(clauses_left, 2)], 1.0),
            ("label_share", shares.get(label, 0.0) if label else none_share),
            ("expected", is_expected),
            ("head_next", float(head_count[min(j + 2, count)] > head_count[i])), after_copula[i],
            ("proximity", proximity), (wh_proximity, proximity), ("cuts_entity", float(cuts)),
            ("cuts_capitals", float(cuts_caps)), (wh_expected, is_expected),
            ("anchors_around", float(anchor_count[min(count, j + 4)] - anchor_count[max(0, i - 3)]
                                     - anchor_count[j + 1] + anchor_count[i])),
            lexical_before[i], lexical_after[j], first_word[i], last_word[j],
            wh_lexical_before[i], wh_before_prev[i], wh_after_next[j], (wh_repeated, repeated),
            *crossed_features(wh, min(n, MAX_WORDS), SHAPE_NAMES[bits], label or "-", distance_bucket(near)),
            *focus_features(focus_sim, stop, i, j),
            *key_features(qw.key, SHAPE_NAMES[bits], label or "-"),
            *run_features(wh, qw.run, i, j),
            *clause_features(wh, main, clause_marks[i], clause_marks[j]),
        )
        out.append(Candidate(starts[i], ends[j], i, j, label, features))
    return out


_WORD_ONLY = re.compile(r"\w+")


def _head_noun(question: str) -> str | None:
    """The stem of the noun after "what"/"which" ("Which newspaper ..." -> "newspap"), if any."""
    key = question_keys(question)
    if key and key[0].startswith(("what ", "which ")) and len(key[0].split()) == 2:
        head = key[0].split()[1]
        return None if head in AUXILIARIES else head
    return None
