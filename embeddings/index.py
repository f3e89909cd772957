"""The searchable index: FAISS vectors + BM25 + chunk metadata + a manifest, in one directory.

Layout of an index directory::

    CURRENT            name of the live version directory (replaced atomically)
    v000007/           one complete version: manifest.json, vectors.faiss, chunks.jsonl, bm25/
    .lock              held by a writer while it ingests

A save writes a whole new version directory, fsyncs it, then switches CURRENT with os.replace, so
a reader, or a process killed at any moment, sees either the old index or the new one, never a mix.
The manifest records the model, dimension, chunking settings and a SHA-256 of every file, so a
truncated, altered or incompatible index is refused with a message that says how to rebuild.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .chunking import Chunk, chunk_document
from .documents import Document
from .errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError, QabotError
from .keyword import KeywordIndex

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
CHUNKS = "chunks.jsonl"
BM25_DIR = "bm25"
REBUILD_HINT = "rebuild it with: qabot ingest --rebuild PATH..."

# --- dense (FAISS) index types, chosen from the corpus size ---------------------------------------
# "flat-ip": exact inner product over float32 vectors (1.5 KB a chunk). Exact and fast up to tens
#            of thousands of chunks; the float vectors stay in memory for re-scoring.
# "ivf-sq8": an inverted file (k-means lists) over 8-bit scalar-quantised vectors (384 B a chunk):
#            1M chunks take about 0.4 GB and a search scans `nprobe` lists only. Approximate: see
#            bench/README.md for recall@10 against exact search. Stored vectors are decoded from the
#            8-bit codes when needed (cosine to the original: median 0.99998, worst of 100k 0.997).
FLAT = "flat-ip"
IVF_SQ8 = "ivf-sq8"
INDEX_TYPES = (FLAT, IVF_SQ8)
# Above this many chunks the dense index is "ivf-sq8"; at or below it, exact "flat-ip".
FLAT_MAX_CHUNKS = 50_000


def choose_index_type(chunks: int, flat_max: int = FLAT_MAX_CHUNKS) -> str:
    """The dense index type for a corpus of `chunks` chunks: exact when small, compressed when large."""
    return FLAT if chunks <= flat_max else IVF_SQ8


def ivf_params(chunks: int) -> dict:
    """Inverted-file settings for `chunks` vectors: the number of lists (the largest power of two
    up to 4*sqrt(n), with at least 39 training points a list as k-means needs: 2048 lists for 1M
    chunks) and the lists probed per search (recall@10 ~0.97 on 1M chunks, see bench/README.md)."""
    nlist = 1
    while nlist * 2 <= 4 * chunks ** 0.5 and nlist * 2 * 39 <= chunks:
        nlist *= 2
    return {"nlist": nlist, "nprobe": min(nlist, max(32, nlist // 64))}


def build_dense_index(vectors: np.ndarray, index_type: str, params: dict | None = None):
    """A FAISS inner-product index of `index_type` holding `vectors` (row i = vector i)."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dimension = vectors.shape
    if index_type == FLAT:
        index = faiss.IndexFlatIP(dimension)
        if n:
            index.add(vectors)
        return index
    if index_type != IVF_SQ8:
        raise ValueError(f"unknown dense index type {index_type!r} (use one of {', '.join(INDEX_TYPES)})")
    params = params or ivf_params(n)
    index = faiss.index_factory(dimension, f"IVF{params['nlist']},SQ8", faiss.METRIC_INNER_PRODUCT)
    # k-means, 10 rounds on a fixed-seed sample of at most 40 points a list: stable enough lists
    # (more rounds or points changed recall@10 by < 0.005) at a bounded cost on a million vectors.
    index.cp.niter = 10
    sample = min(n, 40 * params["nlist"])
    train = vectors if sample == n else vectors[np.sort(
        np.random.default_rng(1234).choice(n, sample, replace=False))]
    index.train(train)
    for start in range(0, n, 65_536):  # bounded temporary memory while adding
        index.add(vectors[start:start + 65_536])
    index.nprobe = params["nprobe"]
    index.make_direct_map()  # reconstruct(row) for re-scoring passages that BM25 alone found
    return index


