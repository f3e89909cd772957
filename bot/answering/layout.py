"""One answer layout for every front end: the lead, the evidence once, the source.

The CLI, Slack (blocks and notification text) and ``--json`` all render an `AnswerLayout`, so no
front end decides on its own what to show and nothing is shown twice:

1. the **lead**: the answer itself in a few words, when one was found with confidence;
2. the **evidence**: the sentence(s) that hold the answer, each once, trimmed around the lead with
   "…" when long, the lead's offsets inside each line so a renderer can bold it;
3. the **source** the evidence is quoted from, and the other passages folded away (``more``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .answer import Answer, Citation

# An evidence sentence longer than this many words is cut around the lead (LEAD_EVIDENCE_WORDS)
# or around the rules' highlight when nothing leads (EVIDENCE_WORDS), with "…" where it was cut.
# LEAD_EVIDENCE_WORDS is the smallest window costing at most half a point of "shown text contains
# a gold answer" on ../shared/train (bot/evaluation/tune_lead.py --stage evidence; words shown /
# that share, the lead's sentence untrimmed: 30.6 / 0.751): 30 words 28.6 / 0.747, 20 words
# 26.9 / 0.741, 15 words 25.8 / 0.737, 12 words 25.2 / 0.736. Around a lead the cut falls at
# clause ends; around the rules' highlight it is a plain window centred on it: with clauses
# there too (lead 20 words, highlight 30) train showed 25.4 / 0.733 against 25.8 / 0.737.
LEAD_EVIDENCE_WORDS = 30
EVIDENCE_WORDS = 30
ELLIPSIS = "…"
FEW_WORDS = 4
# A paragraph that ends on a letter or digit, not on punctuation: a heading ("Office"), which a
# passage shown on one line would run into the sentence after it ("Office The Berlin office …").
_HEADING_END = re.compile(r"(\w)[ \t]*\n[ \t]*\n")


def mark_headings(passage: str) -> str:
    """`passage` with a dash after each heading, so it reads apart from the next sentence once the
    passage is shown on one line ("Office — The Berlin office is open …")."""
    return _HEADING_END.sub(r"\1 —\n\n", passage)


@dataclass(frozen=True)
class EvidenceLine:
    """One quoted sentence as shown."""

    text: str  # the sentence, possibly trimmed with "…" at either end
    bold: tuple[int, int] | None  # the lead's offsets inside `text`, when it is in this line
    citation: int | None  # index into `Answer.citations` of the passage it is quoted from


@dataclass(frozen=True)
class AnswerLayout:
    """What a front end shows for one answer, in order."""

    lead: str | None
    evidence: tuple[EvidenceLine, ...]
    source: Citation | None  # the passage the evidence is quoted from (the nearest one on a decline)
    more: tuple[Citation, ...]  # the other passages, folded away by default
    abstained: bool
    composed: bool
    notice: str | None
    # Every passage the evidence is quoted from, in the order first quoted (`source` first).
    cited: tuple[Citation, ...] = ()

    @property
    def shown_text(self) -> str:
        """Everything a reader sees by default, as plain text (lead, then evidence)."""
        parts = [self.lead] if self.lead else []
        parts += [line.text for line in self.evidence]
        return " ".join(parts)


def _clause_breaks(words: list[str]) -> list[bool]:
    """For each word, whether a clause ends after it (a comma, semicolon, colon, bracket or
    dash closes it, or the next word opens a bracket)."""
    return [w[-1] in _CLAUSE_END or (k + 1 < len(words) and words[k + 1][0] in "([—–")
            for k, w in enumerate(words)]


_CLAUSE_END = frozenset(",;:)]—–")


def _centred(n: int, first: int, last: int, max_words: int) -> tuple[int, int]:
    """`max_words` of `n` words centred on words `first`..`last`, wherever clauses end."""
    lo = max(0, first - max(0, (max_words - (last - first + 1)) // 2))
    hi = min(n - 1, lo + max_words - 1)
    return max(0, min(lo, hi - max_words + 1)), hi


def _window(words: list[str], first: int, last: int, max_words: int) -> tuple[int, int]:
    """Words `first`..`last` widened to whole clauses while they fit in `max_words` (the
    smaller neighbouring clause first); a clause longer than that is cut around the span."""
    breaks = _clause_breaks(words)
    lo = first
    while lo > 0 and not breaks[lo - 1]:
        lo -= 1
    hi = last
    while hi < len(words) - 1 and not breaks[hi]:
        hi += 1
    if hi - lo + 1 > max_words:  # the clause alone is too long: a window centred on the span
        width = last - first + 1
        lo = max(lo, first - max(0, (max_words - width) // 2))
        hi = min(hi, lo + max_words - 1)
        lo = max(0, min(lo, hi - max_words + 1))
        return lo, hi
    while True:
        left = lo
        while left > 0 and (left == lo or not breaks[left - 1]):
            left -= 1
        right = hi
        while right < len(words) - 1 and (right == hi or not breaks[right]):
            right += 1
        options = [(lo - left, left, hi) for _ in [0] if left < lo and hi - left + 1 <= max_words]
        options += [(right - hi, lo, right) for _ in [0] if right > hi and right - lo + 1 <= max_words]
        if not options:
            return lo, hi
        _, lo, hi = min(options)


def trim_around(text: str, span: tuple[int, int] | None, max_words: int = EVIDENCE_WORDS,
                clauses: bool = True) -> tuple[str, tuple[int, int] | None]:
    """`text` cut to at most about `max_words` words around `span` (offsets in `text`: the bold
    lead or highlight), whole `clauses` or a plain centred window, with "…" at each cut end;
    returns the new text and the span's offsets in it. Without a span the sentence is kept whole: nothing says which part
    answers, and a cut around the span scorer's unsure best guess dropped the gold answer from
    the shown text of 3.6% of the training questions for 5.5 words fewer (tune_lead.py)."""
    words = text.split()
    if len(words) <= max_words or span is None:
        return text, span
    # Word boundaries as character offsets.
    bounds: list[tuple[int, int]] = []
    pos = 0
    for word in words:
        start = text.index(word, pos)
        bounds.append((start, start + len(word)))
        pos = start + len(word)
    inside = [i for i, (a, b) in enumerate(bounds) if b > span[0] and a < span[1]] or [0]
    if clauses:
        first, last = _window(words, inside[0], inside[-1], max_words)
    else:
        first, last = _centred(len(words), inside[0], inside[-1], max_words)
    last += 1
    # A cut that would drop only a few words is not worth its "…": keep them.
    if first <= FEW_WORDS:
        first = 0
    if len(bounds) - last <= FEW_WORDS:
        last = len(bounds)
    cut_start, cut_end = bounds[first][0], bounds[last - 1][1]
    prefix = ELLIPSIS if first > 0 else ""
    suffix = ELLIPSIS if last < len(bounds) else ""
    shown = prefix + text[cut_start:cut_end].rstrip(",;:—–") + suffix
    a = max(span[0], cut_start) - cut_start + len(prefix)
    b = min(span[1], cut_end) - cut_start + len(prefix)
    return shown, ((a, b) if b > a else None)


def _inside(span: tuple[int, int] | None, start: int, end: int) -> tuple[int, int] | None:
    """`span` (offsets in the answer text) as offsets in the line `start`..`end`, if within it."""
    if span is not None and span[0] >= start and span[1] <= end:
        return span[0] - start, span[1] - start
    return None


def answer_layout(answer: Answer) -> AnswerLayout:
    """The layout of `answer`: evidence lines from its quoted sentences (`Answer.sentence_spans`,
    or the whole text as one line when it has none, as a composed answer or a decline)."""
    source = answer.citations[0] if answer.citations else None
    more = answer.citations[1:]
    if answer.abstained or answer.composed:
        line = EvidenceLine(answer.text, None, None)
        return AnswerLayout(None, (line,), source, more, answer.abstained, answer.composed, answer.notice)
    spans = answer.sentence_spans or ((0, len(answer.text), 0),)
    lines: list[EvidenceLine] = []
    said: set[str] = set()
    for start, end, passage in spans:
        # Overlapping passages can hold the same sentence; it is quoted once.
        key = " ".join(answer.text[start:end].split()).casefold()
        if key in said:
            continue
        said.add(key)
        bold = _inside(answer.highlight, start, end)
        words = LEAD_EVIDENCE_WORDS if answer.lead else EVIDENCE_WORDS
        text, bold = trim_around(answer.text[start:end], bold, words, clauses=bool(answer.lead))
        lines.append(EvidenceLine(text, bold, passage))
    # The passages the evidence is quoted from, in the order first quoted (the first without any).
    quoted = [i for i in dict.fromkeys(line.citation for line in lines)
              if i is not None and 0 <= i < len(answer.citations)] or ([0] if answer.citations else [])
    cited = tuple(answer.citations[i] for i in quoted)
    if cited:
        source = cited[0]
        # Every passage the evidence is quoted from is shown; only the others are folded away.
        more = tuple(c for i, c in enumerate(answer.citations) if i not in quoted)
    return AnswerLayout(answer.lead, tuple(lines), source, more, False, False, answer.notice, cited)


def layout_json(answer: Answer) -> dict[str, Any]:
    """The ``--json`` keys the layout adds to `Answer.to_json`: ``lead`` and ``evidence`` (each
    line's ``text``, the lead's ``bold`` offsets in it or null, and the index of the passage in
    ``citations`` it is quoted from). A decline has no evidence; a composed answer's evidence is
    the sentence each numbered source backs it with."""
    layout = answer_layout(answer)
    if layout.abstained:
        lines: list[dict[str, Any]] = []
    elif layout.composed:
        lines = [{"text": c.quote, "bold": None, "citation": i}
                 for i, c in enumerate(answer.citations) if c.quote]
    else:
        lines = [{"text": line.text, "bold": list(line.bold) if line.bold else None, "citation": line.citation}
                 for line in layout.evidence]
    return {"lead": layout.lead, "evidence": lines}
