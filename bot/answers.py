"""The plain data an `Answerer` hands to every front end (CLI, Slack, evaluation).

`Answer.to_json()` is the public ``qabot ask --json`` format; keep its keys stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ABSTAIN_TEXT = "I couldn't find that in the indexed articles."


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


@dataclass(frozen=True)
class Answer:
    question: str
    text: str  # the answer: quoted sentences, or ABSTAIN_TEXT
    abstained: bool
    citations: tuple[Citation, ...] = ()
    # The part of `text` that answers the question's type (a date for "when", ...), as offsets.
    highlight: tuple[int, int] | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def highlighted(self) -> str | None:
        """The highlighted span's text, if any."""
        if self.highlight is None:
            return None
        start, end = self.highlight
        return self.text[start:end]

    def to_json(self) -> dict[str, Any]:
        """The documented ``--json`` object (see README, "JSON output")."""
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
                }
                for c in self.citations
            ],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }
