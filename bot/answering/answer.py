"""The plain data an `Answerer` hands to every front end (CLI, Slack, evaluation).

`Answer.to_json()` is the public ``qabot ask --json`` format; keep its keys stable (new keys may
be added: ``composed``, ``notice``, ``llm`` and a citation's ``number`` came with composed
answers; ``reader`` stays, always null, since the trained reader was removed).
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
    # True when `text` is an LLM's composed, verified answer citing `citations` by number.
    composed: bool = False
    llm: LlmFigures | None = None
    # One line shown with the answer, e.g. "LLM unavailable; showing the passage".
    notice: str | None = None
    # Each quoted sentence of an extractive `text`: (start, end, index into `citations` of the
    # passage it is quoted from), in text order. Empty for declines and composed answers.
    sentence_spans: tuple[tuple[int, int, int], ...] = ()
    # True when `highlight` is an entity of the type the question asks for (lead.py, entities
    # found at ingest): it is then the lead, the answer in a few words shown first.
    typed: bool = False
    # The text searched with when a follow-up was answered with the conversation's subject (the
    # question alone was declined); None otherwise. Shown by `qabot chat -v`, never logged.
    query: str | None = None
    # The document collections it was searched in (embeddings/collections.py); () = all.
    collections: tuple[str, ...] = ()
    # The question's own vector as the answerer embedded it (not in --json): the gaps report
    # keeps it rather than embedding the question a second time. None for an empty question.
    question_vector: Any = field(default=None, repr=False, compare=False)

    @property
    def highlighted(self) -> str | None:
        """The highlighted span's text, if any."""
        if self.highlight is None:
            return None
        start, end = self.highlight
        return self.text[start:end]

    @property
    def lead(self) -> str | None:
        """The short answer shown first ("Jan. 10"), then the evidence: the highlighted entity of
        the question's type (lead.py), else None (the evidence alone)."""
        if self.abstained or not self.typed:
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
            "reader": None,  # the trained reader's figures; kept for scripts, the reader is gone
            "composed": self.composed,
            "notice": self.notice,
            "collections": list(self.collections),
            "llm": None if self.llm is None else {
                "model": self.llm.model,
                "outcome": self.llm.outcome,
                "prompt_tokens": self.llm.prompt_tokens,
                "completion_tokens": self.llm.completion_tokens,
                "reason": self.llm.reason or None,
            },
        }
