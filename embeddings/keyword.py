"""Keyword search over chunk texts with bm25s (BM25 on sparse matrices), stemmed with Snowball."""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

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


# BM25's idf smoothing (Robertson-Spärck Jones, as Lucene and bm25s write it): log(1 + N / (df + 0.5)).
# A standard form, not tuned here.
IDF_SMOOTHING = 0.5
# A name the judge looks up is known when a vocabulary word shares its first NAME_PREFIX letters
# (bot/answering/judge.py, `NameLookup`); here so the Milvus term table can precompute the look-up.
NAME_PREFIX = 5
_WORD = re.compile(r"\w+")


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def fold_accents(text: str) -> str:
    """`text` without accents (NFKD, combining marks dropped): "Hervé" -> "Herve", "Céloron" ->
    "Celoron", so a name typed without its accents still matches.

    Folding happens at comparison time only: questions, sentence keyword sets and `stems` fold,
    while the tokens stored in a BM25 index keep their accents (`KeywordIndex.build`), and the
    index maps a folded term onto its accented forms (`KeywordIndex.forms`). So indexes built
    before folding existed stay valid: no format change, no forced `--rebuild`."""
    if text.isascii():
        return text
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """The Snowball stem of one word, lower-cased and accent-folded: the form the keyword index stores.
    Remembered: the answer step stems the same sentence words question after question."""
    return _stemmer().stemWord(fold_accents(word.lower()))


def stems(text: str) -> set[str]:
    """Stems of every word of `text`, stop words included (callers compare with keyword sets)."""
    return {stem(w) for w in _WORD.findall(text)}


@lru_cache(maxsize=1)
def _bm25s():
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


# bm25s's default token pattern (scikit-learn's CountVectorizer): words of two characters or more.
TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")


def tokenize(texts: Sequence[str], stopwords: frozenset[str] = STOPWORDS, *,
             fold: bool = True) -> list[list[str]]:
    """Lower-cased, stop-word-free, stemmed tokens, the same way for chunks and questions;
    accent-folded unless `fold` is False (the tokens a BM25 index stores, see `fold_accents`).

    Exactly `bm25s.tokenize(texts, stopwords=..., stemmer=..., return_ids=False)` (its token
    pattern, lower-casing, stop words before stemming; tests/test_keyword_tokens.py compares the
    two), written out because the answer step tokenizes on every question: bm25s rebuilds the stop
    word set for each text and opens three progress bars a call (about 0.3 ms a call, and its
    first call imports multiprocessing), and importing it pulls in scipy.sparse."""
    stem_words = _stemmer().stemWords
    out = []
    for text in texts:
        if fold:
            text = fold_accents(text)
        out.append(stem_words([w for w in TOKEN_PATTERN.findall(text.lower()) if w not in stopwords]))
    return out


def question_terms(question: str) -> list[str]:
    """The keywords of a question: its tokens less the words that only frame it (a new list each
    call; the tokens are remembered, as every step of an answer asks for them)."""
    return list(_question_terms(question))


@lru_cache(maxsize=1024)
def _question_terms(question: str) -> tuple[str, ...]:
    return tuple(tokenize([question], QUESTION_STOPWORDS)[0])


