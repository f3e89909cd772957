"""A Milvus-backed index keeps chunk texts and keyword statistics out of the bot's RAM, against
milvus-lite in-process: its version folder has no chunks.jsonl and no bm25/, the records come
from the collection, the term table gives bm25s's numbers, and a kill mid-ingest leaves the old
version answering."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace

import pytest

pytest.importorskip("pymilvus", reason="the Milvus backend needs qabot[scale] (make install installs it)")

from bot.answering.judge import NameLookup
from embeddings.index import BM25_DIR, CHUNKS_FILE, Index
from embeddings.ingest import IngestOptions, ingest, remove_documents
from embeddings.keyword import KeywordIndex
from embeddings.milvus_chunks import MilvusChunks
from embeddings.storage import current_version
from embeddings.term_stats import TermStatistics

from .conftest import ROOT, SAMPLE, HashEncoder

PORT = "Port report\n\nThe port of Odesa reopened on May 2 after repairs to berth 4. Captain Hervé " \
       "Céloron steered the first ship out. Grain ships left the port of Odesa for Istanbul.\n"
RAIL = "Rail report\n\nThe rail line to Lviv carried 40 trains on May 3.\n"
QUESTIONS = ("What deadline did Ryabkov give?", "Which port reopened?", "Who steered the first ship, Herve Celoron?",
             "How many trains went to Lviv?")
# Names for the judge's look-up: known, other forms, one letter off, and unknown.
NAMES = ("ryabkov", "ryabkovs", "ryabkof", "ryabov", "odesa", "odessa", "celoron", "céloron", "herve", "lviv",
         "istanbu", "genevas", "krugman", "hollywood", "zzyzx")


def _options(settings, backend: str) -> IngestOptions:
    env = settings.replace("store", store_backend=backend)
    return replace(IngestOptions.from_settings(env), model_name=HashEncoder.model_name)


def _bm25s_of(index: Index) -> KeywordIndex:
    """The bm25s index a FAISS backend would build over the same chunks (the reference numbers)."""
    return KeywordIndex.build([index.embedding_text(index.documents[c.doc_id].title, c.text) for c in index.chunks])


def _same_statistics(stats: TermStatistics, reference: KeywordIndex, faiss_like: Index, index: Index) -> None:
    assert stats.size == reference.size
    # ("" is a bm25s placeholder in its vocabulary, never a token: no name look-up can reach it.)
    for term in [t for t in reference.vocabulary() if t] + ["nosuchterm", "celoron"]:
        assert stats.document_frequency(term) == reference.document_frequency(term), term
        assert stats.idf(term, min_frequency=1) == reference.idf(term, min_frequency=1), term
        assert stats.forms(term) == reference.forms(term), term
    for question in QUESTIONS:
        assert stats.query_tokens(question) == reference.query_tokens(question), question
    for name in NAMES:
        assert NameLookup(index).unknown(name) == NameLookup(faiss_like).unknown(name), name


@pytest.fixture
def corpus(tmp_path):
    (tmp_path / "port.txt").write_text(PORT)
    (tmp_path / "rail.txt").write_text(RAIL)
    return [SAMPLE, tmp_path / "port.txt", tmp_path / "rail.txt"]


@pytest.mark.slow  # a milvus-lite server to start: the integration tier
def test_a_milvus_index_loads_without_chunk_texts_or_bm25_and_answers_like_faiss(corpus, tmp_path, settings):
    for backend in ("faiss", "milvus"):
        ingest(corpus, tmp_path / backend, _options(settings, backend), encoder_factory=HashEncoder)
    faiss_index, index = Index.load(tmp_path / "faiss"), Index.load(tmp_path / "milvus")
    version = current_version(tmp_path / "milvus")
    assert not (version / CHUNKS_FILE).exists() and not (version / BM25_DIR).exists()
    assert (current_version(tmp_path / "faiss") / CHUNKS_FILE).exists()  # FAISS keeps its format
    assert isinstance(index.chunks, MilvusChunks) and isinstance(index.keyword, TermStatistics)
    assert not index.chunks._cache  # nothing fetched by loading
    # The records, from the collection, are FAISS's row for row (by index, in batches, iterated).
    assert [index.chunks[r] for r in range(len(index))] == faiss_index.chunks == list(index.chunks)
    assert index.chunks_of(str(corpus[1].resolve())) == faiss_index.chunks_of(str(corpus[1].resolve()))
    encoder = HashEncoder()
    for question in QUESTIONS:
        vector = encoder.encode([question])[0]
        every = len(index)  # all rows: no tie is cut differently at k
        got, want = index.search(every, text=question, vector=vector), faiss_index.search(every, text=question,
                                                                                          vector=vector)
        for mine, theirs in ((got.dense, want.dense), (got.keyword, want.keyword)):
            assert sorted((round(-h.score, 4), h.row, h.chunk) for h in mine) == \
                sorted((round(-h.score, 4), h.row, h.chunk) for h in theirs), question
    assert index.keyword.forms("celoron") == ("celoron", "céloron")  # the accented stored form
    _same_statistics(index.keyword, faiss_index.keyword, faiss_index, index)


@pytest.mark.slow  # milvus-lite servers to start: keeps make test-fast under a minute
def test_reingest_and_remove_keep_the_term_table_equal_to_bm25s(corpus, tmp_path, settings):
    index_dir, options = tmp_path / "index", _options(settings, "milvus")
    ingest(corpus[:2], index_dir, options, encoder_factory=HashEncoder)
    (tmp_path / "port.txt").write_text(PORT.replace("berth 4", "berth 5 near Chornomorsk"))
    ingest(corpus, index_dir, options, encoder_factory=HashEncoder)  # one changed, one new
    remove_documents(index_dir, [str(SAMPLE.resolve())], lock_timeout=5)
    index = Index.load(index_dir)
    assert {c.doc_id for c in index.chunks} == {str(p.resolve()) for p in corpus[1:]}
    assert "Chornomorsk" in index.search_keyword("Chornomorsk berth", 1)[0].chunk.text
    faiss_like = Index(index.model_name, index.dimension, index.chunk_words, index.sentence_overlap)
    faiss_like.documents, faiss_like.chunks = index.documents, list(index.chunks)
    _same_statistics(index.keyword, _bm25s_of(index), faiss_like, index)
    assert index.store.entity_count() == len(index)  # replaced and removed entities deleted


# Children: an ingest into a Milvus-backed index (the hashing encoder), and a reader that loads
# it and searches. Everything runs in children: milvus-lite serves one file to one process.
CHILD = """
import json, sys
from pathlib import Path
from embeddings.index import Index
from embeddings.ingest import IngestOptions, ingest
from embeddings.milvus import MilvusConfig
from tests.conftest import HashEncoder
what, index_dir, raw = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
if what == "read":
    loaded = Index.load(index_dir)  # the counts and the sample of vectors are checked
    hits = loaded.search_keyword("Which port reopened?", 1) + loaded.search_keyword("ferry to Varna", 1)
    print(json.dumps([len(loaded), [h.chunk.text for h in hits]]), flush=True)
    sys.exit(0)
