"""Dense vector stores: the rows of the index as vectors, searchable by inner product.

`VectorStore` is what the `Index` needs from one; `FaissStore` keeps them in a FAISS index inside
the index's version directory. Rows are dense and ordered: row i is chunk i of the index.

A store declares what more it can do in `capabilities` (`StoreCapabilities`), and the `Index`
asks that, never the store's type: a store with `chunk_records` keeps the chunk records itself
(`RecordStore`), one with `hybrid_search` runs BM25 and fused search itself (`HybridStore`), one
with `consistency_check` lives outside the version folder, is checked against the manifest on
load and deletes what a new version dropped only once it is live (`ExternalStore`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

import numpy as np

from .errors import IndexCorruptError
from .storage import REBUILD_HINT

if TYPE_CHECKING:
    from .collections import Scope


@dataclass(frozen=True)
class StoreCapabilities:
    """What a store can do beyond `VectorStore` (see the module docstring)."""

    backend: str  # the manifest's store_backend: "faiss" or "milvus"
    chunk_records: bool = False  # keeps the chunk records and their keyword tokens: `RecordStore`
    hybrid_search: bool = False  # BM25 and dense + BM25 fusion inside the store: `HybridStore`
    consistency_check: bool = False  # outside the version folder, checked on load: `ExternalStore`
    # Filters by collection names itself (a Milvus scalar field, server-side); without it the
    # index hands the store the collections' rows (`collections.Scope.rows`).
    filters_collections: bool = False


class VectorStore(Protocol):
    """Vectors by row; L2-normalised vectors make the inner product a cosine."""

    dimension: int
    capabilities: StoreCapabilities

    def __len__(self) -> int: ...

    def add(self, vectors: np.ndarray) -> None:
        """Append rows (one vector a row) after the existing ones."""

    def remove(self, rows: Sequence[int]) -> None:
        """Drop rows; the rows after them move up, keeping their order."""

    def search(self, vector: np.ndarray, k: int, scope: "Scope | None" = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the `k` rows nearest `vector`, best first (row -1: no more rows);
        with a `scope`, only rows of its collections, filtered inside the search."""

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        """The stored vectors of `rows`, float32, one a row."""

    def manifest(self) -> dict:
        """What the index manifest records about this store (checked again on load)."""

    def save(self, directory: Path) -> None:
        """Write the store's files into a version directory being staged."""


class RecordStore(VectorStore, Protocol):
    """A store that keeps each row's chunk record and BM25 tokens beside its vector."""

    def add_chunks(self, vectors: np.ndarray, chunk_ids: Sequence[str], texts: Sequence[str],
                   records: Sequence[str] | None = None,
                   collections: Sequence[Sequence[str]] | None = None) -> list[list[str]]:
        """Append rows (vector, tokens of `texts`, record JSON, collections); returns each row's
        BM25 tokens."""

    def fetch(self, rows: Sequence[int], field: str) -> list:
        """One stored field (``record``, ``text``, ``vec``) of each of `rows`, in their order."""

    def key(self, row: int) -> int:
        """The store's own key of a row (stable while the row's chunk is unchanged)."""


