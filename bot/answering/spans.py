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
it, and these crossed with the question's wh-word. Plain string work: no model, no spaCy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from embeddings.keyword import STOPWORDS, stem

from .answer_type import AUXILIARIES, NONE, AnswerType, question_keys

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


def _shape(text: str) -> str:
    if any(c.isdigit() for c in text):
        return "num"
    if text[:1].isupper():
        return "cap"
    return "low"


_SHAPES = {"".join(sorted(c)): "".join(sorted(c)) for c in
           ({"num"}, {"cap"}, {"low"}, {"num", "cap"}, {"num", "low"}, {"cap", "low"}, {"num", "cap", "low"})}
_CLAUSES = ("clauses_left=0", "clauses_left=1", "clauses_left=2")


@lru_cache(maxsize=4096)
def _crossed(wh: str, n: int, shape: str, ent: str, near: str) -> tuple[tuple[str, float], ...]:
    """The span's length, shape, entity label and distance to the question's words, each alone
    and with the question's wh-word (cached: a handful of values each)."""
    return ((f"len={n}", 1.0), (f"shape={shape}", 1.0), (f"ent={ent}", 1.0), (f"near={near}", 1.0),
            (f"wh={wh}|len={n}", 1.0), (f"wh={wh}|shape={shape}", 1.0), (f"wh={wh}|ent={ent}", 1.0),
            (f"wh={wh}|near={near}", 1.0))


def _bucket(distance: int | None) -> str:
    if distance is None:
        return "none"
    if distance <= 3:
        return str(distance)
    return "4-6" if distance <= 6 else "7+"


