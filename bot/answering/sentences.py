"""Step 3, read: score every sentence of the retrieved passages as the answer to the question.

Each sentence is scored by its cosine similarity to the question (the sentence embedded after its
document's title, as chunks are), the share of the question's keywords it contains (weighted by
how rare they are in the index), and the rank of its passage. `SentenceScorer` is the seam: a
trained reader model can rank the same candidates instead of `WeightedSentenceScorer`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np

from embeddings.index import Index
from embeddings.keyword import question_terms, tokenize
from embeddings.sentence_store import SentenceStore

from ..settings import AnswerSettings
from . import irregular
from .question import Question
from .retrieval import Passage

# Sentences (and keyword sets) kept in each cache: at most about 77 MB of 384-dimension float32
# vectors. A memory bound set by hand in the first version (6b88aee); never measured.
SENTENCE_CACHE_ENTRIES = 50_000
# Sentences per encoder call when embedding on demand (the encoders' own default batch).
ENCODE_BATCH = 32
# A follow-up's subject counts, but less than the question's own words: the subject's keywords
# not in the question get this share of their idf weight. Set by hand in the first version
# (6b88aee); never measured (the SQuAD evaluation has no follow-ups).
FOLLOW_UP_SUBJECT_WEIGHT = 0.5


@dataclass(frozen=True)
class ScoredSentence:
    passage: Passage
    index: int  # sentence number within the passage's chunk
    text: str
    dense: float
    keyword: float  # idf-weighted share of question keywords present, 0..1
    score: float


class SentenceVectors:
    """Bounded caches of sentence embeddings and sentence keyword sets.

    A sentence is embedded with its document's title before it ("Apollo program\n<sentence>"),
    as chunks are: the title gives a short sentence its topic, and on the SQuAD evaluation set
    this puts the answering sentence first more often than the bare sentence does. The sentences
    of popular passages are embedded and tokenized once. An index that stored its sentence vectors
    at ingest (`Index.sentences`) is read from instead: those are not embedded nor cached here.
    """

    def __init__(self, encode: Callable[[Sequence[str]], np.ndarray],
                 max_entries: int = SENTENCE_CACHE_ENTRIES) -> None:
        self._encode = encode
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._tokens: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._cache)

    def get(self, texts: Sequence[str], batch_size: int = ENCODE_BATCH,
            stored: SentenceStore | None = None) -> np.ndarray:
        """Embeddings of `texts` (rows in order): from `stored` where it has them, else from the
        cache, encoding only those in neither."""
        if stored is not None and texts:
            found, vectors = stored.lookup(texts)
            if not found.all():
                vectors[~found] = self.get([t for t, f in zip(texts, found) if not f], batch_size)
            return vectors
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            missing.sort(key=len)  # similar lengths batch with less padding
            vectors = np.vstack([self._encode(missing[i:i + batch_size])
                                 for i in range(0, len(missing), batch_size)])
            with self._lock:
                for text, vector in zip(missing, vectors):
                    self._cache[text] = vector
                while len(self._cache) > self._max:
                    self._cache.popitem(last=False)
        with self._lock:
            out = []
            for text in texts:
                vector = self._cache.get(text)
                if vector is None:  # evicted meanwhile by another thread
                    vector = self._encode([text])[0]
                else:
                    self._cache.move_to_end(text)
                out.append(vector)
        return np.vstack(out) if out else np.zeros((0, 0), dtype=np.float32)

    def tokens(self, texts: Sequence[str]) -> list[frozenset[str]]:
        """Stemmed keyword sets of `texts` (the BM25 tokenizer's, with the lemma stems of irregular
        forms: irregular.py), cached."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._tokens))
        if missing:
            found = [irregular.with_lemmas(t) for t in tokenize(missing)]
            with self._lock:
                self._tokens.update(zip(missing, found))
                while len(self._tokens) > self._max:
                    self._tokens.popitem(last=False)
        with self._lock:
            return [self._tokens.get(t) or irregular.with_lemmas(tokenize([t])[0]) for t in texts]


