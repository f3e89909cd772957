"""The keyword statistics of a Milvus-backed index, without a bm25s matrix in the bot's RAM.

Milvus scores BM25 itself (embeddings/milvus.py), but the answer step also asks, per question
term, how many chunks hold it (idf), whether the index knows it, its accented stored forms, and,
for a name the index does not know, whether some word shares its first NAME_PREFIX letters or is
one letter off it. Milvus has no term dictionary to enumerate, and its per-term count (a
`TEXT_MATCH` filter with `count(*)`) took about 0.6 s a term on milvus-lite 3.2.2 at 20,000
entities (docs/scale-out.md, "Scale-out"), too slow for the dozen look-ups of a question. So a version
folder holds a small term table instead (`keywords/`, checksummed like every file):

- ``hashes.npy`` / ``df.npy``: each stored term's 64-bit hash, sorted, and its document frequency;
- ``prefixes.npy`` / ``deletions.npy``: hashes of every word's first NAME_PREFIX letters and of
  every word less one letter (the judge's `NameLookup` sets, precomputed);
- ``forms.json``: folded term -> its accented stored forms (the non-ASCII share of the vocabulary);
- ``terms.tsv``: term and document frequency in text, read only by an ingest that changes the index.

The bot memory-maps the arrays (pages are read on demand and shared between processes) and never
reads ``terms.tsv``. The numbers equal bm25s's: the same tokens (`keyword.tokenize`), counted once
a chunk.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .keyword import IDF_SMOOTHING, NAME_PREFIX, folded_forms, question_terms

DIRECTORY = "keywords"
FILES = ("hashes.npy", "df.npy", "prefixes.npy", "deletions.npy", "forms.json", "terms.tsv")


def term_hash(term: str) -> int:
    """A stable 64-bit hash of a term (Python's `hash` changes from process to process)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=8).digest(), "little")


def _hashes(terms: Iterable[str]) -> np.ndarray:
    return np.unique(np.fromiter((term_hash(t) for t in terms), dtype=np.uint64))


def _contains(table: np.ndarray, term: str) -> bool:
    h = np.uint64(term_hash(term))
    at = int(np.searchsorted(table, h))
    return at < len(table) and table[at] == h


class TermStatistics:
    """What `KeywordIndex` tells the answer step (`size`, `idf`, `document_frequency`, `forms`,
    `query_tokens`), plus `has_prefix` and `is_deletion` for the judge's name look-up.

    Read from a version's term table; an ingest that changes the index loads the full counts
    (`terms.tsv`) once and keeps them up to date (`update`) until the next save.
    """

    def __init__(self, size: int = 0, directory: Path | None = None) -> None:
        self.size = size
        self._directory = directory
        self._counts: Counter[str] | None = None if directory is not None else Counter()
        self._tables: dict[str, np.ndarray] = {}
        self._forms: dict[str, tuple[str, ...]] | None = None
        # While counts change: forms, vocabulary, deletions (each its own type, hence Any).
        self._derived: dict[str, Any] = {}

    @classmethod
    def load(cls, directory: Path, size: int) -> "TermStatistics":
        stats = cls(size, directory)
        for name in ("hashes", "df", "prefixes", "deletions"):
            stats._tables[name] = np.load(directory / f"{name}.npy", mmap_mode="r")
        if len(stats._tables["hashes"]) != len(stats._tables["df"]):
            raise ValueError("term table: hashes and frequencies differ in length")
        raw = json.loads((directory / "forms.json").read_text(encoding="utf-8"))
        stats._forms = {k: tuple(v) for k, v in raw.items()}
        return stats

    # --- the answer step's questions -----------------------------------------------------------

    def _stored_frequency(self, term: str) -> int:
        if self._counts is not None:
            return self._counts.get(term, 0)
        hashes = self._tables["hashes"]
        h = np.uint64(term_hash(term))
        at = int(np.searchsorted(hashes, h))
        return int(self._tables["df"][at]) if at < len(hashes) and hashes[at] == h else 0

    def _all_forms(self) -> dict[str, tuple[str, ...]]:
        if self._counts is not None:  # being changed: from the counts (an ingest, not the bot)
            if "forms" not in self._derived:
                self._derived["forms"] = folded_forms(t for t, n in self._counts.items() if n > 0)
            return self._derived["forms"]
        return self._forms or {}

    def forms(self, term: str) -> tuple[str, ...]:
        """The stored terms a folded (question-side) term matches: itself and its accented forms."""
        return (term, *self._all_forms().get(term, ()))

    def query_tokens(self, query: str) -> list[str]:
        """The stored terms a question searches for: its keywords and their accented forms."""
        folded = self._all_forms()
        return [form for term in question_terms(query) for form in (term, *folded.get(term, ()))]

    def document_frequency(self, term: str) -> int:
        """How many chunks hold the term, or for a folded term its most frequent accented form."""
        forms = self._all_forms().get(term)
        if forms:
            return max(self._stored_frequency(t) for t in (term, *forms))
        return self._stored_frequency(term)

    def idf(self, term: str, *, min_frequency: int = 0) -> float:
        """log(1 + chunks / (document frequency + 0.5)), the idf of `KeywordIndex.idf`."""
        frequency = max(self.document_frequency(term), min_frequency)
        return math.log(1 + max(self.size, 1) / (frequency + IDF_SMOOTHING))

    def has_prefix(self, prefix: str) -> bool:
        """Whether some word of the vocabulary starts with `prefix` (NAME_PREFIX letters)."""
        if self._counts is not None:
            words = self.vocabulary()
            at = bisect.bisect_left(words, prefix)
            return at < len(words) and words[at].startswith(prefix)
        return _contains(self._tables["prefixes"], prefix)

    def is_deletion(self, word: str) -> bool:
        """Whether `word` is some vocabulary word (of NAME_PREFIX - 1 letters or more) less one letter."""
        if self._counts is not None:
            if "deletions" not in self._derived:
                self._derived["deletions"] = _deletions(self.vocabulary())
            return word in self._derived["deletions"]
        return _contains(self._tables["deletions"], word)

    def vocabulary(self) -> list[str]:
        """Every stored term with the folded form of accented ones, sorted: from the counts, so
        only for an index being changed (the bot uses `has_prefix` and `is_deletion`)."""
        if "vocabulary" not in self._derived:
            terms = {t for t, n in self._load_counts().items() if n > 0}
            self._derived["vocabulary"] = sorted(terms | set(folded_forms(terms)))
        return self._derived["vocabulary"]

    # --- changing and saving -------------------------------------------------------------------

    def _load_counts(self) -> Counter[str]:
        if self._counts is None:
            assert self._directory is not None, "a new table has counts; only a loaded one reads them"
            counts: Counter[str] = Counter()
            with (self._directory / "terms.tsv").open(encoding="utf-8") as handle:
                for line in handle:
                    term, _, n = line.rstrip("\n").rpartition("\t")
                    counts[term] = int(n)
            self._counts = counts
        return self._counts

    def update(self, added: Sequence[Sequence[str]], removed: Sequence[Sequence[str]], size: int) -> None:
        """Count the BM25 tokens of added chunks in and those of removed chunks out."""
        counts = self._load_counts()
        for tokens in removed:
            counts.subtract(set(tokens))
        for tokens in added:
            counts.update(set(tokens))
        self.size = size
        self._derived.clear()

    def save(self, directory: Path) -> None:
        directory.mkdir()
        counts = self._load_counts()
        terms = sorted(t for t, n in counts.items() if n > 0)
        hashes = np.fromiter((term_hash(t) for t in terms), dtype=np.uint64, count=len(terms))
        order = np.argsort(hashes, kind="stable")
        np.save(directory / "hashes.npy", hashes[order])
        np.save(directory / "df.npy", np.asarray([counts[t] for t in terms], dtype=np.int32)[order])
        words = self.vocabulary()
        np.save(directory / "prefixes.npy", _hashes(w[:NAME_PREFIX] for w in words if len(w) >= NAME_PREFIX))
        np.save(directory / "deletions.npy", _hashes(_deletions(words)))
        (directory / "forms.json").write_text(json.dumps(folded_forms(terms), ensure_ascii=False), encoding="utf-8")
        with (directory / "terms.tsv").open("w", encoding="utf-8") as handle:
            for term in terms:
                handle.write(f"{term}\t{counts[term]}\n")


def _deletions(words: Iterable[str]) -> set[str]:
    """Every word of NAME_PREFIX - 1 letters or more less one letter (the judge's one-typo set)."""
    return {w[:i] + w[i + 1:] for w in words if len(w) >= NAME_PREFIX - 1 for i in range(len(w))}
