"""The read side of `Index`: dense, keyword and hybrid search, each limited to some collections
(embeddings/collections.py) inside the search; and moving a document to other collections
without embedding it again. `Index` inherits `Searching`; this module imports nothing of it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import AbstractSet, Callable, Iterable, Sequence, Union, cast

import numpy as np

from .chunk_record import ChunkRecord, ChunkRecords, MemoryChunks
from .collections import RowFilter, Scope, check_names
from .errors import IndexMismatchError
from .index_files import DocumentInfo
from .keyword import KeywordIndex
from .term_stats import TermStatistics
from .vectors import HybridStore, VectorStore


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


class Searching:
    """Searches over an index's rows; `Index` provides the attributes declared here."""

    documents: dict[str, DocumentInfo]
    store: VectorStore
    row_filter: RowFilter
    _chunks: ChunkRecords

    @property
    def keyword(self) -> Union[KeywordIndex, TermStatistics]:
        raise NotImplementedError  # Index's

    @property
    def records_in_store(self) -> bool:
        raise NotImplementedError  # Index's

    def __len__(self) -> int:
        return len(self._chunks)

    def add_records(self, records: Sequence[ChunkRecord], texts: Sequence[str], vectors: np.ndarray,
                    replaced: AbstractSet[str] = frozenset()) -> None:
        raise NotImplementedError  # Index's

    def embedding_text(self, title: str, text: str) -> str:
        raise NotImplementedError  # Index's

    def collection_sizes(self) -> dict[str, int]:
        """Each collection and how many documents it holds (a document may be in several)."""
        return collection_sizes(self.documents.values())

    def scope(self, collections: Sequence[str] | None) -> Scope | None:
        """What a search in `collections` may read (None: everything). A store that filters by
        collection itself gets the names; otherwise the rows are worked out here, once per change."""
        if collections is None:
            return None
        names = tuple(sorted(set(collections)))
        if self.store.capabilities.filters_collections:
            return Scope(names, None, self.row_filter.generation)
        rows = self.row_filter.rows((c.collections for c in self._chunks), names)
        return Scope(names, rows, self.row_filter.generation)

    def search(self, k: int, *, text: str | None = None, vector: np.ndarray | None = None,
               collections: Sequence[str] | None = None) -> Results:
        """The best `k` chunks by meaning (for the query's `vector`) and by keyword (for its `text`);
        either retriever is skipped when its input is None. With `collections`, only chunks of
        those collections are searched (filtered inside each search: all `k` can come from them)."""
        scope = self.scope(collections)
        return Results(self.search_dense(vector, k, scope=scope) if vector is not None else [],
                       self.search_keyword(text, k, scope=scope) if text is not None else [])

    def search_dense(self, vector: np.ndarray, k: int, *, scope: Scope | None = None) -> list[Hit]:
        if not self._chunks or k <= 0:
            return []
        scores, rows = self.store.search(vector, min(k, len(self._chunks)), scope)
        return self._hits(rows, scores)

    def search_keyword(self, query: str, k: int, *, scope: Scope | None = None) -> list[Hit]:
        if self.store.capabilities.hybrid_search:  # the store's own BM25 (embeddings/milvus.py)
            rows, scores = cast(HybridStore, self.store).keyword_search(self.keyword.query_tokens(query), k,
                                                                        scope=scope)
        else:
            rows, scores = cast(KeywordIndex, self.keyword).search(query, k, None if scope is None else scope.rows)
        return self._hits(rows, scores)

    def _hits(self, rows: Iterable[int] | np.ndarray, scores: Iterable[float] | np.ndarray) -> list[Hit]:
        # Python numbers first: reading numpy arrays element by element costs more than the hits.
        row_list = rows.tolist() if isinstance(rows, np.ndarray) else [int(r) for r in rows]
        score_list = scores.tolist() if isinstance(scores, np.ndarray) else [float(s) for s in scores]
        kept = [(r, s) for r, s in zip(row_list, score_list) if r >= 0]
        return [Hit(r, c, s) for (r, s), c in zip(kept, self._chunks.fetch([r for r, _ in kept]))]

    def chunks_of(self, doc_id: str) -> list[ChunkRecord]:
        """One document's chunks, in row order (from a store that keeps them, only those are fetched)."""
        return self._chunks.fetch(self._chunks.rows_of([doc_id]))

    def store_hybrid_search(self) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
        """The store's own hybrid search (Milvus); a store without one (FAISS) is refused in one line."""
        if not self.store.capabilities.hybrid_search:
            raise IndexMismatchError('a "milvus-*" fusion runs in Milvus and needs store_backend = "milvus"; '
                                     'with FAISS use fusion = "score" or "rrf"')
        return cast(HybridStore, self.store).hybrid_search

    def search_hybrid(self, query: str, vector: np.ndarray, k: int, *, ranker: str, rrf_k: int,
                      dense_weight: float, collections: Sequence[str] | None = None) -> list[Hit]:
        """The best `k` chunks by the store's own hybrid search (dense + BM25 fused by its
        `ranker`), for stores that have one (Milvus); the scores are the ranker's."""
        hybrid = self.store_hybrid_search()
        if not len(self._chunks) or k <= 0:
            return []
        scores, rows = hybrid(vector, self.keyword.query_tokens(query), min(k, len(self._chunks)), ranker=ranker,
                              rrf_k=rrf_k, dense_weight=dense_weight, scope=self.scope(collections))
        return self._hits(rows, scores)



def move_document(index: Searching, doc_id: str, collections: Sequence[str]) -> None:
    """Put a document in other `collections` without embedding it again: its records are
    relabelled in place (FAISS) or written again with their stored vectors (Milvus, whose
    entities never change under a key)."""
    names = check_names(collections)
    info = index.documents[doc_id]
    rows = index._chunks.rows_of([doc_id])
    records = [replace(r, collections=names) for r in index._chunks.fetch(rows)]
    index.documents[doc_id] = replace(info, collections=names)
    if index.records_in_store:
        texts = [index.embedding_text(info.title, r.text) for r in records]
        index.add_records(records, texts, index.store.vectors(rows), {doc_id})
        return
    held = index._chunks
    assert isinstance(held, MemoryChunks)  # the records of a store that does not keep them
    for row, record in zip(rows, records):
        held[row] = record
    index.row_filter.reset()


def collection_sizes(documents: Iterable[DocumentInfo]) -> dict[str, int]:
    """Each collection and how many documents it holds (a document may be in several)."""
    sizes: dict[str, int] = {}
    for info in documents:
        for name in info.collections:
            sizes[name] = sizes.get(name, 0) + 1
    return dict(sorted(sizes.items()))
