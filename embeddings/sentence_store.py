"""Sentence vectors stored with an index version, so the answer step does not embed them again.

Ingest with ``chunk_vectors = "sentences"`` embeds every distinct sentence (after its document's
title) to pool chunk vectors; those vectors are exactly what the answer step scores a question
against, so they are kept here instead of being thrown away and recomputed on the first question
that reaches them. The folder ``sentences/`` of a version (FAISS or Milvus: it is local either way)
holds, checksummed by the manifest like every other file:

    vectors.npy     float32 (n, dimension), grouped by document; memory-mapped on load
    keys.npy        uint64, sorted: a 64-bit BLAKE2b hash of each embedded text
    rows.npy        int64: the row of `vectors` for each key (same order as keys.npy)
    documents.json  {doc_id: [first row, end row]} of each document's group

A sentence is looked up by the hash of the text the encoder saw, so the answer step needs no
chunk row or sentence number, and a vector is right for any chunk whose sentence has that text.
Two different texts share a 64-bit hash with probability about n^2 / 2^65 (1e-7 at a million
sentences). Each document's sentences are a group, so replacing or removing a document drops its
group; a text that two documents share is stored once for each.

Size: 1,536 B a sentence of the 384-d model plus 16 B of key and row; the ten SQuAD evaluation
articles hold about 2.3 sentences a chunk, so the index grows by about 3.5 KB a chunk.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    from .chunk_record import ChunkRecord

DIRECTORY = "sentences"
VECTORS = "vectors.npy"
KEYS = "keys.npy"
ROWS = "rows.npy"
GROUPS = "documents.json"
FILES = (VECTORS, KEYS, ROWS, GROUPS)
# Rows copied at a time from the previous version into the one being saved: bounded memory.
COPY_BLOCK_ROWS = 65_536


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """The 64-bit key of each text (BLAKE2b of its UTF-8 bytes): stable across processes."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest(), "little")
                        for t in texts), dtype=np.uint64, count=len(texts))


