"""The FAISS + BM25 index: save/load round trip, re-ingest, replacement, mismatch, corruption."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from embeddings.encoders import get_encoder
from embeddings.errors import DocumentError, IndexCorruptError, IndexMismatchError, IndexNotFoundError
from embeddings.index import Index, vector_texts
from embeddings.storage import CURRENT, MANIFEST, current_version

from .conftest import SAMPLE, build_index, snapshot


def test_save_load_round_trip_is_exact(sample_index, settings, tmp_path):
    index = Index.load(sample_index, model_name=settings.model.model_name)
    assert len(index) >= 3 and len(index.documents) == 1
    saved = index.save(tmp_path / "copy")
    again = Index.load(tmp_path / "copy")
    assert again.chunks == index.chunks
    assert again.documents == index.documents
    assert np.array_equal(again.vectors(range(len(again))), index.vectors(range(len(index))))
    manifest = json.loads((saved / MANIFEST).read_text())
    assert manifest["model"] == "all-MiniLM-L6-v2" and manifest["dimension"] == 384
    assert manifest["chunking"] == {"chunk_words": settings.chunking.chunk_words,
                                    "sentence_overlap": settings.chunking.sentence_overlap,
                                    "vectors": settings.chunking.chunk_vectors}
    assert manifest["format_version"] == 1
    assert list(manifest["documents"].values()) == [next(iter(index.documents.values())).sha256]
    # Search gives the same results from both.
    query = get_encoder("onnx", settings.model.max_seq_length).encode(["When are the talks in Geneva?"])[0]
    assert [h.chunk.chunk_id for h in again.search_dense(query, 3)] == \
           [h.chunk.chunk_id for h in index.search_dense(query, 3)]
    assert [h.row for h in again.search_keyword("Izvestia interview", 3)] == \
           [h.row for h in index.search_keyword("Izvestia interview", 3)]


def test_vectors_are_normalised_and_search_finds_the_right_chunk(sample_index, settings):
    index = Index.load(sample_index)
    norms = np.linalg.norm(index.vectors(range(len(index))), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-4)
    query = get_encoder("onnx", settings.model.max_seq_length).encode(["Which newspaper published an interview with Ryabkov?"])[0]
    hits = index.search_keyword("Izvestia", 5)
    assert hits and "Izvestia" in hits[0].chunk.text
    assert index.search_dense(query, 1)[0].score > 0.2


def test_reingesting_an_unchanged_document_is_a_no_op(index_copy, settings):
    before = snapshot(index_copy)
    result = build_index([SAMPLE], index_copy, settings)
    assert result.report.skipped == [str(SAMPLE)]
    assert not result.report.added and not result.report.updated
    assert snapshot(index_copy) == before


def test_a_changed_document_replaces_its_old_chunks(index_copy, settings, tmp_path):
    source = tmp_path / "article.txt"
    source.write_text("Geneva talks\n\nThe talks open on Jan. 10. Results are due within weeks.\n")
    build_index([source], index_copy, settings)
    first = Index.load(index_copy)
    assert len(first.documents) == 2
    source.write_text("Geneva talks\n\nThe talks were postponed to Feb. 2 by both sides.\n")
    result = build_index([source], index_copy, settings)
    assert result.report.updated == [str(source)]
    index = Index.load(index_copy)
    assert len(index.documents) == 2
    texts = [c.text for c in index.chunks if c.doc_id == str(source.resolve())]
    assert texts == ["The talks were postponed to Feb. 2 by both sides."]
    assert not any("Jan. 10. Results are due" in c.text for c in index.chunks)
    assert len(index) == len(first) + 0  # one chunk replaced by one chunk
    assert index.search_keyword("postponed", 1)[0].chunk.text == texts[0]


def test_loading_an_index_of_another_model_fails_clearly(index_copy):
    with pytest.raises(IndexMismatchError) as info:
        Index.load(index_copy, model_name="bge-small-en")
    message = str(info.value)
    assert "all-MiniLM-L6-v2" in message and "bge-small-en" in message and "--rebuild" in message


def test_a_newer_format_version_is_refused(index_copy):
    version = current_version(index_copy)
    manifest = json.loads((version / MANIFEST).read_text())
    manifest["format_version"] = 99
    (version / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="newer"):
        Index.load(index_copy)


@pytest.mark.parametrize("victim", ["vectors.faiss", "chunks.jsonl", "documents.json"])
def test_truncated_or_missing_files_are_detected(index_copy, victim):
    path = current_version(index_copy) / victim
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(IndexCorruptError, match=victim):
        Index.load(index_copy)
    path.unlink()
    with pytest.raises(IndexCorruptError, match="missing"):
        Index.load(index_copy)


def test_missing_index_says_how_to_build_one(tmp_path):
    with pytest.raises(IndexNotFoundError, match="qabot ingest"):
        Index.load(tmp_path / "none")


def test_a_bad_file_changes_nothing(index_copy, settings, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\x00\x01\x02binary")
    before = snapshot(index_copy)
    with pytest.raises(DocumentError, match="binary"):
        build_index([SAMPLE, bad], index_copy, settings)
    assert snapshot(index_copy) == before


@pytest.mark.slow
def test_folders_refuse_bad_members_but_ingest_the_rest(tmp_path, settings):
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / "a.txt")
    (folder / "b.txt").write_bytes(b"caf\xe9 au lait, not utf8")
    (folder / "ignored.bin").write_bytes(b"\x00")
    result = build_index([folder], tmp_path / "index", settings)
    assert result.report.added == [str(folder / "a.txt")]
    assert len(result.refused) == 1 and "b.txt" in result.refused[0]
    assert (tmp_path / "index" / CURRENT).exists()


def test_changed_chunking_settings_are_refused_not_silently_dropping_documents(index_copy, settings):
    before = snapshot(index_copy)
    other = settings.replace("chunking", chunk_words=settings.chunking.chunk_words + 40)
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        build_index([SAMPLE], index_copy, other)
    assert snapshot(index_copy) == before


def _pooled(encoder, title: str, sentences: list[str]) -> np.ndarray:
    vectors = encoder.encode([Index.embedding_text(title, t) for t in sentences])
    weights = np.array([len(Index.embedding_text(title, t)) for t in sentences], dtype=np.float32)
    pooled = (vectors * weights[:, None]).sum(axis=0)
    return pooled / np.linalg.norm(pooled)


def test_chunk_vectors_are_the_length_weighted_mean_of_their_sentences(sample_index, settings):
    index = Index.load(sample_index)
    assert settings.chunking.chunk_vectors == "sentences" and index.chunk_vectors == "sentences"
    encoder = get_encoder("onnx", settings.model.max_seq_length)
    stored = index.vectors(range(len(index)))
    for row, chunk in enumerate(index.chunks):
        title = index.documents[chunk.doc_id].title
        assert float(stored[row] @ _pooled(encoder, title, chunk.sentence_texts())) > 0.9999
    # Each sentence was embedded once, the overlap sentences too (the benchmark counts these).
    texts = vector_texts(index)
    assert len(texts) == len(set(texts)) < sum(len(c.sentences) for c in index.chunks)


def test_an_index_keeps_the_chunk_vectors_it_was_built_with(tmp_path, settings):
    """An index made before `chunk_vectors` existed (no "vectors" in its manifest) made them from
    the chunk text, and documents added to it later are embedded the same way, whatever the settings."""
    directory = tmp_path / "index"
    build_index([SAMPLE], directory, settings.replace("chunking", chunk_vectors="text"))
    manifest_path = current_version(directory) / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    del manifest["chunking"]["vectors"]
    manifest_path.write_text(json.dumps(manifest))
    assert Index.load(directory).chunk_vectors == "text"

    other = tmp_path / "other.txt"
    other.write_text("Apollo 11 landed on the Moon in July 1969. Neil Armstrong stepped out first.\n",
                     encoding="utf-8")
    result = build_index([other], directory, settings)
    assert result.report.added == [str(other)]
    index = Index.load(directory)
    assert index.chunk_vectors == "text"
    encoder = get_encoder("onnx", settings.model.max_seq_length)
    row = next(i for i, c in enumerate(index.chunks) if c.text.startswith("Apollo 11"))
    whole = encoder.encode([Index.embedding_text(index.documents[index.chunks[row].doc_id].title,
                                                 index.chunks[row].text)])[0]
    assert float(index.vectors([row])[0] @ whole) > 0.9999


def test_keyword_vocabulary_is_sorted_stems(sample_index):
    words = Index.load(sample_index).keyword.vocabulary()
    assert words == sorted(words) and "izvestia" in words and "ryabkov" in words
