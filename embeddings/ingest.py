"""Ingest files and URLs into an index directory, or remove documents from it: one writer at a
time, all or nothing.

Inputs named explicitly must all load, or nothing is written. Members of a named folder, a sitemap
or a `--from-list` file that cannot be used (binary, empty, undecodable, a dead link) are refused
one by one and reported, so one bad member does not block the rest (embeddings/sources/collect.py).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .collections import check_names
from .documents import Document
from .encoders import Encoder, get_encoder, ingest_workers
from .entities import ENTITY_MODEL
from .errors import IndexLockedError, IndexMismatchError, IndexNotFoundError, IndexUnusableError, QabotError
from .index import DocumentInfo, Index, IngestReport
from .milvus import MilvusConfig
from .sources.collect import Progress, collect
from .sources.web import FetchLimits
from .storage import REBUILD_HINT

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"


@dataclass(frozen=True)
class IngestOptions:
    """How documents become an index: the model, chunking and limits of one ingest.

    Every value comes from the settings (`from_settings`); embeddings/ keeps no defaults of its
    own, so `qabot ingest`, the tests, the benchmark and `qabot eval` build indexes the same way.
    """

    model_name: str
    backend: str  # encoder backend for ingest: "torch" or "onnx"
    max_seq_length: int
    batch_size: int
    chunk_words: int
    sentence_overlap: int
    chunk_vectors: str  # how a new index makes chunk vectors; an existing index keeps its own
    max_bytes: int  # larger files are refused before they are read
    lock_timeout: float  # seconds to wait for another ingest writing the same index
    milvus: MilvusConfig | None = None  # None: vectors in FAISS files (the default store)

    @classmethod
    def from_settings(cls, settings) -> "IngestOptions":
        """From qabot's settings (duck-typed: its model, chunking, ingest and store sections), so that
        embeddings/ needs nothing from bot/."""
        m, c, i, st = settings.model, settings.chunking, settings.ingest, settings.store
        milvus = MilvusConfig(st.store_uri, st.collection, st.milvus_index) if st.store_backend == "milvus" else None
        return cls(model_name=m.model_name, backend=m.ingest_backend, max_seq_length=m.max_seq_length,
                   batch_size=m.batch_size, chunk_words=c.chunk_words, sentence_overlap=c.sentence_overlap,
                   chunk_vectors=c.chunk_vectors,
                   max_bytes=int(i.max_document_mb * 2**20), lock_timeout=i.lock_timeout_s, milvus=milvus)

    def new_index(self, index_dir: Path, dimension: int) -> Index:
        """An empty index on the configured store (a Milvus one inherits the entities of the
        version it replaces as garbage, deleted once the new version is live)."""
        store = None
        if self.milvus is not None:
            from .milvus import MilvusStore

            store = MilvusStore(self.milvus, index_dir, dimension)
            store.forget_previous(index_dir)
        return Index(self.model_name, dimension, self.chunk_words, self.sentence_overlap, store=store,
                     chunk_vectors=self.chunk_vectors, entities=ENTITY_MODEL)

    def store_backend(self) -> str:
        return "milvus" if self.milvus is not None else "faiss"

    def encoder(self) -> Encoder:
        """The shared encoder these options name (loaded on first use)."""
        return get_encoder(self.backend, self.max_seq_length, workers=ingest_workers())


@dataclass
class IngestResult:
    report: IngestReport
    refused: list[str] = field(default_factory=list)  # one-line reasons for skipped folder members
    chunks_total: int = 0
    documents_total: int = 0


@contextmanager
def index_lock(directory: Path, timeout: float) -> Iterator[None]:
    """Serialise writers on one index directory with a lock file. A directory that cannot be made
    or written (a file in the way, a read-only or missing mount) is refused in one line here,
    before anything is embedded, rather than as an OSError's traceback."""
    from filelock import FileLock, Timeout

    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(directory / LOCK_FILE))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.warning("another ingest is writing %s; waiting up to %.0f s", directory, timeout)
            try:
                lock.acquire(timeout=timeout)
            except Timeout:
                raise IndexLockedError(
                    f"{directory} is locked by another ingest (waited {timeout:.0f} s); try again when it finishes"
                ) from None
    except OSError as exc:
        raise IndexUnusableError(f"cannot write the index at {directory} ({exc.strerror or exc})") from None
    try:
        yield
    finally:
        lock.release()


