"""What the question's wording says of a candidate span, beside its words and place (spans.py):
the kind of thing it asks for (its focus noun, against the span's words in the encoder's input
word embeddings, word_vectors.py), its most specific key against the span's shape and label, and
where the span stands to the part of the sentence the question restates (the longest run of its
words, the clause holding most of them). On ../shared/train, held out by article, these took the
ranker's top span from 34% to 36% exact and the answers led at exact match 0.60 from 31% to 37%
(docs/quality.md). String work and table look-ups: no model is run.
"""

from __future__ import annotations

import re
from functools import lru_cache
from embeddings.keyword import STOPWORDS

from .answer_type import ARTICLES, AUXILIARIES
from .word_vectors import similarity

# Words after the wh-word that name no kind of thing: "what type of music" asks for a music.
_FOCUS_SKIP = AUXILIARIES | ARTICLES | {"kind", "type", "sort", "form", "name", "of", "one", "ones"}
_FOCUS_WH = ("what", "which", "whose", "how")


@lru_cache(maxsize=4096)
def focus_words(question: str) -> tuple[str, ...]:
    """The question's focus nouns, the kind of thing it asks for: up to two words after the
    wh-word, one of them the head ("what year" -> year; "which NFL team won" -> nfl, team; "how
    many people" -> people; "what type of music" -> music; "what is the capital of" -> capital).
    Empty when the question names no kind ("what did", "who", "when")."""
    words = re.findall(r"[a-z0-9]+(?:'[a-z]+)?", question.lower())
    at = next((i for i, w in enumerate(words) if w in _FOCUS_WH), None)
    if at is None:
        return ()
    rest = words[at + 1:at + 8]
    if words[at] == "how":
        if len(rest) < 2 or rest[0] not in ("many", "much") or rest[1] in AUXILIARIES:
            return ()
        rest = rest[1:]
    elif rest and rest[0] in AUXILIARIES:
        if len(rest) < 3 or rest[0] not in ("is", "was", "are", "were") or rest[1] not in ARTICLES:
            return ()
        rest = rest[2:]
    out: list[str] = []
    for w in rest:
        if w in _FOCUS_SKIP and not out:
            continue
        if w in STOPWORDS or w in AUXILIARIES or len(out) == 2:
            break
        out.append(w)
    return tuple(out)


def focus_similarities(focus: tuple[str, ...], lower: list[str], stop: list[bool]) -> list[float] | None:
    """Per sentence word, its highest cosine with a focus noun (0.0 for a function word or a word
    without a vector; None: no focus noun has a vector)."""
    if not any(similarity(f, f) is not None for f in focus):
        return None
    out = []
    for word, is_stop in zip(lower, stop):
        sims = [] if is_stop else [v for f in focus if (v := similarity(f, word)) is not None]
        out.append(max(sims) if sims else 0.0)
    return out


_CLAUSE_MARKS = frozenset(",;:()")


def longest_run(stemmed: list[str], stop: list[bool], gap_marks: list[str], own: set[str]
                ) -> tuple[int, int, int] | None:
    """The longest run of the question's words (`own`, stems) in a sentence (its words' stems,
    which are function words, the punctuation before each), function words allowed between them
    but no clause mark: (its first word, its last word, how many question words), or None. The
    answer tends to sit just after or before the part of the sentence the question restates."""
    best: tuple[int, int, int] | None = None
    start: int | None = None
    end = matched = 0
    for k, word in enumerate(stemmed):
        hit = not stop[k] and word in own
        if start is not None and (not (hit or stop[k]) or gap_marks[k] in _CLAUSE_MARKS):
            if best is None or matched > best[2]:
                best = (start, end, matched)
            start = None
        if hit:
            if start is None:
                start, matched = k, 0
            matched += 1
            end = k
    if start is not None and (best is None or matched > best[2]):
        best = (start, end, matched)
    return best


def run_features(wh: str, run: tuple[int, int, int] | None, first: int, last: int) -> list[tuple[str, float]]:
    """Where a span stands to the longest run of question words: just after it or just before it
    (0-2 words between, alone, with the wh-word and with the run's length), or overlapping it."""
    if run is None:
        return []
    a, b, matched = run
    size = min(matched, 3)
    if first > b and first - b - 1 <= 2:
        gap = first - b - 1
        return [(f"run_after={gap}", 1.0), (f"wh={wh}|run_after={gap}", 1.0), (f"run_after|m={size}", 1.0)]
    if last < a and a - last - 1 <= 2:
        gap = a - last - 1
        return [(f"run_before={gap}", 1.0), (f"wh={wh}|run_before={gap}", 1.0), (f"run_before|m={size}", 1.0)]
    if first <= b and last >= a:
        return [("overlaps_run", 1.0)]
    return []


def focus_max(focus_sim: list[float], stop: list[bool], first: int, last: int) -> float:
    """The span's highest focus similarity over its content words (0.0: none)."""
    return max((focus_sim[k] for k in range(first, last + 1) if not stop[k]), default=0.0)


def focus_features(focus_sim: list[float] | None, stop: list[bool], first: int, last: int
                   ) -> tuple[tuple[str, float], ...]:
    """How close the span's last word (in English most often its head) and its closest word are
    to the question's focus noun: a year to "what year", a river's name to "which river"."""
    if focus_sim is None:
        return ()
    return ("focus_sim_last", focus_sim[last]), ("focus_sim_max", focus_max(focus_sim, stop, first, last))


@lru_cache(maxsize=4096)
def key_features(key: str, shape: str, label: str) -> tuple[tuple[str, float], ...]:
    """The span's shape and entity label crossed with the question's most specific key ("what
    year" with a number, "how many peopl" with a CARDINAL): the answer type, learned for word
    spans too, which the entity table (answer_types.json) does not cover."""
    return (f"key={key}|shape={shape}", 1.0), (f"key={key}|ent={label}", 1.0)


def main_clause(anchors: set[int], clause_marks: list[int]) -> int | None:
    """The clause (its count of clause marks before it) holding most of the question's words, the
    first of those tied (None: the sentence has none of them)."""
    counts: dict[int, int] = {}
    for k in anchors:
        counts[clause_marks[k]] = counts.get(clause_marks[k], 0) + 1
    return max(counts, key=lambda c: (counts[c], -c)) if counts else None


def clause_features(wh: str, main_clause: int | None, first_clause: int, last_clause: int
                    ) -> tuple[tuple[str, float], ...]:
    """Whether the span lies wholly in the clause holding most of the question's words."""
    if main_clause is None:
        return ()
    same = float(first_clause == main_clause and last_clause == main_clause)
    return ("main_clause", same), (f"wh={wh}|main_clause", same)
