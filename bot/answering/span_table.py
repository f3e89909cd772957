"""The span ranker's score of every candidate of a sentence, computed a feature at a time.

`spans.candidates` lists each candidate's features as (name, value) pairs: that is the
definition, and what bot/evaluation/learn_spans.py fits on. To answer a question only the ranker's
scores are needed (per candidate, the sum of weight x value over its features, in their order),
and most features depend on the sentence alone, which recurs question after question. So here a
sentence's candidates and the weights of its question-independent features are looked up once
(cached with the model, `SpanTables`), and a question adds its own features as numpy columns.
The sum runs over the features in the same order, one float64 addition at a time, so each score
equals `SpanModel.score` of that candidate to the last bit (tests/test_spans.py checks it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .answer_type import NONE, AnswerType
from .spans import (CLAUSE_FEATURES, MAX_WORDS, SHAPE_NAMES, QuestionWords, SentenceWords, crossed_features,
                    distance_bucket, question_words, sentence_words, word_features)

# Sentences whose tables a model keeps. Measured on the SQuAD evaluation articles (50 candidates a
# sentence): ~37 KB a sentence with its words, ~5.5 KB more for each further wh-class asked of it,
# so ~40-55 MB when full. A memory bound set by hand, not tuned.
TABLE_ENTRIES = 1024
_BUCKETS = tuple(distance_bucket(d) for d in (None, 0, 1, 2, 3, 4, 7))


@dataclass(frozen=True)
class Span:
    """The ranker's choice in a sentence: character offsets and the stored entity it is, if any."""

    start: int
    end: int
    label: str | None


@dataclass(eq=False)
class SentenceTable:
    """One sentence's candidates as arrays (first and last word, label, shape, ...) and the
    weights of their question-independent features, each a row over the candidates."""

    words: SentenceWords
    spans: list[Span]
    first: np.ndarray
    last: np.ndarray
    labels: list[str | None]
    label_names: list[str | None]  # the distinct labels (None: a word span), for `label_codes`
    label_codes: np.ndarray  # each candidate's label as an index into label_names
    n: list[int]  # length in words, capped at MAX_WORDS
    shapes: list[str]
    shape_names: list[str]  # the distinct shapes, for `shape_codes`
    shape_codes: np.ndarray
    content: np.ndarray  # words that are no function word
    # Each candidate's words as rows of word positions (padded with its last word) and which of
    # them are content words: its highest focus similarity is one masked maximum.
    span_words: np.ndarray
    span_content: np.ndarray
    static: dict[str, np.ndarray]  # feature slot -> weight x value per candidate
    by_wh: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # wh-class -> slot -> row


def _row(weights: Mapping[str, float], pairs: Sequence[tuple[str, float]]) -> np.ndarray:
    get = weights.get
    return np.array([get(name, 0.0) * value for name, value in pairs], dtype=np.float64)


