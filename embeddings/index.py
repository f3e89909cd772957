"""The searchable index: chunks of documents, found by meaning (a `VectorStore`) and by keyword (BM25).

`Index` is the one object the rest of qabot uses: `add` documents, `search` (or `search_dense` /
`search_keyword` alone), `save` to and `load` from an index directory. Where the pieces live:
storage.py (versions, manifest, checksums), index_files.py (a version folder's files),
vectors.py (the dense store and its capabilities), chunk_record.py (the records), keyword.py
(BM25), chunk_vectors.py (how vectors are made), sentence_store.py (the sentence vectors kept for
the answer step). The index asks its store what it can do (`VectorStore.capabilities`), never what
type it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import AbstractSet, Callable, Iterable, Sequence, Union, cast

import numpy as np

from . import storage
from .chunk_record import ChunkRecord, ChunkRecords, MemoryChunks, as_records
from .chunk_vectors import EMBED_SLICE, embed_texts, pooled_sentence_vectors
from .chunking import chunk_document
from .collections import DEFAULT, RowFilter, check_names
from .index_search import Hit, Results, Searching, move_document
from .text import Document
from .encoders import Encoder
from .entities import tag_paragraphs
from .errors import IndexMismatchError
from .index_files import (BM25_DIR, CHUNK_VECTORS, CHUNKS_FILE, DOCUMENTS_FILE, DocumentInfo, read_version,
                          stored_documents, write_files)
from .keyword import KeywordIndex
from .sentence_store import SentenceStore, drop_documents
from .storage import FORMAT_VERSION, REBUILD_HINT
from .term_stats import TermStatistics
from .vectors import ExternalStore, FaissStore, RecordStore, VectorStore

# Names other modules import from here (they live in chunk_record.py, index_files.py, chunk_vectors.py).
__all__ = ["BM25_DIR", "CHUNKS_FILE", "CHUNK_VECTORS", "DOCUMENTS_FILE", "EMBED_SLICE", "ChunkRecord",
           "DocumentInfo", "Hit", "Index", "IngestReport", "Results"]


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)  # unchanged text, other collections: not re-embedded
    chunks_added: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.moved)


class Index(Searching):
    """Chunks of documents, searchable by meaning and by keyword.

    Rows are dense and ordered: row i of the vector store, of the BM25 matrix and of `chunks` is
    the same chunk. Re-ingesting a changed document rebuilds the rows (cheap next to embedding).
    `chunk_words`, `sentence_overlap` and `chunk_vectors` come from the [chunking] settings and are
    recorded in the manifest: an index cannot re-chunk what it holds, and its vectors must all be
    made alike, so they are fixed for its lifetime. An index saved before `chunk_vectors` existed
    made its vectors from the chunk text ("text").
    """

    def __init__(self, model_name: str, dimension: int, chunk_words: int, sentence_overlap: int,
                 store: VectorStore | None = None, chunk_vectors: str = "text",
                 entities: str | None = None) -> None:
        if chunk_vectors not in CHUNK_VECTORS:
            raise ValueError(f"chunk_vectors must be one of {', '.join(CHUNK_VECTORS)}")
        self.model_name = model_name
        self.dimension = dimension
        self.chunk_words = chunk_words
        self.sentence_overlap = sentence_overlap
        self.chunk_vectors = chunk_vectors
        self.entities = entities  # the NER model of every chunk's entities (manifest), None: none stored
        self.documents: dict[str, DocumentInfo] = {}
        self.store: VectorStore = store if store is not None else FaissStore(dimension)
        self._chunks: ChunkRecords = MemoryChunks()
        self.row_filter = RowFilter()  # each collection's rows, for stores that filter by row
        self._keyword: Union[KeywordIndex, TermStatistics, None] = None
        self.sentences: SentenceStore | None = SentenceStore(dimension) if chunk_vectors == "sentences" else None
        if self.records_in_store:  # records and keyword statistics not in RAM
            from .milvus_chunks import MilvusChunks

            self._chunks, self._keyword = MilvusChunks(cast(RecordStore, self.store)), TermStatistics()

    @property
    def records_in_store(self) -> bool:
        """Whether the store keeps the chunk records and BM25 tokens (its `chunk_records`
        capability): then `chunks` fetches from it and the keyword statistics are a term table."""
        return self.store.capabilities.chunk_records

    @property
    def chunks(self) -> ChunkRecords:
        """Row -> `ChunkRecord` (`MemoryChunks`, or `MilvusChunks` when the store keeps them)."""
        return self._chunks

    @chunks.setter
    def chunks(self, chunks: Sequence[ChunkRecord] | ChunkRecords) -> None:
        self._chunks = as_records(chunks)

    # --- building -------------------------------------------------------------------------

    def add(self, documents: Iterable[Document], encoder: Encoder, batch_size: int,
            progress: Callable[[int, int], None] | None = None,
            collections: Sequence[str] | None = None) -> IngestReport:
        """Add or replace documents; unchanged ones (same content hash) are skipped untouched.

        `collections`: the documents' (None: a known document's own, "default" for a new one); an
        unchanged document named with other collections is moved, not embedded again.

        Every new chunk of every document is embedded in one pass (in slices of EMBED_SLICE), not
        document by document: the encoder sorts the texts it is given by length and pads each batch
        to its own longest text, so the more texts it sees at once the less padding it computes
        (measured on the ten SQuAD articles: 9% padded tokens one document at a time, 2% together).
        A text's vector does not depend on its batch. `progress`, if given, is called with (chunks
        embedded, chunks to embed) after each slice, so a large PDF moves a progress bar too.
        """
        if encoder.model_name != self.model_name or encoder.dimension != self.dimension:
            raise IndexMismatchError(
                f"index uses {self.model_name} ({self.dimension}-d) but the encoder is "
                f"{encoder.model_name} ({encoder.dimension}-d); {REBUILD_HINT}")
        report = IngestReport()
        new_chunks: list[ChunkRecord] = []
        texts: list[str] = []
        replaced: set[str] = set()
        named = check_names(collections) if collections is not None else None
        for document in documents:
            previous = self.documents.get(document.doc_id)
            owned = named or (previous.collections if previous is not None else (DEFAULT,))
            if previous is not None and previous.sha256 == document.sha256:
                moved = owned != previous.collections and document.doc_id not in replaced
                if moved:
                    move_document(self, document.doc_id, owned)
                (report.moved if moved else report.skipped).append(document.source)
                continue
            if document.doc_id in replaced:
                continue
            found = None if self.entities is None else tag_paragraphs(document.text)
            records = [ChunkRecord.from_chunk(c, found, owned)
                       for c in chunk_document(document, self.chunk_words, self.sentence_overlap)]
            texts.extend(self.embedding_text(document.title, r.text) for r in records)
            new_chunks.extend(records)
            replaced.add(document.doc_id)
            self.documents[document.doc_id] = DocumentInfo(
                document.doc_id, document.title, document.source, document.url, document.sha256,
                len(records), added=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                size=document.size or len(document.text.encode("utf-8")), pages=document.pages,
                etag=document.etag, last_modified=document.last_modified, collections=owned)
            (report.updated if previous is not None else report.added).append(document.source)
            report.chunks_added += len(records)
        if replaced:
            inputs = [list(self._sentence_inputs(c)) for c in new_chunks] if self.chunk_vectors == "sentences" else []
            keep = None if self.sentences is None else self.sentences.keeper(replaced, new_chunks, inputs)
            vectors = pooled_sentence_vectors(inputs, encoder, batch_size, progress, on_sentences=keep) \
                if self.chunk_vectors == "sentences" else embed_texts(texts, encoder, batch_size, progress)
            self.add_records(new_chunks, texts, vectors, replaced)
        return report

    def add_records(self, records: Sequence[ChunkRecord], texts: Sequence[str], vectors: np.ndarray,
                    replaced: AbstractSet[str] = frozenset()) -> None:
        """Drop the chunks of the `replaced` documents and append `records`, embedded already
        (`texts` as the encoder saw them, their `vectors`). `add` calls it; the bench too, with
        synthetic vectors. The documents' `DocumentInfo` is the caller's."""
        self.row_filter.reset()
        if self.records_in_store:
            from .milvus_chunks import MilvusChunks

            cast(MilvusChunks, self._chunks).replace(set(replaced), records, texts, vectors,
                                                     cast(TermStatistics, self._keyword))
            return
        held = cast(MemoryChunks, self._chunks)
        self.store.remove(held.rows_of(replaced))
        if len(records):
            self.store.add(vectors)
        self._chunks = MemoryChunks([*held.without(set(replaced)), *records])
        self._keyword = None

    def _sentence_inputs(self, chunk: ChunkRecord) -> Iterable[str]:
        """What the encoder sees for each sentence of a chunk (its document is in `documents`)."""
        title = self.documents[chunk.doc_id].title
        return (self.embedding_text(title, t) for t in chunk.sentence_texts())

    def remove(self, doc_ids: Iterable[str]) -> list[DocumentInfo]:
        """Drop documents and their chunks; returns what was removed (unknown ids are ignored)."""
        removed = [self.documents.pop(d) for d in dict.fromkeys(doc_ids) if d in self.documents]
        if removed:
            drop_documents(self.sentences, {d.doc_id for d in removed})
            self.add_records([], [], np.zeros((0, self.dimension), dtype=np.float32), {d.doc_id for d in removed})
        return removed

    @staticmethod
    def embedding_text(title: str, text: str) -> str:
        """What the encoder sees for a chunk: the document title gives short passages their topic."""
        return f"{title}\n{text}" if title else text

    # --- searching ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def keyword(self) -> Union[KeywordIndex, TermStatistics]:
        """The keyword statistics (`idf`, `document_frequency`, `forms`, `query_tokens`): the
        bm25s index of the chunks on FAISS, the term table on Milvus (embeddings/term_stats.py)."""
        if self._keyword is None:
            self._keyword = KeywordIndex.build(
                [self.embedding_text(self.documents[c.doc_id].title, c.text) for c in self.chunks])
        return self._keyword

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        """Stored vectors of some rows (for scoring passages the dense search did not return)."""
        return self.store.vectors(rows)

    def document(self, doc_id: str) -> DocumentInfo:
        return self.documents[doc_id]

    # --- persistence ----------------------------------------------------------------------

    def manifest(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "model": self.model_name,
            "dimension": self.dimension,
            "chunking": {"chunk_words": self.chunk_words, "sentence_overlap": self.sentence_overlap,
                         "vectors": self.chunk_vectors},
            **({"entities": self.entities} if self.entities is not None else {}),
            **self.store.manifest(),
            "chunks": len(self.chunks),
            "documents": {d.doc_id: d.sha256 for d in self.documents.values()},
        }

    def _write(self, staging: Path) -> None:
        self.store.save(staging)
        write_files(staging, self.documents, self._chunks, self.keyword, self.records_in_store, self.sentences)

    def save(self, directory: Path) -> Path:
        """Write a complete new version beside the old one, then switch to it atomically."""
        version = storage.write_version(directory, self._write, self.manifest())
        if self.store.capabilities.consistency_check:  # a store outside the folder drops what is gone
            cast(ExternalStore, self.store).committed()
        return version

    @staticmethod
    def exists(directory: Path) -> bool:
        """Whether an index has been saved in `directory` (it may still be corrupt)."""
        return storage.exists(directory)

    @staticmethod
    def stored_documents(directory: Path) -> dict[str, DocumentInfo]:
        """The documents of the live version, read without loading vectors or keywords (for
        `qabot docs list` and conditional re-fetches); their file's checksum is still verified."""
        return stored_documents(directory)

    @classmethod
    def load(cls, directory: Path, model_name: str | None = None, verify: bool = True,
             store_uri: str | None = None) -> "Index":
        """Load the live version; refuse a missing, corrupt or incompatible index with one line.
        `store_uri` reaches a Milvus-backed index's collection at another address than the one
        recorded (the same server seen from another host)."""
        stored = read_version(directory, model_name, verify, store_uri)
        index = cls(stored.model_name, stored.dimension, stored.chunk_words, stored.sentence_overlap,
                    store=stored.store, chunk_vectors=stored.chunk_vectors, entities=stored.entities)
        index.documents, index._chunks, index._keyword = stored.documents, stored.chunks, stored.keyword
        index.sentences = stored.sentences  # None: saved before sentence vectors were stored
        return index


def vector_texts(index: Index) -> list[str]:
    """The distinct texts the encoder embedded for the chunks `index` holds (for the benchmark's
    token counts and raw-encoder comparison): whole chunks, or their sentences."""
    if index.chunk_vectors == "sentences":
        return list(dict.fromkeys(t for c in index.chunks for t in index._sentence_inputs(c)))
    return [index.embedding_text(index.documents[c.doc_id].title, c.text) for c in index.chunks]
