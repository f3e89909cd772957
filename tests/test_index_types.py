"""The dense index type follows the corpus size (exact when small, IVF-SQ8 when large), is recorded
in the manifest, and survives a save/load round trip. Thresholds are lowered per index so a few
hundred chunks stand in for the 50,000 the default switches at; the encoder is a fast stand-in."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from embeddings.documents import Document
from embeddings.errors import IndexCorruptError
from embeddings.index import (FLAT, FLAT_MAX_CHUNKS, IVF_SQ8, MANIFEST, Index, build_dense_index,
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
    index = Index("all-MiniLM-L6-v2", DIM, chunk_words=1, sentence_overlap=0)
    index.flat_max = flat_max
    index.add(docs, HashEncoder())
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
    assert len(index) == 40 and index.index_type == FLAT and index.index_params == {}
    saved = index.save(tmp_path / "idx")
    assert json.loads((saved / MANIFEST).read_text())["index_type"] == FLAT
    again = Index.load(tmp_path / "idx")
    assert again.index_type == FLAT
    assert np.array_equal(again.vectors(range(len(again))), index.vectors(range(len(index))))


def test_large_corpus_is_ivf_sq8_and_round_trips(tmp_path):
    docs = documents(8, 60)
    index = build(docs, flat_max=100)
    assert len(index) == 480 and index.index_type == IVF_SQ8
    assert index.index_params == ivf_params(480)
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
    assert manifest["index_type"] == IVF_SQ8 and manifest["index_params"] == index.index_params
    again = Index.load(tmp_path / "idx")
    assert again.index_type == IVF_SQ8 and again.index_params == index.index_params
    assert again.chunks == index.chunks
    assert [(h.row, round(h.score, 5)) for h in again.search_dense(query, 5)] == \
           [(h.row, round(h.score, 5)) for h in hits]
    assert np.allclose(again.vectors([0, 7, 479]), index.vectors([0, 7, 479]), atol=1e-6)


def test_growing_past_the_threshold_switches_type_and_keeps_every_chunk(tmp_path):
    index = build(documents(2, 40), flat_max=100)
    assert index.index_type == FLAT
    index.save(tmp_path / "idx")
    grown = Index.load(tmp_path / "idx")
    grown.flat_max = 100
    grown.add(documents(4, 40, start=2), HashEncoder())
    assert len(grown) == 240 and grown.index_type == IVF_SQ8
    # Chunks from before the switch are still found at their rows.
    probe = HashEncoder().encode([Index.embedding_text("Doc 0", grown.chunks[5].text)])[0]
    assert grown.search_dense(probe, 1)[0].row == 5
    grown.save(tmp_path / "idx")
    assert Index.load(tmp_path / "idx").index_type == IVF_SQ8


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
