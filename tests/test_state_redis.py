"""The Slack app's shared state on a real redis-server (`[state] state_backend = "redis"`): claims
decided once across processes, the TTL and horizon rules of the SQLite store, thread memory and
feedback shared between replicas, and a one-line error when Redis cannot be reached."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bot.answering.answer import Answer, Citation
from bot.settings import load_settings
from bot.slack.home import tally_feedback
from bot.slack.redis_state import RedisAnsweredStore, RedisConversationMemory, RedisFeedbackLog
from bot.slack.state import shared_state
from bot.slack.store import event_key, message_key
from bot.state_store import StoreUnavailable, connect, redact_url

from .clock import Clock
from .conftest import ROOT

PROCESSES_CLAIMING = 4
KEYS_CLAIMED = 300

CLAIMER = """
import random, sys
from bot.slack.redis_state import RedisAnsweredStore
from bot.slack.store import message_key
from bot.state_store import connect
client = connect(sys.argv[1])
store = RedisAnsweredStore(client, ttl_s=3600, max_rows=100000)
keys = list(range(int(sys.argv[2])))
random.Random(int(sys.argv[3])).shuffle(keys)
client.rpush("test:ready", 1)
client.blpop(["test:go"], timeout=60)  # all start claiming at once
print(sum(store.claim(message_key("C1", f"1700000000.{k:06d}"), 1700000000 + k / 1e6) for k in keys))
"""



def test_processes_sharing_one_redis_claim_each_key_exactly_once(redis_url):
    processes = [subprocess.Popen([sys.executable, "-c", CLAIMER, redis_url, str(KEYS_CLAIMED), str(seed)], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for seed in range(PROCESSES_CLAIMING)]
    import redis

    starter = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 60
    while starter.llen("test:ready") < PROCESSES_CLAIMING and time.monotonic() < deadline:
        time.sleep(0.02)
    starter.rpush("test:go", *[1] * PROCESSES_CLAIMING)
    wins = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        wins.append(int(out.strip()))
    assert sum(wins) == KEYS_CLAIMED, wins
    assert sum(w > 0 for w in wins) >= 2, wins  # they really raced


def test_the_store_keeps_at_most_max_rows_and_the_evicted_stay_refused(redis_url):
    clock = Clock()
    store = RedisAnsweredStore(connect(redis_url), ttl_s=3600, max_rows=10, clock=clock)
    for i in range(25):
        clock.now += 1
        assert store.claim(event_key(f"Ev{i}"), 1700000000.0 + i)
    store.prune()
    assert store.counts()["answered"] == 10
    assert not store.claim(event_key("Ev3"), 1700000003.0)  # evicted, refused by the horizon
    assert store.claim(event_key("Ev99"), 1700000099.0)


def test_bot_threads_are_shared_between_clients_and_expire(redis_url):
    writer = RedisAnsweredStore(connect(redis_url), ttl_s=100, max_rows=100, thread_ttl_s=50)
    reader = RedisAnsweredStore(connect(redis_url), ttl_s=100, max_rows=100, thread_ttl_s=50)
    writer.remember_thread("D1", "1.0", assistant=True)
    writer.remember_thread("D1", "1.0")  # answered again: stays an assistant thread
    assert reader.is_bot_thread("D1", "1.0") and reader.is_assistant_thread("D1", "1.0")
    writer.remember_thread("C1", "2.0")
    assert reader.is_bot_thread("C1", "2.0") and not reader.is_assistant_thread("C1", "2.0")
    assert not reader.is_bot_thread("D1", "3.0")
    assert 0 < writer.redis.ttl("qabot:{qabot}:thread:C1:2.0") <= 50  # Redis expires it


def test_thread_memory_is_shared_between_replicas_and_bounded(redis_url):
    clock = Clock()
    stores = [RedisAnsweredStore(connect(redis_url), ttl_s=100, max_rows=100) for _ in range(2)]
    one, two = (RedisConversationMemory(s.redis, s, max_history=3, dm_context_s=60, clock=clock) for s in stores)
    assert two.get("C1", "5.0") is None
    for i in range(5):
        one.record("C1", "5.0", f"question {i}?")
    context = two.get("C1", "5.0")
    assert context.bot_participated and context.history == ("question 2?", "question 3?", "question 4?")
    assert two.is_bot_thread("C1", "5.0")
    one.record("D1", None, "a top-level DM question?")
    assert two.get("D1", None).history == ("a top-level DM question?",)
    clock.now += 61
    assert two.get("D1", None).history == ()  # a DM's top level counts as context for dm_context_s only
    assert one.redis.ttl("qabot:{qabot}:history:C1:5.0") > 0


def _answer() -> Answer:
    citation = Citation(document="Ryabkov", source="ryabkov.txt", url=None, chunk_id="ryabkov~abc#0",
                        text="Ryabkov set a deadline.", score=0.8, quote="Ryabkov set a deadline.")
    return Answer(question="What deadline?", text="Ryabkov set a deadline.", abstained=False, citations=(citation,))


def test_a_vote_reaching_the_other_replica_is_logged_with_its_answer(redis_url):
    one, two = RedisFeedbackLog(connect(redis_url)), RedisFeedbackLog(connect(redis_url))
    feedback_id = one.remember(_answer())
    entry = two.record_vote(feedback_id=feedback_id, vote="up", user="U1", channel="C1", message_ts="1.0")
    assert entry["question"] == "What deadline?" and entry["citations"][0]["chunk_id"] == "ryabkov~abc#0"
    two.record_vote(feedback_id=feedback_id, vote="down", user="U2", channel="C1", message_ts="1.0")
    unknown = one.record_vote(feedback_id="gone", vote="down", user="U3", channel="C1", message_ts="2.0",
                              fallback_answer="old text")
    assert unknown["question"] == "" and unknown["answer"] == "old text"
    assert [v["vote"] for v in one.recent_votes(10)] == ["up", "down", "down"]
    tally = tally_feedback(two)  # the Home tab's tally reads every replica's votes
    assert (tally.votes, tally.up, tally.down) == (3, 1, 2)


def test_the_redis_backend_is_chosen_by_settings_and_the_sqlite_one_stays_the_default(redis_url, tmp_path):
    settings = load_settings(environ={"QABOT_STATE_BACKEND": "redis", "QABOT_REDIS_URL": redis_url})
    answered, memory, feedback, handover = shared_state(settings)
    assert isinstance(answered, RedisAnsweredStore) and isinstance(memory, RedisConversationMemory)
    assert isinstance(feedback, RedisFeedbackLog) and handover is not None
    default = load_settings(environ={"QABOT_STATE_DB": str(tmp_path / "s.sqlite3")})
    assert default.state.state_backend == "sqlite"
    answered, _, _, handover = shared_state(default)
    assert handover is None  # one host: no hand-over needed
    assert type(answered).__name__ == "SqliteAnsweredStore"
    answered.close()


def test_an_unreachable_redis_is_a_one_line_error_without_its_password():
    from .redis_server import free_port

    url = f"redis://:s3cretPassw0rd@127.0.0.1:{free_port()}/0"
    with pytest.raises(StoreUnavailable, match="cannot reach the state Redis") as caught:
        connect(url)
    assert "s3cretPassw0rd" not in str(caught.value) and "\n" not in str(caught.value)
    assert redact_url(url) == f"redis://127.0.0.1:{url.rsplit(':', 1)[1]}"


def test_a_hold_whose_lease_ran_out_is_taken_over_once_and_only_its_owner_claim_released(redis_url):
    from bot.slack.handover import HandOver, Reaper

    clock = Clock()
    dead = RedisAnsweredStore(connect(redis_url), ttl_s=100, max_rows=100, replica="dead", clock=clock)
    alive = RedisAnsweredStore(connect(redis_url), ttl_s=100, max_rows=100, replica="alive", clock=clock)
    held = HandOver(dead.redis, "dead", lease_s=40, clock=clock)
    body = {"event_id": "Ev1", "event": {"type": "app_mention", "channel": "C1", "ts": "1700000000.000100"}}
    finished = {"event_id": "Ev2", "event": {"type": "app_mention", "channel": "C1", "ts": "1700000000.000200"}}
    assert dead.claim(message_key("C1", "1700000000.000100"), 1700000000.0001)  # claimed, then the replica dies
    held.hold(body)
    held.drop(held.hold(finished))  # a delivery whose listener finished leaves nothing held
    takers = [HandOver(alive.redis, "alive", lease_s=40, clock=clock) for _ in range(2)]
    assert takers[0].take_expired() == []  # the lease still runs
    clock.now += 41
    dispatched: list[dict] = []
    reapers = [Reaper(t, alive.release, dispatched.append) for t in takers]
    assert reapers[0].reap() == 1 and reapers[1].reap() == 0  # taken over once
    assert dispatched[0]["event"] == body["event"] and dispatched[0]["qabot_handovers"] == 1
    assert alive.claim(message_key("C1", "1700000000.000100"), 1700000000.0001)  # the dead replica's claim is gone
    assert not alive.release(message_key("C1", "1700000000.000100"), "dead")  # a live replica's claim stays
    assert takers[0].held() == 0
