"""Hybrid passage retrieval: dense (FAISS) and keyword (BM25) rankings fused by weighted RRF.

Reciprocal rank fusion needs no score calibration between the two retrievers, which is why it is
robust across corpora: each list contributes weight / (rrf_k + rank).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embeddings.index import Hit, Index


@dataclass(frozen=True)
class Passage:
    row: int
    hit: Hit
    fused: float  # RRF score, used for ranking
    dense: float  # cosine similarity to the query (computed for every passage, not only dense hits)
    keyword: float  # BM25 score (0 when BM25 did not return it)
    rank: int  # 0-based fused rank


def retrieve(index: Index, query: str, query_vector: np.ndarray, *, top_k: int, candidates: int,
             rrf_k: int = 60, dense_weight: float = 0.5, mode: str = "hybrid") -> list[Passage]:
    """The best `top_k` passages for `query` ("hybrid", "dense" or "keyword" ranking)."""
    dense_hits = index.search_dense(query_vector, candidates) if mode != "keyword" else []
    keyword_hits = index.search_keyword(query, candidates) if mode != "dense" else []
    fused: dict[int, float] = {}
    for rank, hit in enumerate(dense_hits):
        fused[hit.row] = fused.get(hit.row, 0.0) + dense_weight / (rrf_k + rank + 1)
    for rank, hit in enumerate(keyword_hits):
        fused[hit.row] = fused.get(hit.row, 0.0) + (1 - dense_weight) / (rrf_k + rank + 1)
    if mode == "dense":
        fused = {h.row: h.score for h in dense_hits}
    elif mode == "keyword":
        fused = {h.row: h.score for h in keyword_hits}
    best = sorted(fused, key=lambda row: -fused[row])[:top_k]
    if not best:
        return []
    dense_score = {h.row: h.score for h in dense_hits}
    keyword_score = {h.row: h.score for h in keyword_hits}
    missing = [row for row in best if row not in dense_score]
    if missing:
        for row, score in zip(missing, index.vectors(missing) @ np.asarray(query_vector, dtype=np.float32)):
            dense_score[row] = float(score)
    return [
        Passage(row, Hit(row, index.chunks[row], dense_score[row]), fused[row], dense_score[row],
                keyword_score.get(row, 0.0), rank)
        for rank, row in enumerate(best)
    ]
