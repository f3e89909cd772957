"""Keyword search over chunk texts with bm25s (BM25 on sparse matrices), stemmed with Snowball."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

# English function words, question words and auxiliaries: they carry no topic, and leaving them in
# makes "which" or "did" look like rare, decisive keywords.
STOPWORDS = frozenset("""
a about above after again against all almost also am among an and any are aren't as at be because
been before being below between both but by can cannot could couldn't did didn't do does doesn't
doing don't down during each either else ever few for from further get gets got had hadn't has
hasn't have haven't having he he'd he'll he's her here here's hers herself him himself his how
how's however i i'd i'll i'm i've if in into is isn't it it's its itself just let's may me might
more most much must mustn't my myself neither no nor not of off often on once only or other ought
our ours ourselves out over own perhaps please quite rather really same shall shan't she she'd
she'll she's should shouldn't since so some such than that that's the their theirs them themselves
then there there's these they they'd they'll they're they've this those though through thus to too
under until up upon us very was wasn't we we'd we'll we're we've were weren't what what's whatever
when when's whenever where where's whereas wherever whether which while who who's whoever whom
whose why why's will with within without won't would wouldn't yet you you'd you'll you're you've
your yours yourself yourselves
""".split())
# Words that frame a question rather than say what it is about.
QUESTION_STOPWORDS = STOPWORDS | frozenset(
    "tell give gave given name list describe explain mention mentioned according article articles "
    "text document documents passage kind type sort".split())


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _bm25s():
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def tokenize(texts: Sequence[str], stopwords: frozenset[str] = STOPWORDS) -> list[list[str]]:
    """Lower-cased, stop-word-free, stemmed tokens, the same way for chunks and questions."""
    return _bm25s().tokenize(list(texts), stopwords=list(stopwords), stemmer=_stemmer(),
                             return_ids=False, show_progress=False)


def question_terms(question: str) -> list[str]:
    """The keywords of a question: its tokens less the words that only frame it."""
    return tokenize([question], QUESTION_STOPWORDS)[0]


class KeywordIndex:
    """A BM25 index whose rows are the rows of the dense index (row i = chunk i)."""

    def __init__(self, retriever=None, size: int = 0) -> None:
        self._retriever = retriever
        self.size = size

    @classmethod
    def build(cls, texts: Sequence[str]) -> "KeywordIndex":
        if not texts:
            return cls(None, 0)
        retriever = _bm25s().BM25()
        retriever.index(tokenize(texts), show_progress=False)
        return cls(retriever, len(texts))

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the best `k` chunks; rows with score 0 are left out."""
        if self._retriever is None or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        tokens = [question_terms(query)]
        if not tokens[0]:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        rows, scores = self._retriever.retrieve(tokens, k=min(k, self.size), show_progress=False,
                                                n_threads=1)
        keep = scores[0] > 0
        return rows[0][keep].astype(np.int64), scores[0][keep].astype(np.float32)

    def vocabulary(self) -> list[str]:
        """Every (stemmed) term in the index, sorted."""
        return sorted(self._retriever.vocab_dict) if self._retriever is not None else []

    def document_frequency(self, term: str) -> int:
        """How many chunks contain the (stemmed) term."""
        if self._retriever is None:
            return 0
        term_id = self._retriever.vocab_dict.get(term)
        if term_id is None:
            return 0
        indptr = self._retriever.scores["indptr"]
        return int(indptr[term_id + 1] - indptr[term_id])

    def save(self, directory: Path) -> None:
        if self._retriever is not None:
            self._retriever.save(str(directory), show_progress=False)

    @classmethod
    def load(cls, directory: Path, size: int) -> "KeywordIndex":
        if size == 0:
            return cls(None, 0)
        retriever = _bm25s().BM25.load(str(directory), show_progress=False, verbosity=0)
        return cls(retriever, size)
