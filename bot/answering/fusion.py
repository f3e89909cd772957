"""How the dense (FAISS) and keyword (BM25) candidate lists become one ranking.

A `FusionStrategy` turns the candidates of both retrievers into one fused score per row and says
which retrievers it needs. Strategies are chosen by name (``[retrieval] mode`` and ``fusion``)
from registries, so a new one is one class and one registry entry:

- ``"score"`` (default): ``dense_weight * cosine + (1 - dense_weight) * bm25 / best_bm25``. The
  cosine is known for every candidate (BM25-only ones too, from the stored vectors), and BM25 is
  divided by the query's best BM25 score, so both terms run 0..1. On the SQuAD evaluation set this
  beats both retrievers alone at every k, and beats reciprocal rank fusion (docs/quality.md).
- ``"rrf"``: weighted reciprocal rank fusion, ``weight / (rrf_k + rank)`` summed over both lists.
- ``"milvus-rrf"`` / ``"milvus-weighted"`` (``store_backend = "milvus"`` only): Milvus's own hybrid
  search, one request that runs the dense and the BM25 search and fuses them server-side with its
  `RRFRanker` (``rrf_k``) or `WeightedRanker` (``dense_weight``); the bot only reads the fused
  ranking (and each passage's cosine, from the stored vectors, for the judge).
- modes ``"dense"`` and ``"keyword"``: one retriever alone, its own score as the ranking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Protocol, Sequence

from embeddings.index import Hit

HYBRID = "hybrid"


@dataclass(frozen=True)
class Candidates:
    """Both retrievers' answers for one query, and every candidate's scores from each."""

    dense_hits: Sequence[Hit]  # dense ranking, best first ([] when the strategy skips it)
    keyword_hits: Sequence[Hit]  # BM25 ranking, best first ([] when the strategy skips it)
    rows: Sequence[int]  # every candidate row once: dense hits first, then BM25-only ones
    dense: Mapping[int, float]  # cosine to the query, for every row
    keyword: Mapping[int, float]  # BM25 score, for rows BM25 returned
    keyword_norm: Mapping[int, float]  # BM25 / the query's best BM25, 0..1, for rows BM25 returned
    store_fused: Mapping[int, float] | None = None  # the store's own fused score (InStoreFusion)


class FusionStrategy(Protocol):
    """One fused score per candidate row (higher is better)."""

    @property
    def uses_dense(self) -> bool: ...  # read-only: the strategies are frozen dataclasses

    @property
    def uses_keyword(self) -> bool: ...

    def fuse(self, candidates: Candidates) -> dict[int, float]: ...


@dataclass(frozen=True)
class ScoreFusion:
    """``dense_weight * cosine + (1 - dense_weight) * normalised BM25`` over every candidate."""

    dense_weight: float
    uses_dense: bool = True
    uses_keyword: bool = True

    def fuse(self, candidates: Candidates) -> dict[int, float]:
        w = self.dense_weight
        return {row: w * candidates.dense[row] + (1 - w) * candidates.keyword_norm.get(row, 0.0)
                for row in candidates.rows}


@dataclass(frozen=True)
class ReciprocalRankFusion:
    """``dense_weight / (k + rank) + (1 - dense_weight) / (k + rank)``, ranks counted from 1."""

    dense_weight: float
    k: int
    uses_dense: bool = True
    uses_keyword: bool = True

    def fuse(self, candidates: Candidates) -> dict[int, float]:
        fused: dict[int, float] = {}
        for weight, hits in ((self.dense_weight, candidates.dense_hits),
                             (1 - self.dense_weight, candidates.keyword_hits)):
            for rank, hit in enumerate(hits):
                fused[hit.row] = fused.get(hit.row, 0.0) + weight / (self.k + rank + 1)
        return fused


@dataclass(frozen=True)
class InStoreFusion:
    """Milvus's hybrid search fuses the two lists itself (`ranker` "rrf" or "weighted")."""

    ranker: str
    dense_weight: float
    k: int
    uses_dense: bool = True
    uses_keyword: bool = True

    def fuse(self, candidates: Candidates) -> dict[int, float]:
        return dict(candidates.store_fused or {})


@dataclass(frozen=True)
class DenseOnly:
    """Mode "dense": the cosine alone."""

    uses_dense: bool = True
    uses_keyword: bool = False

    def fuse(self, candidates: Candidates) -> dict[int, float]:
        return {row: candidates.dense[row] for row in candidates.rows}


@dataclass(frozen=True)
class KeywordOnly:
    """Mode "keyword": BM25 alone."""

    uses_dense: bool = False
    uses_keyword: bool = True

    def fuse(self, candidates: Candidates) -> dict[int, float]:
        return dict(candidates.keyword)


# name -> factory(dense_weight, rrf_k). The hybrid fusions:
FUSIONS: dict[str, Callable[[float, int], FusionStrategy]] = {
    "score": lambda dense_weight, rrf_k: ScoreFusion(dense_weight),
    "rrf": lambda dense_weight, rrf_k: ReciprocalRankFusion(dense_weight, rrf_k),
    "milvus-rrf": lambda dense_weight, rrf_k: InStoreFusion("rrf", dense_weight, rrf_k),
    "milvus-weighted": lambda dense_weight, rrf_k: InStoreFusion("weighted", dense_weight, rrf_k),
}
# The single-retriever modes (mode "hybrid" takes its strategy from FUSIONS):
SINGLE_MODES: dict[str, Callable[[], FusionStrategy]] = {"dense": DenseOnly, "keyword": KeywordOnly}
MODES = (HYBRID, *SINGLE_MODES)


def fusion_strategy(mode: str, fusion: str, *, dense_weight: float, rrf_k: int) -> FusionStrategy:
    """The strategy for a retrieval mode and, in hybrid mode, a fusion name.

    Raises ValueError naming the allowed values for an unknown mode or fusion.
    """
    if mode in SINGLE_MODES:
        return SINGLE_MODES[mode]()
    if mode != HYBRID:
        raise ValueError(f"unknown retrieval mode {mode!r} (use one of {', '.join(MODES)})")
    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r} (use one of {', '.join(FUSIONS)})")
    return FUSIONS[fusion](dense_weight, rrf_k)
