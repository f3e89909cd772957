"""Collections: documents in named sets, searches limited to some inside the search, moves without
embedding again, an old index read as "default", the settings that map Slack channels to them and
the admins' overrides in the state store (SQLite and Redis)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bot.settings import SettingsError, load_settings
from bot.slack.channel_collections import ChannelCollections, OverridesUnavailable, RedisOverrides, SqliteOverrides
from embeddings.chunk_record import ChunkRecord
from embeddings.collections import CollectionNameError, check_names
from embeddings.documents import Document
from embeddings.index import Index
from embeddings.index_files import DocumentInfo
from embeddings.vectors import FaissStore


def _document(name: str, text: str) -> Document:
    return Document(doc_id=f"/docs/{name}.txt", title=name.capitalize(), text=text, source=f"docs/{name}.txt")


class CountingEncoder:
    """The fake encoder, counting the texts it embeds (a move must embed none)."""

    def __init__(self, real) -> None:
        self.real, self.model_name, self.dimension, self.texts = real, real.model_name, real.dimension, 0

    def encode(self, texts, batch_size: int = 32):
        self.texts += len(texts)
        return self.real.encode(texts, batch_size)


def _index(fake_encoder, **kwargs) -> Index:
    return Index(fake_encoder.model_name, fake_encoder.dimension, chunk_words=20, sentence_overlap=0, **kwargs)


MANY = [_document(f"geneva{i}", f"The Geneva talks on strategic stability resume in round {i}. "
                               f"Delegates met for session {i} in Geneva.") for i in range(40)]
ODD = _document("harbour", "The harbour crane lifts containers. Geneva is mentioned once here.")


def test_a_narrow_collection_still_gets_its_top_k_and_nothing_else(fake_encoder):
    index = _index(fake_encoder)
    index.add(MANY, fake_encoder, 8)
    index.add([ODD], fake_encoder, 8, collections=["ports"])
    vector = fake_encoder.encode(["Geneva talks strategic stability"])[0]
    everything = index.search(5, text="Geneva talks", vector=vector)
    assert all(h.chunk.doc_id != ODD.doc_id for h in everything.dense + everything.keyword)  # crowded out
    ports = index.search(5, text="Geneva talks", vector=vector, collections=["ports"])
    assert ports.dense and ports.keyword
    assert {h.chunk.doc_id for h in ports.dense + ports.keyword} == {ODD.doc_id}
    default = index.search(50, text="Geneva", vector=vector, collections=["default"])
    assert len(default.dense) == len(index) - len(index.chunks_of(ODD.doc_id))
    assert ODD.doc_id not in {h.chunk.doc_id for h in default.dense + default.keyword}
    assert index.search(5, text="Geneva", vector=vector, collections=[]) .dense == []
    assert index.collection_sizes() == {"default": 40, "ports": 1}


def test_the_ivf_store_filters_inside_the_search_too(fake_encoder):
    """Above flat_max rows the store is IVF-SQ8: a small collection is searched exactly over its
    own vectors, a large one by the IVF search with a selector and more lists probed."""
    rng = np.random.default_rng(7)
    n, dim = 6000, fake_encoder.dimension
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    small = set(range(0, n, 50))
    large = {i for i in range(n) if i % 3} - small  # more rows than an exact scan may take
    records = [ChunkRecord(f"d{i}#0", f"d{i}", 0, 0, 4, "text", ((0, 4),),
                           collections=("small",) if i in small else ("large",) if i in large else ("rest",))
               for i in range(n)]
    index = _index(fake_encoder, store=FaissStore(dim, flat_max=1000))
    index.add_records(records, ["text"] * n, vectors)
    for name, rows, probe in (("small", small, 100), ("large", large, 1)):
        query = vectors[probe] + 0.05 * vectors[probe + 1]
        hits = index.search_dense(query, 10, scope=index.scope([name]))
        assert len(hits) == 10 and {h.row for h in hits} <= rows and hits[0].row == probe
    exact = sorted(small, key=lambda r: -float(vectors[r] @ vectors[100]))[:10]
    found = {h.row for h in index.search_dense(vectors[100], 10, scope=index.scope(["small"]))}
    assert len(found & set(exact)) >= 9
    assert index.store.index_type == "ivf-sq8"


def test_moving_a_document_embeds_nothing_and_survives_a_reload(fake_encoder, tmp_path):
    encoder = CountingEncoder(fake_encoder)
    index = _index(fake_encoder)
    index.add([ODD, *MANY[:3]], encoder, 8, collections=["ports"])
    embedded = encoder.texts
    report = index.add([ODD], encoder, 8, collections=["hr", "ports2"])
    assert report.moved == [ODD.source] and encoder.texts == embedded
    again = index.add([ODD], encoder, 8)  # no collections named: it stays where it is
    assert again.skipped == [ODD.source] and not again.changed
    index.save(tmp_path / "index")
    loaded = Index.load(tmp_path / "index", model_name=fake_encoder.model_name)
    assert loaded.documents[ODD.doc_id].collections == ("hr", "ports2")
    assert {c.collections for c in loaded.chunks_of(ODD.doc_id)} == {("hr", "ports2")}
    vector = fake_encoder.encode(["harbour crane"])[0]
    assert {h.chunk.doc_id for h in loaded.search(5, vector=vector, collections=["hr"]).dense} == {ODD.doc_id}
    assert ODD.doc_id not in {h.chunk.doc_id for h in loaded.search(5, vector=vector, collections=["ports"]).dense}


def test_an_index_saved_before_collections_reads_as_default():
    info = DocumentInfo.from_json({"doc_id": "a", "title": "A", "source": "a.txt", "url": None, "sha256": "x",
                                   "chunks": 1})
    record = ChunkRecord.from_json(json.dumps({"chunk_id": "a#0", "doc_id": "a", "position": 0, "start": 0,
                                               "end": 1, "text": "A", "sentences": [[0, 1]]}))
    assert info.collections == ("default",) and record.collections == ("default",)


def test_collection_names_are_checked_in_one_line():
    assert check_names(["hr", "hr", "eng-docs"]) == ("eng-docs", "hr")
    for bad in ("HR", "", "two words", "x" * 65, "*"):
        with pytest.raises(CollectionNameError, match="not valid"):
            check_names([bad])


def test_channel_collections_from_toml_and_json_environment(tmp_path):
    config = tmp_path / "q.toml"
    config.write_text('[slack]\ndefault_collections = []\n[slack.channel_collections]\nC1 = ["hr"]\n'
                      'C2 = ["*"]\n', encoding="utf-8")
    settings = load_settings(config, environ={})
    assert settings.slack.channel_collections == {"C1": ("hr",), "C2": ("*",)}
    assert settings.slack.default_collections == ()
    env = load_settings(config, environ={"QABOT_CHANNEL_COLLECTIONS": '{"C9": ["eng", "hr"]}'})
    assert env.slack.channel_collections == {"C9": ("eng", "hr")}
    for bad in ('{"C9": ["eng"', '["hr"]', '{"C9": "hr"}', '{"C9": ["HR"]}'):
        with pytest.raises(SettingsError) as error:
            load_settings(config, environ={"QABOT_CHANNEL_COLLECTIONS": bad})
        assert "\n" not in str(error.value) and "QABOT_CHANNEL_COLLECTIONS" in str(error.value)
    with pytest.raises(SettingsError, match="dm_collections"):
        load_settings(config, environ={"QABOT_DM_COLLECTIONS": "Bad Name"})


def _mapped(settings, tmp_path):
    slack = settings.replace("slack", channel_collections={"C1": ("hr",), "D7": ("eng",)},
                             default_collections=("public",), dm_collections=("*",))
    return slack.replace("paths", state_db=tmp_path / "state.sqlite3")


def test_a_channel_answers_from_its_override_else_the_settings(settings, tmp_path):
    mapped = _mapped(settings, tmp_path)
    channels = ChannelCollections.from_settings(mapped)
    assert channels.for_channel("C1") == ("hr",)
    assert channels.for_channel("C2") == ("public",)
    assert channels.for_channel("D1") is None  # "*": every collection
    assert channels.for_channel("D7") == ("eng",)
    channels.set_override("C2", ["hr", "eng"])
    channels.set_override("C1", [])
    other_replica = ChannelCollections.from_settings(mapped)  # the same state_db file
    assert other_replica.for_channel("C2") == ("eng", "hr")
    assert other_replica.for_channel("C1") == ()
    other_replica.set_override("C1", None)
    assert channels.for_channel("C1") == ("hr",)
    with pytest.raises(CollectionNameError):
        channels.set_override("C1", ["Not A Name"])


class UnreadableOverrides(SqliteOverrides):
    def get(self, channel):
        raise OverridesUnavailable("OperationalError")


def test_an_unreadable_override_store_answers_from_no_collection(settings, tmp_path):
    mapped = _mapped(settings, tmp_path)
    channels = ChannelCollections(mapped, UnreadableOverrides(tmp_path / "state.sqlite3"))
    assert channels.for_channel("C2") == ()  # not the settings' "public": an admin may have narrowed it


def test_overrides_on_redis_are_shared_by_replicas(settings, redis_url, tmp_path):
    import redis

    mapped = _mapped(settings, tmp_path)
    first = ChannelCollections(mapped, RedisOverrides(redis.Redis.from_url(redis_url, decode_responses=True)))
    second = ChannelCollections(mapped, RedisOverrides(redis.Redis.from_url(redis_url, decode_responses=True)))
    first.set_override("C5", ["eng"])
    assert second.for_channel("C5") == ("eng",)
    assert second.overrides.all() == {"C5": ("eng",)}
    second.set_override("C5", None)
    assert first.for_channel("C5") == ("public",)


@pytest.mark.slow
def test_the_cli_puts_moves_lists_and_asks_by_collection(tmp_path):
    """`qabot ingest --collection`, a move without embedding again, `docs list --json`, and
    `ask --collection` (a name the index does not hold: one line), as a user runs them."""
    from .conftest import SAMPLE
    from .test_cli import FAST_INGEST, run

    index = tmp_path / "index"
    first = run("ingest", "--json", "--collection", "news", str(SAMPLE), index=index, env=FAST_INGEST)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["added"] == [str(SAMPLE)]
    moved = run("ingest", "--json", "--collection", "archive", "--collection", "news", str(SAMPLE), index=index)
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["moved"] == [str(SAMPLE)] and json.loads(moved.stdout)["chunks_added"] == 0
    listed = json.loads(run("docs", "list", "--json", index=index).stdout)
    assert [d["collections"] for d in listed] == [["archive", "news"]]
    answer = run("ask", "--json", "--collection", "archive", "What deadline did Ryabkov give?", index=index)
    assert answer.returncode == 0, answer.stderr
    assert "within a few weeks" in json.loads(answer.stdout)["answer"]
    assert json.loads(answer.stdout)["collections"] == ["archive"]
    refused = run("ask", "--collection", "hr", "What deadline did Ryabkov give?", index=index)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip() == "Error: no collection 'hr' in the index; it holds: archive, news (qabot docs list)"
