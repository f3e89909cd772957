"""Slack's assistant panel (bolt's `Assistant`): greeting with suggested prompts, a status while
working, answers in the assistant thread with the thread's earlier questions as context."""

from __future__ import annotations

from .slack_requests import SpyAnswerer, message_event
from .slack_standin import BOT_USER_ID, USER, new_ts

DEADLINE_Q = "What deadline did Ryabkov give?"


def thread_started(channel: str, thread_ts: str) -> dict:
    return {"type": "assistant_thread_started", "event_ts": new_ts(),
            "assistant_thread": {"user_id": USER, "channel_id": channel, "thread_ts": thread_ts,
                                 "context": {"channel_id": "C0GENERAL", "team_id": "T0TEST", "enterprise_id": None}}}


def test_thread_started_greets_with_suggested_prompts(make_bot, standin, answerer):
    bot = make_bot(answerer)
    channel, thread_ts = "D0PANEL", new_ts()
    bot.send_event(thread_started(channel, thread_ts))
    greeting = standin.wait_for("chat.postMessage")[0]
    prompts = standin.wait_for("assistant.threads.setSuggestedPrompts")[0]
    assert greeting.params["channel"] == channel and greeting.params["thread_ts"] == thread_ts
    assert f"<@{USER}>" in greeting.params["text"]
    assert prompts.params["channel_id"] == channel and prompts.params["thread_ts"] == thread_ts
    listed = prompts.params["prompts"]
    assert 1 <= len(listed) <= 4 and all(p["title"] and p["message"] for p in listed)
    assert any("Ryabkov" in p["message"] for p in listed)  # taken from the indexed titles


def test_assistant_message_shows_status_then_answers_in_the_thread(make_bot, standin, answerer):
    spy = SpyAnswerer(answerer)
    bot = make_bot(spy)
    channel, thread_ts = "D0PANEL", new_ts()
    bot.send_event(thread_started(channel, thread_ts))
    standin.wait_for("chat.postMessage")
    question = message_event(DEADLINE_Q, channel=channel, channel_type="im", thread_ts=thread_ts)
    bot.send_event(question)
    answer = standin.wait_for("chat.postMessage", 2)[1]
    status = standin.wait_for("assistant.threads.setStatus")[0]
    assert status.params["status"] == "Searching the articles…"
    assert status.params["channel_id"] == channel and status.params["thread_ts"] == thread_ts
    assert status.at < answer.at
    assert answer.params["thread_ts"] == thread_ts
    assert "within a few weeks" in answer.text_and_blocks()
    assert standin.calls("assistant.threads.setTitle")[0].params["title"] == DEADLINE_Q

    # A follow-up in the same assistant thread carries the earlier question, once.
    follow_up = message_event("and when are the talks?", channel=channel, channel_type="im", thread_ts=thread_ts)
    bot.send_event(follow_up)
    bot.send_event(follow_up)  # the same message delivered again under another event id
    standin.wait_for("chat.postMessage", 3)
    bot.wait_idle()
    assert len(standin.posts()) == 3
    assert spy.calls == [(DEADLINE_Q, ()), ("and when are the talks?", (DEADLINE_Q,))]


def test_assistant_thread_after_restart_reads_history_from_slack(make_bot, standin, answerer):
    spy = SpyAnswerer(answerer)
    channel, thread_ts = "D0PANEL", new_ts()
    standin.add_message(channel, thread_ts, "Hi! I answer questions…", user=BOT_USER_ID, bot_id="BQABOT")
    standin.add_message(channel, new_ts(), DEADLINE_Q, thread_ts=thread_ts)
    standin.add_message(channel, new_ts(), "within a few weeks", user=BOT_USER_ID, thread_ts=thread_ts,
                        bot_id="BQABOT")
    bot = make_bot(spy)
    bot.send_event(message_event("and when are the talks?", channel=channel, channel_type="im", thread_ts=thread_ts))
    standin.wait_for("chat.postMessage")
    assert spy.calls == [("and when are the talks?", (DEADLINE_Q,))]
