"""Slack under load and faults (issue 5, item 5): the real app over real HTTP with the real Answerer.

- 200 signed mentions from 20 channels within a few seconds: each answered exactly once, no more
  Answerer calls at once than ``settings.slack.workers``, every ack well under Slack's 3 s.
- Web API faults (500, 429 + Retry-After, a read timeout) are retried and answered once; a post
  that keeps failing is logged with its cause after a bounded number of attempts.
- A stalled Answerer call times out with an apology and frees its worker.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable

import pytest

from bot.slack.client import make_web_client

from .slack_requests import SpyAnswerer, mention_event, twin_of
from .slack_standin import wait_until

# Load and fault trials take seconds each (200 events, retries with real back-off, a stalled call).
pytestmark = pytest.mark.slow

log = logging.getLogger(__name__)

DEADLINE_Q = "What deadline did Ryabkov give?"
QUESTIONS = (DEADLINE_Q, "When are the talks in Geneva?", "Who is Sergei Ryabkov?",
             "What did Russia say about NATO?")
EVENTS = 200
CHANNELS = 20


class ConcurrencyProbe(SpyAnswerer):
    """The real Answerer, counting how many of its calls run at the same time."""

    def __init__(self, real: Any) -> None:
        super().__init__(real)
        self.active = 0
        self.max_active = 0

    def ask(self, question: str, history: Iterable[str] = ()) -> Any:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            return super().ask(question, history)
        finally:
            with self._lock:
                self.active -= 1


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def test_two_hundred_mentions_from_twenty_channels_each_answered_once(make_bot, standin, answerer, slack_settings):
    workers = slack_settings.slack.workers
    probe = ConcurrencyProbe(answerer)
    bot = make_bot(probe)
    events = [mention_event(QUESTIONS[i % len(QUESTIONS)], channel=f"C0LOAD{i % CHANNELS:02d}", user=f"U{i:04d}")
              for i in range(EVENTS)]
    sent_at: dict[tuple[str, str], float] = {}
    acks: list[tuple[int, float]] = []
    lock = threading.Lock()

    def timed(deliver) -> None:
        started = time.monotonic()
        status = deliver()
        with lock:
            acks.append((status, time.monotonic() - started))

    def send(numbered: tuple[int, dict]) -> None:
        i, event = numbered
        with lock:
            sent_at[(event["channel"], event["ts"])] = time.monotonic()
        started = time.monotonic()
        status, _, payload = bot.send_event(event)
        with lock:
            acks.append((status, time.monotonic() - started))
        # Slack also delivers a channel mention as a `message` event, and re-sends some events
        # (same event_id) when an ack looks late: none of these may give a second answer.
        timed(lambda: bot.send_event(twin_of(event))[0])
        if i % 10 == 0:
            retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
            timed(lambda: bot.send_event(event, event_id=payload["event_id"], headers=retry)[0])

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CHANNELS) as senders:  # 20 channels talking at once
        list(senders.map(send, enumerate(events)))
    send_seconds = time.monotonic() - started
    deliveries = len(acks)
    standin.wait_for("chat.postMessage", EVENTS, timeout=90)
    # Every delivery is acknowledged and no worker is busy: nothing is left that could still post
    # (a late duplicate would have been posted by now).
    assert bot.bot.wait_idle(30)

    posts = standin.posts()
    per_thread = Counter((p.params["channel"], p.params.get("thread_ts")) for p in posts)
    answered = sum(1 for key in sent_at if per_thread.get(key))
    duplicated = sum(n - 1 for n in per_thread.values() if n > 1)
    strays = set(per_thread) - set(sent_at)
    reply_times = [min(p.at for p in posts if (p.params["channel"], p.params.get("thread_ts")) == key) - at
                   for key, at in sent_at.items() if per_thread.get(key)]
    max_ack = max(seconds for _, seconds in acks)
    p95 = percentile(reply_times, 95)
    summary = (f"load: sent={EVENTS} mentions ({deliveries} deliveries with twins and retries) in "
               f"{send_seconds:.2f}s from {CHANNELS} channels, answered={answered}, "
               f"duplicated={duplicated}, max concurrent Answerer calls={probe.max_active} (workers={workers}), "
               f"max ack={max_ack * 1000:.0f} ms, p50 reply={percentile(reply_times, 50):.2f}s, "
               f"p95 reply={p95:.2f}s, max reply={max(reply_times):.2f}s")
    print("\n" + summary)
    log.warning(summary)

    assert [status for status, _ in acks] == [200] * deliveries
    assert answered == EVENTS and duplicated == 0 and not strays
    assert len(posts) == EVENTS
    assert all("Sorry" not in p.params["text"] for p in posts), "no timeouts or failures under load"
    assert len(probe.calls) == EVENTS
    assert 1 <= probe.max_active <= workers
    assert max_ack < 1.5, f"an ack took {max_ack:.2f} s (Slack gives up at 3 s)"
    assert send_seconds < 15, "the burst should take a few seconds"


# --- Web API faults ----------------------------------------------------------------------------

def test_server_error_500_is_retried_and_answered_once(make_bot, standin, answerer):
    bot = make_bot(answerer)
    standin.fail("chat.postMessage", status=500)
    bot.send_event(mention_event(DEADLINE_Q))
    post = standin.wait_for("chat.postMessage", timeout=20)[0]
    bot.wait_idle()
    assert [c.status for c in standin.all_calls() if c.method == "chat.postMessage"] == [500, 200]
    assert len(standin.posts()) == 1 and "within a few weeks" in post.text_and_blocks()


def test_a_timed_out_post_is_retried_and_answered_once(standin, make_bot, answerer):
    """Slack takes longer than the client's timeout (and then fails): the post is sent again."""
    client = make_web_client(standin.bot_token, standin.api_url, timeout=1)
    bot = make_bot(answerer, client=client)
    standin.fail("chat.postMessage", status=503, delay=2.5)  # the client gives up after 1 s
    event = mention_event(DEADLINE_Q)
    bot.send_event(event)
    post = standin.wait_for("chat.postMessage", timeout=20)[0]
    bot.wait_idle()
    # The slow first attempt is recorded when the stand-in answers it (after its delay).
    wait_until(lambda: len([c for c in standin.all_calls() if c.method == "chat.postMessage"]) == 2,
               message="the slow first attempt's answer")
    attempts = [c for c in standin.all_calls() if c.method == "chat.postMessage"]
    assert sorted(c.status for c in attempts) == [200, 503]
    assert len(standin.posts()) == 1 and post.params["thread_ts"] == event["ts"]
    assert "within a few weeks" in post.text_and_blocks()


