"""The one call each front end makes per question it answered: `QuestionRecorder.record`.

The Slack app calls it once, in `slack.replies.answer_and_post` (every Slack path: channel,
thread, DM, assistant panel, ``/ask``), and 👍/👎 clicks call `vote`; ``qabot chat`` calls
`record` after each answer. ``qabot ask`` and ``qabot eval`` never record.

Recording must never cost an answer: a store that fails is logged (never with the question) and
the answer stands. With ``[report] keep_questions`` the question's vector is kept with it: the one
the answerer already computed (`Answer.question_vector`), or, from an answerer that does not hand
it over, one computed here by the same encoder (`get_encoder` returns one cached instance per
backend); so `qabot report` groups thousands of questions without a model. The text itself is
never logged.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Callable, Sequence

import numpy as np

from ..answering.answer import Answer
from ..settings import ReportSettings, Settings
from .record import QuestionRecord, cited_documents, outcome_of
from .store import ReportStore, ReportStoreError, SqliteReportStore

log = logging.getLogger(__name__)

DAY_S = 24 * 3600.0
Encode = Callable[[Sequence[str]], np.ndarray]


def open_store(settings: Settings) -> ReportStore:
    """The report's store in the state store `[state] state_backend` names (`ReportStoreError`,
    one line, when it cannot be opened)."""
    if settings.state.state_backend == "redis":
        from .redis_store import RedisReportStore

        return RedisReportStore.connect(settings.state.redis_url)
    return SqliteReportStore(settings.paths.state_db)


def query_encoder(settings: Settings) -> Encode:
    """The answerer's question encoder, loaded on first use."""
    def encode(texts: Sequence[str]) -> np.ndarray:
        from embeddings.encoders import get_encoder

        return get_encoder(settings.model.query_backend, settings.model.max_seq_length).encode(list(texts))
    return encode


class QuestionRecorder:
    """Writes one `QuestionRecord` per answered question to a `ReportStore` (see module docstring)."""

    def __init__(self, store: ReportStore | None, cfg: ReportSettings, *, via: str, encode: Encode | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.cfg = cfg
        self.via = via
        self._encode = encode
        self._clock = clock
        if store is not None and not cfg.keep_questions:
            self._safely(store.forget_text, "remove question texts from")

    @classmethod
    def from_settings(cls, settings: Settings, *, via: str, required: bool = True) -> "QuestionRecorder":
        """A recorder on the state store of `settings`; when it cannot be opened, `required` raises
        (the Slack app, whose state lives there anyway) or records nothing, with one warning (chat)."""
        try:
            store: ReportStore | None = open_store(settings)
        except ReportStoreError as exc:
            if required:
                raise
            log.warning("questions will not be recorded for the report: %s", exc)
            store = None
        return cls(store, settings.report, via=via, encode=query_encoder(settings))

    def record(self, answer: Answer, record_id: str | None = None) -> str | None:
        """Record what became of `answer`'s question; returns its record id (what `vote` takes),
        or None when nothing could be recorded."""
        if self.store is None:
            return None
        now = self._clock()
        record = QuestionRecord(record_id or uuid.uuid4().hex[:20], now, self.via, outcome_of(answer),
                                tuple(answer.collections), cited_documents(answer))
        if self.cfg.keep_questions and answer.question.strip():
            record = QuestionRecord(record.id, now, self.via, record.outcome, record.collections, record.documents,
                                    answer.question, self._vector(answer))
        store = self.store
        cutoff = now - self.cfg.retention_days * DAY_S
        if not self._safely(lambda: store.add(record, delete_before=cutoff), "record a question in"):
            return None
        return record.id

    def vote(self, record_id: str | None, vote: str) -> None:
        """Count a 👍 ("up") or 👎 ("down") on a recorded answer (one recorded later counts it too;
        a vote on no record shows nowhere, and goes with the retention)."""
        if self.store is None or not record_id or vote not in ("up", "down"):
            return
        store, now = self.store, self._clock()
        self._safely(lambda: store.vote(record_id, vote, now), "count a vote in")

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def _vector(self, answer: Answer) -> np.ndarray | None:
        """The question's unit vector: the answerer's own when the answer carries it, else
        embedded here (an answerer that does not hand it over)."""
        raw = answer.question_vector
        try:
            if raw is None:
                if self._encode is None:
                    return None
                raw = self._encode([answer.question])[0]
            vector = np.asarray(raw, dtype=np.float32)
        except Exception as exc:
            log.warning("could not embed a question for the report (%s)", type(exc).__name__)
            return None
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def _safely(self, call: Callable[[], object], what: str) -> bool:
        try:
            call()
            return True
        except Exception as exc:
            log.warning("could not %s the report's store %s (%s)", what, self.store.describe() if self.store else "",
                        type(exc).__name__)
            return False
