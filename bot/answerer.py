"""The one `Answerer` behind every front end: question (+ conversation) in, quoted `Answer` out.

Steps: resolve a follow-up against the conversation, retrieve passages (hybrid dense + BM25),
score their sentences, decide whether the best one really answers (or abstain), quote it with a
completing neighbour, and highlight the words that answer the question's type.
"""

from __future__ import annotations

import bisect
import logging
import math
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from embeddings.encoders import Encoder, get_encoder
from embeddings.index import Index
from embeddings.keyword import question_terms, tokenize

from .answers import ABSTAIN_TEXT, Answer, Citation
from .focus import find_focus, question_type
from .retrieval import Passage, retrieve
from .selection import (ScoredSentence, SentenceVectors, choose_sentences, keyword_weights,
                        score_sentences, sentence_embedding_text)
from .settings import AnswerSettings, Settings, load_settings

log = logging.getLogger(__name__)

# Words that make a question lean on what was asked before ("and when are they?").
_FOLLOW_UP = re.compile(
    r"^\s*(?:and|also|what about|how about|but|so|then)\b|\b(?:he|him|his|she|her|they|them|their|"
    r"it|its|this|that|these|those|there)\b", re.IGNORECASE)
_QUESTION_WORDS = {"what", "who", "whom", "whose", "when", "where", "why", "which", "how", "is",
                   "are", "was", "were", "did", "does", "do", "can", "could", "would", "should",
                   "will", "has", "have", "had", "the", "a", "an", "in", "on", "of", "i", "and",
                   "tell", "give", "list", "name", "please", "according"}
# A name missing from the index still counts as present when a word of the index starts with
# its first this-many letters (other forms, typos at the end) or is one letter off. Shorter
# missing names (acronyms such as "SP", "NYC") lower confidence instead of vetoing an answer.
_NAME_PREFIX = 5
_SHORT_NAME = 3
# How many earlier questions a follow-up may reach back through to find its subject.
_HISTORY_REACH = 4


def clean_question(text: str, max_chars: int) -> str:
    """Printable, single-spaced, cut to the configured length before anything embeds it."""
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return re.sub(r"\s+", " ", text).strip()[:max_chars].strip()


def key_terms(question: str) -> list[str]:
    """Names in the question (capitalised words past the first): they must occur in the index."""
    if not re.search(r"[a-z]", question):
        return []  # SHOUTED QUESTIONS capitalise every word: no way to tell names
    words = re.findall(r"[A-Za-z][\w'’.-]*", question)
    names = [w.strip(".'’") for i, w in enumerate(words)
             if i > 0 and w[0].isupper() and w.lower().strip(".'’") not in _QUESTION_WORDS]
    return [t for t in tokenize([" ".join(names)])[0]] if names else []


def is_follow_up(question: str) -> bool:
    return bool(_FOLLOW_UP.search(question))


def resolve_follow_up(question: str, history: Sequence[str]) -> str:
    """The text to search with: a follow-up carries the subject of the conversation.

    The subject is the latest earlier question that was not itself a follow-up (so "and when are
    they?" then "where?" both lean on "What did Ryabkov say about the talks in Geneva?").
    """
    if not history or not is_follow_up(question):
        return question
    recent = list(history)[-_HISTORY_REACH:]
    anchor = next((h for h in reversed(recent) if not is_follow_up(h)), recent[-1])
    return f"{anchor} {question}"


@dataclass
class AnswerTrace:
    """What an answer was made from, for evaluation and debugging (`Answerer.ask(trace=...)`).

    `depth` asks for more ranked passages than the answer uses (the answer still uses the first
    `top_k`, exactly as without a trace).
    """

    depth: int = 0
    query: str = ""
    passages: list[Passage] = field(default_factory=list)
    sentences: list[ScoredSentence] = field(default_factory=list)
    best: ScoredSentence | None = None
    signals: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Signals:
    """The evidence an answer is judged on (all from the question, the index and the best hits)."""

    passage: float  # best passage's cosine similarity to the query
    sentence: float  # best sentence's cosine similarity to the question
    keyword: float  # idf-weighted share of the question's keywords in the best sentence
    known: float  # idf-weighted share of the question's keywords that occur anywhere in the index
    missing_names: tuple[str, ...]  # names in the question the index never mentions
    cover: float = 0.0  # idf-weighted share of the question's *known* keywords in the best sentence
    typed: float = 0.0  # 1: the best sentence holds a span of the question's type; -1: it holds none; 0: untyped

    def as_dict(self) -> dict[str, float]:
        return {"passage": self.passage, "sentence": self.sentence, "keyword": self.keyword,
                "known": self.known, "missing_names": float(len(self.missing_names)),
                "cover": self.cover, "typed": self.typed}


