"""Sentence vectors stored with the index (embeddings/sentence_store.py): kept from ingest,
versioned and checksummed, memory-mapped on load, used by the answer step instead of the encoder;
an index without them still answers and says once how to get them."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

from bot.answering import answerer as answerer_module
from bot.answering.answerer import Answerer
from embeddings.documents import Document
from embeddings.errors import IndexCorruptError
from embeddings.index import Index
from embeddings.sentence_store import DIRECTORY, FILES
from embeddings.storage import MANIFEST, current_version

from .conftest import SAMPLE, HashEncoder, build_index

TOPICS = {
    "geneva": "Russia and the United States will meet in Geneva in January. Ryabkov said so. "
              "Both sides will attend the Geneva talks.",
    "oil": "The oil embargo of 1973 raised prices. Oil producers cut output for months.",
    "amazon": "The Amazon rainforest covers much of the basin. Its trees store vast carbon.",
}


def _documents(topics: dict[str, str]) -> list[Document]:
    return [Document(doc_id=name, title=name.title(), text=text, source=f"{name}.txt") for name, text in topics.items()]


def _inputs(index: Index) -> list[str]:
    """Every sentence input the encoder saw for the chunks held (title + sentence)."""
    return list(dict.fromkeys(Index.embedding_text(index.documents[c.doc_id].title, t)
                              for c in index.chunks for t in c.sentence_texts()))


def _index(encoder: HashEncoder, topics: dict[str, str] = TOPICS) -> Index:
    index = Index(encoder.model_name, encoder.dimension, chunk_words=12, sentence_overlap=1, chunk_vectors="sentences")
    index.add(_documents(topics), encoder, batch_size=8)
    return index


class CountingEncoder(HashEncoder):
    """The fake encoder, remembering every text it was asked to encode."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        self.seen.extend(texts)
        return super().encode(texts, batch_size)


def test_ingest_keeps_every_sentence_vector_and_a_reload_maps_the_same(fake_encoder, tmp_path):
    index = _index(fake_encoder)
    texts = _inputs(index)
    found, vectors = index.sentences.lookup(texts)
    assert found.all() and np.array_equal(vectors, fake_encoder.encode(texts))
    index.save(tmp_path / "index")
    again = Index.load(tmp_path / "index")
    assert isinstance(again.sentences._vectors.base, np.memmap)  # read from disk as needed, not loaded
    found, reloaded = again.sentences.lookup(texts + ["Geneva\nA sentence nobody indexed."])
    assert found.tolist() == [True] * len(texts) + [False]
    assert np.array_equal(reloaded[:-1], vectors) and not reloaded[-1].any()
    manifest = json.loads((current_version(tmp_path / "index") / MANIFEST).read_text())
    assert {f"{DIRECTORY}/{name}" for name in FILES} <= set(manifest["files"])


def test_replacing_and_removing_documents_drop_their_sentences(fake_encoder, tmp_path):
    index = _index(fake_encoder)
    index.save(tmp_path / "index")
    index = Index.load(tmp_path / "index")
    old_oil = [t for t in _inputs(index) if t.startswith("Oil\n")]
    index.add(_documents({"oil": "Oil prices fell in 1986. Saudi Arabia raised output."}), fake_encoder, batch_size=8)
    index.remove(["amazon"])
    index.save(tmp_path / "index")
    again = Index.load(tmp_path / "index")
    kept = _inputs(again)
    assert any(t.startswith("Oil\nOil prices fell") for t in kept) and not any(t.startswith("Amazon") for t in kept)
    found, vectors = again.sentences.lookup(kept)
    assert found.all() and np.array_equal(vectors, fake_encoder.encode(kept))
    assert len(again.sentences) == len(kept)
    assert not again.sentences.lookup(old_oil)[0].any()


def test_the_answer_step_reads_stored_vectors_and_embeds_only_the_question(tmp_path, settings):
    encoder = CountingEncoder()
    _index(encoder).save(tmp_path / "index")
    answerer = Answerer(Index.load(tmp_path / "index"), encoder, settings)
    encoder.seen.clear()
    answer = answerer.ask("Where will Russia and the United States meet?")
    assert encoder.seen == ["Where will Russia and the United States meet?"]
    assert "Geneva" in answer.text


def test_an_altered_sentence_file_is_refused(fake_encoder, tmp_path):
    version = _index(fake_encoder).save(tmp_path / "index")
    with (version / DIRECTORY / "vectors.npy").open("r+b") as handle:
        handle.seek(-4, 2)
        handle.write(b"\x01\x02\x03\x04")
    with pytest.raises(IndexCorruptError, match="vectors.npy: checksum mismatch"):
        Index.load(tmp_path / "index")


def _drop_stored_sentences(directory: Path) -> None:
    """Make a saved index look like one saved before sentence vectors were stored."""
    version = current_version(directory)
    shutil.rmtree(version / DIRECTORY)
    manifest = json.loads((version / MANIFEST).read_text())
    manifest["files"] = {k: v for k, v in manifest["files"].items() if not k.startswith(f"{DIRECTORY}/")}
    (version / MANIFEST).write_text(json.dumps(manifest))


def test_an_older_index_still_answers_and_says_once_that_reingesting_helps(tmp_path, settings, caplog, monkeypatch):
    encoder = CountingEncoder()
    _index(encoder).save(tmp_path / "index")
    _drop_stored_sentences(tmp_path / "index")
    monkeypatch.setattr(answerer_module, "_said_no_stored_sentences", answerer_module.threading.Event())
    with caplog.at_level(logging.WARNING, logger=answerer_module.__name__):
        first = Answerer(Index.load(tmp_path / "index"), encoder, settings)
        Answerer(Index.load(tmp_path / "index"), encoder, settings)
    said = [r.getMessage() for r in caplog.records if "stores no sentence vectors" in r.getMessage()]
    assert len(said) == 1 and "qabot ingest --rebuild" in said[0]
    assert first.index.sentences is None
    encoder.seen.clear()
    assert "Geneva" in first.ask("Where will Russia and the United States meet?").text
    assert len(encoder.seen) > 1  # the question and the sentences it read


@pytest.mark.slow
def test_a_real_index_stores_the_query_encoders_own_sentence_vectors(tmp_path, settings):
    """Ingest's sentence vectors (ONNX, batched by ingest) are the ones the answer step would make
    for the same texts, to float rounding, so answers do not change."""
    from embeddings.encoders import get_encoder

    build_index([SAMPLE], tmp_path / "index", settings)
    index = Index.load(tmp_path / "index")
    texts = _inputs(index)
    found, stored = index.sentences.lookup(texts)
    fresh = get_encoder(settings.model.query_backend, settings.model.max_seq_length).encode(texts)
    assert found.all() and np.abs(stored - fresh).max() < 1e-5