def search_one(index, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of one query's `k` nearest vectors, searched on the calling thread alone.

    A single query gains nothing from FAISS's OpenMP threads (flat and IVF search split the work
    by query), but opening a parallel region costs a wake-up of every pool thread: on 2 busy cores
    that made a 60k-vector flat search 5x slower (31 ms instead of 6 ms). The thread count is an
    OpenMP setting of the calling thread, and it is restored afterwards (index building keeps its
    threads).
    """
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        scores, rows = index.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), k)
    finally:
        faiss.omp_set_num_threads(threads)
    return scores[0], rows[0]


@dataclass(frozen=True)
class DocumentInfo:
    doc_id: str
    title: str
    source: str
    url: str | None
    sha256: str
    chunks: int


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


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    chunks_added: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_tree(directory: Path) -> None:
    for root, _dirs, files in os.walk(directory):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                os.fsync(handle.fileno())
        _fsync_dir(Path(root))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Index:
    """Chunks of documents, searchable by meaning (FAISS) and by keyword (BM25).

    Rows are dense and ordered: row i of the FAISS index, of the BM25 matrix and of `chunks` is the
    same chunk. Re-ingesting a changed document rebuilds the rows (cheap next to embedding).
    """

    def __init__(self, model_name: str, dimension: int, chunk_words: int = 120,
                 sentence_overlap: int = 1) -> None:
        self.model_name = model_name
        self.dimension = dimension
        self.chunk_words = chunk_words
        self.sentence_overlap = sentence_overlap
        self.documents: dict[str, DocumentInfo] = {}
        self.chunks: list[ChunkRecord] = []
        self._vectors = np.zeros((0, dimension), dtype=np.float32)
        self._faiss = None
        self.flat_max = FLAT_MAX_CHUNKS  # corpus size above which the dense index is compressed
        self.index_type = FLAT
        self.index_params: dict = {}
        self._keyword: KeywordIndex | None = None

    # --- building -------------------------------------------------------------------------

    def add(self, documents: Iterable[Document], encoder, batch_size: int = 32,
            progress=None) -> IngestReport:
        """Add or replace documents; unchanged ones (same content hash) are skipped untouched.

        `progress`, if given, is called with the number of chunks just embedded.
        """
        if encoder.model_name != self.model_name or encoder.dimension != self.dimension:
            raise IndexMismatchError(
                f"index uses {self.model_name} ({self.dimension}-d) but the encoder is "
                f"{encoder.model_name} ({encoder.dimension}-d); {REBUILD_HINT}")
        report = IngestReport()
        new_chunks: list[ChunkRecord] = []
        new_vectors: list[np.ndarray] = []
        replaced: set[str] = set()
        for document in documents:
            previous = self.documents.get(document.doc_id)
            if previous is not None and previous.sha256 == document.sha256:
                report.skipped.append(document.source)
                continue
            if document.doc_id in replaced:
                continue
            chunks = chunk_document(document, self.chunk_words, self.sentence_overlap)
            records = [ChunkRecord.from_chunk(c) for c in chunks]
            vectors = encoder.encode([self.embedding_text(document.title, r.text) for r in records],
                                     batch_size=batch_size)
            if progress is not None:
                progress(len(records))
            new_chunks.extend(records)
            new_vectors.append(vectors)
            replaced.add(document.doc_id)
            self.documents[document.doc_id] = DocumentInfo(
                document.doc_id, document.title, document.source, document.url, document.sha256,
                len(records))
            (report.updated if previous is not None else report.added).append(document.source)
            report.chunks_added += len(records)
        if replaced:
            keep = [i for i, c in enumerate(self.chunks) if c.doc_id not in replaced]
            self.chunks = [self.chunks[i] for i in keep] + new_chunks
            self._vectors = np.vstack([self._vectors[keep], *new_vectors]).astype(np.float32)
            self._build_search()
        return report

    @staticmethod
    def embedding_text(title: str, text: str) -> str:
        """What the encoder sees for a chunk: the document title gives short passages their topic."""
        return f"{title}\n{text}" if title else text

    @property
    def _vectors(self) -> np.ndarray:
        """All stored vectors as float32 (decoded from the compressed index only when asked for)."""
        if self._float_vectors is None:
            self._float_vectors = self._faiss.reconstruct_n(0, self._faiss.ntotal)
        return self._float_vectors

    @_vectors.setter
    def _vectors(self, value: np.ndarray) -> None:
        self._float_vectors = value

    def _build_search(self) -> None:
        vectors = self._vectors
        self.index_type = choose_index_type(len(vectors), self.flat_max)
        self.index_params = ivf_params(len(vectors)) if self.index_type == IVF_SQ8 else {}
        self._faiss = build_dense_index(vectors, self.index_type, self.index_params)
        if self.index_type != FLAT:
            self._float_vectors = None  # the 8-bit codes replace the float copy (4x less memory)
        self._keyword = KeywordIndex.build([self.embedding_text(self.documents[c.doc_id].title, c.text)
                                            for c in self.chunks])

    # --- searching ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def keyword(self) -> KeywordIndex:
        if self._keyword is None:
            self._build_search()
        return self._keyword  # type: ignore[return-value]

    def search_dense(self, vector: np.ndarray, k: int) -> list[Hit]:
        if not self.chunks or k <= 0:
            return []
        if self._faiss is None:
            self._build_search()
        scores, rows = search_one(self._faiss, vector, min(k, len(self.chunks)))
        return [Hit(int(r), self.chunks[int(r)], float(s)) for r, s in zip(rows, scores) if r >= 0]

    def search_keyword(self, query: str, k: int) -> list[Hit]:
        rows, scores = self.keyword.search(query, k)
        return [Hit(int(r), self.chunks[int(r)], float(s)) for r, s in zip(rows, scores)]

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        """Stored vectors of some rows (for scoring passages the dense search did not return)."""
        rows = [int(r) for r in rows]
        if self._float_vectors is None and self._faiss is not None:
            return self._faiss.reconstruct_batch(np.asarray(rows, dtype=np.int64)) if rows else \
                np.zeros((0, self.dimension), dtype=np.float32)
        return self._vectors[rows]

    def document(self, doc_id: str) -> DocumentInfo:
        return self.documents[doc_id]

    # --- persistence ----------------------------------------------------------------------

    def manifest(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "model": self.model_name,
            "dimension": self.dimension,
            "chunking": {"chunk_words": self.chunk_words, "sentence_overlap": self.sentence_overlap},
            "index_type": self.index_type,
            "index_params": self.index_params,
            "chunks": len(self.chunks),
            "documents": {d.doc_id: d.sha256 for d in self.documents.values()},
        }

    def save(self, directory: Path) -> Path:
        """Write a complete new version beside the old one, then switch to it atomically."""
        import faiss

        if self._faiss is None:
            self._build_search()
        directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=directory))
        try:
            faiss.write_index(self._faiss, str(staging / VECTORS))
            with (staging / CHUNKS).open("w", encoding="utf-8") as handle:
                for chunk in self.chunks:
                    handle.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
            with (staging / "documents.json").open("w", encoding="utf-8") as handle:
                json.dump([asdict(d) for d in self.documents.values()], handle, ensure_ascii=False)
            (staging / BM25_DIR).mkdir()
            self.keyword.save(staging / BM25_DIR)
            manifest = self.manifest()
            manifest["files"] = {
                str(p.relative_to(staging)): _sha256_file(p)
                for p in sorted(staging.rglob("*")) if p.is_file()
            }
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False), "utf-8")
            _fsync_tree(staging)
            version = self._next_version(directory)
            os.rename(staging, directory / version)
            _fsync_dir(directory)
            pointer = directory / f".{CURRENT}.tmp"
            with pointer.open("w", encoding="utf-8") as handle:
                handle.write(version + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(pointer, directory / CURRENT)
            _fsync_dir(directory)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self._remove_old_versions(directory, keep=version)
        return directory / version

    @staticmethod
    def _next_version(directory: Path) -> str:
        numbers = [int(p.name[1:]) for p in directory.glob("v[0-9]*") if p.name[1:].isdigit()]
        return f"v{max(numbers, default=0) + 1:06d}"

    @staticmethod
    def _remove_old_versions(directory: Path, keep: str) -> None:
        for path in directory.iterdir():
            if path.is_dir() and path.name != keep and (path.name.startswith("v") or
                                                        path.name.startswith(".staging-")):
                shutil.rmtree(path, ignore_errors=True)

    @staticmethod
    def current_version(directory: Path) -> Path | None:
        """The live version directory, or None when no index has been saved here."""
        try:
            name = (directory / CURRENT).read_text(encoding="utf-8").strip()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise IndexCorruptError(f"{directory / CURRENT}: cannot read ({exc.strerror}); {REBUILD_HINT}")
        if not name or "/" in name or name.startswith("."):
            raise IndexCorruptError(f"{directory / CURRENT}: invalid content; {REBUILD_HINT}")
        return directory / name

    @classmethod
    def exists(cls, directory: Path) -> bool:
        return cls.current_version(directory) is not None

    @classmethod
    def load(cls, directory: Path, model_name: str | None = None, verify: bool = True) -> "Index":
        """Load the live version; refuse a missing, corrupt or incompatible index with one line."""
        import faiss

        version = cls.current_version(directory)
        if version is None:
            raise IndexNotFoundError(f"no index at {directory}; build one with: qabot ingest PATH...")
        manifest_path = version / MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise IndexCorruptError(f"{manifest_path}: missing; {REBUILD_HINT}") from None
        except (OSError, ValueError):
            raise IndexCorruptError(f"{manifest_path}: unreadable or not JSON; {REBUILD_HINT}") from None
        fmt = manifest.get("format_version")
        if fmt != FORMAT_VERSION:
            newer = isinstance(fmt, int) and fmt > FORMAT_VERSION
            raise IndexMismatchError(
                f"{manifest_path}: index format {fmt} is {'newer than' if newer else 'not'} the "
                f"supported format {FORMAT_VERSION}; {'upgrade qabot or ' if newer else ''}{REBUILD_HINT}")
        if model_name is not None and manifest.get("model") != model_name:
            raise IndexMismatchError(
                f"{directory}: index was built with model {manifest.get('model')!r}, but qabot is "
                f"configured for {model_name!r}; {REBUILD_HINT}")
        if verify:
            for name, expected in (manifest.get("files") or {}).items():
                path = version / name
                if not path.is_file():
                    raise IndexCorruptError(f"{path}: missing; {REBUILD_HINT}")
                if _sha256_file(path) != expected:
                    raise IndexCorruptError(f"{path}: checksum mismatch (truncated or altered); {REBUILD_HINT}")
            for required in (VECTORS, CHUNKS, "documents.json"):
                if required not in (manifest.get("files") or {}):
                    raise IndexCorruptError(f"{version / required}: not listed in the manifest; {REBUILD_HINT}")
        chunking = manifest.get("chunking", {})
        index = cls(manifest["model"], int(manifest["dimension"]), int(chunking.get("chunk_words", 120)),
                    int(chunking.get("sentence_overlap", 1)))
        try:
            with (version / CHUNKS).open(encoding="utf-8") as handle:
                for line in handle:
                    raw = json.loads(line)
                    raw["sentences"] = tuple(tuple(s) for s in raw["sentences"])
                    index.chunks.append(ChunkRecord(**raw))
            for raw in json.loads((version / "documents.json").read_text(encoding="utf-8")):
                info = DocumentInfo(**raw)
                index.documents[info.doc_id] = info
            flat = faiss.read_index(str(version / VECTORS))
        except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
            raise IndexCorruptError(f"{version}: cannot read the index ({type(exc).__name__}); {REBUILD_HINT}") from None
        if flat.ntotal != len(index.chunks) or flat.d != index.dimension:
            raise IndexCorruptError(f"{version / VECTORS}: holds {flat.ntotal} vectors for "
                                    f"{len(index.chunks)} chunks; {REBUILD_HINT}")
        index_type = manifest.get("index_type", FLAT)
        if index_type not in INDEX_TYPES or (index_type == FLAT) != isinstance(flat, faiss.IndexFlat):
            raise IndexCorruptError(f"{version / VECTORS}: not a {index_type!r} index as the manifest "
                                    f"says; {REBUILD_HINT}")
        index._faiss = flat
        index.index_type = index_type
        index.index_params = dict(manifest.get("index_params") or {})
        if index_type == FLAT:
            index._vectors = flat.reconstruct_n(0, flat.ntotal) if flat.ntotal else index._vectors
        else:
            flat.nprobe = int(index.index_params.get("nprobe", flat.nprobe))
            flat.make_direct_map()
            index._vectors = None  # decoded on demand (see `vectors`)
        index._keyword = KeywordIndex.load(version / BM25_DIR, len(index.chunks))
        return index
