"""A stored chunk (`ChunkRecord`) and what the `Index` needs from a collection of them.

Two collections implement `ChunkRecords`: `MemoryChunks` (a list, FAISS-backed indexes keep every
record in RAM and in chunks.jsonl) and `milvus_chunks.MilvusChunks` (records kept in Milvus and
fetched by row). The index reads records only through `fetch` and `rows_of`, so it never needs to
know which one it holds. This module imports nothing of the index, so both sides can import it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Iterable, Iterator, Protocol, Sequence, SupportsIndex, overload, runtime_checkable

from .chunking import Chunk
from .collections import DEFAULT, stored_names
from .entities import within


@dataclass(frozen=True)
class ChunkRecord:
    """A stored chunk: its text and sentence offsets (relative to the chunk) for quoting."""

    chunk_id: str
    doc_id: str
    position: int
    start: int
    end: int
    text: str
    sentences: tuple[tuple[int, int], ...]  # (start, end) within `text`
    # Named entities (start, end, label) within `text`, found at ingest (entities.py); None in an
    # index saved before entities were stored (the answer step then falls back to its rules).
    entities: tuple[tuple[int, int, str], ...] | None = None
    # The collections its document belongs to (embeddings/collections.py), so a search can be
    # limited to some without a look-up per row; ("default",) in an index saved before them.
    collections: tuple[str, ...] = (DEFAULT,)

    @classmethod
    def from_chunk(cls, chunk: Chunk, entities: Sequence[tuple[int, int, str]] | None = None,
                   collections: tuple[str, ...] = (DEFAULT,)) -> "ChunkRecord":
        """The record of `chunk`; `entities` (offsets in the document) are kept if inside it."""
        inside = None if entities is None else within(entities, chunk.start, chunk.end)
        return cls(chunk.chunk_id, chunk.doc_id, chunk.position, chunk.start, chunk.end, chunk.text,
                   tuple((s.start - chunk.start, s.end - chunk.start) for s in chunk.sentences), inside,
                   collections)

    def sentence_texts(self) -> list[str]:
        return [self.text[a:b] for a, b in self.sentences]

    def sentence_entities(self, i: int) -> tuple[tuple[int, int, str], ...] | None:
        """The entities of sentence `i`, offsets within that sentence (None: none were stored)."""
        if self.entities is None:
            return None
        return within(self.entities, *self.sentences[i])

    def to_json(self) -> str:
        """One line of JSON (chunks.jsonl, and the record field of a Milvus entity)."""
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> "ChunkRecord":
        fields = json.loads(raw)
        fields["sentences"] = tuple(tuple(s) for s in fields["sentences"])
        if fields.get("entities") is not None:
            fields["entities"] = tuple(tuple(e) for e in fields["entities"])
        fields["collections"] = stored_names(fields.get("collections"))
        return cls(**fields)


@runtime_checkable
class ChunkRecords(Protocol):
    """Row -> `ChunkRecord` for the rows of an index (row i of the vector store is record i)."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[ChunkRecord]: ...

    def __getitem__(self, row: int, /) -> ChunkRecord:
        """One row's record (`fetch` gets many at once)."""

    def fetch(self, rows: Iterable[int]) -> list[ChunkRecord]:
        """The records of `rows`, in their order."""

    def rows_of(self, doc_ids: Iterable[str]) -> list[int]:
        """The rows of some documents, in row order (unknown ids are ignored)."""


class MemoryChunks(list[ChunkRecord]):
    """Every record in RAM, in row order: a list (equal to one, sliceable) that is `ChunkRecords`."""

    @overload
    def __getitem__(self, row: SupportsIndex, /) -> ChunkRecord: ...

    @overload
    def __getitem__(self, row: slice, /) -> "MemoryChunks": ...

    def __getitem__(self, row: SupportsIndex | slice, /) -> "ChunkRecord | MemoryChunks":
        if isinstance(row, slice):
            return MemoryChunks(super().__getitem__(row))
        return super().__getitem__(row)

    def fetch(self, rows: Iterable[int]) -> list[ChunkRecord]:
        item = super().__getitem__  # rows only: no slice check per record (a search fetches ~80)
        return [item(r) for r in rows]

    def rows_of(self, doc_ids: Iterable[str]) -> list[int]:
        wanted = set(doc_ids)
        return [i for i, c in enumerate(self) if c.doc_id in wanted]

    def without(self, doc_ids: set[str]) -> "MemoryChunks":
        """These records less those of some documents (the rows after them move up)."""
        return MemoryChunks(c for c in self if c.doc_id not in doc_ids)


def as_records(chunks: Sequence[ChunkRecord] | ChunkRecords) -> ChunkRecords:
    """`chunks` as `ChunkRecords`: a plain list (a test or the bench filling an index) becomes
    `MemoryChunks`; anything already `ChunkRecords` is kept."""
    if isinstance(chunks, ChunkRecords):
        return chunks
    return MemoryChunks(chunks)
