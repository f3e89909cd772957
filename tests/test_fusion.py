"""Fusion strategies on synthetic hits, and `retrieve` through both fusions over a small real index
(FAISS + BM25) embedded with the fake hash encoder: no model."""

from __future__ import annotations

import pytest

from bot.answering.fusion import (FUSIONS, MODES, Candidates, DenseOnly, KeywordOnly, ReciprocalRankFusion,
                                  InStoreFusion, ScoreFusion, fusion_strategy)
from bot.answering.retrieval import retrieve
from embeddings.documents import Document
from embeddings.index import ChunkRecord, Hit, Index


def _hit(row: int, score: float) -> Hit:
    chunk = ChunkRecord(f"d#{row}", "d", row, 0, 1, "x", ((0, 1),))
    return Hit(row, chunk, score)


# Dense ranks rows 1, 2, 3; BM25 ranks rows 3, 4 (row 4 is BM25-only: its cosine came from the
# stored vectors).
CANDIDATES = Candidates(
    dense_hits=[_hit(1, 0.9), _hit(2, 0.8), _hit(3, 0.7)],
    keyword_hits=[_hit(3, 12.0), _hit(4, 6.0)],
    rows=[1, 2, 3, 4],
    dense={1: 0.9, 2: 0.8, 3: 0.7, 4: 0.1},
    keyword={3: 12.0, 4: 6.0},
    keyword_norm={3: 1.0, 4: 0.5},
)


def test_score_fusion_weighs_cosine_against_normalised_bm25():
    fused = ScoreFusion(dense_weight=0.6).fuse(CANDIDATES)
    assert fused == pytest.approx({1: 0.54, 2: 0.48, 3: 0.82, 4: 0.26})
    assert ScoreFusion(dense_weight=1.0).fuse(CANDIDATES) == pytest.approx(dict(CANDIDATES.dense))


def test_reciprocal_rank_fusion_sums_weighted_reciprocal_ranks():
    fused = ReciprocalRankFusion(dense_weight=0.5, k=60).fuse(CANDIDATES)
    assert fused == pytest.approx({
        1: 0.5 / 61, 2: 0.5 / 62,
        3: 0.5 / 63 + 0.5 / 61,  # third for dense, first for BM25: best overall
        4: 0.5 / 62,
    })
    assert max(fused, key=fused.get) == 3
    # All weight on BM25: dense-only rows score nothing.
    assert ReciprocalRankFusion(dense_weight=0.0, k=60).fuse(CANDIDATES)[1] == 0.0


def test_single_retriever_modes_rank_by_their_own_score():
    assert DenseOnly().fuse(CANDIDATES) == dict(CANDIDATES.dense)
    assert KeywordOnly().fuse(CANDIDATES) == {3: 12.0, 4: 6.0}
    assert (DenseOnly().uses_dense, DenseOnly().uses_keyword) == (True, False)
    assert (KeywordOnly().uses_dense, KeywordOnly().uses_keyword) == (False, True)


def test_strategies_are_chosen_by_name():
    assert fusion_strategy("hybrid", "score", dense_weight=0.6, rrf_k=60) == ScoreFusion(0.6)
    assert fusion_strategy("hybrid", "rrf", dense_weight=0.6, rrf_k=30) == ReciprocalRankFusion(0.6, 30)
    assert isinstance(fusion_strategy("dense", "rrf", dense_weight=0.6, rrf_k=60), DenseOnly)
    assert isinstance(fusion_strategy("keyword", "score", dense_weight=0.6, rrf_k=60), KeywordOnly)
    assert fusion_strategy("hybrid", "milvus-rrf", dense_weight=0.6, rrf_k=60) == InStoreFusion("rrf", 0.6, 60)
    assert fusion_strategy("hybrid", "milvus-weighted", dense_weight=0.6, rrf_k=60) == InStoreFusion("weighted", 0.6, 60)
    assert set(FUSIONS) == {"score", "rrf", "milvus-rrf", "milvus-weighted"}
    with pytest.raises(ValueError, match="unknown fusion 'bogus'"):
        fusion_strategy("hybrid", "bogus", dense_weight=0.6, rrf_k=60)
    with pytest.raises(ValueError, match="unknown retrieval mode 'magic'"):
        fusion_strategy("magic", "score", dense_weight=0.6, rrf_k=60)


# --- retrieve() over a real small index ------------------------------------------------------

TOPICS = {
    "geneva": "Talks on security guarantees open in Geneva on January 10. Diplomats from both "
              "sides will attend the Geneva talks.",
    "oil": "The oil embargo of 1973 raised prices. Oil producers cut output for months.",
    "amazon": "The Amazon rainforest covers much of the basin. Its trees store vast carbon.",
    "parliament": "The Scottish Parliament building was designed by Enric Miralles. It opened in 2004.",
}


@pytest.fixture(scope="module")
def small_index(fake_encoder):
    index = Index(fake_encoder.model_name, fake_encoder.dimension, chunk_words=30, sentence_overlap=0)
    index.add([Document(doc_id=name, title=name.title(), text=text, source=f"{name}.txt")
               for name, text in TOPICS.items()], fake_encoder, batch_size=32)
    return index


@pytest.mark.parametrize("strategy", [ScoreFusion(0.6), ReciprocalRankFusion(0.5, 60), DenseOnly(),
                                      KeywordOnly()], ids=["score", "rrf", "dense", "keyword"])
def test_retrieve_ranks_the_matching_passage_first_with_every_strategy(small_index, fake_encoder, strategy):
    query = "When do the Geneva talks open?"
    passages = retrieve(small_index, query, fake_encoder.encode([query])[0], top_k=3, candidates=4,
                        fusion=strategy)
    assert passages and passages[0].hit.chunk.doc_id == "geneva"
    assert [p.rank for p in passages] == list(range(len(passages)))
    assert all(a.fused >= b.fused for a, b in zip(passages, passages[1:]))
    assert all(0.0 <= p.keyword_norm <= 1.0 for p in passages)


def test_rrf_through_retrieve_matches_its_formula(small_index, fake_encoder):
    query = "Who designed the Scottish Parliament building?"
    vector = fake_encoder.encode([query])[0]
    passages = retrieve(small_index, query, vector, top_k=4, candidates=4, fusion=ReciprocalRankFusion(0.5, 60))
    found = small_index.search(4, text=query, vector=vector)
    dense_rank = {h.row: r for r, h in enumerate(found.dense)}
    keyword_rank = {h.row: r for r, h in enumerate(found.keyword)}
    for p in passages:
        expected = sum(0.5 / (60 + ranks[p.row] + 1) for ranks in (dense_rank, keyword_rank) if p.row in ranks)
        assert p.fused == pytest.approx(expected)
    assert passages[0].hit.chunk.doc_id == "parliament"


def test_retrieve_returns_nothing_for_top_k_zero(small_index, fake_encoder):
    vector = fake_encoder.encode(["oil"])[0]
    assert retrieve(small_index, "oil", vector, top_k=0, candidates=4, fusion=ScoreFusion(0.6)) == []


def test_the_settings_accept_exactly_the_registered_names():
    from bot import settings

    assert set(settings.FUSIONS) == set(FUSIONS)
    assert set(settings.RETRIEVAL_MODES) == set(MODES)
