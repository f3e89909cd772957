"""The Slack app's state: the de-duplication memory, thread context, the feedback log, the pools."""

from __future__ import annotations

import threading

import pytest

from bot.slack.dedupe import SeenKeys
from bot.slack.feedback import FeedbackLog, read_log
from bot.slack.logfilters import SecretRedactor
from bot.slack.question import AnswersQuestions
from bot.slack.threads import ConversationMemory, from_replies
from bot.slack.workers import WorkerPool

from .clock import Clock


def test_seen_keys_claims_once_until_the_ttl_passes():
    clock = Clock(1000.0)
    seen = SeenKeys(ttl_s=10, max_entries=100, clock=clock)
    assert seen.claim(("event", "Ev1"))
    assert not seen.claim(("event", "Ev1"))
    assert seen.seen(("event", "Ev1"))
    clock.now += 9.9
    assert not seen.claim(("event", "Ev1"))
    clock.now += 0.2
    assert not seen.seen(("event", "Ev1"))
    assert seen.claim(("event", "Ev1"))


def test_seen_keys_stays_bounded(caplog):
    seen = SeenKeys(ttl_s=1000, max_entries=3)
    for i in range(10):
        assert seen.claim(i)
    assert len(seen) == 3
    assert seen.seen(9) and not seen.seen(0)
    assert "dedupe_max_entries" in caplog.text


def test_seen_keys_one_winner_under_contention():
    seen = SeenKeys(ttl_s=100, max_entries=1000)
    wins: list[bool] = []
    barrier = threading.Barrier(32)

    def claim():
        barrier.wait()
        wins.append(seen.claim(("message", "C1", "1.0")))

    threads = [threading.Thread(target=claim) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins.count(True) == 1 and len(wins) == 32


def test_conversation_memory_threads_and_dm_context():
    clock = Clock(1000.0)
    memory = ConversationMemory(ttl_s=100, max_conversations=2, dm_context_s=30, clock=clock)
    assert memory.get("C1", "1.0") is None
    memory.record("C1", "1.0", "first?")
    memory.record("C1", "1.0", "second?")
    assert memory.get("C1", "1.0").history == ("first?", "second?")
    memory.record("D1", None, "dm question?")
    clock.now += 31
    assert memory.get("D1", None).history == ()  # too old to be context at the top of a DM
    memory.record("C2", "2.0", "x")  # a third conversation: the least recently used goes
    assert memory.get("C1", "1.0") is None
    clock.now += 101
    assert memory.get("C2", "2.0") is None


def test_thread_context_from_replies():
    messages = [
        {"ts": "10.000100", "user": "U1", "text": "<@UBOT> first question?"},
        {"ts": "10.000200", "user": "UBOT", "bot_id": "BBOT", "text": "answer"},
        {"ts": "10.000300", "user": "U2", "text": "second question?"},
        {"ts": "10.000350", "bot_id": "BOTHER", "text": "another bot"},
        {"ts": "10.000400", "user": "U1", "text": "the current one"},
    ]
    context = from_replies(messages, before_ts="10.000400", bot_user_id="UBOT", bot_id="BBOT",
                           to_question=lambda t: t.replace("<@UBOT>", "").strip())
    assert context.bot_participated
    assert context.history == ("first question?", "second question?")
    none = from_replies(messages[:1], before_ts="11", bot_user_id="UBOT", bot_id="BBOT", to_question=str)
    assert not none.bot_participated


def test_feedback_log_appends_json_lines(tmp_path, answerer):
    log = FeedbackLog(tmp_path / "sub" / "feedback.jsonl")
    answer = answerer.ask("What deadline did Ryabkov give?")
    feedback_id = log.remember(answer)
    log.record_vote(feedback_id=feedback_id, vote="up", user="U1", channel="C1", message_ts="1.0")
    log.record_vote(feedback_id="forgotten", vote="down", user="U2", channel="C1", message_ts="2.0",
                    fallback_answer="the message text")
    first, second = read_log(log.path)
    assert first["question"] == answer.question and first["answer"] == answer.text
    assert first["citations"][0]["chunk_id"] == answer.citations[0].chunk_id
    assert {"time", "vote", "user", "channel", "message_ts", "abstained", "answer_id"} <= set(first)
    assert second["answer"] == "the message text" and second["question"] == ""


def test_worker_pool_runs_tasks_and_waits_for_quiet():
    pool = WorkerPool(2, "test")
    release = threading.Event()
    futures = [pool.submit(lambda i=i: (release.wait(5), i)[1]) for i in range(5)]
    assert not pool.wait_idle(0.05)
    release.set()
    assert pool.wait_idle(5)
    assert [f.result() for f in futures] == list(range(5))
    failing = pool.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(5)
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(print)


def test_secret_redactor_scrubs_messages_and_tracebacks():
    import logging

    redactor = SecretRedactor(["xoxb-secret-value-123"])
    try:
        raise ValueError("token xoxb-secret-value-123 leaked")
    except ValueError as exc:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "got %s", ("xoxb-secret-value-123",),
                                   (type(exc), exc, exc.__traceback__))
    assert redactor.filter(record)
    assert "xoxb-secret-value-123" not in record.getMessage()
    assert "xoxb-secret-value-123" not in record.exc_text and "<redacted>" in record.exc_text


def test_the_real_answerer_meets_the_slack_apps_contract(answerer):
    assert isinstance(answerer, AnswersQuestions)
    assert not isinstance(object(), AnswersQuestions)


def _open_state_file(path, start, results) -> None:
    from bot.report.store import ReportStoreError, SqliteReportStore

    start.wait()
    try:
        SqliteReportStore(path)
        results.put("")
    except ReportStoreError as exc:
        results.put(str(exc))


def test_replicas_opening_a_new_state_file_at_once_all_open_it(tmp_path):
    """Replicas (processes) starting together on one new state file. SQLite converts a file to WAL
    under an exclusive lock without running the busy handler, so all but one could fail at once
    with "database is locked" (3 of 90 opens, in one run of two, before); every open now waits its turn."""
    import multiprocessing
    import sqlite3

    context = multiprocessing.get_context("fork")
    failures = []
    for round_ in range(30):
        path = tmp_path / f"state-{round_}.sqlite3"
        start, results = context.Barrier(6), context.Queue()
        processes = [context.Process(target=_open_state_file, args=(path, start, results)) for _ in range(6)]
        for p in processes:
            p.start()
        failures += [error for error in (results.get(timeout=60) for _ in processes) if error]
        for p in processes:
            p.join()
        assert sqlite3.connect(str(path)).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert failures == []
