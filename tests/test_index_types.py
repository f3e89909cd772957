"""The vector store and the Index facade, fast: no model (a hashing stand-in encoder), real FAISS.

The dense index type follows the corpus size (exact when small, IVF-SQ8 when large), is recorded
in the manifest, and survives a save/load round trip. Thresholds are lowered per store so a few
hundred chunks stand in for the 50,000 the default switches at."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from embeddings.documents import Document
from embeddings.errors import IndexCorruptError, IndexMismatchError
from embeddings.index import Index
from embeddings.ingest import IngestOptions, ingest_documents
from embeddings.storage import MANIFEST
from embeddings.vectors import (FLAT, FLAT_MAX_CHUNKS, IVF_SQ8, FaissStore, VectorStore, build_dense_index,
                                choose_index_type, ivf_params)

DIM = 384


class HashEncoder:
    """Deterministic unit vectors from a text's hash, clustered by its first word (a 'topic')."""

    model_name = "all-MiniLM-L6-v2"
    dimension = DIM
    backend = "test"

    def encode(self, texts, batch_size: int = 32) -> np.ndarray:
        rows = []
        for text in texts:
            words = text.split()
            topic = words[1] if len(words) > 1 else text  # embedding_text starts with the title
            rows.append(self._unit(topic) + 0.5 * self._unit(text))
        vectors = np.vstack(rows).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    @staticmethod
    def _unit(text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        vector = np.random.default_rng(seed).standard_normal(DIM)
        return vector / np.linalg.norm(vector)


def documents(count: int, sentences: int, start: int = 0) -> list[Document]:
    docs = []
    for d in range(start, start + count):
        # One sentence a paragraph and chunk_words=1: every sentence is one chunk.
        text = "\n\n".join(f"Topic{(d * sentences + s) % 17} fact {d}-{s} is stated here." for s in range(sentences))
        docs.append(Document(doc_id=f"doc{d}", title=f"Doc {d}", text=text, source=f"doc{d}.txt"))
    return docs


def build(docs, flat_max: int) -> Index:
    index = Index("all-MiniLM-L6-v2", DIM, chunk_words=1, sentence_overlap=0,
                  store=FaissStore(DIM, flat_max=flat_max))
    index.add(docs, HashEncoder(), batch_size=32)
    return index


def test_choose_index_type_by_size():
    assert choose_index_type(0) == FLAT
    assert choose_index_type(FLAT_MAX_CHUNKS) == FLAT
    assert choose_index_type(FLAT_MAX_CHUNKS + 1) == IVF_SQ8
    assert choose_index_type(1_000_000) == IVF_SQ8
    assert choose_index_type(101, flat_max=100) == IVF_SQ8
    for n in (500, 60_000, 100_000, 1_000_000):
        params = ivf_params(n)
        nlist = params["nlist"]
        assert nlist & (nlist - 1) == 0 and n >= 39 * nlist and 1 <= params["nprobe"] <= nlist
    assert ivf_params(1_000_000) == {"nlist": 2048, "nprobe": 32}


def test_build_dense_index_rejects_an_unknown_type():
    with pytest.raises(ValueError, match="unknown dense index type"):
        build_dense_index(np.zeros((1, DIM), dtype=np.float32), "hnsw")


def test_small_corpus_stays_exact(tmp_path):
    index = build(documents(2, 20), flat_max=100)
    assert len(index) == 40 and index.store.index_type == FLAT and index.store.index_params == {}
    saved = index.save(tmp_path / "idx")
    assert json.loads((saved / MANIFEST).read_text())["index_type"] == FLAT
    again = Index.load(tmp_path / "idx")
    assert again.store.index_type == FLAT
    assert np.array_equal(again.vectors(range(len(again))), index.vectors(range(len(index))))


def test_large_corpus_is_ivf_sq8_and_round_trips(tmp_path):
    docs = documents(8, 60)
    index = build(docs, flat_max=100)
    assert len(index) == 480 and index.store.index_type == IVF_SQ8
    assert index.store.index_params == ivf_params(480)
    encoder = HashEncoder()
    exact = encoder.encode([Index.embedding_text(index.documents[c.doc_id].title, c.text) for c in index.chunks])
    # Decoded 8-bit vectors stay within quantisation error of the encoder's.
    cosines = np.sum(index.vectors(range(len(index))) * exact, axis=1)
    assert np.median(cosines) > 0.999 and np.min(cosines) > 0.98
    query = exact[123]
    hits = index.search_dense(query, 5)
    assert hits[0].row == 123 and abs(hits[0].score - 1.0) < 0.02

    saved = index.save(tmp_path / "idx")
    manifest = json.loads((saved / MANIFEST).read_text())
    assert manifest["index_type"] == IVF_SQ8 and manifest["index_params"] == index.store.index_params
    again = Index.load(tmp_path / "idx")
    assert again.store.index_type == IVF_SQ8 and again.store.index_params == index.store.index_params
    assert again.chunks == index.chunks
    assert [(h.row, round(h.score, 5)) for h in again.search_dense(query, 5)] == \
           [(h.row, round(h.score, 5)) for h in hits]
    assert np.allclose(again.vectors([0, 7, 479]), index.vectors([0, 7, 479]), atol=1e-6)


def test_growing_past_the_threshold_switches_type_and_keeps_every_chunk(tmp_path):
    index = build(documents(2, 40), flat_max=100)
    assert index.store.index_type == FLAT
    index.save(tmp_path / "idx")
    grown = Index.load(tmp_path / "idx")
    grown.store.flat_max = 100
    grown.add(documents(4, 40, start=2), HashEncoder(), batch_size=32)
    assert len(grown) == 240 and grown.store.index_type == IVF_SQ8
    # Chunks from before the switch are still found at their rows.
    probe = HashEncoder().encode([Index.embedding_text("Doc 0", grown.chunks[5].text)])[0]
    assert grown.search_dense(probe, 1)[0].row == 5
    grown.save(tmp_path / "idx")
    assert Index.load(tmp_path / "idx").store.index_type == IVF_SQ8


def test_manifest_type_that_does_not_match_the_vectors_is_refused(tmp_path):
    index = build(documents(8, 60), flat_max=100)
    saved = index.save(tmp_path / "idx")
    manifest = json.loads((saved / MANIFEST).read_text())
    manifest["index_type"] = FLAT
    (saved / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="not a 'flat-ip' index"):
        Index.load(tmp_path / "idx")
    manifest["index_type"] = "hnsw"
    (saved / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="hnsw"):
        Index.load(tmp_path / "idx")


# --- the VectorStore protocol, on FaissStore alone ------------------------------------------

@pytest.mark.parametrize("flat_max, kind", [(1000, FLAT), (100, IVF_SQ8)])
def test_faiss_store_round_trips_add_remove_search_save_load(tmp_path, flat_max, kind):
    store: VectorStore = FaissStore(DIM, flat_max=flat_max)
    vectors = HashEncoder().encode([f"Topic{i % 13} row {i}" for i in range(400)])
    store.add(vectors[:250])
    store.add(vectors[250:])
    assert len(store) == 400 and store.index_type == kind
    scores, rows = store.search(vectors[321], 3)
    assert rows[0] == 321 and abs(scores[0] - 1.0) < 0.02
    store.remove(range(0, 100))  # later rows move up, in order
    assert len(store) == 300
    assert store.search(vectors[321], 1)[1][0] == 221
    assert np.allclose(store.vectors([0, 299]), vectors[[100, 399]], atol=0.02)

    (tmp_path / "v").mkdir()
    store.save(tmp_path / "v")
    manifest = {"dimension": DIM, **store.manifest()}
    assert manifest["index_type"] == kind
    again = FaissStore.load(tmp_path / "v", manifest, rows=300)
    assert len(again) == 300 and again.index_type == kind and again.index_params == store.index_params
    assert np.allclose(again.vectors(range(300)), store.vectors(range(300)), atol=1e-6)
    assert again.search(vectors[321], 1)[1][0] == 221
    with pytest.raises(IndexCorruptError, match="holds 300 vectors for 301 chunks"):
        FaissStore.load(tmp_path / "v", manifest, rows=301)


def test_an_empty_store_searches_to_nothing(tmp_path):
    store = FaissStore(DIM)
    assert len(store) == 0 and store.vectors([]).shape == (0, DIM)
    index = Index("all-MiniLM-L6-v2", DIM, chunk_words=1, sentence_overlap=0, store=store)
    assert index.search_dense(np.ones(DIM, dtype=np.float32), 5) == []
    assert index.search_keyword("anything", 5) == []
    index.save(tmp_path / "idx")
    assert len(Index.load(tmp_path / "idx")) == 0


# --- the Index facade -------------------------------------------------------------------------

def test_index_facade_adds_replaces_searches_and_reloads(tmp_path):
    index = build(documents(3, 4), flat_max=1000)
    encoder = HashEncoder()
    assert len(index) == 12 and set(index.documents) == {"doc0", "doc1", "doc2"}
    chunk = index.chunks[6]
    vector = encoder.encode([Index.embedding_text("Doc 1", chunk.text)])[0]
    found = index.search(3, text=chunk.text, vector=vector)
    assert found.dense[0].chunk == chunk and found.keyword[0].chunk == chunk
    assert index.search(3, vector=vector).keyword == [] and index.search(3, text="fact").dense == []

    # A changed document replaces its chunks; an unchanged one is skipped.
    changed = Document(doc_id="doc1", title="Doc 1", text="Topic5 a wholly new statement.", source="doc1.txt")
    report = index.add([changed, documents(1, 4)[0]], encoder, batch_size=32)
    assert report.updated == ["doc1.txt"] and report.skipped == ["doc0.txt"] and report.chunks_added == 1
    assert len(index) == 9 and index.document("doc1").chunks == 1
    assert index.search_keyword("wholly", 1)[0].chunk.text == "Topic5 a wholly new statement."
    row = [c.text for c in index.chunks].index("Topic5 a wholly new statement.")
    probe = encoder.encode([Index.embedding_text("Doc 1", "Topic5 a wholly new statement.")])[0]
    assert index.search_dense(probe, 1)[0].row == row

    index.save(tmp_path / "idx")
    again = Index.load(tmp_path / "idx", model_name="all-MiniLM-L6-v2")
    assert again.chunks == index.chunks and again.documents == index.documents
    assert again.search_dense(probe, 1)[0].row == row
    assert again.keyword.document_frequency("wholli") == 1  # Snowball stem of "wholly"


def test_keyword_idf_is_the_one_formula_and_rare_terms_weigh_more():
    index = build(documents(2, 6), flat_max=1000)
    keyword = index.keyword
    n = len(index)
    fact = keyword.document_frequency("fact")
    assert fact == n  # every chunk says "fact"
    assert keyword.idf("fact") == pytest.approx(np.log(1 + n / (n + 0.5)))
    assert keyword.idf("topic3") > keyword.idf("fact")
    assert keyword.idf("neverseen") == pytest.approx(np.log(1 + n / 0.5))
    assert keyword.idf("neverseen", min_frequency=1) == pytest.approx(np.log(1 + n / 1.5))


def test_public_stemmer_matches_the_index_tokens():
    from embeddings.keyword import stem, stems, tokenize

    assert stem("Talks") == "talk" and stems("The talks, talking!") == {"the", "talk"}
    assert set(tokenize(["The talks were talking"])[0]) <= stems("The talks were talking")


def test_an_encoder_of_another_model_is_refused():
    index = Index("bge-small-en", DIM, chunk_words=1, sentence_overlap=0)
    with pytest.raises(IndexMismatchError, match="bge-small-en.*--rebuild"):
        index.add(documents(1, 1), HashEncoder(), batch_size=32)


# --- ingest_documents: the one ingest path (CLI, tests, bench and `qabot eval`) -----------------

def options(chunk_words: int = 1) -> IngestOptions:
    return IngestOptions(model_name="all-MiniLM-L6-v2", backend="test", max_seq_length=256, batch_size=32,
                         chunk_words=chunk_words, sentence_overlap=0, chunk_vectors="text", max_bytes=2**20,
                         lock_timeout=5)


def test_ingest_reuses_extends_or_refuses_and_exact_rebuilds(tmp_path):
    directory = tmp_path / "idx"
    calls = []

    def factory():
        calls.append(1)
        return HashEncoder()

    first = ingest_documents(documents(2, 3), directory, options(), encoder_factory=factory)
    assert first.report.added == ["doc0.txt", "doc1.txt"] and first.chunks_total == 6
    # The same documents again: nothing embedded, nothing written, the encoder never loaded.
    again = ingest_documents(documents(2, 3), directory, options(), encoder_factory=factory)
    assert again.report.skipped == ["doc0.txt", "doc1.txt"] and len(calls) == 1
    # Another document extends the index ...
    grown = ingest_documents(documents(1, 3, start=2), directory, options(), encoder_factory=factory)
    assert grown.documents_total == 3
    # ... unless `exact`: then the index holds exactly the documents given.
    exact = ingest_documents(documents(1, 3, start=2), directory, options(), encoder_factory=factory, exact=True)
    assert exact.documents_total == 1 and set(Index.load(directory).documents) == {"doc2"}
    # Other chunking settings: refused when extending, rebuilt when exact.
    with pytest.raises(IndexMismatchError, match="chunk_words=1.*--rebuild"):
        ingest_documents(documents(1, 3), directory, options(chunk_words=50), encoder_factory=factory)
    rebuilt = ingest_documents(documents(1, 3), directory, options(chunk_words=50), encoder_factory=factory,
                               exact=True)
    assert rebuilt.chunks_total == 1 and Index.load(directory).chunk_words == 50


def test_exact_ingest_replaces_an_unreadable_index(tmp_path):
    directory = tmp_path / "idx"
    ingest_documents(documents(1, 3), directory, options(), encoder_factory=HashEncoder)
    (directory / "CURRENT").write_text("../elsewhere\n")
    with pytest.raises(IndexCorruptError):
        ingest_documents(documents(1, 3), directory, options(), encoder_factory=HashEncoder)
    result = ingest_documents(documents(1, 3), directory, options(), encoder_factory=HashEncoder, exact=True)
    assert result.report.added == ["doc0.txt"] and len(Index.load(directory)) == 3


def test_options_from_settings_read_the_model_chunking_and_ingest_sections(settings):
    o = IngestOptions.from_settings(settings)
    assert (o.model_name, o.backend, o.max_seq_length, o.batch_size) == (
        settings.model.model_name, settings.model.ingest_backend, settings.model.max_seq_length,
        settings.model.batch_size)
    assert (o.chunk_words, o.sentence_overlap) == (settings.chunking.chunk_words, settings.chunking.sentence_overlap)
    assert o.max_bytes == int(settings.ingest.max_document_mb * 2**20)
    assert o.lock_timeout == settings.ingest.lock_timeout_s