def _table(weights: Mapping[str, float], words: SentenceWords) -> SentenceTable:
    spans = list(words.spans.items())
    first = np.array([i for (i, _), _ in spans], dtype=np.int64)
    last = np.array([j for (_, j), _ in spans], dtype=np.int64)
    labels = [label for _, label in spans]
    label_names = list(dict.fromkeys(labels))
    codes = {label: k for k, label in enumerate(label_names)}
    count = len(words.starts)
    cm, entity_of, caps, marks = words.clause_marks, words.entity_of, words.caps, words.gap_marks
    shapes = []
    clauses, cuts, cuts_caps = [], [], []
    for (i, j), _ in spans:
        bits = 0
        for k in range(i, j + 1):
            bits |= words.shape_bits[k]
        shapes.append(SHAPE_NAMES[bits])
        clauses.append((CLAUSE_FEATURES[min(cm[i] - cm[max(0, i - 6)], 2)], 1.0))
        cuts.append(("cuts_entity", float(entity_of[i] >= 0 and i > 0 and entity_of[i - 1] == entity_of[i]
                                          or entity_of[j] >= 0 and j + 1 < count and entity_of[j + 1] == entity_of[j])))
        cuts_caps.append(("cuts_capitals", float(caps[i] and i > 0 and caps[i - 1] and not marks[i]
                                                 or caps[j] and j + 1 < count and caps[j + 1] and not marks[j + 1])))
    n = [min(j - i + 1, MAX_WORDS) for (i, j), _ in spans]
    sc = np.array(words.stop_count, dtype=np.int64)
    content = (last - first + 1) - (sc[last + 1] - sc[first])
    starts_at, ends_at = first.tolist(), last.tolist()
    wf = word_features(words)
    static = {
        "prev": _row(weights, [wf.before_prev[i] for i in starts_at]),
        "next": _row(weights, [wf.after_next[j] for j in ends_at]),
        "gap_before": _row(weights, [wf.gap_before[i] for i in starts_at]),
        "gap_after": _row(weights, [wf.gap_after[j] for j in ends_at]),
        "clauses": _row(weights, clauses),
        "after_copula": _row(weights, [wf.after_copula[i] for i in starts_at]),
        "cuts_entity": _row(weights, cuts), "cuts_capitals": _row(weights, cuts_caps),
        "w_prev": _row(weights, [wf.lexical_before[i] for i in starts_at]),
        "w_next": _row(weights, [wf.lexical_after[j] for j in ends_at]),
        "first": _row(weights, [wf.first_word[i] for i in starts_at]),
        "last": _row(weights, [wf.last_word[j] for j in ends_at]),
    }
    found = [Span(words.starts[i], words.ends[j], label) for (i, j), label in spans]
    shape_names = list(dict.fromkeys(shapes))
    shape_code = {shape: k for k, shape in enumerate(shape_names)}
    width = int((last - first).max()) + 1 if len(spans) else 1
    span_words = np.minimum(first[:, None] + np.arange(width)[None, :], last[:, None])
    in_span = first[:, None] + np.arange(width)[None, :] <= last[:, None]
    span_content = in_span & ~np.array(words.stop, dtype=bool)[span_words]
    return SentenceTable(words, found, first, last, labels, label_names,
                         np.array([codes[label] for label in labels], dtype=np.int64), n, shapes, shape_names,
                         np.array([shape_code[shape] for shape in shapes], dtype=np.int64), content,
                         span_words, span_content, static)


def _wh_rows(weights: Mapping[str, float], table: SentenceTable, wh: str) -> dict[str, np.ndarray]:
    """The rows of the features crossed with the question's wh-class that no other part of the
    question changes (the crossed length, shape and label; the words around the span)."""
    rows = table.by_wh.get(wh)
    if rows is None:
        words = table.words
        lower = words.lower
        crossed = [crossed_features(wh, n, shape, label or "-", "none")
                   for n, shape, label in zip(table.n, table.shapes, table.labels)]
        rows = {
            "wh_w_prev": _row(weights, [(f"wh={wh}|w_prev=" + (lower[i - 1] if i > 0 else "^"), 1.0)
                                        for i in table.first.tolist()]),
            "wh_prev": _row(weights, [(f"wh={wh}|prev={words.previous[i]}", 1.0) for i in table.first.tolist()]),
            "wh_next": _row(weights, [(f"wh={wh}|next={words.following[j]}", 1.0) for j in table.last.tolist()]),
            **{f"crossed{k}": _row(weights, [c[k] for c in crossed]) for k in (0, 1, 2, 4, 5, 6)},
        }
        table.by_wh[wh] = rows  # the same rows whichever thread computes them
    return rows


class SpanTables:
    """A model's sentence tables, the most recently used kept (thread-safe)."""

    def __init__(self, weights: Mapping[str, float], max_entries: int = TABLE_ENTRIES) -> None:
        self.weights = weights
        self._tables: OrderedDict[tuple[str, tuple[tuple[int, int, str], ...]], SentenceTable | None] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def table(self, sentence: str, entities: Sequence[tuple[int, int, str]]) -> SentenceTable | None:
        key = (sentence, tuple((a, b, label) for a, b, label in entities))
        with self._lock:
            if key in self._tables:
                self._tables.move_to_end(key)
                return self._tables[key]
        words = sentence_words(*key)
        table = _table(self.weights, words) if words is not None else None
        with self._lock:
            self._tables[key] = table
            while len(self._tables) > self._max:
                self._tables.popitem(last=False)
        return table

    def scores(self, question: str, kind: AnswerType | None, sentence: str,
               entities: Sequence[tuple[int, int, str]], context: str = "") -> tuple[list[Span], list[float]]:
        """Every candidate of `sentence` (in `spans.candidates`' order) and its ranker score."""
        table = self.table(sentence, entities)
        if table is None:
            return [], []
        return table.spans, _scores(self.weights, table, question, kind, context)


