"""Hybrid passage retrieval: dense (FAISS) and keyword (BM25) candidates, fused into one ranking.

Two fusions are available (``[retrieval] fusion``):

- ``"score"`` (default): each candidate of either retriever gets
  ``dense_weight * cosine + (1 - dense_weight) * bm25 / best_bm25``. The cosine is computed for
  every candidate (BM25-only ones too, from the stored vectors), and BM25 is divided by the best
  BM25 score of the query so both terms run 0..1. On the SQuAD evaluation set this beats both
  retrievers alone at every k, and beats reciprocal rank fusion (see README, "Answer quality").
- ``"rrf"``: weighted reciprocal rank fusion, ``weight / (rrf_k + rank)`` summed over both lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embeddings.index import Hit, Index

MODES = ("hybrid", "dense", "keyword")


@dataclass(frozen=True)
class Passage:
    row: int
    hit: Hit
    fused: float  # the fused score the ranking uses
    dense: float  # cosine similarity to the query (computed for every passage, not only dense hits)
    keyword: float  # BM25 score (0 when BM25 did not return it)
    rank: int  # 0-based fused rank
    keyword_norm: float = 0.0  # BM25 score divided by the query's best BM25 score, 0..1


def retrieve(index: Index, query: str, query_vector: np.ndarray, *, top_k: int, candidates: int,
             rrf_k: int = 60, dense_weight: float = 0.5, mode: str = "hybrid",
             fusion: str = "score") -> list[Passage]:
    """The best `top_k` passages for `query`, ranked by `mode` ("hybrid", "dense" or "keyword")."""
    if mode not in MODES:
        raise ValueError(f"unknown retrieval mode {mode!r} (use one of {', '.join(MODES)})")
    if top_k <= 0 or not len(index):
        return []
    depth = max(candidates, top_k)
    dense_hits = index.search_dense(query_vector, depth) if mode != "keyword" else []
    keyword_hits = index.search_keyword(query, depth) if mode != "dense" else []
    dense_score = {h.row: h.score for h in dense_hits}
    keyword_score = {h.row: h.score for h in keyword_hits}
    rows = list(dict.fromkeys([h.row for h in dense_hits] + [h.row for h in keyword_hits]))
    if not rows:
        return []
    missing = [row for row in rows if row not in dense_score]
    if missing:
        sims = index.vectors(missing) @ np.asarray(query_vector, dtype=np.float32).reshape(-1)
        dense_score.update(zip(missing, (float(s) for s in sims)))
    best_keyword = max(keyword_score.values(), default=0.0)
    keyword_norm = {row: s / best_keyword for row, s in keyword_score.items()} if best_keyword > 0 else {}

    if mode == "dense":
        fused = {row: dense_score[row] for row in rows}
    elif mode == "keyword":
        fused = dict(keyword_score)
    elif fusion == "rrf":
        fused = {}
        for rank, hit in enumerate(dense_hits):
            fused[hit.row] = fused.get(hit.row, 0.0) + dense_weight / (rrf_k + rank + 1)
        for rank, hit in enumerate(keyword_hits):
            fused[hit.row] = fused.get(hit.row, 0.0) + (1 - dense_weight) / (rrf_k + rank + 1)
    elif fusion == "score":
        fused = {row: dense_weight * dense_score[row] + (1 - dense_weight) * keyword_norm.get(row, 0.0)
                 for row in rows}
    else:
        raise ValueError(f"unknown fusion {fusion!r} (use 'score' or 'rrf')")
    # Ties (rare) go to the dense order, then to the row number, so results are deterministic.
    best = sorted(fused, key=lambda row: (-fused[row], -dense_score[row], row))[:top_k]
    return [
        Passage(row, Hit(row, index.chunks[row], dense_score[row]), fused[row], dense_score[row],
                keyword_score.get(row, 0.0), rank, keyword_norm.get(row, 0.0))
        for rank, row in enumerate(best)
    ]
