"""Pick the sentences that answer a question from the retrieved passages.

Each sentence is scored by its cosine similarity to the question (the sentence embedded after its
document's title, as chunks are), the share of the question's keywords it contains (weighted by
how rare they are in the index), and the rank of its passage.
The best sentence is the answer; a neighbour joins it when it completes the thought.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from embeddings.index import Index
from embeddings.keyword import question_terms, tokenize

from .retrieval import Passage

# A sentence that opens like this leans on the one before it.
_CONTINUES = re.compile(
    r"^(?:\"|'|he|she|it|they|this|that|these|those|but|however|although|though|yet|so|also|"
    r"and|or|which|as a result|in addition|still)\b", re.IGNORECASE)


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
    of popular passages are embedded and tokenized once.
    """

    def __init__(self, encode: Callable[[Sequence[str]], np.ndarray], max_entries: int = 50_000) -> None:
        self._encode = encode
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._tokens: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._cache)

    def get(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
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
        """Stemmed keyword sets of `texts` (the BM25 tokenizer's), cached."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._tokens))
        if missing:
            found = [frozenset(t) for t in tokenize(missing)]
            with self._lock:
                self._tokens.update(zip(missing, found))
                while len(self._tokens) > self._max:
                    self._tokens.popitem(last=False)
        with self._lock:
            return [self._tokens.get(t) or frozenset(tokenize([t])[0]) for t in texts]


def sentence_embedding_text(title: str, sentence: str) -> str:
    """What the encoder sees for a sentence (the chunk rule: title, newline, text)."""
    return Index.embedding_text(title, sentence)


def keyword_weights(index: Index, question: str) -> dict[str, float]:
    """Question keywords (stemmed) with their inverse document frequency in the index."""
    n = max(len(index), 1)
    weights: dict[str, float] = {}
    for term in question_terms(question):
        df = index.keyword.document_frequency(term)
        weights[term] = math.log(1 + n / (df + 0.5))
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
                    dense_weight: float = 0.6, keyword_weight: float = 0.4,
                    rank_weight: float = 0.05) -> list[ScoredSentence]:
    """Every sentence of the passages, scored, best first.

    score = dense_weight * cosine(question, title + sentence)
          + keyword_weight * (idf-weighted share of the question's keywords in the sentence)
          + rank_weight / (1 + rank of its passage)
    """
    items = sentence_items(index, passages)
    if not items:
        return []
    titles = {p.hit.chunk.doc_id: index.document(p.hit.chunk.doc_id).title for p, _, _ in items}
    sims = vectors.get([sentence_embedding_text(titles[p.hit.chunk.doc_id], text) for p, _, text in items]) \
        @ np.asarray(question_vector, dtype=np.float32).reshape(-1)
    token_sets = vectors.tokens([text for _, _, text in items])
    total_weight = sum(weights.values()) or 1.0
    scored = []
    for (passage, i, text), sim, terms in zip(items, sims, token_sets):
        overlap = sum(w for term, w in weights.items() if term in terms) / total_weight
        score = dense_weight * float(sim) + keyword_weight * overlap + rank_weight / (1 + passage.rank)
        scored.append(ScoredSentence(passage, i, text, float(sim), overlap, score))
    scored.sort(key=lambda s: -s.score)
    return scored


_PRONOUN = re.compile(r"\b(?:he|she|they|him|his|her|their|them)\b", re.IGNORECASE)


def choose_sentences(best: ScoredSentence, ranked: Sequence[ScoredSentence],
                     max_sentences: int) -> list[ScoredSentence | tuple[int, str]]:
    """The best sentence plus, at most, one that completes or matches it, in reading order.

    The second sentence is, in this order of preference:
    - the one before, when the best one leans on it (opens with "But"/a quote, or says "he"/"they",
      so the reader needs the sentence naming who speaks);
    - the one after, when it continues the best one;
    - a sentence elsewhere that holds as many of the question's keywords and scores nearly as well:
      the text answers in two places, and the user should see both.
    Returns (sentence number within the best chunk, text) pairs, or a ScoredSentence from elsewhere.
    """
    chunk = best.passage.hit.chunk
    texts = chunk.sentence_texts()

    def same_paragraph(first: int, second: int) -> bool:
        # A sentence across a paragraph break starts another thought; it completes nothing.
        return "\n" not in chunk.text[chunk.sentences[first][1]:chunk.sentences[second][0]]

    if max_sentences < 2:
        return [(best.index, best.text)]
    if (best.index > 0 and same_paragraph(best.index - 1, best.index)
            and (_CONTINUES.match(best.text) or _PRONOUN.search(best.text))):
        return [(best.index - 1, texts[best.index - 1]), (best.index, best.text)]
    if (best.index + 1 < len(texts) and same_paragraph(best.index, best.index + 1)
            and _CONTINUES.match(texts[best.index + 1])):
        return [(best.index, best.text), (best.index + 1, texts[best.index + 1])]
    for other in ranked[1:4]:
        if other.keyword >= best.keyword > 0 and other.score >= 0.7 * best.score:
            if other.passage.row == best.passage.row:
                pair = sorted([(best.index, best.text), (other.index, other.text)])
                return pair
            return [(best.index, best.text), other]
    return [(best.index, best.text)]
