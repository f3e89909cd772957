"""The chunks of a Milvus-backed index: records kept in Milvus, fetched by key when needed.

`Index.chunks` is a `MemoryChunks` list on FAISS. On Milvus it is a `MilvusChunks`: the same
`ChunkRecords` protocol (`len`, iteration, `fetch`, `rows_of`), but each record lives in its entity (`record`, JSON) and is fetched in batches through
a bounded LRU cache, so a bot holds no chunk texts beyond the cache. What stays in RAM a row: the
entity key (`MilvusStore`, 8 bytes) and the row's document as an int32 into a table of document
ids (4 bytes), for `docs remove` and re-ingest. Saved as ``milvus_doc_rows.npy`` plus
``milvus_doc_ids.json`` in the version folder (checksummed like every file).
"""

from __future__ import annotations

import json
import threading
from array import array
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Iterator, Sequence, overload

import numpy as np

from .chunk_record import ChunkRecord
from .errors import IndexCorruptError
from .milvus import MilvusStore
from .storage import REBUILD_HINT
from .term_stats import DIRECTORY, TermStatistics
from .vectors import RecordStore

DOC_ROWS_FILE = "milvus_doc_rows.npy"
DOC_IDS_FILE = "milvus_doc_ids.json"
# Records held at most (a few MB of text): several questions' passages; not tuned.
CACHE_RECORDS = 4096
FETCH_BATCH = 512  # records a request when iterating


class MilvusChunks(Sequence[ChunkRecord]):
    """Row -> `ChunkRecord`, read from the Milvus store's entities."""

    def __init__(self, store: RecordStore, doc_ids: Sequence[str] = (), doc_rows: Iterable[int] = ()) -> None:
        self.store = store
        self._doc_ids: list[str] = list(doc_ids)
        self._doc_number = {d: i for i, d in enumerate(self._doc_ids)}
        self._doc_rows = array("i", doc_rows)
        self._cache: OrderedDict[int, ChunkRecord] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._doc_rows)

    @overload
    def __getitem__(self, row: int) -> ChunkRecord: ...

    @overload
    def __getitem__(self, row: slice) -> list[ChunkRecord]: ...

    def __getitem__(self, row: int | slice) -> ChunkRecord | list[ChunkRecord]:
        if isinstance(row, slice):
            return self.fetch(range(len(self))[row])
        return self.fetch([row])[0]

    def __iter__(self) -> Iterator[ChunkRecord]:
        """Every record in row order, FETCH_BATCH at a time (never all of them at once)."""
        for start in range(0, len(self), FETCH_BATCH):
            yield from self.fetch(range(start, min(start + FETCH_BATCH, len(self))))

    def fetch(self, rows: Iterable[int]) -> list[ChunkRecord]:
        """The records of `rows`, those not cached fetched from Milvus in one batched query."""
        rows = [int(r) for r in rows]
        for r in rows:
            if not 0 <= r < len(self):
                raise IndexError(f"chunk row {r} out of range (0..{len(self) - 1})")
        keys = [self.store.key(r) for r in rows]
        with self._lock:
            found = {k: self._cache[k] for k in keys if k in self._cache}
            for k in found:
                self._cache.move_to_end(k)
        missing = [r for r, k in zip(rows, keys) if k not in found]
        if missing:
            fetched = dict(zip((self.store.key(r) for r in missing),
                               (ChunkRecord.from_json(raw) for raw in self.store.fetch(missing, "record"))))
            found.update(fetched)
            with self._lock:
                self._cache.update(fetched)
                while len(self._cache) > CACHE_RECORDS:
                    self._cache.popitem(last=False)
        return [found[k] for k in keys]

    def doc_id(self, row: int) -> str:
        return self._doc_ids[self._doc_rows[row]]

    def rows_of(self, doc_ids: Iterable[str]) -> list[int]:
        """The rows of some documents, from the int32 map (no request to Milvus)."""
        numbers = [self._doc_number[d] for d in doc_ids if d in self._doc_number]
        if not numbers:
            return []
        return np.flatnonzero(np.isin(np.frombuffer(self._doc_rows, dtype=np.int32), numbers)).tolist()

    def replace(self, gone: set[str], records: Sequence[ChunkRecord], texts: Sequence[str],
                vectors: np.ndarray, terms: TermStatistics) -> None:
        """Drop the rows of the `gone` documents, append `records` (embedded `texts`, `vectors`)
        and count both in `terms`. The store writes entities now and deletes old ones only after
        the next version is live."""
        rows = self.rows_of(gone)
        removed = [raw.split() for raw in self.store.fetch(rows, "text")] if rows else []
        self.store.remove(rows)
        keep = np.ones(len(self), dtype=bool)
        keep[rows] = False
        self._doc_rows = array("i", np.frombuffer(self._doc_rows, dtype=np.int32)[keep].tobytes()) \
            if rows else self._doc_rows
        added = self.store.add_chunks(vectors, [r.chunk_id for r in records], texts,
                                      [r.to_json() for r in records],
                                      [r.collections for r in records]) if records else []
        for record in records:
            if record.doc_id not in self._doc_number:
                self._doc_number[record.doc_id] = len(self._doc_ids)
                self._doc_ids.append(record.doc_id)
            self._doc_rows.append(self._doc_number[record.doc_id])
        terms.update(added, removed, len(self))

    def save(self, directory: Path) -> None:
        """The row -> document map, its table compacted to the documents still indexed."""
        rows = np.frombuffer(self._doc_rows, dtype=np.int32)
        used, compact = np.unique(rows, return_inverse=True)
        np.save(directory / DOC_ROWS_FILE, compact.astype(np.int32))
        (directory / DOC_IDS_FILE).write_text(json.dumps([self._doc_ids[i] for i in used], ensure_ascii=False),
                                              encoding="utf-8")

    @classmethod
    def load(cls, store: MilvusStore, version: Path) -> "MilvusChunks":
        doc_ids = json.loads((version / DOC_IDS_FILE).read_text(encoding="utf-8"))
        doc_rows = np.load(version / DOC_ROWS_FILE).astype(np.int32)
        if len(doc_rows) and (doc_rows.min() < 0 or doc_rows.max() >= len(doc_ids)):
            raise ValueError("document map out of range")
        return cls(store, doc_ids, doc_rows.tolist())


def load_milvus_parts(version: Path, manifest: dict, store_uri: str | None
                      ) -> tuple[MilvusStore, MilvusChunks, TermStatistics]:
    """The parts of a Milvus-backed index being loaded: its store (keys checked against the
    collection), row -> document map and term table from the version folder; chunk records stay
    in the collection."""
    rows = int(manifest.get("chunks", -1))
    store = MilvusStore.load(version, manifest, rows, uri=store_uri)
    chunks = MilvusChunks.load(store, version)
    if len(chunks) != rows:
        raise IndexCorruptError(f"{version}: the document map holds {len(chunks)} rows for {rows} chunks; "
                                f"{REBUILD_HINT}")
    return store, chunks, TermStatistics.load(version / DIRECTORY, rows)