def _scores(weights: Mapping[str, float], table: SentenceTable, question: str, kind: AnswerType | None,
            context: str) -> list[float]:
    """The ranker's scores: the question's own feature rows, then the sum over every feature in
    `spans.candidates`' order."""
    words, first, last = table.words, table.first, table.last
    qw = question_words(question, words, context)
    wh = qw.wh
    count = len(words.starts)
    c = len(table.labels)
    get = weights.get
    stop, stemmed = words.stop, words.stemmed
    repeat_count = np.cumsum([0.0] + [float(not stop[k] and stemmed[k] in qw.own) for k in range(count)])
    head_count = np.cumsum([0] + [int(qw.head is not None and stemmed[k] == qw.head) for k in range(count)])
    anchor_count = np.cumsum([0] + [int(k in qw.anchors) for k in range(count)])
    repeated = (repeat_count[last + 1] - repeat_count[first]) / np.maximum(table.content, 1)

    # The nearest question word left of each span's first word and right of its last (-1: none).
    anchors = sorted(qw.anchors)
    last_anchor = np.full(count, -1, dtype=np.int64)
    next_anchor = np.full(count, -1, dtype=np.int64)
    for k in anchors:
        last_anchor[k + 1:] = k
    for k in reversed(anchors):
        next_anchor[:k] = k
    left, right = last_anchor[first], next_anchor[last]
    dl = np.where(left >= 0, first - left, -1)
    dr = np.where(right >= 0, right - last, -1)
    near = np.where(dl < 0, dr, np.where(dr < 0, dl, np.minimum(dl, dr)))
    before_anchor = ((dr >= 0) & ((dl < 0) | (dr < dl))).astype(np.float64)

    cm = np.array(words.clause_marks, dtype=np.int64)
    proximity = np.zeros(c)
    groups: dict[str, list[int]] = {}
    for k in anchors:
        groups.setdefault(stemmed[k], []).append(k)
    for positions in groups.values():
        best = np.zeros(c)
        for k in positions:
            d = np.where(k < first, first - k + 2 * (cm[first] - cm[k]), k - last + 2 * (cm[k] - cm[last]))
            inside = (first <= k) & (k <= last)
            best = np.maximum(best, np.where(inside, 0.0, 1.0 / np.where(inside, 1, d)))
        proximity += best

    shares = kind.shares if kind is not None else {}
    expected = kind.labels if kind is not None else frozenset()
    none_share = shares.get(NONE, 0.0)
    codes = table.label_codes
    label_share = np.array([shares.get(label, 0.0) if label else none_share for label in table.label_names])[codes]
    is_expected = np.array([float(label in expected) for label in table.label_names])[codes]
    head_next = (head_count[np.minimum(last + 2, count)] > head_count[first]).astype(np.float64)
    around = (anchor_count[np.minimum(count, last + 4)] - anchor_count[np.maximum(0, first - 3)]
              - anchor_count[last + 1] + anchor_count[first]).astype(np.float64)
    # `spans.distance_bucket` of each distance, as an index into _BUCKETS: none, 0, 1, 2, 3, 4-6, 7+.
    buckets = np.where(near < 0, 0, np.where(near <= 3, near + 1, np.where(near <= 6, 5, 6)))
    near_weight = np.array([get(f"near={b}", 0.0) * 1.0 for b in _BUCKETS])[buckets]
    wh_near_weight = np.array([get(f"wh={wh}|near={b}", 0.0) * 1.0 for b in _BUCKETS])[buckets]
    static, crossed = table.static, _wh_rows(weights, table, wh)

    rows = (
        np.full(c, get("bias", 0.0) * 1.0), get("repeated", 0.0) * repeated,
        get("all_repeated", 0.0) * (repeated == 1.0).astype(np.float64),
        get("before_anchor", 0.0) * before_anchor,
        static["prev"], static["next"], static["gap_before"], static["gap_after"], static["clauses"],
        get("label_share", 0.0) * label_share, get("expected", 0.0) * is_expected,
        get("head_next", 0.0) * head_next, static["after_copula"],
        get("proximity", 0.0) * proximity, get(f"wh={wh}|proximity", 0.0) * proximity,
        static["cuts_entity"], static["cuts_capitals"], get(f"wh={wh}|expected", 0.0) * is_expected,
        get("anchors_around", 0.0) * around,
        static["w_prev"], static["w_next"], static["first"], static["last"],
        crossed["wh_w_prev"], crossed["wh_prev"], crossed["wh_next"], get(f"wh={wh}|repeated", 0.0) * repeated,
        crossed["crossed0"], crossed["crossed1"], crossed["crossed2"],
        near_weight,
        crossed["crossed4"], crossed["crossed5"], crossed["crossed6"],
        wh_near_weight,
        *_question_rows(weights, table, qw),
    )
    total = np.zeros(c)
    for row in rows:  # in the features' order, one addition at a time (as sum() adds them)
        total += row
    return total.tolist()


