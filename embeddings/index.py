"""The searchable index: chunks of documents, found by meaning (a `VectorStore`) and by keyword (BM25).

`Index` is the one object the rest of qabot uses: `add` documents, `search` (or `search_dense` /
`search_keyword` alone), `save` to and `load` from an index directory. Where the pieces live:
storage.py (versions, manifest, checksums), vectors.py (the dense store), keyword.py (BM25).
A FAISS version directory holds manifest.json, vectors.faiss, chunks.jsonl, documents.json and
bm25/. A Milvus one holds no chunk texts and no BM25 matrix: the records are in the collection
(milvus_chunks.py) and the keyword statistics in a small term table (term_stats.py, keywords/),
beside milvus_keys.npy, the row -> document map and documents.json.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence, Union

import numpy as np

from . import storage
from .chunking import Chunk, chunk_document
from .documents import Document, short_id
from .encoders import Encoder
from .errors import IndexCorruptError, IndexMismatchError
from .keyword import KeywordIndex
from .storage import FORMAT_VERSION, REBUILD_HINT
from .vectors import VECTORS_FILE, FaissStore, VectorStore

if TYPE_CHECKING:
    from .milvus_chunks import MilvusChunks
    from .term_stats import TermStatistics

CHUNKS_FILE = "chunks.jsonl"
DOCUMENTS_FILE = "documents.json"
BM25_DIR = "bm25"
# New chunks are embedded in slices of this many so progress can be reported (about 10 s of the
# encoder on 2 cores); a slice is long enough for batches of similar length with little padding.
EMBED_SLICE = 512
# How chunk vectors are made (the [chunking] chunk_vectors setting): pooled from sentence
# vectors, or from the chunk text (every index saved before the setting existed).
CHUNK_VECTORS = ("sentences", "text")


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

    @classmethod
    def from_json(cls, raw: dict) -> "DocumentInfo":
        raw = dict(raw)
        raw["pages"] = tuple(tuple(p) for p in raw.get("pages") or ())
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
class ChunkRecord:
    """A stored chunk: its text and sentence offsets (relative to the chunk) for quoting."""

    chunk_id: str
    doc_id: str
    position: int
    start: int
    end: int
    text: str
    sentences: tuple[tuple[int, int], ...]  # (start, end) within `text`

    @classmethod
    def from_chunk(cls, chunk: Chunk) -> "ChunkRecord":
        return cls(chunk.chunk_id, chunk.doc_id, chunk.position, chunk.start, chunk.end, chunk.text,
                   tuple((s.start - chunk.start, s.end - chunk.start) for s in chunk.sentences))

    def sentence_texts(self) -> list[str]:
        return [self.text[a:b] for a, b in self.sentences]


@dataclass(frozen=True)
class Hit:
    row: int
    chunk: ChunkRecord
    score: float


@dataclass(frozen=True)
class Results:
    """Both retrievers' hits for one query, best first."""

    dense: list[Hit]
    keyword: list[Hit]


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    chunks_added: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated)


