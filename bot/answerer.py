"""The one `Answerer` behind every front end: question (+ conversation) in, quoted `Answer` out."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Sequence

from embeddings.encoders import Encoder, get_encoder
from embeddings.index import Index
from embeddings.keyword import tokenize

from .answers import ABSTAIN_TEXT, Answer, Citation
from .focus import find_focus
from .retrieval import retrieve
from .selection import ScoredSentence, SentenceVectors, choose_sentences, keyword_weights, score_sentences
from .settings import Settings, load_settings

log = logging.getLogger(__name__)

# Words that make a question lean on what was asked before ("and when are they?").
_FOLLOW_UP = re.compile(
    r"^\s*(?:and|also|what about|how about|but|so|then)\b|\b(?:he|him|his|she|her|they|them|their|"
    r"it|its|this|that|these|those|there)\b", re.IGNORECASE)
_QUESTION_WORDS = {"what", "who", "whom", "whose", "when", "where", "why", "which", "how", "is",
                   "are", "was", "were", "did", "does", "do", "can", "could", "would", "should",
                   "will", "has", "have", "had", "the", "a", "an", "in", "on", "of", "i", "and",
                   "tell", "give", "list", "name", "please", "according"}


def clean_question(text: str, max_chars: int) -> str:
    """Printable, single-spaced, cut to the configured length before anything embeds it."""
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return re.sub(r"\s+", " ", text).strip()[:max_chars].strip()


def key_terms(question: str) -> list[str]:
    """Names in the question (capitalised words past the first): they must occur in the index."""
    words = re.findall(r"[A-Za-z][\w'’.-]*", question)
    names = [w.strip(".'’") for i, w in enumerate(words)
             if i > 0 and w[0].isupper() and w.lower().strip(".'’") not in _QUESTION_WORDS]
    return [t for t in tokenize([" ".join(names)])[0]] if names else []


class Answerer:
    """Retrieves passages, selects and quotes the answering sentences, or declines.

    Thread-safe: the index is read-only once loaded and the encoder and caches guard themselves.
    """

    def __init__(self, index: Index, encoder: Encoder, settings: Settings) -> None:
        self.index = index
        self.encoder = encoder
        self.settings = settings
        self._sentence_vectors = SentenceVectors(lambda texts: encoder.encode(texts))

    @classmethod
    def from_settings(cls, settings: Settings | None = None, index_dir: Path | None = None) -> "Answerer":
        settings = settings or load_settings()
        index = Index.load(index_dir or settings.paths.index, model_name=settings.model.model_name)
        encoder = get_encoder(settings.model.query_backend, settings.model.max_seq_length)
        return cls(index, encoder, settings)

    def retrieval_query(self, question: str, history: Sequence[str]) -> str:
        """The text to search with: a follow-up carries the subject of the question before it."""
        if history and _FOLLOW_UP.search(question):
            return f"{history[-1]} {question}"
        return question

    def ask(self, question: str, history: Sequence[str] = ()) -> Answer:
        started = time.perf_counter()
        cfg = self.settings.answer
        question = clean_question(question, cfg.max_question_chars)
        history = [clean_question(h, cfg.max_question_chars) for h in history if h and h.strip()]
        if not question or not re.search(r"\w", question):
            return Answer(question, "Please ask a question in words, e.g. “When are the talks?”", True)
        query = self.retrieval_query(question, history)
        timings: dict[str, float] = {}

        t = time.perf_counter()
        vectors = self.encoder.encode([question, query] if query != question else [question])
        question_vector, query_vector = vectors[0], vectors[-1]
        timings["embed_ms"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        r = self.settings.retrieval
        passages = retrieve(self.index, query, query_vector, top_k=r.top_k, candidates=r.candidates,
                            rrf_k=r.rrf_k, dense_weight=r.dense_weight)
        timings["retrieve_ms"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        weights = keyword_weights(self.index, question)
        if query != question:
            for term, weight in keyword_weights(self.index, history[-1]).items():
                weights.setdefault(term, 0.5 * weight)
        ranked = score_sentences(self.index, passages, question_vector, weights, self._sentence_vectors)
        missing_names = [t for t in key_terms(query) if self.index.keyword.document_frequency(t) == 0]
        best = ranked[0] if ranked else None
        best_passage = max((p.dense for p in passages), default=0.0)
        abstain = (
            best is None
            or best_passage < cfg.min_passage_score
            or best.dense < cfg.min_sentence_score and best.keyword < cfg.min_keyword_share
            or bool(missing_names)
        )
        timings["select_ms"] = (time.perf_counter() - t) * 1000

        if abstain:
            citations: tuple[Citation, ...] = ()
            if cfg.show_nearest_on_abstain and passages and not missing_names:
                citations = (self._citation(passages[0], ""),)
            timings["total_ms"] = (time.perf_counter() - started) * 1000
            log.debug("abstained on %r (passage %.3f, sentence %.3f, missing %s)", question,
                      best_passage, best.dense if best else 0.0, missing_names)
            return Answer(question, ABSTAIN_TEXT, True, citations, None, timings)

        chosen = choose_sentences(best, ranked, cfg.max_sentences)
        quote_by_row: dict[int, list[str]] = {}
        for item in chosen:
            row, sentence = ((item.passage.row, item.text) if isinstance(item, ScoredSentence)
                             else (best.passage.row, item[1]))
            quote_by_row.setdefault(row, []).append(sentence)
        text = " ".join(" ".join(parts) for parts in quote_by_row.values())
        citations = tuple(self._citation(p, " ".join(quote_by_row.get(p.row, []))) for p in
                          sorted(passages, key=lambda p: p.row not in quote_by_row)[: r.top_k])
        focus = find_focus(question, text, best_text=best.text)
        timings["total_ms"] = (time.perf_counter() - started) * 1000
        return Answer(question, text, False, citations, focus, timings)

    def _citation(self, passage, quote: str) -> Citation:
        chunk = passage.hit.chunk
        info = self.index.document(chunk.doc_id)
        return Citation(info.title, info.source, info.url, chunk.chunk_id, chunk.text, passage.dense, quote)