def confidence(s: Signals, cfg: AnswerSettings) -> float:
    """How sure the best sentence answers: its cosine to the question, raised by the share of the
    question's known keywords it holds, lowered by keywords and acronyms the index never saw."""
    short = sum(1 for name in s.missing_names if len(name) <= _SHORT_NAME)
    return (s.sentence + cfg.keyword_bonus * s.cover - cfg.unknown_penalty * (1.0 - s.known)
            - cfg.missing_name_penalty * min(short, 2))


def abstain_reasons(s: Signals, cfg: AnswerSettings) -> list[str]:
    """Why the best sentence should not be given as an answer ([] when it should)."""
    names = [name for name in s.missing_names if len(name) > _SHORT_NAME]
    if names:
        return [f"the index never mentions {', '.join(names)}"]
    if s.passage < cfg.min_passage_score:
        return [f"best passage similarity {s.passage:.2f} < {cfg.min_passage_score}"]
    sure = confidence(s, cfg)
    if sure >= cfg.min_sentence_score:
        return []
    # Lexical evidence: the sentence holds every keyword of the question that the index knows,
    # and a span of the asked type ("Which newspaper interviewed him?" -> "... with Izvestia"),
    # and the question names nothing the index lacks.
    if cfg.lexical_answers and s.cover >= 0.999 and s.typed > 0 and not s.missing_names:
        return []
    return [f"confidence {sure:.2f} < {cfg.min_sentence_score} (sentence {s.sentence:.2f}, "
            f"keywords {s.cover:.2f}, known {s.known:.2f}, missing {', '.join(s.missing_names) or '-'})"]