def _question_rows(weights: Mapping[str, float], table: SentenceTable, qw: QuestionWords) -> list[np.ndarray]:
    """The rows of the last features of `spans.candidates`, in their order: the focus noun's
    similarities, the question's key with the shape and label, the run of question words and
    the main clause. Where a candidate lacks a feature its row holds 0.0, which adds nothing."""
    get, first, last = weights.get, table.first, table.last
    rows: list[np.ndarray] = []
    if qw.focus_sim is not None:
        sims = np.array(qw.focus_sim)
        best = np.where(table.span_content, sims[table.span_words], -np.inf).max(axis=1)
        rows += [get("focus_sim_last", 0.0) * sims[last],
                 get("focus_sim_max", 0.0) * np.where(np.isinf(best), 0.0, best)]
    key = qw.key
    rows += [np.array([get(f"key={key}|shape={shape}", 0.0) * 1.0 for shape in table.shape_names])[table.shape_codes],
             np.array([get(f"key={key}|ent={label or '-'}", 0.0) * 1.0
                       for label in table.label_names])[table.label_codes]]
    if qw.run is not None:
        rows += _run_rows(weights, qw.wh, qw.run, first, last)
    if qw.main_clause is not None:
        cm = np.array(table.words.clause_marks, dtype=np.int64)
        same = ((cm[first] == qw.main_clause) & (cm[last] == qw.main_clause)).astype(np.float64)
        rows += [get("main_clause", 0.0) * same, get(f"wh={qw.wh}|main_clause", 0.0) * same]
    return rows


def _run_rows(weights: Mapping[str, float], wh: str, run: tuple[int, int, int], first: np.ndarray,
              last: np.ndarray) -> list[np.ndarray]:
    """`spans.run_features` as three rows: a span just after the run takes its three "run_after"
    weights, one just before it the three "run_before" ones, one overlapping it "overlaps_run"
    (each candidate's place as a code: 0 none, 1-3 after, 4-6 before, 7 overlapping)."""
    get = weights.get
    a, b, matched = run
    size = min(matched, 3)
    after = (first > b) & (first - b - 1 <= 2)
    before = ~after & (last < a) & (a - last - 1 <= 2)
    code = np.where((first <= b) & (last >= a), 7, 0)
    code = np.where(before, 4 + a - last - 1, np.where(after, 1 + first - b - 1, code))
    names = [[f"run_after={g}" for g in range(3)], [f"run_before={g}" for g in range(3)],
             [f"wh={wh}|run_after={g}" for g in range(3)], [f"wh={wh}|run_before={g}" for g in range(3)]]
    places = (
        [0.0, *(get(n, 0.0) * 1.0 for n in names[0]), *(get(n, 0.0) * 1.0 for n in names[1]),
         get("overlaps_run", 0.0) * 1.0],
        [0.0, *(get(n, 0.0) * 1.0 for n in names[2]), *(get(n, 0.0) * 1.0 for n in names[3]), 0.0],
        [0.0, *[get(f"run_after|m={size}", 0.0) * 1.0] * 3, *[get(f"run_before|m={size}", 0.0) * 1.0] * 3, 0.0],
    )
    return [np.array(weights_by_place)[code] for weights_by_place in places]