def folded_forms(terms: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Folded stem -> the accented stored terms it stands for ("herv" -> ("hervé",)), sorted;
    from the non-ASCII terms only (a small share of a vocabulary). `KeywordIndex` and the Milvus
    term table (term_stats.py) both use this one, so their forms agree."""
    folded: dict[str, list[str]] = {}
    for term in terms:
        if not term.isascii():
            key = stem(term)
            if key != term:
                folded.setdefault(key, []).append(term)
    return {k: tuple(sorted(v)) for k, v in folded.items()}

# The files of bm25s's saved index that searching needs (BM25.save writes them; params and vocab
# are JSON). BM25 scores are precomputed per (term, chunk) in a CSC matrix: a term's column lists
# the chunks holding it and their score contributions.
BM25_FILES = {"data": "data.csc.index.npy", "indices": "indices.csc.index.npy", "indptr": "indptr.csc.index.npy"}
BM25_VOCAB = "vocab.index.json"
BM25_PARAMS = "params.index.json"


class KeywordIndex:
    """A BM25 index whose rows are the rows of the dense index (row i = chunk i).

    bm25s builds and saves it (ingest). Searching reads bm25s's saved matrix directly and scores
    it with bm25s's own arithmetic (`BM25._compute_relevance_from_scores`, then its numpy top-k),
    so a question needs neither bm25s nor the scipy.sparse it imports: about a tenth of a cold
    `qabot ask`, and a thread pool and progress bar a call in `BM25.retrieve`. Results are the
    same to the bit (tests/test_keyword_tokens.py compares them with `BM25.retrieve`).
    """

    def __init__(self, retriever=None, size: int = 0, matrix: dict | None = None) -> None:
        self._retriever = retriever  # the bm25s index, when built in this process (to save it)
        self.size = size
        self._folded: dict[str, tuple[str, ...]] | None = None
        self._source: Path | None = None  # the directory it was loaded from
        if matrix is None and retriever is not None:
            matrix = {**{k: retriever.scores[k] for k in BM25_FILES}, "vocab": retriever.vocab_dict}
        self._vocab: dict[str, int] = matrix["vocab"] if matrix else {}
        self._data = matrix["data"] if matrix else np.zeros(0, dtype=np.float32)
        self._indices = matrix["indices"] if matrix else np.zeros(0, dtype=np.int32)
        self._indptr = matrix["indptr"] if matrix else np.zeros(1, dtype=np.int32)

    @classmethod
    def build(cls, texts: Sequence[str]) -> "KeywordIndex":
        if not texts:
            return cls(None, 0)
        retriever = _bm25s().BM25()
        retriever.index(tokenize(texts, fold=False), show_progress=False)
        return cls(retriever, len(texts))

    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every chunk for these stored terms (bm25s's summation, in its order)."""
        columns = len(self._indptr) - 1
        ids = np.asarray([i for i in (self._vocab.get(t, columns) for t in tokens) if i < columns], dtype=np.int64)
        scores = np.zeros(self.size, dtype=np.float32)
        # A term's postings name each chunk once, so a plain indexed addition adds what np.add.at would.
        for start, end in zip(self._indptr[ids].tolist(), self._indptr[ids + 1].tolist()):
            scores[self._indices[start:end]] += self._data[start:end]
        return scores

    def search(self, query: str, k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the best `k` chunks; rows with score 0 are left out. With `rows`,
        only those are ranked (a collection's chunks), so all `k` can come from them."""
        if not self.size or k <= 0 or (rows is not None and not len(rows)):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        tokens = self.query_tokens(query)
        if not tokens:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores = self.scores(tokens)
        if rows is not None and len(rows) < self.size:
            kept = np.zeros_like(scores)
            kept[rows] = scores[rows]
            scores = kept
        k = min(k, self.size)
        # bm25s's numpy top-k (selection._topk_numpy, sorted): the same ties in the same order.
        partitioned = np.argpartition(scores, -k)[-k:]
        best = np.take(scores, partitioned)
        order = np.flip(np.argsort(best))
        rows, best = partitioned[order], best[order]
        keep = best > 0
        return rows[keep].astype(np.int64), best[keep].astype(np.float32)

    def query_tokens(self, query: str) -> list[str]:
        """The stored terms a question searches for: its keywords and their accented forms."""
        return [form for term in question_terms(query) for form in self.forms(term)]

    def _folded_forms(self) -> dict[str, tuple[str, ...]]:
        """`folded_forms` of the vocabulary, built once."""
        if self._folded is None:
            self._folded = folded_forms(self._vocab)
        return self._folded

    def forms(self, term: str) -> tuple[str, ...]:
        """The stored terms a folded (question-side) term matches: itself, plus the accented
        forms that fold to it."""
        return (term, *self._folded_forms().get(term, ()))

    def vocabulary(self) -> list[str]:
        """Every (stemmed) term in the index, with the folded form of accented ones, sorted."""
        return sorted(set(self._vocab) | set(self._folded_forms()))

    def document_frequency(self, term: str) -> int:
        """How many chunks contain the (stemmed) term, or, for a folded term, its most frequent
        accented form."""
        forms = self._folded_forms().get(term)
        if forms:
            return max(self._stored_frequency(t) for t in (term, *forms))
        return self._stored_frequency(term)

    def _stored_frequency(self, term: str) -> int:
        term_id = self._vocab.get(term)
        if term_id is None or term_id >= len(self._indptr) - 1:
            return 0
        return int(self._indptr[term_id + 1] - self._indptr[term_id])

    def idf(self, term: str, *, min_frequency: int = 0) -> float:
        """How telling a (stemmed) term is: log(1 + chunks / (document frequency + 0.5)), the one
        idf formula of qabot. `min_frequency=1` weighs a term no chunk holds like a term seen
        once: rare, hence telling."""
        frequency = max(self.document_frequency(term), min_frequency)
        return math.log(1 + max(self.size, 1) / (frequency + IDF_SMOOTHING))

    def save(self, directory: Path) -> None:
        if self._retriever is not None:
            self._retriever.save(str(directory), show_progress=False)
        elif self._source is not None:  # loaded, unchanged: the same files again
            for path in sorted(self._source.iterdir()):
                shutil.copyfile(path, directory / path.name)

    @classmethod
    def load(cls, directory: Path, size: int) -> "KeywordIndex":
        """The saved index, its matrix memory-mapped; bm25s itself is not imported. Raises
        ValueError (or OSError) on files that do not fit together."""
        if size == 0:
            return cls(None, 0)
        params = json.loads((directory / BM25_PARAMS).read_text(encoding="utf-8"))
        if params.get("method") != "lucene" or int(params.get("num_docs", -1)) != size:
            raise ValueError("not the BM25 index this qabot writes")
        # Plain ndarray views of the mappings: slicing a np.memmap costs a Python-level wrapper a slice.
        matrix: dict = {key: np.asarray(np.load(directory / name, mmap_mode="r")) for key, name in BM25_FILES.items()}
        matrix["vocab"] = json.loads((directory / BM25_VOCAB).read_text(encoding="utf-8"))
        # bm25s's vocabulary may end with "" (the token of an empty text), which has no column.
        if not 0 < len(matrix["indptr"]) <= len(matrix["vocab"]) + 1 or len(matrix["data"]) != len(matrix["indices"]):
            raise ValueError("BM25 matrix and vocabulary do not fit together")
        index = cls(None, size, matrix)
        index._source = directory
        return index
