"""Ingest files into an index directory: one writer at a time, all or nothing.

Files named explicitly must all load, or nothing is written. Files found inside a named folder
that cannot be used (binary, empty, undecodable) are refused one by one and reported, so one bad
file does not block a folder of good ones.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .documents import MAX_DOCUMENT_BYTES, Document, find_documents, load_document
from .errors import DocumentError, IndexLockedError, IndexMismatchError, IndexNotFoundError
from .index import REBUILD_HINT, Index, IngestReport

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"


@dataclass
class IngestResult:
    report: IngestReport
    refused: list[str] = field(default_factory=list)  # one-line reasons for skipped folder members
    chunks_total: int = 0
    documents_total: int = 0


@contextmanager
def index_lock(directory: Path, timeout: float = 30.0) -> Iterator[None]:
    """Serialise writers on one index directory with a lock file."""
    from filelock import FileLock, Timeout

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
    try:
        yield
    finally:
        lock.release()


def load_documents(paths: Sequence[Path], encoding: str | None = None,
                   max_bytes: int = MAX_DOCUMENT_BYTES) -> tuple[list[Document], list[str]]:
    """Documents from files and folders, and the reasons folder members were refused."""
    documents: list[Document] = []
    refused: list[str] = []
    for path in paths:
        if path.is_dir():
            found = False
            for member in find_documents([path]):
                found = True
                try:
                    documents.append(load_document(member, encoding, max_bytes))
                except DocumentError as exc:
                    refused.append(str(exc))
            if not found:
                raise DocumentError(f"{path}: no .txt, .md or .html files in this folder")
        else:
            for member in find_documents([path]):
                documents.append(load_document(member, encoding, max_bytes))
    return documents, refused


def ingest(
    paths: Sequence[Path],
    index_dir: Path,
    encoder_factory: Callable[[], object],
    *,
    chunk_words: int,
    sentence_overlap: int,
    model_name: str,
    batch_size: int = 32,
    rebuild: bool = False,
    encoding: str | None = None,
    lock_timeout: float = 30.0,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    progress: Callable[[int, int], None] | None = None,
) -> IngestResult:
    """Load `paths`, add them to the index at `index_dir` and save it if anything changed.

    `progress(done, total)` is called as documents are embedded. With `rebuild`, the index is
    built from scratch from `paths` alone (the way out of a corrupt or incompatible index).
    """
    documents, refused = load_documents(paths, encoding, max_bytes)
    with index_lock(index_dir, lock_timeout):
        index = None
        if not rebuild:
            try:
                index = Index.load(index_dir, model_name=model_name)
            except IndexNotFoundError:
                index = None
        if index is not None and (index.chunk_words, index.sentence_overlap) != (chunk_words, sentence_overlap):
            # The index keeps chunks, not whole documents, so it cannot re-chunk the documents it
            # already holds; adding to it would silently drop them.
            raise IndexMismatchError(
                f"{index_dir}: index was chunked with chunk_words={index.chunk_words}, "
                f"sentence_overlap={index.sentence_overlap}, but the settings say {chunk_words}, "
                f"{sentence_overlap}; {REBUILD_HINT}")
        if index is not None and not rebuild and all(
                d.doc_id in index.documents and index.documents[d.doc_id].sha256 == d.sha256
                for d in documents):
            report = IngestReport(skipped=[d.source for d in documents])
            return IngestResult(report, refused, len(index), len(index.documents))
        encoder = encoder_factory()
        if index is None:
            index = Index(model_name, encoder.dimension, chunk_words, sentence_overlap)
        done = 0

        def step(_chunks: int) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, len(documents))

        report = index.add(documents, encoder, batch_size=batch_size, progress=step)
        if report.changed or rebuild or not Index.exists(index_dir):
            index.save(index_dir)
        return IngestResult(report, refused, len(index), len(index.documents))