def ingest(
    paths: Sequence[Path | str],
    index_dir: Path,
    options: IngestOptions,
    *,
    encoder_factory: Callable[[], Encoder] | None = None,
    rebuild: bool = False,
    encoding: str | None = None,
    progress: Callable[[float, int], None] | None = None,
    from_lists: Sequence[Path] = (),
    fetch_limits: FetchLimits | None = None,
    load_progress: Progress | None = None,
    collections: Sequence[str] | None = None,
) -> IngestResult:
    """Load `paths` (files, folders, `http(s)://` URLs or sitemaps, plus the entries of the
    `from_lists` files), add them to the index at `index_dir` and save it if anything changed.

    A URL indexed before is fetched conditionally (its stored ETag / Last-Modified); a 304 counts
    as unchanged. `load_progress(done, total, input)` is called as inputs are loaded and
    `progress(done, total)` as documents are embedded. With `rebuild`, the index is built from
    scratch from these inputs alone (the way out of a corrupt or incompatible index).
    `encoder_factory` replaces the encoder the options name (called only if something is embedded).
    `fetch_limits` replaces the default time and redirect limits of URLs (the size limit is
    always `options.max_bytes`). `collections` puts the documents in those collections (moving
    known ones); None keeps a known document's and puts a new one in "default".
    """
    if collections is not None:
        collections = check_names(collections)  # refused before anything is fetched
    known = {} if rebuild else _stored(index_dir)
    validators = {d.doc_id: (d.etag, d.last_modified) for d in known.values() if d.etag or d.last_modified}
    limits = fetch_limits or FetchLimits(max_bytes=options.max_bytes)
    if limits.max_bytes != options.max_bytes:
        limits = replace(limits, max_bytes=options.max_bytes)
    loaded = collect(paths, max_bytes=options.max_bytes, encoding=encoding, from_lists=from_lists,
                     validators=validators, limits=limits, progress=load_progress)
    return ingest_documents(loaded.documents, index_dir, options, encoder_factory=encoder_factory,
                            rebuild=rebuild, refused=loaded.refused, unchanged=loaded.unchanged,
                            progress=progress, collections=collections)


def _stored(index_dir: Path) -> dict[str, DocumentInfo]:
    """The documents already indexed, for conditional fetches; none if the index is unreadable
    (the ingest itself then reports why)."""
    try:
        return Index.stored_documents(index_dir)
    except QabotError:
        return {}