raw["milvus"] = MilvusConfig(**raw["milvus"])
print("ready", flush=True)
ingest([Path(p) for p in sys.argv[4:]], index_dir, IngestOptions(**raw), encoder_factory=HashEncoder,
       rebuild=what == "rebuild")
print("done", flush=True)
"""


@pytest.mark.slow
def test_a_kill_during_a_milvus_ingest_leaves_the_old_version_answering(corpus, tmp_path, settings):
    """SIGKILL the ingest's whole process group (as when a pod dies) at random moments: the index
    always loads, passes its count and vector checks, and answers as the old or the new version;
    after a kill that left the old one live (rows may be in the collection that no version names),
    a later run completes. Each trial kills on its own copy of one index built once (the folder
    holds the milvus-lite file, so a copy is a whole index)."""
    import json

    options = json.dumps({**asdict(_options(settings, "milvus")), "lock_timeout": 5})
    extra = tmp_path / "extra.txt"
    extra.write_text("Ferry report\n\n" + "".join(f"The ferry to Varna sailed {i} times in May. " for i in range(400)))
    base, rng = tmp_path / "base", random.Random(14)

    def child(what: str, index_dir, *paths) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", CHILD, what, str(index_dir), options, *map(str, paths)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)

    def answers(index_dir) -> list:
        reader = child("read", index_dir)
        out, err = reader.communicate(timeout=120)
        assert reader.returncode == 0, err
        return json.loads(out)

    assert child("rebuild", base, *corpus).wait(timeout=300) == 0
    before = answers(base)
    assert not any("Varna" in t for t in before[1])
    kills, completed = [], False
    for trial in range(3):
        index_dir = tmp_path / f"trial{trial}"
        shutil.copytree(base, index_dir)
        started = time.monotonic()
        process = child("ingest", index_dir, extra)
        assert process.stdout.readline().strip() == "ready", process.stderr.read()
        time.sleep(rng.uniform(0.3, 4.0))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        state = answers(index_dir)
        new = state != before
        assert not new or (state[0] > before[0] and "Varna" in state[1][-1]), f"trial {trial}: neither old nor new"
        kills.append(f"{time.monotonic() - started:.1f} s: {'new' if new else 'old'}")
        if not new and not completed:
            assert child("ingest", index_dir, extra).wait(timeout=300) == 0  # a later run completes
            after = answers(index_dir)
            assert after[0] > before[0] and "Varna" in after[1][-1]
            completed = True
        shutil.rmtree(index_dir)
    print("milvus ingest kills (time: version live):", ", ".join(kills))
    assert completed  # at least one kill left the old version live, and a later run completed