def candidates(question: str, kind: AnswerType | None, sentence: str,
               entities: Sequence[tuple[int, int, str]], context: str = "") -> list[Candidate]:
    """Every candidate span of `sentence` with its features. `entities` are the sentence's
    stored entities (offsets in it); `context` the earlier question a follow-up leans on (its
    words count as the question's when the question's own are not in the sentence)."""
    words = list(_WORD.finditer(sentence))
    if not words:
        return []
    texts = [w.group() for w in words]
    lower = [t.lower() for t in texts]
    stemmed = [stem(t) for t in texts]
    own = {stem(w) for w in _WORD_ONLY.findall(question)}
    terms = {stem(w) for w in _WORD_ONLY.findall(question) if w.lower() not in STOPWORDS}
    if context and not any(s in terms for s in stemmed):
        terms |= {stem(w) for w in _WORD_ONLY.findall(context) if w.lower() not in STOPWORDS}
        own |= {stem(w) for w in _WORD_ONLY.findall(context)}
    anchor_set = {i for i, s in enumerate(stemmed) if s in terms and lower[i] not in STOPWORDS}
    gaps = [""] + [sentence[words[i - 1].end():words[i].start()] for i in range(1, len(words))]
    joins = [True] + [bool(_JOINING_GAP.fullmatch(g)) or
                      g.strip() == "." and bool(_ABBREVIATION.fullmatch(texts[i - 1]))
                      for i, g in enumerate(gaps) if i > 0]
    stop = [w in STOPWORDS for w in lower]
    wh = wh_class(question)
    shares = kind.shares if kind is not None else {}
    expected = kind.labels if kind is not None else frozenset()
    none_share = shares.get(NONE, 0.0)
    head = _head_noun(question)
    wh_repeated, wh_proximity, wh_expected = f"wh={wh}|repeated", f"wh={wh}|proximity", f"wh={wh}|expected"

    # Word spans, then the stored entities' spans (mapped onto words), each once.
    spans: dict[tuple[int, int], str | None] = {}
    for i in range(len(words)):
        if stop[i]:
            continue
        for j in range(i, min(len(words), i + MAX_WORDS)):
            if j > i and not joins[j]:
                break
            if not stop[j]:
                spans.setdefault((i, j), None)
    for a, b, name in entities:
        inside = [k for k, w in enumerate(words) if w.end() > a and w.start() < b]
        if inside:
            spans[(inside[0], inside[-1])] = name

    # Per word, once: its shape, the punctuation before it, the nearest question word on each side.
    shapes = [_shape(t) for t in texts]
    gap_marks = [_gap_class(g) for g in gaps]
    clause_marks = [0]
    for g in gap_marks[1:]:
        clause_marks.append(clause_marks[-1] + (g in ",;:()"))
    last_anchor: list[int | None] = []
    seen: int | None = None
    for k in range(len(words)):
        last_anchor.append(seen)
        if k in anchor_set:
            seen = k
    next_anchor: list[int | None] = [None] * len(words)
    seen = None
    for k in range(len(words) - 1, -1, -1):
        next_anchor[k] = seen
        if k in anchor_set:
            seen = k
    repeats = [float(not stop[k] and stemmed[k] in own) for k in range(len(words))]
    before = [(f"prev={p}", f"wh={wh}|prev={p}", f"gap_before={gap_marks[k]}")
              for k, p in enumerate(lower[k - 1] if k > 0 and stop[k - 1] else ("W" if k > 0 else "^")
                                    for k in range(len(words)))]
    after = []
    for k in range(len(words)):
        n_ = lower[k + 1] if k + 1 < len(words) and stop[k + 1] else ("W" if k + 1 < len(words) else "$")
        after.append((f"next={n_}", f"wh={wh}|next={n_}",
                      f"gap_after={gap_marks[k + 1] if k + 1 < len(words) else '$'}"))
    copula = [float(k > 0 and lower[k - 1] in _COPULA) for k in range(len(words))]
    head_at = [head is not None and stemmed[k] == head for k in range(len(words))]
    caps = [t[:1].isupper() for t in texts]
    # Which word each stored entity covers: a span cutting one in part is rarely an answer.
    entity_of = [-1] * len(words)
    for e, (a, b, _) in enumerate(entities):
        for k, w in enumerate(words):
            if w.end() > a and w.start() < b:
                entity_of[k] = e
    anchor_count = [0]
    for k in range(len(words)):
        anchor_count.append(anchor_count[-1] + (k in anchor_set))
    # The words themselves around and at the ends of a span (learned: "in" before a year, "of"
    # after a head noun, ...).
    lexical_before = ["w_prev=" + (lower[k - 1] if k > 0 else "^") for k in range(len(words))]
    wh_lexical_before = [f"wh={wh}|w_prev=" + (lower[k - 1] if k > 0 else "^") for k in range(len(words))]
    lexical_after = ["w_next=" + (lower[k + 1] if k + 1 < len(words) else "$") for k in range(len(words))]
    first_word = ["first=" + w for w in lower]
    last_word = ["last=" + w for w in lower]
    by_term: dict[str, list[int]] = {}
    for k in sorted(anchor_set):
        by_term.setdefault(stemmed[k], []).append(k)

    out: list[Candidate] = []
    for (i, j), label in spans.items():
        n = j - i + 1
        content = n - sum(stop[i:j + 1])
        repeated = sum(repeats[i:j + 1]) / max(content, 1)
        left = last_anchor[i]
        right = next_anchor[j]
        dl = i - left if left is not None else None
        dr = right - j if right is not None else None
        near = min(d for d in (dl, dr) if d is not None) if dl is not None or dr is not None else None
        clauses_left = clause_marks[i] - clause_marks[max(0, i - 6)]
        shape = _SHAPES["".join(sorted(set(shapes[i:j + 1])))]
        # Closeness to the question's words: per distinct word, 1 / its distance, a clause mark
        # between them counting two words more (as the entity lead scores it, lead.py).
        proximity = 0.0
        for positions in by_term.values():
            best = 0.0
            for k in positions:
                if i <= k <= j:
                    continue
                d = i - k + 2 * (clause_marks[i] - clause_marks[k]) if k < i else \
                    k - j + 2 * (clause_marks[k] - clause_marks[j])
                best = max(best, 1.0 / d)
            proximity += best
        cuts = (entity_of[i] >= 0 and i > 0 and entity_of[i - 1] == entity_of[i]
                or entity_of[j] >= 0 and j + 1 < len(words) and entity_of[j + 1] == entity_of[j])
        cuts_caps = (caps[i] and i > 0 and caps[i - 1] and not gap_marks[i]
                     or caps[j] and j + 1 < len(words) and caps[j + 1] and not gap_marks[j + 1])
        f: list[tuple[str, float]] = [
            ("bias", 1.0), ("repeated", repeated), ("all_repeated", float(repeated == 1.0)),
            ("before_anchor", float(dr is not None and (dl is None or dr < dl))),
            (before[i][0], 1.0), (after[j][0], 1.0), (before[i][2], 1.0), (after[j][2], 1.0),
            (_CLAUSES[min(clauses_left, 2)], 1.0),
            ("label_share", shares.get(label, 0.0) if label else none_share),
            ("expected", float(label in expected)),
            ("head_next", float(any(head_at[i:j + 2]))), ("after_copula", copula[i]),
            ("proximity", proximity), (wh_proximity, proximity), ("cuts_entity", float(cuts)),
            ("cuts_capitals", float(cuts_caps)), (wh_expected, float(label in expected)),
            ("anchors_around", float(anchor_count[min(len(words), j + 4)] - anchor_count[max(0, i - 3)]
                                     - anchor_count[j + 1] + anchor_count[i])),
            (lexical_before[i], 1.0), (lexical_after[j], 1.0), (first_word[i], 1.0), (last_word[j], 1.0),
            (wh_lexical_before[i], 1.0),
            (before[i][1], 1.0), (after[j][1], 1.0), (wh_repeated, repeated),
            *_crossed(wh, min(n, MAX_WORDS), shape, label or "-", _bucket(near)),
        ]
        out.append(Candidate(words[i].start(), words[j].end(), i, j, label, tuple(f)))
    return out


_WORD_ONLY = re.compile(r"\w+")


def _head_noun(question: str) -> str | None:
    """The stem of the noun after "what"/"which" ("Which newspaper ..." -> "newspap"), if any."""
    key = question_keys(question)
    if key and key[0].startswith(("what ", "which ")) and len(key[0].split()) == 2:
        head = key[0].split()[1]
        return None if head in AUXILIARIES else head
    return None