class HybridStore(VectorStore, Protocol):
    """A store that searches BM25 tokens and fuses dense + BM25 search itself."""

    def keyword_search(self, terms: Sequence[str], k: int,
                       scope: "Scope | None" = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the best `k` rows for BM25 `terms` (in `scope`'s collections)."""

    def hybrid_search(self, vector: np.ndarray, terms: Sequence[str], k: int, *, ranker: str = "rrf",
                      rrf_k: int = 60, dense_weight: float = 0.6,
                      scope: "Scope | None" = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of dense + BM25 search fused by the store's `ranker` (in `scope`)."""


class ExternalStore(VectorStore, Protocol):
    """A store outside the version folder: what a new version dropped is deleted once it is live."""

    def committed(self) -> None:
        """Called after the new version is live."""


# --- FAISS ------------------------------------------------------------------------------------
# "flat-ip": exact inner product over float32 vectors (1.5 KB a chunk). Exact and fast up to tens
#            of thousands of chunks; the float vectors stay in memory for re-scoring.
# "ivf-sq8": an inverted file (k-means lists) over 8-bit scalar-quantised vectors (384 B a chunk):
#            1M chunks take about 0.4 GB and a search scans `nprobe` lists only. Approximate: see
#            bench/README.md for recall@10 against exact search. Stored vectors are decoded from the
#            8-bit codes when needed (cosine to the original: median 0.99998, worst of 100k 0.997).
FLAT = "flat-ip"
IVF_SQ8 = "ivf-sq8"
INDEX_TYPES = (FLAT, IVF_SQ8)
VECTORS_FILE = "vectors.faiss"
# Above this many chunks the dense index is "ivf-sq8"; at or below it, exact "flat-ip". Measured by
# `make bench` (bench/README.md, "Choices this benchmark led to"): a flat search is about 4 ms a
# query at 60k chunks and 77 MB at 50k, past which IVF-SQ8 is both faster and 4x smaller.
FLAT_MAX_CHUNKS = 50_000
# IVF k-means: at least this many training points a list (FAISS warns below 39), at most this many
# sampled a list, and 10 rounds: more rounds or points changed recall@10 by < 0.005 (bench/README.md).
IVF_MIN_POINTS_PER_LIST = 39
IVF_SAMPLE_PER_LIST = 40
IVF_KMEANS_ROUNDS = 10
IVF_SAMPLE_SEED = 1234
# Lists probed: at least 32 (recall@10 ~0.97 on 1M chunks, bench/README.md), or 1/64 of them.
IVF_MIN_PROBES = 32
ADD_BLOCK_ROWS = 65_536  # vectors added to FAISS at a time: bounded temporary memory


def choose_index_type(chunks: int, flat_max: int = FLAT_MAX_CHUNKS) -> str:
    """The dense index type for a corpus of `chunks` chunks: exact when small, compressed when large."""
    return FLAT if chunks <= flat_max else IVF_SQ8


def ivf_params(chunks: int) -> dict:
    """Inverted-file settings for `chunks` vectors: the number of lists (the largest power of two
    up to 4*sqrt(n), with enough training points a list for k-means: 2048 lists for 1M chunks) and
    the lists probed per search (recall@10 ~0.97 on 1M chunks, see bench/README.md)."""
    nlist = 1
    while nlist * 2 <= 4 * chunks ** 0.5 and nlist * 2 * IVF_MIN_POINTS_PER_LIST <= chunks:
        nlist *= 2
    return {"nlist": nlist, "nprobe": min(nlist, max(IVF_MIN_PROBES, nlist // 64))}


# FAISS indexes are typed `Any`: its SWIG classes gain attributes by type (an IVF index's `nprobe`,
# `cp`, `make_direct_map`) that its stubs do not follow through `index_factory`.
FaissIndex = Any


def build_dense_index(vectors: np.ndarray, index_type: str, params: dict | None = None) -> FaissIndex:
    """A FAISS inner-product index of `index_type` holding `vectors` (row i = vector i)."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dimension = vectors.shape
    if index_type == FLAT:
        flat: FaissIndex = faiss.IndexFlatIP(dimension)
        if n:
            flat.add(vectors)
        return flat
    if index_type != IVF_SQ8:
        raise ValueError(f"unknown dense index type {index_type!r} (use one of {', '.join(INDEX_TYPES)})")
    params = params or ivf_params(n)
    index: FaissIndex = faiss.index_factory(dimension, f"IVF{params['nlist']},SQ8", faiss.METRIC_INNER_PRODUCT)
    # k-means on a fixed-seed sample: stable enough lists at a bounded cost on a million vectors.
    index.cp.niter = IVF_KMEANS_ROUNDS
    sample = min(n, IVF_SAMPLE_PER_LIST * params["nlist"])
    train = vectors if sample == n else vectors[np.sort(
        np.random.default_rng(IVF_SAMPLE_SEED).choice(n, sample, replace=False))]
    index.train(train)
    for start in range(0, n, ADD_BLOCK_ROWS):
        index.add(vectors[start:start + ADD_BLOCK_ROWS])
    index.nprobe = params["nprobe"]
    index.make_direct_map()  # reconstruct(row) for re-scoring passages that BM25 alone found
    return index


def search_one(index: FaissIndex, vector: np.ndarray, k: int, params: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of one query's `k` nearest vectors, searched on the calling thread alone.

    A single query gains nothing from FAISS's OpenMP threads (flat and IVF search split the work
    by query), but opening a parallel region costs a wake-up of every pool thread: on 2 busy cores
    that made a 60k-vector flat search 5x slower (31 ms instead of 6 ms). The thread count is an
    OpenMP setting of the calling thread, and it is restored afterwards (index building keeps its
    threads). `params` are FAISS search parameters (an id selector limiting the rows searched).
    """
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        scores, rows = index.search(query, k) if params is None else index.search(query, k, params=params)
    finally:
        faiss.omp_set_num_threads(threads)
    return scores[0], rows[0]


# Scopes (collections searched) whose FAISS selector or decoded vectors a store keeps, and the
# most rows of a scope searched exactly over its decoded vectors on an IVF-SQ8 store (1.5 KB a
# row: 4 scopes of 20k rows keep at most 120 MB).
SCOPED_CACHE = 4
EXACT_SCOPE_ROWS = 20_000


def _padded(scores: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`k` results as FAISS gives them: missing ones are row -1."""
    missing = k - len(rows)
    if missing <= 0:
        return scores.astype(np.float32), rows.astype(np.int64)
    return (np.concatenate([scores, np.full(missing, -np.inf)]).astype(np.float32),
            np.concatenate([rows, np.full(missing, -1)]).astype(np.int64))


class ScopedSearch:
    """FAISS search limited to some rows (a `collections.Scope`), inside the search, so a narrow
    collection still gets its full top-k (filtering a top-k afterwards would leave it nothing).

    Flat: the exact search with an id selector (a bitmap of the rows: only they are scored).
    IVF-SQ8: a scope small enough that scanning all its rows costs at most twice what an
    unfiltered search scores (its probed lists' rows and the list centroids; and at most
    EXACT_SCOPE_ROWS) is searched exactly, over its own decoded vectors in a flat index kept for
    the next question: what an index built from that collection alone would be at that size. A
    larger one by the IVF search with the selector and proportionally more lists probed, so about
    as many of its rows are scored as an unfiltered search scores in all.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple, Any] = {}
        self._lock = threading.Lock()  # answers run on several threads

    def search(self, index: FaissIndex, store: "FaissStore", vector: np.ndarray, k: int,
               scope: "Scope") -> tuple[np.ndarray, np.ndarray]:
        rows = np.asarray(scope.rows, dtype=np.int64)
        if not len(rows) or k <= 0:
            return _padded(np.zeros(0), np.zeros(0, dtype=np.int64), max(k, 0))
        if len(rows) == index.ntotal:
            return search_one(index, vector, k)
        prepared = self._prepared(index, store, rows, scope.key)
        if len(prepared) == 1:  # a small scope's own vectors, in an exact index of their own
            scores, found = search_one(prepared[0], vector, min(k, len(rows)))
            kept = found >= 0
            return _padded(scores[kept], rows[found[kept]], k)
        return search_one(index, vector, k, prepared[-1])

    def _prepared(self, index: FaissIndex, store: "FaissStore", rows: np.ndarray, key: tuple) -> Any:
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            prepared = self._prepare(index, store, rows)
            if len(self._cache) >= SCOPED_CACHE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = prepared
            return prepared

    @staticmethod
    def _prepare(index: FaissIndex, store: "FaissStore", rows: np.ndarray) -> Any:
        import faiss

        scored = index.nprobe * index.ntotal / index.nlist + index.nlist if store.index_type != FLAT else 0
        if store.index_type != FLAT and len(rows) <= min(EXACT_SCOPE_ROWS, 2 * scored):
            prepared: Any = (build_dense_index(index.reconstruct_batch(rows), FLAT),)
        else:
            mask = np.zeros(index.ntotal, dtype=bool)
            mask[rows] = True
            bitmap = np.packbits(mask, bitorder="little")
            selector = faiss.IDSelectorBitmap(index.ntotal, faiss.swig_ptr(bitmap))
            params: Any = faiss.SearchParameters() if store.index_type == FLAT else faiss.SearchParametersIVF()
            params.sel = selector
            if store.index_type != FLAT:
                params.nprobe = min(index.nlist, int(np.ceil(index.nprobe * index.ntotal / len(rows))))
            prepared = (bitmap, selector, params)  # the bitmap and selector must outlive the params
        return prepared


class FaissStore:
    """A `VectorStore` in one FAISS file, its type chosen from the number of rows when it is built.

    The FAISS index is (re)built lazily, on the first search or save after a change, so adding
    many documents costs one build. A flat store keeps its float vectors; an IVF-SQ8 store keeps
    only the 8-bit codes and decodes rows on demand.
    """

    capabilities = StoreCapabilities("faiss")

    def __init__(self, dimension: int, flat_max: int = FLAT_MAX_CHUNKS) -> None:
        self.dimension = dimension
        self.flat_max = flat_max  # row count above which the store is compressed
        self.index_type = FLAT
        self.index_params: dict = {}
        self._float: np.ndarray | None = np.zeros((0, dimension), dtype=np.float32)
        self._faiss: FaissIndex = None
        self._scoped = ScopedSearch()

    def __len__(self) -> int:
        return len(self._float) if self._float is not None else int(self._faiss.ntotal)

    def _all(self) -> np.ndarray:
        if self._float is None:
            self._float = self._faiss.reconstruct_n(0, self._faiss.ntotal)
        return self._float

    def add(self, vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        self._changed(np.vstack([self._all(), vectors]).astype(np.float32))

    def remove(self, rows: Sequence[int]) -> None:
        keep = np.ones(len(self), dtype=bool)
        keep[np.asarray(list(rows), dtype=np.int64)] = False
        self._changed(self._all()[keep])

    def _changed(self, vectors: np.ndarray) -> None:
        """New rows: choose the type for their number now, build the FAISS index on first need."""
        self._float = vectors
        self._faiss = None
        self._scoped = ScopedSearch()
        self.index_type = choose_index_type(len(vectors), self.flat_max)
        self.index_params = ivf_params(len(vectors)) if self.index_type == IVF_SQ8 else {}

    def _built(self):
        if self._faiss is None:
            self._faiss = build_dense_index(self._float, self.index_type, self.index_params)
            if self.index_type != FLAT:
                self._float = None  # the 8-bit codes replace the float copy (4x less memory)
        return self._faiss

    def search(self, vector: np.ndarray, k: int, scope: "Scope | None" = None) -> tuple[np.ndarray, np.ndarray]:
        if scope is None or scope.rows is None:
            return search_one(self._built(), vector, k)
        return self._scoped.search(self._built(), self, vector, k, scope)

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        rows = [int(r) for r in rows]
        if self._float is not None:
            return self._float[rows]
        if not rows:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._faiss.reconstruct_batch(np.asarray(rows, dtype=np.int64))

    def manifest(self) -> dict:
        self._built()
        return {"index_type": self.index_type, "index_params": self.index_params}

    def save(self, directory: Path) -> None:
        import faiss

        faiss.write_index(self._built(), str(directory / VECTORS_FILE))

    @classmethod
    def load(cls, version: Path, manifest: Mapping, rows: int) -> "FaissStore":
        """The store saved in `version`, checked against the manifest and the index's row count."""
        import faiss

        path = version / VECTORS_FILE
        try:
            index: FaissIndex = faiss.read_index(str(path))
        except (OSError, RuntimeError) as exc:
            raise IndexCorruptError(f"{version}: cannot read the index ({type(exc).__name__}); "
                                    f"{REBUILD_HINT}") from None
        dimension = int(manifest["dimension"])
        if index.ntotal != rows or index.d != dimension:
            raise IndexCorruptError(f"{path}: holds {index.ntotal} vectors for {rows} chunks; {REBUILD_HINT}")
        index_type = manifest.get("index_type", FLAT)
        if index_type not in INDEX_TYPES or (index_type == FLAT) != isinstance(index, faiss.IndexFlat):
            raise IndexCorruptError(f"{path}: not a {index_type!r} index as the manifest says; {REBUILD_HINT}")
        store = cls(dimension)
        store.index_type = index_type
        store.index_params = dict(manifest.get("index_params") or {})
        store._faiss = index
        store._scoped = ScopedSearch()
        if index_type == FLAT:
            store._float = index.reconstruct_n(0, index.ntotal) if index.ntotal else store._float
        else:
            index.nprobe = int(store.index_params.get("nprobe", index.nprobe))
            index.make_direct_map()
            store._float = None  # decoded on demand (see `vectors`)
        return store