def sentence_embedding_text(title: str, sentence: str) -> str:
    """What the encoder sees for a sentence (the chunk rule: title, newline, text)."""
    return Index.embedding_text(title, sentence)


def keyword_weights(index: Index, question: str) -> dict[str, float]:
    """Question keywords (stemmed) with their inverse document frequency in the index."""
    return {term: irregular.idf(index.keyword, term) for term in question_terms(question)}


def question_weights(index: Index, question: Question) -> dict[str, float]:
    """The keywords a sentence is scored on: the question's, plus a follow-up's subject at
    FOLLOW_UP_SUBJECT_WEIGHT of their weight."""
    weights = keyword_weights(index, question.text)
    if question.follow_up:
        for term, weight in keyword_weights(index, question.query).items():
            weights.setdefault(term, FOLLOW_UP_SUBJECT_WEIGHT * weight)
    return weights


def sentence_items(index: Index, passages: Sequence[Passage]) -> list[tuple[Passage, int, str]]:
    """(passage, sentence number, text) for every sentence of the passages, a sentence repeated by
    chunk overlap only once (with the better-ranked passage)."""
    items: list[tuple[Passage, int, str]] = []
    seen: set[tuple[str, int]] = set()
    for passage in passages:
        chunk = passage.hit.chunk
        for i, (a, b) in enumerate(chunk.sentences):
            key = (chunk.doc_id, chunk.start + a)
            if key in seen:
                continue
            seen.add(key)
            items.append((passage, i, chunk.text[a:b]))
    return items


def score_sentences(index: Index, passages: Sequence[Passage], question_vector: np.ndarray,
                    weights: dict[str, float], vectors: SentenceVectors, *,
                    dense_weight: float, keyword_weight: float, rank_weight: float) -> list[ScoredSentence]:
    """Every sentence of the passages, scored, best first.

    score = dense_weight * cosine(question, title + sentence)
          + keyword_weight * (idf-weighted share of the question's keywords in the sentence)
          + rank_weight / (1 + rank of its passage)
    """
    items = sentence_items(index, passages)
    if not items:
        return []
    titles = {p.hit.chunk.doc_id: index.document(p.hit.chunk.doc_id).title for p, _, _ in items}
    sims = vectors.get([sentence_embedding_text(titles[p.hit.chunk.doc_id], text) for p, _, text in items],
                       stored=index.sentences) @ np.asarray(question_vector, dtype=np.float32).reshape(-1)
    token_sets = vectors.tokens([text for _, _, text in items])
    total_weight = sum(weights.values()) or 1.0
    scored = []
    for (passage, i, text), sim, terms in zip(items, sims, token_sets):
        overlap = sum(w for term, w in weights.items() if term in terms) / total_weight
        score = dense_weight * float(sim) + keyword_weight * overlap + rank_weight / (1 + passage.rank)
        scored.append(ScoredSentence(passage, i, text, float(sim), overlap, score))
    scored.sort(key=lambda s: -s.score)
    return scored


class SentenceScorer(Protocol):
    """The read step: every candidate sentence of the passages, best answer first."""

    def score(self, question: Question, vector: np.ndarray,
              passages: Sequence[Passage]) -> list[ScoredSentence]: ...


class WeightedSentenceScorer:
    """The rule-based reader: cosine, idf-weighted keyword share and passage rank, weighted by
    ``[answer] sentence_*_weight``."""

    def __init__(self, index: Index, vectors: SentenceVectors, cfg: AnswerSettings) -> None:
        self.index = index
        self.vectors = vectors
        self.cfg = cfg

    def score(self, question: Question, vector: np.ndarray,
              passages: Sequence[Passage]) -> list[ScoredSentence]:
        """`vector` embeds `question.judged_text` (a follow-up with its subject)."""
        return score_sentences(self.index, passages, vector, question_weights(self.index, question),
                               self.vectors, dense_weight=self.cfg.sentence_dense_weight,
                               keyword_weight=self.cfg.sentence_keyword_weight,
                               rank_weight=self.cfg.sentence_rank_weight)
