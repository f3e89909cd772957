"""One answer layout for every front end: the lead, the evidence once, the source.

The CLI, Slack (blocks and notification text) and ``--json`` all render an `AnswerLayout`, so no
front end decides on its own what to show and nothing is shown twice:

1. the **lead**: the answer itself in a few words, when one was found with confidence;
2. the **evidence**: the sentence(s) that hold the answer, each once, trimmed around the lead with
   "…" when long, the lead's offsets inside each line so a renderer can bold it;
3. the **source** the evidence is quoted from, and the other passages folded away (``more``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .answer import Answer, Citation

# An evidence sentence longer than this many words is cut to a window of about this size around
# the lead (the bold span), with "…" where it was cut; a sentence with no bold span is kept whole.
EVIDENCE_WORDS = 30
ELLIPSIS = "…"
FEW_WORDS = 4


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


def trim_around(text: str, span: tuple[int, int] | None, max_words: int = EVIDENCE_WORDS
                ) -> tuple[str, tuple[int, int] | None]:
    """`text` cut to about `max_words` words around `span` (offsets in `text`), with "…" at each
    cut end; returns the new text and the span's offsets in it. Without a span the sentence is
    kept whole: nothing says which part answers, and a blind cut drops the answer (measured on
    the eval: "shown text contains a gold answer" fell from 0.875 to 0.812)."""
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
    width = inside[-1] - inside[0] + 1
    first = max(0, inside[0] - max(0, (max_words - width) // 2))
    last = min(len(bounds), first + max_words)
    first = max(0, min(first, last - max_words))
    # A cut that would drop only a few words is not worth its "…": keep them.
    if first <= FEW_WORDS:
        first = 0
    if len(bounds) - last <= FEW_WORDS:
        last = len(bounds)
    cut_start, cut_end = bounds[first][0], bounds[last - 1][1]
    prefix = ELLIPSIS if first > 0 else ""
    suffix = ELLIPSIS if last < len(bounds) else ""
    shown = prefix + text[cut_start:cut_end] + suffix
    a = max(span[0], cut_start) - cut_start + len(prefix)
    b = min(span[1], cut_end) - cut_start + len(prefix)
    return shown, ((a, b) if b > a else None)


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
        bold = None
        if answer.highlight is not None and answer.highlight[0] >= start and answer.highlight[1] <= end:
            bold = (answer.highlight[0] - start, answer.highlight[1] - start)
        text, bold = trim_around(answer.text[start:end], bold)
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
