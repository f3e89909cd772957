"""Exactly once, and never silent, when the state store fails (bot/slack/guard.py).

Real bots over real HTTP against the Slack stand-in, a real redis-server of the test's own
(stopped and started again empty, as a Redis without persistence comes back) and real SQLite
files; one replica, then two (two apps, each with its own state, sharing the store as two
processes do). Slack's deliveries are replayed as Slack sends them: the same body, with
``X-Slack-Retry-Num`` for a retry, the ``message`` twin of each mention.

Every check counts what the stand-in received; nothing waits a fixed time to prove an absence:
each bot is waited on until idle (its listener and answer pools empty).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.slack.store import Claim

from .slack_requests import event_body, mention_event, message_event, twin_of
from .slack_standin import wait_until

QUESTIONS = ("What deadline did Ryabkov give?", "When are the talks in Geneva?", "Who is Sergei Ryabkov?")
# Slack retries a delivery three times (after about 0 s, 1 min and 5 min) and then gives up.
SLACK_RETRIES = (1, 2, 3)
TWINS = 50


def _bots(make_bot, answerer, settings, count: int):
    return [make_bot(answerer, settings=settings) for _ in range(count)]


def _deliver(bot, body: dict, retry: int = 0) -> None:
    headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else None
    status, _, _ = bot.post_signed(json.dumps(body), "application/json", headers=headers)
    assert status == 200


def _idle(bots) -> None:
    for _ in range(2):  # a listener on one bot never starts work on another: twice settles both
        for bot in bots:
            bot.wait_idle(60)


def _answers(standin) -> Counter:
    """Replies of the bot per message (a thread reply's thread_ts, or a DM answer's channel)."""
    replies = standin.calls("chat.postMessage") + standin.calls("chat.startStream")
    return Counter(call.params.get("thread_ts") or call.params["channel"] for call in replies)


def _mentions(count: int, *, age_s: float = 0.0) -> list[tuple[dict, dict]]:
    """(mention body, twin body) pairs; `age_s`: how long ago Slack created the events."""
    pairs = []
    for i in range(count):
        mention = mention_event(QUESTIONS[i % len(QUESTIONS)])
        pair = event_body(mention), event_body(twin_of(mention))
        for body in pair:
            body["event_time"] = int(time.time() - age_s)
        pairs.append(pair)
    return pairs


def _ts(pair) -> str:
    return pair[0]["event"]["ts"]


@pytest.fixture
def redis_settings(slack_settings, own_redis):
    return slack_settings.replace("state", state_backend="redis", redis_url=own_redis.url)


# --- (a) Redis stopped, events answered without it, Redis back empty, Slack retries ---------------

@pytest.mark.parametrize("replicas", [1, 2])
def test_redis_restarted_empty_every_message_is_answered_exactly_once(make_bot, standin, answerer, redis_settings,
                                                                      own_redis, replicas):
    bots = _bots(make_bot, answerer, redis_settings, replicas)
    before = _mentions(3, age_s=30)  # answered half a minute before Redis restarts
    for i, (mention, _) in enumerate(before):
        _deliver(bots[i % replicas], mention)
    _idle(bots)
    assert all(_answers(standin)[_ts(pair)] == 1 for pair in before)

    own_redis.stop()
    during = _mentions(3)
    for i, (mention, twin) in enumerate(during):
        _deliver(bots[i % replicas], mention)
        _deliver(bots[(i + 1) % replicas], twin)
    _idle(bots)
    own_redis.start()  # empty: no persistence

    for i, (mention, twin) in enumerate(before + during):
        for retry in SLACK_RETRIES:
            _deliver(bots[(i + retry) % replicas], mention, retry)
        _deliver(bots[(i + 1) % replicas], twin)  # a twin of a message answered before: a first delivery
        _deliver(bots[i % replicas], twin, 1)
    _idle(bots)
    answers = _answers(standin)
    assert {_ts(pair): answers[_ts(pair)] for pair in before + during} == {_ts(pair): 1 for pair in before + during}
    assert sum(answers.values()) == len(before + during)


# --- (b) the bot restarted without its SQLite file -------------------------------------------------

@pytest.mark.parametrize("replicas", [1, 2])
def test_sqlite_file_lost_on_restart_every_message_is_answered_exactly_once(make_bot, standin, answerer,
                                                                            slack_settings, replicas):
    state_db = slack_settings.paths.state_db
    first = _bots(make_bot, answerer, slack_settings, replicas)
    before = _mentions(3, age_s=30)
    for i, (mention, _) in enumerate(before):
        _deliver(first[i % replicas], mention)
    _idle(first)
    for bot in first:
        bot.close()
    for path in state_db.parent.glob(state_db.name + "*"):  # the file and its -wal / -shm
        path.unlink()

    again = _bots(make_bot, answerer, slack_settings, replicas)  # a new container without the volume
    new = _mentions(2)
    for i, (mention, twin) in enumerate(before):
        for retry in SLACK_RETRIES:
            _deliver(again[(i + retry) % replicas], mention, retry)
        _deliver(again[(i + 1) % replicas], twin)
    for i, (mention, twin) in enumerate(new):
        _deliver(again[i % replicas], mention)
        _deliver(again[(i + 1) % replicas], twin)
    _idle(again)
    answers = _answers(standin)
    assert {_ts(pair): answers[_ts(pair)] for pair in before + new} == {_ts(pair): 1 for pair in before + new}
    assert state_db.exists()


# --- (c) Redis down for longer than Slack retries ---------------------------------------------------

def _healthz(bot) -> dict:
    with urllib.request.urlopen(bot.url.replace("/slack/events", "/healthz"), timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


@pytest.mark.parametrize("replicas", [1, 2])
def test_redis_down_past_slacks_retries_each_question_answered_once(make_bot, standin, answerer, redis_settings,
                                                                    own_redis, replicas, caplog):
    bots = _bots(make_bot, answerer, redis_settings, replicas)
    assert _healthz(bots[0])["state"] == {"store": f"redis {own_redis.url}", "reachable": True,
                                          "on_unavailable": "answer", "answered_without_store": 0,
                                          "dropped_without_store": 0}
    own_redis.stop()
    asked = _mentions(4)
    dm = event_body(message_event(QUESTIONS[0], channel="D0ASKER", channel_type="im"))
    with caplog.at_level(logging.WARNING, logger="bot.slack.guard"):
        for i, (mention, twin) in enumerate(asked):
            _deliver(bots[i % replicas], mention)
            _deliver(bots[(i + 1) % replicas], twin)
        _deliver(bots[0], dm)
        _idle(bots)
        for retry in SLACK_RETRIES:  # Slack's whole retry schedule passes while Redis is down
            for i, (mention, _) in enumerate(asked):
                _deliver(bots[(i + retry) % replicas], mention, retry)
            _deliver(bots[retry % replicas], dm, retry)
        _idle(bots)
    answers = _answers(standin)
    assert [answers[_ts(pair)] for pair in asked] == [1] * len(asked)
    assert answers["D0ASKER"] == 1  # a top-level DM answer, found by conversations.history
    assert sum(answers.values()) == len(asked) + 1
    assert "the state store (redis" in caplog.text and "is unreachable" in caplog.text
    health = [_healthz(bot)["state"] for bot in bots]
    assert all(not h["reachable"] for h in health)
    assert sum(h["answered_without_store"] for h in health) == len(asked) + 1
    own_redis.start()
    assert all(_healthz(bot)["state"]["reachable"] for bot in bots)


def test_redis_down_with_on_unavailable_drop_answers_none_and_logs_each(make_bot, standin, answerer,
                                                                         redis_settings, own_redis, caplog):
    settings = redis_settings.replace("state", on_unavailable="drop")
    bots = _bots(make_bot, answerer, settings, 2)
    own_redis.stop()
    asked = _mentions(4)
    with caplog.at_level(logging.WARNING, logger="bot.slack.guard"):
        for retry in (0, *SLACK_RETRIES):
            for i, (mention, twin) in enumerate(asked):
                _deliver(bots[(i + retry) % 2], mention, retry)
                if not retry:
                    _deliver(bots[(i + 1) % 2], twin)
        _idle(bots)
    assert _answers(standin) == Counter()
    for pair in asked:
        channel, ts = pair[0]["event"]["channel"], _ts(pair)
        assert f'not answering {channel}/{ts}: the state store is unreachable and on_unavailable = "drop"' \
            in caplog.text
    assert sum(_healthz(bot)["state"]["dropped_without_store"] for bot in bots) == len(asked) * (2 + len(SLACK_RETRIES))


# --- two replicas without the store: message twins at once ------------------------------------------

def test_two_replicas_without_the_store_answer_twins_once(make_bot, standin, answerer, redis_settings, own_redis):
    bots = _bots(make_bot, answerer, redis_settings, 2)
    own_redis.stop()
    pairs = _mentions(TWINS)
    with ThreadPoolExecutor(2 * 8) as pool:  # every mention and its twin in flight at once, one to each replica
        futures = [pool.submit(_deliver, bots[n % 2], body)
                   for i, pair in enumerate(pairs) for n, body in enumerate(pair, start=i)]
        for future in futures:
            future.result()
    _idle(bots)
    answers = _answers(standin)
    duplicates = sum(1 for pair in pairs if answers[_ts(pair)] > 1)
    unanswered = sum(1 for pair in pairs if answers[_ts(pair)] == 0)
    print(f"{TWINS} twins on 2 replicas without the store: {duplicates} duplicates, {unanswered} unanswered")
    assert (duplicates, unanswered) == (0, 0)


# --- the normal path ------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_first_delivery_on_a_healthy_store_makes_no_extra_slack_call(make_bot, standin, answerer, slack_settings,
                                                                       backend, request):
    settings = slack_settings
    if backend == "redis":
        settings = request.getfixturevalue("redis_settings")
    bot = make_bot(answerer, settings=settings)
    # A healthy store was alive before the events it is asked about. A Redis store is born at its
    # first claim, and Slack's event_time is whole seconds: mentions made before that birth may
    # rightly be checked against their thread (guard.unvouched). One DM answered first births it.
    _deliver(bot, event_body(message_event(QUESTIONS[0], channel="D0ASKER", channel_type="im")))
    bot.wait_idle(60)
    before = len(standin.all_calls())
    pairs = _mentions(5)
    for mention, twin in pairs:
        _deliver(bot, mention)
        _deliver(bot, twin)
    dm = event_body(message_event(QUESTIONS[1], channel="D0ASKER", channel_type="im"))
    _deliver(bot, dm)
    bot.wait_idle(60)
    calls = Counter(call.method for call in standin.all_calls()[before:])
    # Per message: the working reaction on and off, and the reply; nothing reads a conversation.
    assert calls == Counter({"reactions.add": 6, "chat.postMessage": 6, "reactions.remove": 6}), calls


# --- since when a store vouches ---------------------------------------------------------------------

def test_a_sqlite_store_is_born_once_per_file(tmp_path):
    from bot.slack.store import SqliteAnsweredStore

    path = tmp_path / "state.sqlite3"
    first = SqliteAnsweredStore(path, ttl_s=100, max_rows=100, clock=lambda: 1000.0)
    assert first.try_claim("message:C1:1.0", 1.0) == Claim(True, 1000.0)
    first.close()
    reopened = SqliteAnsweredStore(path, ttl_s=100, max_rows=100, clock=lambda: 2000.0)
    assert reopened.try_claim("message:C1:1.0", 1.0) == Claim(False, 1000.0)  # the same file remembers
    reopened.close()
    path.unlink()
    lost = SqliteAnsweredStore(path, ttl_s=100, max_rows=100, clock=lambda: 3000.0)
    assert lost.try_claim("message:C1:1.0", 1.0) == Claim(True, 3000.0)  # a new file vouches from now on
    lost.close()


def test_a_redis_store_vouches_only_since_it_last_reached_redis(own_redis):
    import redis

    from bot.slack.redis_state import RedisAnsweredStore
    from bot.state_store import PREFIX, connect

    now = [1000.0]
    store = RedisAnsweredStore(connect(own_redis.url), ttl_s=100, max_rows=100, clock=lambda: now[0])
    assert store.try_claim("message:C1:1.0", 1.0) == Claim(True, 1000.0)
    own_redis.stop()
    now[0] = 1100.0
    assert store.try_claim("message:C1:2.0", 2.0).won is None  # unreachable: nothing recorded
    own_redis.start()
    redis.Redis.from_url(own_redis.url).set(PREFIX + "born", "1000")  # as if its data had survived
    now[0] = 1200.0
    assert store.try_claim("message:C1:2.0", 2.0) == Claim(True, 1200.0)  # back: vouches from now on
    now[0] = 1300.0
    assert store.try_claim("message:C1:3.0", 3.0) == Claim(True, 1200.0)
    store.close()


@pytest.mark.parametrize("retry, event_time, born, why", [
    (0, 1000.0, 900.0, None),
    (0, 1000.0, 1000.5, None),  # Slack's whole seconds: possibly newer than the store
    (0, 1000.0, 1002.0, "an event older than the state store's memory"),
    (2, 1000.0, 900.0, "Slack's retry 2"),
    (0, float("nan"), 1002.0, None),  # no event_time: nothing to compare
])
def test_unvouched(retry, event_time, born, why):
    from bot.slack.guard import EVENT_TIME_KEY, RETRY_KEY, unvouched

    assert unvouched({RETRY_KEY: retry, EVENT_TIME_KEY: event_time}, Claim(True, born)) == why


# --- the same with `qabot serve` processes ------------------------------------------------------------

def test_two_serve_processes_without_redis_answer_twins_once_then_survive_its_empty_restart(
        standin, sample_index, tmp_path, own_redis):
    """Two real replicas (tests/replicas.py) on one Redis, which stops: 50 mentions and their twins
    at once, one of each pair to each replica; Redis restarts empty and Slack retries them all."""
    from .replicas import ServeProcess

    env = {"QABOT_STATE_BACKEND": "redis", "QABOT_REDIS_URL": own_redis.url}
    replicas = [ServeProcess(standin, sample_index, tmp_path / f"host{i}", env) for i in range(2)]
    try:
        for replica in replicas:
            replica.wait_listening()
        own_redis.stop()
        pairs = _mentions(TWINS)
        with ThreadPoolExecutor(2 * 8) as pool:
            futures = [pool.submit(lambda r, b: replicas[r].post(b) == 200 or pytest.fail("not acknowledged"),
                                   n % 2, body)
                       for i, pair in enumerate(pairs) for n, body in enumerate(pair, start=i)]
            for future in futures:
                future.result()
        # Each delivery logs what it decided; an answer's reaction comes off once it is posted.
        _settled(standin, replicas, 2 * TWINS)
        answers = _answers(standin)
        duplicates = sum(1 for pair in pairs if answers[_ts(pair)] > 1)
        unanswered = sum(1 for pair in pairs if answers[_ts(pair)] == 0)
        print(f"{TWINS} twins on 2 `qabot serve` processes without Redis: {duplicates} duplicates, "
              f"{unanswered} unanswered")
        assert (duplicates, unanswered) == (0, 0)

        own_redis.start()  # empty
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda item: replicas[item[0] % 2].post(item[1][0], {"X-Slack-Retry-Num": "1"}),
                          enumerate(pairs)))
        # Each retry is checked against its thread, which holds the answer: nothing new is posted.
        _settled(standin, replicas, 3 * TWINS)
        assert sum(_answers(standin).values()) == TWINS
    finally:
        outputs = [replica.stop() for replica in replicas]
    assert all("without the state store" in out for out in outputs), "both replicas answered some"


DECIDED = ("without the state store (on_unavailable", "another replica is answering it",
           "its thread already holds our reply")


def _settled(standin, replicas, deliveries: int) -> None:
    """Wait until the replicas logged a decision on `deliveries` messages and no answer is still
    in progress (the working reaction comes off after the reply is posted)."""
    def done() -> bool:
        decided = sum(1 for replica in replicas for line in list(replica.lines) if any(d in line for d in DECIDED))
        return decided >= deliveries and not standin.reactions()
    wait_until(done, timeout=180, message=f"{deliveries} decisions of the replicas")


def test_admins_see_the_store_and_its_counters_on_the_home_tab(make_bot, standin, answerer, redis_settings,
                                                               own_redis):
    from .test_slack_home import home_opened, texts

    admin = "U0ADMIN"
    bot = make_bot(answerer, settings=redis_settings.replace("slack", admin_users=(admin,)))
    own_redis.stop()
    (mention, _), = _mentions(1)
    _deliver(bot, mention)
    bot.wait_idle(60)
    _deliver(bot, event_body(home_opened(admin)))
    standin.wait_for("views.publish")
    body = "\n".join(texts(standin.views[admin]))
    assert f"State store: redis {own_redis.url}, *unreachable* · answered without it: 1 · dropped without it: 0" \
        in body
    _deliver(bot, event_body(home_opened("U0ASKER")))  # not an admin: no store line
    standin.wait_for("views.publish", 2)
    assert "State store" not in "\n".join(texts(standin.views["U0ASKER"]))
