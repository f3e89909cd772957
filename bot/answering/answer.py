"""The plain data an `Answerer` hands to every front end (CLI, Slack, evaluation).

`Answer.to_json()` is the public ``qabot ask --json`` format; keep its keys stable (new keys may
be added: ``reader`` came with the trained reader; ``composed``, ``notice``, ``llm`` and a
citation's ``number`` with composed answers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ABSTAIN_TEXT = "I couldn't find that in the indexed articles."
# The reply to a "question" with no words in it (empty, only punctuation or control characters).
EMPTY_QUESTION_TEXT = "Please ask a question in words, e.g. “When are the talks?”"


@dataclass(frozen=True)
class Citation:
    """A passage the answer was taken from (or, when abstaining, the nearest one)."""

    document: str  # the document's title
    source: str  # where it was loaded from (path)
    url: str | None  # a link to the original, when the document has one
    chunk_id: str
    text: str  # the whole passage (chunk) text
    score: float  # retrieval relevance, higher is better
    quote: str = ""  # the sentences of this passage used in the answer ("" if none)
    page: int | None = None  # the page the quote (or passage) is on, for sources with pages (PDF)
    number: int | None = None  # the source's number, [n], in a composed answer's text


@dataclass(frozen=True)
class ReaderFigures:
    """What the trained reader said about an answer (absent when the rules answered)."""

    score: float  # probability that the best quoted sentence answers the question
    span_score: float  # probability of the highlighted span
    leads: bool  # the span is confident enough to be shown first, before the quote


@dataclass(frozen=True)
class LlmFigures:
    """What the LLM was asked and what became of its reply (absent when it was not asked)."""

    model: str
    # "composed" (shown), "declined" (the sources don't answer), "ungrounded" (a citation or quote
    # failed the check) or "unavailable" (timeout, server error, rate limit, malformed reply).
    outcome: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reason: str = ""  # why it was not shown, for logs and `--json` (never holds a secret)


@dataclass(frozen=True)
class Answer:
    question: str
    text: str  # the answer: quoted sentences, or ABSTAIN_TEXT
    abstained: bool
    citations: tuple[Citation, ...] = ()
    # The part of `text` that answers the question's type (a date for "when", ...), as offsets.
    highlight: tuple[int, int] | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    reader: ReaderFigures | None = None
    # True when `text` is an LLM's composed, verified answer citing `citations` by number.
    composed: bool = False
    llm: LlmFigures | None = None
    # One line shown with the answer, e.g. "LLM unavailable; showing the passage".
    notice: str | None = None
    # Each quoted sentence of an extractive `text`: (start, end, index into `citations` of the
    # passage it is quoted from), in text order. Empty for declines and composed answers.
    sentence_spans: tuple[tuple[int, int, int], ...] = ()

    @property
    def highlighted(self) -> str | None:
        """The highlighted span's text, if any."""
        if self.highlight is None:
            return None
        start, end = self.highlight
        return self.text[start:end]

    @property
    def lead(self) -> str | None:
        """The short answer shown first ("within a few weeks"), then the quote: the highlighted
        span when the reader is confident about it, else None (the quote alone)."""
        if self.abstained or self.reader is None or not self.reader.leads:
            return None
        return self.highlighted

    def to_json(self) -> dict[str, Any]:
        """The documented ``--json`` object (see docs/cli.md, "JSON output")."""
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "highlight": self.highlighted,
            "citations": [
                {
                    "document": c.document,
                    "chunk_id": c.chunk_id,
                    "text": c.text,
                    "score": round(c.score, 4),
                    "source": c.source,
                    "url": c.url,
                    "page": c.page,
                    "number": c.number,
                }
                for c in self.citations
            ],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "reader": None if self.reader is None else {
                "score": round(self.reader.score, 4),
                "span_score": round(self.reader.span_score, 4),
                "lead": self.lead,
            },
            "composed": self.composed,
            "notice": self.notice,
            "llm": None if self.llm is None else {
                "model": self.llm.model,
                "outcome": self.llm.outcome,
                "prompt_tokens": self.llm.prompt_tokens,
                "completion_tokens": self.llm.completion_tokens,
                "reason": self.llm.reason or None,
            },
        }
