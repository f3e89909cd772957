"""Step 2, retrieve: the best passages (chunks) for a question, dense and BM25 candidates fused
by a `FusionStrategy` (see fusion.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from embeddings.index import Hit, Index

from .fusion import Candidates, FusionStrategy, InStoreFusion


@dataclass(frozen=True)
class Passage:
    row: int
    hit: Hit
    fused: float  # the fused score the ranking uses
    dense: float  # cosine similarity to the query (computed for every passage, not only dense hits)
    keyword: float  # BM25 score (0 when BM25 did not return it)
    rank: int  # 0-based fused rank
    keyword_norm: float = 0.0  # BM25 score divided by the query's best BM25 score, 0..1


def gather_candidates(index: Index, query: str, query_vector: np.ndarray, depth: int,
                      fusion: FusionStrategy, collections: Sequence[str] | None = None) -> Candidates:
    """Up to `depth` candidates from each retriever the strategy uses, with every candidate's
    cosine (from the stored vectors when only BM25 found it) and normalised BM25 score; only
    chunks of `collections` when given (None: every chunk)."""
    if isinstance(fusion, InStoreFusion):
        return _in_store_candidates(index, query, query_vector, depth, fusion, collections)
    found = index.search(depth, text=query if fusion.uses_keyword else None,
                         vector=query_vector if fusion.uses_dense else None, collections=collections)
    dense_hits, keyword_hits = found.dense, found.keyword
    dense = {h.row: h.score for h in dense_hits}
    keyword = {h.row: h.score for h in keyword_hits}
    rows = list(dict.fromkeys([h.row for h in dense_hits] + [h.row for h in keyword_hits]))
    missing = [row for row in rows if row not in dense]
    if missing:
        sims = index.vectors(missing) @ np.asarray(query_vector, dtype=np.float32).reshape(-1)
        dense.update(zip(missing, (float(s) for s in sims)))
    best_keyword = max(keyword.values(), default=0.0)
    keyword_norm = {row: s / best_keyword for row, s in keyword.items()} if best_keyword > 0 else {}
    return Candidates(dense_hits, keyword_hits, rows, dense, keyword, keyword_norm)


def _in_store_candidates(index: Index, query: str, query_vector: np.ndarray, depth: int,
                         fusion: InStoreFusion, collections: Sequence[str] | None) -> Candidates:
    """Candidates ranked by the store's own hybrid search; every one's cosine read back from its
    stored vector (the judge needs it), no BM25 score (the store does not return it)."""
    hits = index.search_hybrid(query, query_vector, depth, ranker=fusion.ranker, rrf_k=fusion.k,
                               dense_weight=fusion.dense_weight, collections=collections)
    rows = [h.row for h in hits]
    sims = index.vectors(rows) @ np.asarray(query_vector, dtype=np.float32).reshape(-1) if rows else np.zeros(0)
    dense = {row: float(s) for row, s in zip(rows, sims)}
    return Candidates(hits, [], rows, dense, {}, {}, store_fused={h.row: h.score for h in hits})


def retrieve(index: Index, query: str, query_vector: np.ndarray, *, top_k: int, candidates: int,
             fusion: FusionStrategy, collections: Sequence[str] | None = None) -> list[Passage]:
    """The best `top_k` passages for `query`, ranked by the fusion strategy, from the chunks of
    `collections` (None: all)."""
    if top_k <= 0 or not len(index):
        return []
    found = gather_candidates(index, query, query_vector, max(candidates, top_k), fusion, collections)
    if not found.rows:
        return []
    fused = fusion.fuse(found)
    dense = found.dense
    # Ties (rare) go to the dense order, then to the row number, so results are deterministic.
    best = sorted(fused, key=lambda row: (-fused[row], -dense[row], row))[:top_k]
    return [
        Passage(row, Hit(row, index.chunks[row], dense[row]), fused[row], dense[row],
                found.keyword.get(row, 0.0), rank, found.keyword_norm.get(row, 0.0))
        for rank, row in enumerate(best)
    ]
