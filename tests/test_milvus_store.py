"""The index on Milvus (`[store] store_backend = "milvus"`), against milvus-lite in-process: the
same rows, hits and BM25 scores as FAISS + bm25s, ingest and re-ingest by hash, `docs remove`,
Milvus's own hybrid search, and the manifest's consistency checks that replace file checksums."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="the Milvus backend needs qabot[scale] (make install installs it)")

from embeddings.errors import IndexCorruptError, IndexMismatchError
from embeddings.index import Index
from embeddings.ingest import IngestOptions, ingest, remove_documents
from embeddings.milvus import KEYS_FILE, MilvusStore
from embeddings.storage import current_version

from .conftest import SAMPLE, HashEncoder

PORT = "Port report\n\nThe port of Odesa reopened on May 2 after repairs to berth 4. " \
       "Grain ships left the port of Odesa for Istanbul.\n"
RAIL = "Rail report\n\nThe rail line to Lviv carried 40 trains on May 3.\n"
QUESTIONS = ("What deadline did Ryabkov give?", "When are the talks in Geneva?", "Which port reopened?",
             "How many trains went to Lviv?")


def _options(settings, backend: str) -> IngestOptions:
    env = settings.replace("store", store_backend=backend)
    return replace(IngestOptions.from_settings(env), model_name=HashEncoder.model_name)


def _ranked(hits) -> list[tuple[float, int]]:
    """(score, row) best first; rows of equal score (ties) in row order, as either store may break them."""
    return sorted(((round(-h.score, 4), h.row) for h in hits))


@pytest.fixture
def corpus(tmp_path):
    (tmp_path / "port.txt").write_text(PORT)
    (tmp_path / "rail.txt").write_text(RAIL)
    return [SAMPLE, tmp_path / "port.txt", tmp_path / "rail.txt"]


@pytest.fixture
def both(corpus, tmp_path, settings):
    """The same documents indexed on FAISS and on milvus-lite (the hashing encoder)."""
    for backend in ("faiss", "milvus"):
        ingest(corpus, tmp_path / backend, _options(settings, backend), encoder_factory=HashEncoder)
    return Index.load(tmp_path / "faiss"), Index.load(tmp_path / "milvus")


@pytest.mark.slow  # a milvus-lite server to start: the integration tier
def test_milvus_returns_the_rows_and_scores_of_faiss_and_bm25s(both):
    faiss_index, milvus_index = both
    assert isinstance(milvus_index.store, MilvusStore) and len(milvus_index) == len(faiss_index) > 3
    assert milvus_index.store.entity_count() == len(milvus_index)
    encoder = HashEncoder()
    for question in QUESTIONS:
        vector = encoder.encode([question])[0]
        every = len(faiss_index)  # all rows: no tie is cut differently at k
        assert _ranked(milvus_index.search_dense(vector, every)) == _ranked(faiss_index.search_dense(vector, every))
        found = milvus_index.search_keyword(question, every)  # Milvus's BM25 full-text search
        assert found and _ranked(found) == _ranked(faiss_index.search_keyword(question, every)), question
    rows = [0, 2]
    assert np.allclose(milvus_index.vectors(rows), faiss_index.vectors(rows), atol=1e-6)


@pytest.mark.slow  # milvus-lite servers to start: keeps make test-fast under a minute
def test_milvus_hybrid_search_fuses_dense_and_bm25_with_its_rankers(both):
    _, index = both
    question = "Which port reopened?"
    vector = HashEncoder().encode([question])[0]
    terms = index.keyword.query_tokens(question)
    port_rows = {h.row for h in index.search_keyword(question, 3)}
    for ranker in ("rrf", "weighted"):
        scores, rows = index.store.hybrid_search(vector, terms, 3, ranker=ranker)
        assert rows[0] in port_rows and list(scores) == sorted(scores, reverse=True), ranker


@pytest.mark.slow  # milvus-lite servers to start: keeps make test-fast under a minute
def test_reingest_by_hash_and_docs_remove_keep_milvus_in_step(corpus, tmp_path, settings):
    index_dir, options = tmp_path / "index", _options(settings, "milvus")
    first = ingest(corpus, index_dir, options, encoder_factory=HashEncoder)
    again = ingest(corpus, index_dir, options, encoder_factory=HashEncoder)
    assert again.report.skipped and not again.report.changed  # unchanged: nothing written
    (tmp_path / "rail.txt").write_text(RAIL.replace("40 trains", "41 trains"))
    changed = ingest(corpus, index_dir, options, encoder_factory=HashEncoder)
    assert changed.report.updated == [str((tmp_path / "rail.txt").resolve())]
    index = Index.load(index_dir)
    assert index.store.entity_count() == len(index) == first.chunks_total  # the old rail chunk deleted
    assert "41 trains" in index.search_keyword("How many trains went to Lviv?", 1)[0].chunk.text
    port = str((tmp_path / "port.txt").resolve())
    assert [d.doc_id for d in remove_documents(index_dir, [port], lock_timeout=5)] == [port]
    index = Index.load(index_dir)
    assert port not in index.documents and index.store.entity_count() == len(index)
    assert all(h.chunk.doc_id != port for h in index.search_keyword("Odesa port berth", 5))


@pytest.mark.slow  # milvus-lite servers to start: keeps make test-fast under a minute
def test_a_faiss_index_is_not_silently_extended_on_milvus(corpus, tmp_path, settings):
    ingest(corpus[:1], tmp_path / "index", _options(settings, "faiss"), encoder_factory=HashEncoder)
    with pytest.raises(IndexMismatchError, match="store_backend"):
        ingest(corpus, tmp_path / "index", _options(settings, "milvus"), encoder_factory=HashEncoder)
    rebuilt = ingest(corpus, tmp_path / "index", _options(settings, "milvus"), encoder_factory=HashEncoder,
                     rebuild=True)
    assert isinstance(Index.load(tmp_path / "index").store, MilvusStore) and rebuilt.documents_total == 3


@pytest.mark.slow  # a milvus-lite server to start: the integration tier
def test_the_manifest_checks_catch_a_collection_out_of_step(both, tmp_path):
    _, index = both
    store = index.store
    version = current_version(tmp_path / "milvus")
    keys = np.load(version / KEYS_FILE)
    sample_row = int(next(iter(Index.load(tmp_path / "milvus").manifest()["milvus"]["sample"])))
    # A sampled vector changed behind the index's back: the sample of vector hashes catches it.
    changed = store.vectors([sample_row])[0][::-1].copy()
    record = store.fetch([sample_row], "record")[0]
    store.client.upsert(store.config.collection, [{"pk": int(keys[sample_row]), "vec": changed.tolist(),
                                                   "text": "x", "record": record,
                                                   "collections": ["default"]}])
    with pytest.raises(IndexCorruptError, match="vector differs"):
        Index.load(tmp_path / "milvus")
    # Entities missing: the count catches it.
    store.client.delete(store.config.collection, ids=[int(k) for k in keys[:2]])
    with pytest.raises(IndexCorruptError, match="entities"):
        Index.load(tmp_path / "milvus")
    # The key file itself is checksummed like every file of a version.
    (version / KEYS_FILE).write_bytes(b"\x00" * 16)
    with pytest.raises(IndexCorruptError, match="checksum"):
        Index.load(tmp_path / "milvus")


@pytest.mark.slow
def test_the_real_answerer_gives_the_same_answers_on_milvus(answerer, settings, tmp_path):
    """The bundled article with the real model: every answer, decline and citation is the one the
    FAISS index gives (the eval figures of docs/scale-out.md are the same check at scale)."""
    from bot.answering.answerer import Answerer

    from .conftest import build_index

    milvus_settings = settings.replace("store", store_backend="milvus")
    build_index([SAMPLE], tmp_path / "index", milvus_settings)
    on_milvus = Answerer.from_settings(milvus_settings, index_dir=tmp_path / "index")
    assert isinstance(on_milvus.index.store, MilvusStore)
    questions = QUESTIONS + ("Who is Sergei Ryabkov?", "What did NATO say about expansion?",
                             "What is the capital of Peru?", "Who won the 1998 World Cup?")
    for question in questions:
        want, got = answerer.ask(question), on_milvus.ask(question)
        assert (got.text, got.abstained) == (want.text, want.abstained), question
        assert [c.chunk_id for c in got.citations] == [c.chunk_id for c in want.citations], question


@pytest.mark.slow  # a milvus-lite server to start: the integration tier
def test_milvus_ranker_fusion_answers_from_milvus_own_hybrid_search(settings, tmp_path):
    """`fusion = "milvus-rrf"` / `"milvus-weighted"`: the passages are the ones Milvus's hybrid
    search ranks (its ranker, server-side), the bundled article's questions are answered and the
    off-topic one declined; on FAISS the setting is refused with one line."""
    from bot.answering.answerer import Answerer
    from bot.answering.retrieval import retrieve

    from .conftest import build_index

    milvus_settings = settings.replace("store", store_backend="milvus")
    build_index([SAMPLE], tmp_path / "index", milvus_settings)
    for fusion in ("milvus-rrf", "milvus-weighted"):
        answerer = Answerer.from_settings(milvus_settings.replace("retrieval", fusion=fusion),
                                          index_dir=tmp_path / "index")
        question = "What deadline did Ryabkov give?"
        vector = answerer.encoder.encode([question])[0]
        r = answerer.settings.retrieval
        scores, rows = answerer.index.store.hybrid_search(
            vector, answerer.index.keyword.query_tokens(question), r.candidates,
            ranker=fusion.removeprefix("milvus-"), rrf_k=r.rrf_k, dense_weight=r.dense_weight)
        by_milvus = {int(x): float(s) for x, s in zip(rows, scores) if x >= 0}
        passages = retrieve(answerer.index, question, vector, top_k=r.top_k, candidates=r.candidates,
                            fusion=answerer.fusion)
        # Milvus's fused scores, best first (ties, e.g. RRF's mirror ranks, broken by cosine).
        assert passages and all(abs(p.fused - by_milvus[p.row]) < 1e-6 for p in passages), fusion
        assert [p.fused for p in passages] == sorted(by_milvus.values(), reverse=True)[:len(passages)]
        # The judge still gets every passage's cosine, read back from Milvus.
        assert all(-1.0 <= p.dense <= 1.0 and p.dense != 0.0 for p in passages)
        assert "within a few weeks" in answerer.ask(question).text, fusion
        assert answerer.ask("Who won the 1998 World Cup?").abstained, fusion

    faiss_dir = tmp_path / "faiss"
    build_index([SAMPLE], faiss_dir, settings)
    with pytest.raises(IndexMismatchError, match='needs store_backend = "milvus"'):
        Answerer.from_settings(settings.replace("retrieval", fusion="milvus-rrf"), index_dir=faiss_dir)


@pytest.mark.slow  # a milvus-lite server to start
def test_milvus_keeps_the_sentence_vectors_in_its_local_version_folder(corpus, tmp_path, settings):
    """Sentence vectors are stored with a Milvus-backed index as with FAISS (the version folder is
    local), follow re-ingest and removal, and give the answer step what the encoder would."""
    from embeddings.sentence_store import DIRECTORY

    options = _options(settings, "milvus")
    ingest(corpus, tmp_path / "milvus", options, encoder_factory=HashEncoder)
    (tmp_path / "rail.txt").write_text(RAIL.replace("40 trains", "41 trains"))
    ingest(corpus, tmp_path / "milvus", options, encoder_factory=HashEncoder)
    port = str((tmp_path / "port.txt").resolve())
    assert [d.doc_id for d in remove_documents(tmp_path / "milvus", [port], lock_timeout=5)] == [port]
    index = Index.load(tmp_path / "milvus")
    assert (current_version(tmp_path / "milvus") / DIRECTORY / "vectors.npy").is_file()
    texts = list(dict.fromkeys(Index.embedding_text(index.documents[c.doc_id].title, t)
                               for c in index.chunks for t in c.sentence_texts()))
    found, vectors = index.sentences.lookup(texts)
    assert found.all() and np.array_equal(vectors, HashEncoder().encode(texts))
    assert len(index.sentences) == len(texts)
    assert any("41 trains" in t for t in texts) and not any("Odesa" in t for t in texts)