class Index:
    """Chunks of documents, searchable by meaning and by keyword.

    Rows are dense and ordered: row i of the vector store, of the BM25 matrix and of `chunks` is
    the same chunk. Re-ingesting a changed document rebuilds the rows (cheap next to embedding).
    `chunk_words`, `sentence_overlap` and `chunk_vectors` come from the [chunking] settings and are
    recorded in the manifest: an index cannot re-chunk what it holds, and its vectors must all be
    made alike, so they are fixed for its lifetime. An index saved before `chunk_vectors` existed
    made its vectors from the chunk text ("text").
    """

    def __init__(self, model_name: str, dimension: int, chunk_words: int, sentence_overlap: int,
                 store: VectorStore | None = None, chunk_vectors: str = "text") -> None:
        if chunk_vectors not in CHUNK_VECTORS:
            raise ValueError(f"chunk_vectors must be one of {', '.join(CHUNK_VECTORS)}")
        self.model_name = model_name
        self.dimension = dimension
        self.chunk_words = chunk_words
        self.sentence_overlap = sentence_overlap
        self.chunk_vectors = chunk_vectors
        self.documents: dict[str, DocumentInfo] = {}
        self.store: VectorStore = store if store is not None else FaissStore(dimension)
        self.chunks: Union[list[ChunkRecord], "MilvusChunks"] = []
        self._keyword: Union[KeywordIndex, "TermStatistics", None] = None
        if getattr(self.store, "add_chunks", None) is not None:  # Milvus: records and stats not in RAM
            from .milvus_chunks import MilvusChunks
            from .term_stats import TermStatistics

            self.chunks, self._keyword = MilvusChunks(self.store), TermStatistics()

    @property
    def on_milvus(self) -> bool:
        return not isinstance(self.chunks, list)

    # --- building -------------------------------------------------------------------------

    def add(self, documents: Iterable[Document], encoder: Encoder, batch_size: int,
            progress: Callable[[int, int], None] | None = None) -> IngestReport:
        """Add or replace documents; unchanged ones (same content hash) are skipped untouched.

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
        for document in documents:
            previous = self.documents.get(document.doc_id)
            if previous is not None and previous.sha256 == document.sha256:
                report.skipped.append(document.source)
                continue
            if document.doc_id in replaced:
                continue
            records = [ChunkRecord.from_chunk(c)
                       for c in chunk_document(document, self.chunk_words, self.sentence_overlap)]
            texts.extend(self.embedding_text(document.title, r.text) for r in records)
            new_chunks.extend(records)
            replaced.add(document.doc_id)
            self.documents[document.doc_id] = DocumentInfo(
                document.doc_id, document.title, document.source, document.url, document.sha256,
                len(records), added=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                size=document.size or len(document.text.encode("utf-8")), pages=document.pages,
                etag=document.etag, last_modified=document.last_modified)
            (report.updated if previous is not None else report.added).append(document.source)
            report.chunks_added += len(records)
        if replaced:
            vectors = self._embed_sentences(new_chunks, encoder, batch_size, progress) \
                if self.chunk_vectors == "sentences" else self._embed(texts, encoder, batch_size, progress)
            self.add_records(new_chunks, texts, vectors, replaced)
        return report

    def add_records(self, records: Sequence[ChunkRecord], texts: Sequence[str], vectors: np.ndarray,
                    replaced: set[str] = frozenset()) -> None:
        """Drop the chunks of the `replaced` documents and append `records`, embedded already
        (`texts` as the encoder saw them, their `vectors`). `add` calls it; the bench too, with
        synthetic vectors. The documents' `DocumentInfo` is the caller's."""
        if self.on_milvus:
            self.chunks.replace(set(replaced), records, texts, vectors, self._keyword)
            return
        self.store.remove([i for i, c in enumerate(self.chunks) if c.doc_id in replaced])
        if len(records):
            self.store.add(vectors)
        self.chunks = [c for c in self.chunks if c.doc_id not in replaced] + list(records)
        self._keyword = None

    def _embed(self, texts: list[str], encoder: Encoder, batch_size: int,
               progress: Callable[[int, int], None] | None) -> np.ndarray:
        """Embed chunk texts in slices of EMBED_SLICE, reporting progress after each."""
        parts = []
        for start in range(0, len(texts), EMBED_SLICE):
            parts.append(encoder.encode(texts[start:start + EMBED_SLICE], batch_size=batch_size))
            if progress is not None:
                progress(min(start + EMBED_SLICE, len(texts)), len(texts))
        return np.vstack(parts) if parts else np.zeros((0, self.dimension), dtype=np.float32)

    def _embed_sentences(self, chunks: Sequence[ChunkRecord], encoder: Encoder, batch_size: int,
                         progress: Callable[[int, int], None] | None) -> np.ndarray:
        """Chunk vectors pooled from sentence vectors: every distinct sentence (after its title,
        as the answer step embeds it) is embedded once, and a chunk's vector is the mean of its
        sentences' vectors weighted by their length, normalised.

        Why: the sentence a chunk shares with the next one (overlap) and the title are not
        embedded again for every chunk, and short texts cost less per token, so the encoder does
        about 1.4x less work than on whole chunks; measured on the training articles, dense hit@1
        is the same and hit@10 0.6 point lower, which hybrid retrieval absorbs (bench/README.md).
        """
        slots: dict[str, int] = {}
        members: list[int] = []
        starts: list[int] = []
        for chunk in chunks:
            starts.append(len(members))
            members.extend(slots.setdefault(text, len(slots)) for text in self._sentence_inputs(chunk))
        sentences = list(slots)
        vectors = self._embed(sentences, encoder, batch_size, progress)
        if not chunks:
            return vectors
        weights = np.array([len(t) for t in sentences], dtype=np.float32)
        ids = np.asarray(members, dtype=np.int64)
        pooled = np.add.reduceat(vectors[ids] * weights[ids, None], np.asarray(starts, dtype=np.int64), axis=0)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    def _sentence_inputs(self, chunk: ChunkRecord) -> Iterable[str]:
        """What the encoder sees for each sentence of a chunk (its document is in `documents`)."""
        title = self.documents[chunk.doc_id].title
        return (self.embedding_text(title, t) for t in chunk.sentence_texts())

    def vector_texts(self) -> list[str]:
        """The distinct texts the encoder embedded for the chunks held (for the benchmark's
        token counts and raw-encoder comparison): whole chunks, or their sentences."""
        if self.chunk_vectors == "sentences":
            return list(dict.fromkeys(t for c in self.chunks for t in self._sentence_inputs(c)))
        return [self.embedding_text(self.documents[c.doc_id].title, c.text) for c in self.chunks]

    def remove(self, doc_ids: Iterable[str]) -> list[DocumentInfo]:
        """Drop documents and their chunks; returns what was removed (unknown ids are ignored)."""
        removed = [self.documents.pop(d) for d in dict.fromkeys(doc_ids) if d in self.documents]
        if removed:
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
    def keyword(self) -> Union[KeywordIndex, "TermStatistics"]:
        """The keyword statistics (`idf`, `document_frequency`, `forms`, `query_tokens`): the
        bm25s index of the chunks on FAISS, the term table on Milvus (embeddings/term_stats.py)."""
        if self._keyword is None:
            self._keyword = KeywordIndex.build(
                [self.embedding_text(self.documents[c.doc_id].title, c.text) for c in self.chunks])
        return self._keyword

    def search(self, k: int, *, text: str | None = None, vector: np.ndarray | None = None) -> Results:
        """The best `k` chunks by meaning (for the query's `vector`) and by keyword (for its `text`);
        either retriever is skipped when its input is None."""
        return Results(self.search_dense(vector, k) if vector is not None else [],
                       self.search_keyword(text, k) if text is not None else [])

    def search_dense(self, vector: np.ndarray, k: int) -> list[Hit]:
        if not self.chunks or k <= 0:
            return []
        scores, rows = self.store.search(vector, min(k, len(self.chunks)))
        return self._hits(rows, scores)

    def search_keyword(self, query: str, k: int) -> list[Hit]:
        full_text = getattr(self.store, "keyword_search", None)  # Milvus's own BM25 (embeddings/milvus.py)
        if full_text is not None:
            rows, scores = full_text(self.keyword.query_tokens(query), k)
        else:
            rows, scores = self.keyword.search(query, k)
        return self._hits(rows, scores)

    def _hits(self, rows: Sequence[int], scores: Sequence[float]) -> list[Hit]:
        kept = [(int(r), float(s)) for r, s in zip(rows, scores) if r >= 0]
        records = self.chunks.fetch([r for r, _ in kept]) if self.on_milvus else [self.chunks[r] for r, _ in kept]
        return [Hit(r, c, s) for (r, s), c in zip(kept, records)]

    def chunks_of(self, doc_id: str) -> list[ChunkRecord]:
        """One document's chunks, in row order (on Milvus, only those are fetched)."""
        if self.on_milvus:
            return self.chunks.fetch(self.chunks.rows_of([doc_id]))
        return [c for c in self.chunks if c.doc_id == doc_id]

    def store_hybrid_search(self) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
        """The store's own hybrid search (Milvus); a store without one (FAISS) is refused in one line."""
        hybrid = getattr(self.store, "hybrid_search", None)
        if hybrid is None:
            raise IndexMismatchError('a "milvus-*" fusion runs in Milvus and needs store_backend = "milvus"; '
                                     'with FAISS use fusion = "score" or "rrf"')
        return hybrid

    def search_hybrid(self, query: str, vector: np.ndarray, k: int, *, ranker: str, rrf_k: int,
                      dense_weight: float) -> list[Hit]:
        """The best `k` chunks by the store's own hybrid search (dense + BM25 fused by its
        `ranker`), for stores that have one (Milvus); the scores are the ranker's."""
        hybrid = self.store_hybrid_search()
        if not len(self.chunks) or k <= 0:
            return []
        scores, rows = hybrid(vector, self.keyword.query_tokens(query), min(k, len(self.chunks)), ranker=ranker,
                              rrf_k=rrf_k, dense_weight=dense_weight)
        return self._hits(rows, scores)

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
            **self.store.manifest(),
            "chunks": len(self.chunks),
            "documents": {d.doc_id: d.sha256 for d in self.documents.values()},
        }

    def _write(self, staging: Path) -> None:
        self.store.save(staging)
        with (staging / DOCUMENTS_FILE).open("w", encoding="utf-8") as handle:
            json.dump([asdict(d) for d in self.documents.values()], handle, ensure_ascii=False)
        if self.on_milvus:
            from .term_stats import DIRECTORY

            self.chunks.save(staging)
            self._keyword.save(staging / DIRECTORY)
            return
        with (staging / CHUNKS_FILE).open("w", encoding="utf-8") as handle:
            for chunk in self.chunks:
                handle.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
        (staging / BM25_DIR).mkdir()
        self.keyword.save(staging / BM25_DIR)

    def save(self, directory: Path) -> Path:
        """Write a complete new version beside the old one, then switch to it atomically."""
        version = storage.write_version(directory, self._write, self.manifest())
        committed = getattr(self.store, "committed", None)  # a store outside the folder drops what is gone
        if committed is not None:
            committed()
        return version

    @staticmethod
    def exists(directory: Path) -> bool:
        """Whether an index has been saved in `directory` (it may still be corrupt)."""
        return storage.exists(directory)

    @staticmethod
    def stored_documents(directory: Path) -> dict[str, DocumentInfo]:
        """The documents of the live version, read without loading vectors or keywords (for
        `qabot docs list` and conditional re-fetches); their file's checksum is still verified."""
        version, manifest = storage.open_version(directory, verify=False)
        expected = (manifest.get("files") or {}).get(DOCUMENTS_FILE)
        path = version / DOCUMENTS_FILE
        try:
            if expected is None or storage.sha256_file(path) != expected:
                raise IndexCorruptError(f"{path}: checksum mismatch (truncated or altered); {REBUILD_HINT}")
            return _read_documents(version)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise IndexCorruptError(f"{path}: cannot read ({type(exc).__name__}); {REBUILD_HINT}") from None

    @classmethod
    def load(cls, directory: Path, model_name: str | None = None, verify: bool = True,
             store_uri: str | None = None) -> "Index":
        """Load the live version; refuse a missing, corrupt or incompatible index with one line.
        `store_uri` reaches a Milvus-backed index's collection at another address than the one
        recorded (the same server seen from another host)."""
        version, manifest = storage.open_version(directory, model_name, verify)
        milvus = manifest.get("store_backend") == "milvus"
        if milvus:
            from .milvus import KEYS_FILE
            from .milvus_chunks import DOC_IDS_FILE, DOC_ROWS_FILE
            from .term_stats import DIRECTORY, FILES

            required = (DOCUMENTS_FILE, KEYS_FILE, DOC_ROWS_FILE, DOC_IDS_FILE, *(f"{DIRECTORY}/{f}" for f in FILES))
        else:
            required = (CHUNKS_FILE, DOCUMENTS_FILE, VECTORS_FILE)
        listed = manifest.get("files") or {}
        for name in required if verify else ():
            if name not in listed:
                raise IndexCorruptError(f"{version / name}: not listed in the manifest; {REBUILD_HINT}")
        try:
            chunking = manifest["chunking"]
            index = cls(manifest["model"], int(manifest["dimension"]), int(chunking["chunk_words"]),
                        int(chunking["sentence_overlap"]), chunk_vectors=chunking.get("vectors", "text"))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise IndexCorruptError(f"{version / storage.MANIFEST}: lacks the model or chunking; "
                                    f"{REBUILD_HINT}") from None
        try:
            index.documents = _read_documents(version)
            if milvus:
                from .milvus_chunks import load_milvus_parts

                return load_milvus_parts(index, version, manifest, store_uri)
            with (version / CHUNKS_FILE).open(encoding="utf-8") as handle:
                for line in handle:
                    raw = json.loads(line)
                    raw["sentences"] = tuple(tuple(s) for s in raw["sentences"])
                    index.chunks.append(ChunkRecord(**raw))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise IndexCorruptError(f"{version}: cannot read the index ({type(exc).__name__}); {REBUILD_HINT}") from None
        index.store = FaissStore.load(version, manifest, len(index.chunks))
        index._keyword = KeywordIndex.load(version / BM25_DIR, len(index.chunks))
        return index


def _read_documents(version: Path) -> dict[str, DocumentInfo]:
    infos = (DocumentInfo.from_json(raw)
             for raw in json.loads((version / DOCUMENTS_FILE).read_text(encoding="utf-8")))
    return {info.doc_id: info for info in infos}
