"""What the bot remembers outlives the process: answered messages and its threads live in the state
database (``[paths] state_db``), so a restarted bot never answers an edited mention again and still
knows its threads. Also the store's bounds: TTL, row limit, and the horizon that keeps a forgotten
message from being answered twice."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from bot.slack.handover import HANDOVERS_KEY
from bot.slack.store import SqliteAnsweredStore, event_key, message_key
from bot.state_store import StoreUnavailable

from .clock import Clock
from .slack_requests import SpyAnswerer, event_body, mention_event, message_event

FIXTURES = Path(__file__).parent / "fixtures" / "slack"
DEADLINE_Q = "What deadline did Ryabkov give?"


def payload(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def send(bot, body: dict) -> int:
    status, _, _ = bot.post_signed(json.dumps(body), "application/json")
    return status


def test_an_edited_mention_after_a_restart_gets_no_second_answer(make_bot, standin, answerer, slack_settings):
    first = make_bot(SpyAnswerer(answerer))
    assert send(first, payload("app_mention")) == 200
    standin.wait_for("chat.postMessage")
    first.wait_idle()
    first.close()  # stop the bot ...

    spy = SpyAnswerer(answerer)
    second = make_bot(spy, settings=slack_settings)  # ... and start a new one on the same data folder
    assert slack_settings.paths.state_db.is_file()
    # Slack sends the edit as a new app_mention (new event id, `edited`, same ts) and message_changed.
    assert send(second, payload("app_mention_edited")) == 200
    assert send(second, payload("message_changed")) == 200
    second.wait_idle()
    assert len(standin.posts()) == 1
    assert spy.calls == []


def test_a_restarted_bot_knows_its_threads_even_when_slack_cannot_show_them(make_bot, standin, answerer):
    first = make_bot(answerer)
    mention = mention_event(DEADLINE_Q)
    first.send_event(mention)
    standin.wait_for("chat.postMessage")
    first.wait_idle()
    first.close()

    spy = SpyAnswerer(answerer)
    second = make_bot(spy)
    standin.fail("conversations.replies", error="ratelimited", times=5)  # the thread cannot be read now
    second.send_event(message_event("and when are the talks?", channel=mention["channel"], thread_ts=mention["ts"]))
    reply = standin.wait_for("chat.postMessage", 2)[1]
    assert reply.params["thread_ts"] == mention["ts"]
    assert spy.calls == [("and when are the talks?", ())]



@pytest.fixture(params=["sqlite", "redis"])
def answered_store(request, tmp_path):
    """make(clock) -> the answered-message store of either backend (TTL 100 s, 1,000 rows)."""
    stores = []

    def make(clock):
        if request.param == "sqlite":
            store = SqliteAnsweredStore(tmp_path / "state.sqlite3", ttl_s=100, max_rows=1000, clock=clock)
        else:
            from bot.slack.redis_state import RedisAnsweredStore
            from bot.state_store import connect

            url = request.getfixturevalue("redis_url")  # a real redis-server (tests/redis_server.py)
            store = RedisAnsweredStore(connect(url), ttl_s=100, max_rows=1000, clock=clock)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


def test_the_store_claims_once_forgets_after_the_ttl_and_refuses_what_it_forgot(answered_store):
    clock = Clock()
    store = answered_store(clock)
    key = message_key("C1", "1700000000.000100")
    assert store.claim(key, 1700000000.0001)
    assert not store.claim(key, 1700000000.0001)
    assert store.claimed(key)
    clock.now += 101
    store.prune()
    assert not store.claimed(key)  # forgotten ...
    assert store.counts()["answered"] == 0
    assert not store.claim(key, 1700000000.0001)  # ... yet never answered again: it is behind the horizon
    assert not store.claim(message_key("C1", "1699999999.000000"), 1699999999.0)  # older: refused too
    assert store.claim(message_key("C1", "1700000001.000000"), 1700000001.0)  # newer messages still answered


def test_the_store_keeps_at_most_max_rows_and_the_evicted_stay_refused(tmp_path, caplog):
    store = SqliteAnsweredStore(tmp_path / "state.sqlite3", ttl_s=3600, max_rows=10)
    for i in range(25):
        assert store.claim(event_key(f"Ev{i}"), 1700000000.0 + i)
    store.prune()
    assert store.counts()["answered"] == 10
    assert "dedupe_max_entries" in caplog.text
    assert not store.claim(event_key("Ev3"), 1700000003.0)  # evicted, refused by the horizon
    assert store.claim(event_key("Ev99"), 1700000099.0)
    store.close()


def test_bot_threads_are_shared_bounded_and_expire(tmp_path):
    clock = Clock()
    path = tmp_path / "state.sqlite3"
    writer = SqliteAnsweredStore(path, ttl_s=100, max_rows=100, thread_ttl_s=50, max_threads=3, clock=clock)
    reader = SqliteAnsweredStore(path, ttl_s=100, max_rows=100, thread_ttl_s=50, max_threads=3, clock=clock)
    writer.remember_thread("D1", "1.0", assistant=True)
    writer.remember_thread("D1", "1.0")  # answered again: stays an assistant thread
    assert reader.is_bot_thread("D1", "1.0") and reader.is_assistant_thread("D1", "1.0")
    assert not reader.is_bot_thread("D1", "2.0")
    for i in range(5):
        clock.now += 1
        writer.remember_thread("C1", f"{i}.0")
    writer.prune()
    assert writer.counts()["bot_threads"] == 3
    clock.now += 51
    assert not reader.is_bot_thread("C1", "4.0")  # past the thread TTL
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    writer.close()
    reader.close()


def test_an_unusable_state_database_is_a_one_line_error(tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(StoreUnavailable, match="cannot open the state database") as caught:
        SqliteAnsweredStore(folder, ttl_s=10, max_rows=10)
    assert "\n" not in str(caught.value)


def test_a_taken_over_message_the_dead_replica_answered_after_all_gets_no_second_answer(
        make_bot, standin, answerer, slack_settings, tmp_path):
    """A replica that dies between posting its answer and ending its hand-over hold: the replica
    taking the event over (handover.py; its claim was released) finds the bot's reply in the thread."""
    first = make_bot(answerer)
    answered = mention_event(DEADLINE_Q)
    first.send_event(answered)
    standin.wait_for("chat.postMessage")
    first.wait_idle()

    spy = SpyAnswerer(answerer)
    taker = make_bot(spy, settings=slack_settings.replace("paths", state_db=tmp_path / "taker.sqlite3"))
    assert send(taker, {**event_body(answered), HANDOVERS_KEY: 1}) == 200
    never_answered = mention_event("When are the Geneva talks?")
    assert send(taker, {**event_body(never_answered), HANDOVERS_KEY: 1}) == 200
    standin.wait_for("chat.postMessage", 2)
    taker.wait_idle()
    assert spy.calls == [("When are the Geneva talks?", ())]
    assert [p.params["thread_ts"] for p in standin.posts()] == [answered["ts"], never_answered["ts"]]