def ingest_documents(
    documents: Sequence[Document],
    index_dir: Path,
    options: IngestOptions,
    *,
    encoder_factory: Callable[[], Encoder] | None = None,
    rebuild: bool = False,
    exact: bool = False,
    refused: Sequence[str] = (),
    unchanged: Sequence[str] = (),
    progress: Callable[[float, int], None] | None = None,
    collections: Sequence[str] | None = None,
) -> IngestResult:
    """Add loaded `documents` to the index at `index_dir` (see `ingest`), under its lock.

    With `exact`, the index is to hold exactly `documents` (a throw-away index such as
    `qabot eval`'s): an index there that holds other documents, was chunked otherwise or cannot
    be read is rebuilt instead of being extended or refused. `unchanged` names sources known to
    be unchanged without loading them (a URL answered 304): they are reported as skipped.
    """
    if not documents and (rebuild or not Index.exists(index_dir)):
        # Every input was refused: no index is made, or remade, to hold nothing.
        return IngestResult(IngestReport(skipped=list(unchanged)), list(refused), 0, 0)
    with index_lock(index_dir, options.lock_timeout):
        index = None if rebuild else _existing(index_dir, options, exact)
        if exact and index is not None and set(index.documents) != {d.doc_id for d in documents}:
            index = None
        wanted = check_names(collections) if collections is not None else None
        if index is not None and all(d.doc_id in index.documents and
                                     index.documents[d.doc_id].sha256 == d.sha256 and
                                     wanted in (None, index.documents[d.doc_id].collections) for d in documents):
            report = IngestReport(skipped=[d.source for d in documents] + list(unchanged))
            return IngestResult(report, list(refused), len(index), len(index.documents))
        encoder = (encoder_factory or options.encoder)()
        fresh = index is None
        if index is None:
            index = options.new_index(index_dir, encoder.dimension)

        def step(embedded: int, chunks: int) -> None:
            # Chunks of all documents are embedded together: documents done, pro rata.
            if progress is not None:
                progress(len(documents) * embedded / chunks if chunks else len(documents), len(documents))

        report = index.add(documents, encoder, batch_size=options.batch_size, progress=step, collections=wanted)
        report.skipped.extend(unchanged)
        if report.changed or rebuild or (fresh and exact) or not Index.exists(index_dir):
            index.save(index_dir)
        return IngestResult(report, list(refused), len(index), len(index.documents))


def _existing(index_dir: Path, options: IngestOptions, exact: bool) -> Index | None:
    """The index already at `index_dir` to add to, or None to start a new one."""
    try:
        index = Index.load(index_dir, model_name=options.model_name,
                           store_uri=options.milvus.uri if options.milvus is not None else None)
    except IndexNotFoundError:
        return None
    except QabotError:
        if exact:
            return None
        raise
    backend = index.store.capabilities.backend
    if backend != options.store_backend():
        if exact:
            return None
        raise IndexMismatchError(f"{index_dir}: index keeps its vectors in {backend}, but the settings say "
                                 f"store_backend = {options.store_backend()!r}; {REBUILD_HINT}")
    if (index.chunk_words, index.sentence_overlap) != (options.chunk_words, options.sentence_overlap):
        if exact:
            return None
        # The index keeps chunks, not whole documents, so it cannot re-chunk the documents it
        # already holds; adding to it would silently drop them.
        raise IndexMismatchError(
            f"{index_dir}: index was chunked with chunk_words={index.chunk_words}, "
            f"sentence_overlap={index.sentence_overlap}, but the settings say {options.chunk_words}, "
            f"{options.sentence_overlap}; {REBUILD_HINT}")
    if index.chunk_vectors != options.chunk_vectors:
        if exact:
            return None
        # Vectors of one index must be made alike, and the old ones still answer well: the
        # index's own way wins until a --rebuild.
        log.info("%s: chunk vectors stay %r as the index was built (settings: %r; --rebuild to change)",
                 index_dir, index.chunk_vectors, options.chunk_vectors)
    if index.entities != ENTITY_MODEL:
        if exact:
            return None
        # Entities of one index come from one model; an index without them still answers (with
        # the rules' highlights) and adding to it keeps it that way until a --rebuild.
        log.info("%s: index stores no %s entities; --rebuild to enable typed answers", index_dir, ENTITY_MODEL)
    return index


def remove_documents(index_dir: Path, doc_ids: Sequence[str], lock_timeout: float) -> list[DocumentInfo]:
    """Remove documents (by doc_id) from the index at `index_dir` under its lock, as one atomic
    new version like every write. Returns what was removed; nothing is written if that is none.
    No encoder is needed, so the index's model need not be the configured one."""
    with index_lock(index_dir, lock_timeout):
        index = Index.load(index_dir)
        removed = index.remove(doc_ids)
        if removed:
            index.save(index_dir)
        return removed
