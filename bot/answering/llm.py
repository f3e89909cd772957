"""Composed answers (issue 13): the extractive answer's passages and best sentences go to an LLM,
whose reply is checked (grounding.py) before it replaces the quote.

The `Answerer` calls `LlmComposer.compose` only after the judge decided to answer: a question the
extractive step declines never reaches the LLM. What can come back:

- the composed answer, citing its sources by number (``composed=True``);
- the decline, when the model says the sources don't answer (as the extractive decline looks);
- the extractive answer with one line, when the model's reply fails the check ("not grounded")
  or the model fails (timeout, 5xx, 429 after retries, malformed): never silence.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Callable, Sequence

from embeddings.index import Index

from ..settings import LlmSettings
from .answer import ABSTAIN_TEXT, Answer, LlmFigures
from .compose import QuotedSentence, citation
from .grounding import DECLINE_TOKEN, CheckedReply, Source, build_messages, check_reply, number_sources, \
    supporting_sentence
from .llm_client import Completion, LlmClient, LlmUnavailable
from .question import Question
from .retrieval import Passage

log = logging.getLogger(__name__)

UNAVAILABLE_NOTICE = "LLM unavailable; showing the passage"
UNGROUNDED_NOTICE = "The LLM's answer did not match its sources; showing the passage"


class LlmComposer:
    """Asks the LLM for an answer composed from the retrieved passages, checked before it is shown."""

    def __init__(self, index: Index, cfg: LlmSettings, client: LlmClient | None = None) -> None:
        self.index = index
        self.cfg = cfg
        self.client = client or LlmClient(cfg)

    def compose(self, question: Question, extractive: Answer, passages: Sequence[Passage],
                chosen: Sequence[QuotedSentence], on_text: Callable[[str], None] | None = None) -> Answer:
        """The composed answer, the decline, or `extractive` with a notice (see the module
        docstring). With `on_text`, the reply is streamed and its text handed over as it comes
        (a decline is held back: its token is never shown)."""
        started = time.perf_counter()
        sources = number_sources(passages, [self.index.document(p.hit.chunk.doc_id).title for p in passages])
        number_of = {p.row: s.number for p, s in zip(passages, sources)}
        best = [(number_of[c.passage.row], c.text) for c in chosen if c.passage.row in number_of]
        messages = build_messages(question.text, sources, best)
        gate = _DeclineGate(on_text) if on_text is not None else None
        try:
            reply = self.client.complete(messages, gate.feed if gate else None)
        except LlmUnavailable as exc:
            log.warning("LLM %s unavailable (%s): showing the extractive answer", self.cfg.model, exc)
            return self._fallback(extractive, "unavailable", str(exc), UNAVAILABLE_NOTICE, None, started)
        checked = check_reply(reply.text, sources, topic=" ".join([question.text, *(t for _, t in best)]))
        if checked.declined:
            log.info("LLM %s: the sources do not answer; declining", reply.model)
            return self._declined(extractive, reply, started)
        if not checked.grounded:
            log.warning("LLM %s reply not shown: %s", reply.model, checked.problem)
            return self._fallback(extractive, "ungrounded", checked.problem, UNGROUNDED_NOTICE, reply, started)
        return self._composed(question, checked, sources, reply, extractive, started)

    def _figures(self, outcome: str, reply: Completion | None, reason: str = "") -> LlmFigures:
        return LlmFigures(reply.model if reply else self.cfg.model, outcome,
                          reply.prompt_tokens if reply else None, reply.completion_tokens if reply else None,
                          reason)

    @staticmethod
    def _timed(answer: Answer, started: float) -> Answer:
        return replace(answer, timings_ms={**answer.timings_ms, "llm_ms": (time.perf_counter() - started) * 1000})

    def _fallback(self, extractive: Answer, outcome: str, reason: str, notice: str,
                  reply: Completion | None, started: float) -> Answer:
        return self._timed(replace(extractive, notice=notice, llm=self._figures(outcome, reply, reason)), started)

    def _declined(self, extractive: Answer, reply: Completion, started: float) -> Answer:
        nearest = tuple(replace(c, quote="") for c in extractive.citations[:1])
        return self._timed(Answer(extractive.question, ABSTAIN_TEXT, True, nearest,
                                  llm=self._figures("declined", reply)), started)

    def _composed(self, question: Question, checked: CheckedReply, sources: Sequence[Source],
                  reply: Completion, extractive: Answer, started: float) -> Answer:
        by_number = {s.number: s for s in sources}
        citations = []
        for n in checked.cited:
            passage = by_number[n].passage
            sentences = passage.hit.chunk.sentence_texts()
            # For each claim citing this source, the sentence it rests on (in reading order).
            quoted = {s for s in (supporting_sentence(sentences, [claim]) for claim in checked.claims[n]) if s}
            quote = " ".join(s for s in sentences if s in quoted)
            citations.append(replace(citation(self.index, passage, quote), number=n))
        log.info("LLM %s composed an answer citing %s (%s + %s tokens)", reply.model,
                 ", ".join(f"[{n}]" for n in checked.cited), reply.prompt_tokens, reply.completion_tokens)
        return self._timed(Answer(question.text, checked.text, False, tuple(citations), None,
                                  dict(extractive.timings_ms), composed=True,
                                  llm=self._figures("composed", reply)), started)


class _DeclineGate:
    """Passes streamed text on, except the decline token: text is held while it could still be
    the start of NOT_IN_SOURCES, and leading blank space is dropped."""

    def __init__(self, on_text: Callable[[str], None]) -> None:
        self._on_text = on_text
        self._held = ""
        self._open = False

    def feed(self, piece: str) -> None:
        if self._open:
            self._on_text(piece)
            return
        self._held = (self._held + piece).lstrip()
        if not self._held:
            return
        if DECLINE_TOKEN.startswith(self._held[:len(DECLINE_TOKEN)].upper()) and not \
                len(self._held) > len(DECLINE_TOKEN):
            return  # could still be (or is) the decline: show nothing yet
        if self._held.upper().startswith(DECLINE_TOKEN):
            return  # the decline, with something after it
        self._open = True
        self._on_text(self._held)
