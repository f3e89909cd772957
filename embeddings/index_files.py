"""An index version folder: what it holds, written and read (`Index.save` / `Index.load` use it).

A FAISS version directory holds manifest.json, vectors.faiss, chunks.jsonl, documents.json and
bm25/. A Milvus one holds no chunk texts and no BM25 matrix: the records are in the collection
(milvus_chunks.py) and the keyword statistics in a small term table (term_stats.py, keywords/),
beside milvus_keys.npy, the row -> document map and documents.json. Which one a folder is comes
from its manifest (``store_backend``); the store kept in memory says it by its capabilities.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Union

from . import storage
from .chunk_record import ChunkRecord, ChunkRecords, MemoryChunks
from .collections import DEFAULT, stored_names
from .text import short_id
from .errors import IndexCorruptError
from .keyword import KeywordIndex
from .sentence_store import DIRECTORY as SENTENCES_DIR, SentenceStore, load_sentences
from .storage import REBUILD_HINT
from .term_stats import TermStatistics
from .vectors import VECTORS_FILE, FaissStore, VectorStore

CHUNKS_FILE = "chunks.jsonl"
DOCUMENTS_FILE = "documents.json"
BM25_DIR = "bm25"
# How chunk vectors are made (the [chunking] chunk_vectors setting): pooled from sentence
# vectors, or from the chunk text (every index saved before the setting existed).
CHUNK_VECTORS = ("sentences", "text")
Keywords = Union[KeywordIndex, TermStatistics]


@dataclass(frozen=True)
class DocumentInfo:
    """What the index keeps about a document (documents.json). Fields after `chunks` were added
    later and default, so an index saved before them still loads."""

    doc_id: str
    title: str
    source: str
    url: str | None
    sha256: str
    chunks: int
    added: str | None = None  # ISO 8601 UTC time this version of the document was indexed
    size: int = 0  # bytes of the source as read
    pages: tuple[tuple[int, int], ...] = ()  # (offset in the text, page number), see Document
    etag: str | None = None  # HTTP validators of a URL, for a conditional re-fetch
    last_modified: str | None = None
    collections: tuple[str, ...] = (DEFAULT,)  # embeddings/collections.py; saved before them: default

    @classmethod
    def from_json(cls, raw: dict) -> "DocumentInfo":
        raw = dict(raw)
        raw["pages"] = tuple(tuple(p) for p in raw.get("pages") or ())
        raw["collections"] = stored_names(raw.get("collections"))
        return cls(**raw)

    @property
    def short_id(self) -> str:
        """The id shown to users (`qabot docs`); also the part of a chunk id before the '#'."""
        return short_id(self.doc_id)

    def page_at(self, offset: int) -> int | None:
        """The page number at a character offset of the text, for a source with pages."""
        if not self.pages:
            return None
        i = bisect.bisect_right([start for start, _ in self.pages], offset) - 1
        return self.pages[max(i, 0)][1]


@dataclass(frozen=True)
class StoredIndex:
    """Everything read from a version folder, for `Index.load` to assemble."""

    model_name: str
    dimension: int
    chunk_words: int
    sentence_overlap: int
    chunk_vectors: str
    documents: dict[str, DocumentInfo]
    store: VectorStore
    chunks: ChunkRecords
    keyword: Keywords
    entities: str | None = None  # the NER model of the stored entities (the manifest's "entities")
    sentences: SentenceStore | None = None  # None: saved before sentence vectors were stored


def write_files(staging: Path, documents: dict[str, DocumentInfo], chunks: ChunkRecords, keyword: Keywords,
                records_in_store: bool, sentences: SentenceStore | None = None) -> None:
    """Write documents, chunk records (or, when the store keeps them, the row -> document map),
    keyword statistics and sentence vectors into a version directory being staged (the store
    writes its own)."""
    if sentences is not None:
        sentences.save(staging / SENTENCES_DIR)
    with (staging / DOCUMENTS_FILE).open("w", encoding="utf-8") as handle:
        json.dump([asdict(d) for d in documents.values()], handle, ensure_ascii=False)
    if records_in_store:
        from .milvus_chunks import MilvusChunks
        from .term_stats import DIRECTORY

        assert isinstance(chunks, MilvusChunks)  # the only records a store keeps
        chunks.save(staging)
        keyword.save(staging / DIRECTORY)
        return
    with (staging / CHUNKS_FILE).open("w", encoding="utf-8") as handle:
        handle.writelines(chunk.to_json() + "\n" for chunk in chunks)
    (staging / BM25_DIR).mkdir()
    keyword.save(staging / BM25_DIR)


def read_documents(version: Path) -> dict[str, DocumentInfo]:
    infos = (DocumentInfo.from_json(raw)
             for raw in json.loads((version / DOCUMENTS_FILE).read_text(encoding="utf-8")))
    return {info.doc_id: info for info in infos}


def stored_documents(directory: Path) -> dict[str, DocumentInfo]:
    """The documents of the live version, read without loading vectors or keywords; their file's
    checksum is still verified."""
    version, manifest = storage.open_version(directory, verify=False)
    expected = (manifest.get("files") or {}).get(DOCUMENTS_FILE)
    path = version / DOCUMENTS_FILE
    try:
        if expected is None or storage.sha256_file(path) != expected:
            raise IndexCorruptError(f"{path}: checksum mismatch (truncated or altered); {REBUILD_HINT}")
        return read_documents(version)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise IndexCorruptError(f"{path}: cannot read ({type(exc).__name__}); {REBUILD_HINT}") from None


def _required_files(manifest: dict) -> tuple[str, ...]:
    if manifest.get("store_backend") == "milvus":
        from .milvus import KEYS_FILE
        from .milvus_chunks import DOC_IDS_FILE, DOC_ROWS_FILE
        from .term_stats import DIRECTORY, FILES

        return (DOCUMENTS_FILE, KEYS_FILE, DOC_ROWS_FILE, DOC_IDS_FILE, *(f"{DIRECTORY}/{f}" for f in FILES))
    return (CHUNKS_FILE, DOCUMENTS_FILE, VECTORS_FILE)


def read_version(directory: Path, model_name: str | None, verify: bool, store_uri: str | None) -> StoredIndex:
    """Read the live version; refuse a missing, corrupt or incompatible one with one line."""
    version, manifest = storage.open_version(directory, model_name, verify)
    listed = manifest.get("files") or {}
    for name in _required_files(manifest) if verify else ():
        if name not in listed:
            raise IndexCorruptError(f"{version / name}: not listed in the manifest; {REBUILD_HINT}")
    try:
        chunking = manifest["chunking"]
        model, dimension = str(manifest["model"]), int(manifest["dimension"])
        chunk_words, overlap = int(chunking["chunk_words"]), int(chunking["sentence_overlap"])
        chunk_vectors = chunking.get("vectors", "text")
        entities = manifest.get("entities")  # absent: saved before entities were stored
        if entities is not None and not isinstance(entities, str):
            raise ValueError(entities)
        if chunk_vectors not in CHUNK_VECTORS:
            raise ValueError(chunk_vectors)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise IndexCorruptError(f"{version / storage.MANIFEST}: lacks the model or chunking; "
                                f"{REBUILD_HINT}") from None
    try:
        documents = read_documents(version)
        sentences = load_sentences(version, listed, dimension)
        if manifest.get("store_backend") == "milvus":
            from .milvus_chunks import load_milvus_parts

            store, chunks, keyword = load_milvus_parts(version, manifest, store_uri)
            return StoredIndex(model, dimension, chunk_words, overlap, chunk_vectors, documents, store, chunks,
                               keyword, entities, sentences)
        with (version / CHUNKS_FILE).open(encoding="utf-8") as handle:
            records = MemoryChunks(ChunkRecord.from_json(line) for line in handle)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise IndexCorruptError(f"{version}: cannot read the index ({type(exc).__name__}); {REBUILD_HINT}") from None
    return StoredIndex(model, dimension, chunk_words, overlap, chunk_vectors, documents,
                       FaissStore.load(version, manifest, len(records)), records,
                       KeywordIndex.load(version / BM25_DIR, len(records)), entities, sentences)