class SentenceStore:
    """The stored sentence vectors of one index: the saved version's (memory-mapped), minus the
    documents replaced or removed since, plus the groups added since (in memory until saved)."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self._vectors = np.zeros((0, dimension), dtype=np.float32)
        self._keys = np.zeros(0, dtype=np.uint64)
        self._rows = np.zeros(0, dtype=np.int64)
        self._groups: dict[str, tuple[int, int]] = {}  # of the saved version
        self._dropped: set[str] = set()
        self._added: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # doc_id -> (keys, vectors)
        self._pending: dict[int, np.ndarray] = {}  # key -> vector, of `_added`

    def __len__(self) -> int:
        kept = sum(end - start for doc, (start, end) in self._groups.items() if doc not in self._dropped)
        return kept + sum(len(keys) for keys, _ in self._added.values())

    # --- changes --------------------------------------------------------------------------

    def replace(self, gone: set[str] | frozenset[str], added: Mapping[str, tuple[Sequence[str], np.ndarray]]) -> None:
        """Drop the groups of the `gone` documents, then add `added` ({doc_id: (texts, vectors)})."""
        for doc_id in gone:
            self._dropped.add(doc_id)
            self._added.pop(doc_id, None)
        for doc_id, (texts, vectors) in added.items():
            keys = text_keys(texts)
            vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(keys), self.dimension)
            self._dropped.add(doc_id)  # a saved group of the same document is replaced
            self._added[doc_id] = (keys, vectors)
        self._pending = {int(k): v for keys, vectors in self._added.values() for k, v in zip(keys, vectors)}

    def keeper(self, replaced: set[str], chunks: Sequence["ChunkRecord"], inputs: Sequence[Sequence[str]]) -> "Keeper":
        """A callback for `pooled_sentence_vectors` (chunk_vectors.py): the `replaced` documents'
        groups give way to the sentence vectors it makes for the new `chunks` (each chunk's
        sentence `inputs`), grouped by document."""
        return Keeper(self, replaced, [c.doc_id for c in chunks], inputs)

    # --- look-up --------------------------------------------------------------------------

    def lookup(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(found, vectors): which texts have a stored vector, and their vectors (zero rows where
        not found). A vector of a dropped document is still the right one for its text."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        found = np.zeros(len(texts), dtype=bool)
        if not len(texts):
            return found, out
        keys = text_keys(texts)
        if len(self._keys):
            at = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
            found = self._keys[at] == keys
            if found.any():
                out[found] = self._vectors[self._rows[at[found]]]
        if self._pending:
            for i in np.flatnonzero(~found):
                vector = self._pending.get(int(keys[i]))
                if vector is not None:
                    out[i], found[i] = vector, True
        return found, out

    # --- persistence ----------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the groups kept from the saved version, then the added ones, into `directory`
        (created), copying the old vectors a block at a time."""
        directory.mkdir()
        kept = [(doc, span) for doc, span in self._groups.items() if doc not in self._dropped]
        total = sum(end - start for _, (start, end) in kept) + sum(len(k) for k, _ in self._added.values())
        vectors = np.lib.format.open_memmap(directory / VECTORS, mode="w+", dtype=np.float32,
                                            shape=(total, self.dimension))
        keys = np.empty(total, dtype=np.uint64)
        groups: dict[str, list[int]] = {}
        saved_keys = np.empty(len(self._rows), dtype=np.uint64)  # the saved keys in row order
        saved_keys[self._rows] = self._keys
        row = 0
        for doc, (start, end) in kept:
            groups[doc] = [row, row + end - start]
            for block in range(start, end, COPY_BLOCK_ROWS):
                stop = min(block + COPY_BLOCK_ROWS, end)
                vectors[row:row + stop - block] = self._vectors[block:stop]
                row += stop - block
            keys[groups[doc][0]:groups[doc][1]] = saved_keys[start:end]
        for doc, (added_keys, added_vectors) in self._added.items():
            groups[doc] = [row, row + len(added_keys)]
            vectors[row:row + len(added_keys)] = added_vectors
            keys[row:row + len(added_keys)] = added_keys
            row += len(added_keys)
        vectors.flush()
        del vectors
        order = np.argsort(keys, kind="stable")
        np.save(directory / KEYS, keys[order])
        np.save(directory / ROWS, order.astype(np.int64))
        (directory / GROUPS).write_text(json.dumps(groups, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, dimension: int) -> "SentenceStore":
        """The saved store, its vectors memory-mapped (pages are read as sentences are looked up).
        Raises ValueError (or OSError) on files that do not fit together."""
        store = cls(dimension)
        # A plain ndarray view of the mapping: indexing a np.memmap wraps every result in Python.
        store._vectors = np.asarray(np.load(directory / VECTORS, mmap_mode="r"))
        store._keys = np.load(directory / KEYS)
        store._rows = np.load(directory / ROWS)
        groups = json.loads((directory / GROUPS).read_text(encoding="utf-8"))
        store._groups = {doc: (int(span[0]), int(span[1])) for doc, span in groups.items()}
        n = len(store._vectors)
        if store._vectors.dtype != np.float32 or store._vectors.ndim != 2 or store._vectors.shape[1] != dimension \
                or len(store._keys) != n or len(store._rows) != n or store._keys.dtype != np.uint64 \
                or (n and (store._rows.min() < 0 or store._rows.max() >= n)) \
                or any(not 0 <= a <= b <= n for a, b in store._groups.values()):
            raise ValueError("sentence vectors do not fit together")
        return store


class Keeper:
    """Receives the distinct sentence inputs of an ingest and their vectors, and puts them in the
    store by document in place of the replaced documents' groups."""

    def __init__(self, store: SentenceStore, replaced: set[str], doc_ids: Sequence[str],
                 inputs: Sequence[Sequence[str]]) -> None:
        self._store, self._replaced, self._doc_ids, self._inputs = store, set(replaced), doc_ids, inputs

    def __call__(self, texts: list[str], vectors: np.ndarray) -> None:
        found = dict(zip(texts, vectors))
        owned: dict[str, dict[str, None]] = {}
        for doc_id, inputs in zip(self._doc_ids, self._inputs):
            owned.setdefault(doc_id, {}).update(dict.fromkeys(inputs))
        self._store.replace(self._replaced, {doc_id: (list(group), np.vstack([found[t] for t in group]))
                                             for doc_id, group in owned.items() if group})


def drop_documents(store: SentenceStore | None, doc_ids: set[str]) -> None:
    """Drop removed documents' sentence vectors from an index's store, if it has one."""
    if store is not None:
        store.replace(doc_ids, {})


def load_sentences(version: Path, listed: Mapping[str, str], dimension: int) -> SentenceStore | None:
    """The sentence vectors of a version folder whose manifest lists them, else None (an index
    saved before they were stored)."""
    if f"{DIRECTORY}/{VECTORS}" not in listed:
        return None
    return SentenceStore.load(version / DIRECTORY, dimension)