def test_a_post_that_keeps_failing_is_logged_with_its_cause_and_not_retried_forever(make_bot, standin, answerer,
                                                                                  caplog):
    bot = make_bot(answerer)
    standin.fail("chat.postMessage", status=500, times=1000)
    with caplog.at_level(logging.ERROR, logger="bot.slack"):
        bot.send_event(mention_event(DEADLINE_Q))
        wait_until(lambda: any(c.method == "chat.postMessage" for c in standin.all_calls()),
                   message="the first post attempt")
        # Idle: the answer and the apology were each given up; no worker is left to try again.
        assert bot.bot.wait_idle(30)
        attempts = len([c for c in standin.all_calls() if c.method == "chat.postMessage"])
    # The answer and then the apology, each tried 1 + 2 retries (ServerErrorRetryHandler), then given up.
    assert 2 <= attempts <= 6
    assert standin.posts() == []
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("posting the answer" in m and "internal_error" in m for m in errors), errors
    assert any("could not post an apology" in m and "internal_error" in m for m in errors), errors


# --- a stalled Answerer ------------------------------------------------------------------------

class StallFirst(SpyAnswerer):
    """The first call stalls until released; later ones answer with the real Answerer."""

    def __init__(self, real: Any) -> None:
        super().__init__(real)
        self.release = threading.Event()
        self.stalled = threading.Event()
        self.first_returned = threading.Event()  # the stalled call has returned its (late) answer

    def ask(self, question: str, history: Iterable[str] = ()) -> Any:
        with self._lock:
            first = not self.stalled.is_set()
            self.stalled.set()
        if not first:
            return super().ask(question, history)
        self.release.wait(60)
        try:
            return super().ask(question, history)
        finally:
            self.first_returned.set()


def test_a_stalled_answer_times_out_and_frees_its_worker(make_bot, standin, answerer, slack_settings):
    stall = StallFirst(answerer)
    settings = slack_settings.replace("slack", workers=1, answer_timeout_s=1.0)
    bot = make_bot(stall, settings=settings)
    try:
        first = mention_event(DEADLINE_Q, channel="C0STALL")
        bot.send_event(first)
        apology = standin.wait_for("chat.postMessage", timeout=10)[0]
        assert apology.params["thread_ts"] == first["ts"] and "took too long" in apology.params["text"]
        # The only worker is still inside the stalled call; the next question is answered anyway.
        second = mention_event(DEADLINE_Q, channel="C0NEXT")
        started = time.monotonic()
        bot.send_event(second)
        answer = standin.wait_for("chat.postMessage", 2, timeout=10)[1]
        took = time.monotonic() - started
        assert answer.params["thread_ts"] == second["ts"]
        assert "within a few weeks" in answer.text_and_blocks(), answer.params["text"]
        assert took < 1.0, f"the second answer took {took:.2f} s"
        assert bot.bot.wait_idle(5), "the stalled call must not count as work in progress"
    finally:
        stall.release.set()
    assert stall.first_returned.wait(30)  # its answer is back, into a future no one reads
    assert len(standin.posts()) == 2  # the late answer to the first question is dropped
    assert json.dumps([p.params.get("thread_ts") for p in standin.posts()]).count(first["ts"]) == 1