class Answerer:
    """Retrieves passages, selects and quotes the answering sentences, or declines.

    Thread-safe: the index is read-only once loaded and the encoder and caches guard themselves.
    """

    def __init__(self, index: Index, encoder: Encoder, settings: Settings,
                 sentence_vectors: SentenceVectors | None = None) -> None:
        self.index = index
        self.encoder = encoder
        self.settings = settings
        self._sentence_vectors = sentence_vectors or SentenceVectors(lambda texts: encoder.encode(texts))
        self._vocab: tuple[list[str], set[str]] | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None, index_dir: Path | None = None) -> "Answerer":
        settings = settings or load_settings()
        index = Index.load(index_dir or settings.paths.index, model_name=settings.model.model_name)
        encoder = get_encoder(settings.model.query_backend, settings.model.max_seq_length)
        return cls(index, encoder, settings)

    def warm(self, batch_size: int = 64, stop: "threading.Event | None" = None) -> int:
        """Embed every sentence of the index now (sorted by length, in big batches) instead of on
        first use; returns how many sentences there are. Optional: answers are the same.
        Setting `stop` ends it between batches, so a server can shut down promptly."""
        texts = [sentence_embedding_text(self.index.document(c.doc_id).title, t)
                 for c in self.index.chunks for t in c.sentence_texts()]
        step = batch_size * 8
        for i in range(0, len(texts), step):
            if stop is not None and stop.is_set():
                return i
            self._sentence_vectors.get(texts[i:i + step], batch_size=batch_size)
        self._sentence_vectors.tokens([t for c in self.index.chunks for t in c.sentence_texts()])
        return len(set(texts))

    def retrieval_query(self, question: str, history: Sequence[str]) -> str:
        """The text to search with: a follow-up carries the subject of the conversation."""
        return resolve_follow_up(question, history)

    def _vocabulary(self) -> tuple[list[str], set[str]]:
        """The index's keyword vocabulary, sorted (for prefix look-ups), and every form of its
        words with one letter deleted (for one-typo look-ups). Built once, on first need."""
        if self._vocab is None:
            words = self.index.keyword.vocabulary()
            deleted = {w[:i] + w[i + 1:] for w in words if len(w) >= _NAME_PREFIX - 1 for i in range(len(w))}
            self._vocab = (words, deleted)
        return self._vocab

    def _unknown_name(self, term: str) -> bool:
        """A name the index never mentions, not even in another form: "Saharan" matches "Sahara"
        (same first five letters), "Krugmen" matches "Krugman" and "Hollwood" "Hollywood" (one
        letter off)."""
        if self.index.keyword.document_frequency(term):
            return False
        if len(term) < _NAME_PREFIX:
            return True
        words, deleted = self._vocabulary()
        at = bisect.bisect_left(words, term[:_NAME_PREFIX])
        if at < len(words) and words[at].startswith(term[:_NAME_PREFIX]):
            return False
        # One letter missing, wrong or extra: the term, or it less one letter, is a vocabulary word
        # less one letter, or it less one letter is a vocabulary word.
        variants = {term[:i] + term[i + 1:] for i in range(len(term))}
        return term not in deleted and not (variants & deleted) and not any(
            self.index.keyword.document_frequency(v) for v in variants)

    def _signals(self, question: str, query: str, passages: Sequence[Passage],
                 best: ScoredSentence | None) -> Signals:
        keyword = self.index.keyword
        names = tuple(dict.fromkeys(t for t in key_terms(query) if self._unknown_name(t)))
        n = max(len(self.index), 1)
        terms = question_terms(question)
        # A term the index never saw gets the weight of a term seen once: rare, hence telling.
        weights = {t: math.log(1 + n / (keyword.document_frequency(t) + 0.5)) for t in terms}
        unseen = math.log(1 + n / 1.5)
        total = sum(weights.get(t, 0) if keyword.document_frequency(t) else unseen for t in set(terms))
        known_terms = {t: weights[t] for t in set(terms) if keyword.document_frequency(t)}
        known = sum(known_terms.values()) / total if total else 1.0
        cover = 0.0
        if best is not None and known_terms:
            present = self._sentence_vectors.tokens([best.text])[0]
            cover = sum(w for t, w in known_terms.items() if t in present) / sum(known_terms.values())
        kind = question_type(question)
        typed = 0.0 if kind is None else (1.0 if best is not None and find_focus(question, best.text) else -1.0)
        return Signals(
            cover=cover, typed=typed,
            passage=max((p.dense for p in passages), default=0.0),
            sentence=best.dense if best else 0.0,
            keyword=best.keyword if best else 0.0,
            known=known,
            missing_names=names)

    def ask(self, question: str, history: Sequence[str] = (), *, trace: AnswerTrace | None = None) -> Answer:
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
        depth = max(r.top_k, trace.depth if trace is not None else 0)
        ranked_passages = retrieve(self.index, query, query_vector, top_k=depth, candidates=r.candidates,
                                   rrf_k=r.rrf_k, dense_weight=r.dense_weight, mode=r.mode, fusion=r.fusion)
        passages = ranked_passages[: r.top_k]
        timings["retrieve_ms"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        weights = keyword_weights(self.index, question)
        if query != question:
            for term, weight in keyword_weights(self.index, query).items():
                weights.setdefault(term, 0.5 * weight)
        # A follow-up ("and when are they?") says little alone: its sentences are judged against
        # the question together with the subject it leans on.
        sentence_vector = query_vector if query != question else question_vector
        ranked = score_sentences(self.index, passages, sentence_vector, weights, self._sentence_vectors,
                                 dense_weight=cfg.sentence_dense_weight,
                                 keyword_weight=cfg.sentence_keyword_weight,
                                 rank_weight=cfg.sentence_rank_weight)
        best = ranked[0] if ranked else None
        signals = self._signals(question if query == question else query, query, passages, best)
        reasons = ["nothing retrieved"] if best is None else abstain_reasons(signals, cfg)
        timings["select_ms"] = (time.perf_counter() - t) * 1000
        if trace is not None:
            trace.query, trace.passages, trace.sentences, trace.best = query, ranked_passages, ranked, best
            trace.signals, trace.reasons = signals.as_dict(), reasons

        if reasons:
            citations: tuple[Citation, ...] = ()
            if cfg.show_nearest_on_abstain and passages and not reasons[0].startswith("the index never"):
                citations = (self._citation(passages[0], ""),)
            timings["total_ms"] = (time.perf_counter() - started) * 1000
            log.debug("abstained on %r: %s", question, "; ".join(reasons))
            return Answer(question, ABSTAIN_TEXT, True, citations, None, timings)

        assert best is not None
        chosen = choose_sentences(best, ranked, cfg.max_sentences)
        quote_by_row: dict[int, list[str]] = {}
        for item in chosen:
            row, sentence = ((item.passage.row, item.text) if isinstance(item, ScoredSentence)
                             else (best.passage.row, item[1]))
            quote_by_row.setdefault(row, []).append(sentence)
        text = " ".join(" ".join(parts) for parts in quote_by_row.values())
        citations = tuple(self._citation(p, " ".join(quote_by_row.get(p.row, []))) for p in
                          sorted(passages, key=lambda p: p.row not in quote_by_row)[: r.top_k])
        focus = find_focus(question, text, best_text=best.text, context=query if query != question else None)
        timings["total_ms"] = (time.perf_counter() - started) * 1000
        return Answer(question, text, False, citations, focus, timings)

    def _citation(self, passage, quote: str) -> Citation:
        chunk = passage.hit.chunk
        info = self.index.document(chunk.doc_id)
        return Citation(info.title, info.source, info.url, chunk.chunk_id, chunk.text, passage.dense, quote)
