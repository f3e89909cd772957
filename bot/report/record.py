"""One question as the gaps report keeps it: what became of it, never who asked.

A record holds what `qabot report` needs and nothing more: when it was asked, through which front
end, whether it was answered, declined or answered with the extractive fallback because the LLM
failed, the collections searched, the documents cited (their short ids, as `qabot docs` shows
them: titles are looked up in the index when the report is made) and the 👍/👎 counts. The
question's text and its vector (for the gap groups) are present only with ``[report]
keep_questions``. No Slack user, channel or message id is ever part of it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace

import numpy as np

from ..answering.answer import Answer

ANSWERED = "answered"
DECLINED = "declined"
LLM_FALLBACK = "llm_fallback"
OUTCOMES = (ANSWERED, DECLINED, LLM_FALLBACK)
# LlmFigures.outcome values after which the extractive answer was shown instead of the LLM's.
_FALLBACK_OUTCOMES = ("unavailable", "ungrounded")
VECTOR_DTYPE = np.float16  # half the bytes of float32; cosine similarities agree to ~1e-3


@dataclass(frozen=True)
class QuestionRecord:
    """What happened to one question (see the module docstring)."""

    id: str
    asked_at: float  # seconds since the epoch (UTC)
    via: str  # "slack" or "chat"
    outcome: str  # one of OUTCOMES
    collections: tuple[str, ...] = ()  # () = every collection was searched
    documents: tuple[str, ...] = ()  # short ids of the documents cited, in citation order
    question: str | None = None
    vector: np.ndarray | None = None  # unit-length float32, when the question is kept
    up: int = 0
    down: int = 0

    @property
    def down_voted(self) -> bool:
        """More 👎 than 👍: the answer did not help (each click counts; no user is recorded)."""
        return self.down > self.up

    @property
    def is_gap(self) -> bool:
        """Declined or down-voted: a question the documents did not answer well."""
        return self.outcome == DECLINED or self.down_voted

    def without_text(self) -> "QuestionRecord":
        return replace(self, question=None, vector=None)


def outcome_of(answer: Answer) -> str:
    """answered, declined, or llm_fallback (the LLM failed or its reply failed the check, and the
    quoted passage was shown instead)."""
    if answer.abstained:
        return DECLINED
    if answer.llm is not None and answer.llm.outcome in _FALLBACK_OUTCOMES:
        return LLM_FALLBACK
    return ANSWERED


def cited_documents(answer: Answer) -> tuple[str, ...]:
    """The short ids of the documents an answer cites, once each (none for a decline: its
    citations are the nearest passages, not sources). A chunk id is "<short id>#<position>"."""
    if answer.abstained:
        return ()
    return tuple(dict.fromkeys(c.chunk_id.rpartition("#")[0] or c.chunk_id for c in answer.citations))


def encode_vector(vector: np.ndarray | None) -> str | None:
    """A vector as base64 text (Redis keys hold text here), float16."""
    if vector is None:
        return None
    return base64.b64encode(np.asarray(vector, dtype=VECTOR_DTYPE).tobytes()).decode("ascii")


def decode_vector(raw: str | bytes | None) -> np.ndarray | None:
    """The inverse of `encode_vector`; raw float16 bytes (SQLite's BLOB) are accepted too."""
    if raw is None:
        return None
    data = raw if isinstance(raw, bytes) else base64.b64decode(raw)
    return np.frombuffer(data, dtype=VECTOR_DTYPE).astype(np.float32)
