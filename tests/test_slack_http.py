"""The Slack app in HTTP mode: the real bolt app on a real port, signed Events API requests, and a
Web API stand-in recording what the bot posts (no real Slack, nothing beyond 127.0.0.1)."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from bot.slack.feedback import read_log

from .slack_requests import (
    BlockingAnswerer,
    FailingAnswerer,
    SpyAnswerer,
    feedback_click,
    mention_event,
    message_event,
    twin_of,
)
from .slack_standin import BOT_ID, BOT_USER_ID, USER, new_ts, wait_until

DEADLINE_Q = "What deadline did Ryabkov give?"


def test_mention_gets_one_threaded_reply_quoting_the_passage(make_bot, standin, answerer):
    bot = make_bot(answerer)
    event = mention_event(DEADLINE_Q)
    status, _, _ = bot.send_event(event)
    assert status == 200
    post = standin.wait_for("chat.postMessage")[0]
    bot.wait_idle()

    posts = standin.posts()
    assert len(posts) == 1
    assert post.params["channel"] == event["channel"]
    assert post.params["thread_ts"] == event["ts"]
    assert "within a few weeks" in post.text_and_blocks()
    assert post.token == standin.bot_token
    # 👀 while working, removed when done, on the asker's message.
    added = standin.calls("reactions.add")
    removed = standin.calls("reactions.remove")
    assert [(c.params["name"], c.params["timestamp"]) for c in added] == [("eyes", event["ts"])]
    assert [(c.params["name"], c.params["timestamp"]) for c in removed] == [("eyes", event["ts"])]
    assert added[0].at <= post.at <= removed[0].at
    # The Block Kit answer: text, the cited passage with its document title, feedback buttons.
    blocks = post.blocks()
    assert blocks[0]["type"] == "section"
    assert any("Ryabkov Affirms" in json.dumps(b) for b in blocks if b["type"] == "context")
    actions = [b for b in blocks if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == ["qabot_feedback_up", "qabot_feedback_down",
                                                                "qabot_sources"]


def test_mention_in_a_thread_is_answered_in_that_thread(make_bot, standin, answerer):
    bot = make_bot(answerer)
    parent = new_ts()
    event = mention_event(DEADLINE_Q, thread_ts=parent)
    bot.send_event(event)
    post = standin.wait_for("chat.postMessage")[0]
    assert post.params["thread_ts"] == parent


@pytest.mark.parametrize("twin_first", [False, True], ids=["mention-first", "twin-first"])
def test_retry_and_message_twin_get_no_second_reply(make_bot, standin, answerer, twin_first):
    bot = make_bot(answerer)
    event = mention_event(DEADLINE_Q)
    if twin_first:
        bot.send_event(twin_of(event))
    status, _, payload = bot.send_event(event)
    assert status == 200
    standin.wait_for("chat.postMessage")
    # Slack re-sends the same event (same event_id) when it thinks the ack was lost ...
    retry_headers = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    status, _, _ = bot.send_event(event, event_id=payload["event_id"], headers=retry_headers)
    assert status == 200
    # ... and delivers the mention a second time as a `message` event.
    if not twin_first:
        bot.send_event(twin_of(event))
    bot.wait_idle()
    assert len(standin.posts()) == 1
    assert len(standin.calls("reactions.add")) == 1


def test_fifty_concurrent_mentions_get_fifty_replies_one_each(make_bot, standin, answerer):
    bot = make_bot(answerer)
    events = [mention_event(DEADLINE_Q if i % 2 else "When are the talks in Geneva?", channel=f"C{i % 5}")
              for i in range(50)]
    statuses: list[int] = []
    lock = threading.Lock()

    def send(event):
        status, _, _ = bot.send_event(event)
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=send, args=(e,)) for e in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [200] * 50
    standin.wait_for("chat.postMessage", 50, timeout=60)
    bot.wait_idle(30)
    posts = standin.posts()
    assert len(posts) == 50
    replied = sorted((p.params["channel"], p.params["thread_ts"]) for p in posts)
    assert replied == sorted((e["channel"], e["ts"]) for e in events)


def test_follow_up_in_the_bots_thread_is_answered_without_a_mention(make_bot, standin, answerer):
    spy = SpyAnswerer(answerer)
    bot = make_bot(spy)
    first = mention_event(DEADLINE_Q)
    bot.send_event(first)
    standin.wait_for("chat.postMessage")
    follow_up = message_event("and when are the talks?", channel=first["channel"], thread_ts=first["ts"])
    bot.send_event(follow_up)
    posts = standin.wait_for("chat.postMessage", 2)
    bot.wait_idle()
    assert len(standin.posts()) == 2
    assert posts[1].params["thread_ts"] == first["ts"]
    assert spy.calls[1] == ("and when are the talks?", (DEADLINE_Q,))
    assert "Jan. 10" in posts[1].text_and_blocks()


def test_follow_ups_in_a_thread_lean_on_the_previous_turn_as_in_chat(make_bot, standin, answerer):
    """The thread's questions are the conversation `qabot chat` keeps: "What did he tell
    Bloomberg?" means the person just answered, and a bare "When?" asks about the turn before."""
    delegation = "Who will head the Russian delegation?"
    spy = SpyAnswerer(answerer)
    bot = make_bot(spy)
    first = mention_event(delegation)
    bot.send_event(first)
    standin.wait_for("chat.postMessage")
    for n, text in enumerate(["What did he tell Bloomberg?", delegation, "When?"], start=2):
        bot.send_event(message_event(text, channel=first["channel"], thread_ts=first["ts"]))
        standin.wait_for("chat.postMessage", n)
        bot.wait_idle()
    posts = standin.posts()
    assert [p.params["thread_ts"] for p in posts] == [first["ts"]] * 4
    assert spy.calls[3] == ("When?", (delegation, "What did he tell Bloomberg?", delegation))
    # The answer's text (the quoted evidence; blocks add the sources): the Bloomberg sentence.
    assert "told Bloomberg News" in posts[1].params["text"]
    assert "head the Russian delegation" not in posts[1].params["text"]
    assert "next week" in posts[3].params["text"]


def test_follow_up_after_a_restart_reads_the_thread(make_bot, standin, answerer):
    """Memory is lost on restart: the bot's earlier reply is found with conversations.replies."""
    channel, parent = "C0GENERAL", new_ts()
    standin.add_message(channel, parent, f"<@{BOT_USER_ID}> {DEADLINE_Q}")
    standin.add_message(channel, new_ts(), "Ryabkov said within a few weeks.", user=BOT_USER_ID,
                        thread_ts=parent, bot_id=BOT_ID)
    spy = SpyAnswerer(answerer)
    bot = make_bot(spy)
    bot.send_event(message_event("and when are the talks?", channel=channel, thread_ts=parent))
    post = standin.wait_for("chat.postMessage")[0]
    assert post.params["thread_ts"] == parent
    assert spy.calls == [("and when are the talks?", (DEADLINE_Q,))]
    assert standin.calls("conversations.replies")


def test_plain_channel_messages_and_other_threads_are_ignored(make_bot, standin, answerer):
    spy = SpyAnswerer(answerer)
    bot = make_bot(spy)
    channel, parent = "C0GENERAL", new_ts()
    standin.add_message(channel, parent, "lunch?")
    bot.send_event(message_event(DEADLINE_Q, channel=channel))  # no mention, not in a thread
    bot.send_event(message_event("and when are the talks?", channel=channel, thread_ts=parent))  # not our thread
    bot.wait_idle()
    assert standin.posts() == []
    assert standin.calls("reactions.add") == []
    assert spy.calls == []


def test_bot_messages_are_never_answered(make_bot, standin, answerer):
    spy = SpyAnswerer(answerer)
    bot = make_bot(spy)
    mention_text = f"<@{BOT_USER_ID}> {DEADLINE_Q}"
    # Another bot mentioning us, in a channel and in a DM; and our own message.
    other_bot = message_event(mention_text, user="UOTHERBOT", bot_id="BOTHER", subtype="bot_message")
    bot.send_event(other_bot)
    bot.send_event({**mention_event(DEADLINE_Q), "bot_id": "BOTHER"})
    bot.send_event(message_event(DEADLINE_Q, channel="D0DM", channel_type="im", user="UOTHERBOT", bot_id="BOTHER"))
    bot.send_event(message_event(mention_text, user=BOT_USER_ID, bot_id=BOT_ID))
    bot.wait_idle()
    assert standin.posts() == []
    assert spy.calls == []


def test_direct_message_is_answered_in_the_dm(make_bot, standin, answerer):
    spy = SpyAnswerer(answerer)
    bot = make_bot(spy)
    dm = message_event(DEADLINE_Q, channel="D0DM", channel_type="im")
    bot.send_event(dm)
    post = standin.wait_for("chat.postMessage")[0]
    assert post.params["channel"] == "D0DM"
    assert "thread_ts" not in post.params  # a DM is a conversation: answered at the top level
    assert "within a few weeks" in post.text_and_blocks()
    # The next DM question gets the earlier one as context.
    bot.send_event(message_event("and when are the talks?", channel="D0DM", channel_type="im"))
    standin.wait_for("chat.postMessage", 2)
    assert spy.calls[1] == ("and when are the talks?", (DEADLINE_Q,))


def test_slash_command_is_acked_before_the_answer_and_answered_via_response_url(make_bot, standin, answerer):
    blocking = BlockingAnswerer(answerer)
    bot = make_bot(blocking)
    response_url = standin.response_url("ask1")
    try:
        status, body, seconds = bot.send_command(DEADLINE_Q, response_url)
        # The ack is back while the Answerer is still blocked: nothing answered yet.
        assert status == 200
        assert not blocking.finished.is_set()
        assert standin.calls("response_url") == []
        assert seconds < 3.0
        ack = json.loads(body)
        assert ack["response_type"] == "ephemeral"
        assert "Searching the articles" in ack["text"]
        assert blocking.started.wait(10)
    finally:
        blocking.release.set()
    answer = standin.wait_for("response_url")[0]
    assert answer.path == "/response/ask1"
    assert answer.params["response_type"] == "ephemeral"
    assert "within a few weeks" in answer.text_and_blocks()
    assert blocking.finished.is_set()


def test_slash_command_in_channel_when_configured(make_bot, standin, answerer, slack_settings):
    bot = make_bot(answerer, settings=slack_settings.replace("slack", slash_ephemeral=False))
    bot.send_command(DEADLINE_Q, standin.response_url())
    answer = standin.wait_for("response_url")[0]
    assert answer.params["response_type"] == "in_channel"
    assert f"<@{USER}> asked" in answer.text_and_blocks()


def test_slash_command_without_a_question_gets_usage(make_bot, standin, answerer):
    spy = SpyAnswerer(answerer)
    bot = make_bot(spy)
    status, body, _ = bot.send_command("   ", standin.response_url())
    assert status == 200 and "/ask <question>" in json.loads(body)["text"]
    bot.wait_idle()
    assert spy.calls == [] and standin.calls("response_url") == []


def test_feedback_click_is_acked_and_recorded(make_bot, standin, answerer, slack_settings):
    bot = make_bot(answerer)
    event = mention_event(DEADLINE_Q)
    bot.send_event(event)
    post = standin.wait_for("chat.postMessage")[0]
    status, _, _ = bot.send_action(feedback_click(post, "down", standin.response_url("fb"), user="U0VOTER"))
    assert status == 200
    thanks = standin.wait_for("response_url")[0]
    assert "Thanks" in thanks.params["text"]
    assert thanks.params.get("replace_original") is False
    entries = read_log(slack_settings.paths.feedback_log)
    assert len(entries) == 1
    entry = entries[0]
    assert entry["vote"] == "down" and entry["user"] == "U0VOTER"
    assert entry["question"] == DEADLINE_Q
    assert entry["answer"] and entry["citations"]
    assert entry["citations"][0]["document"].startswith("Russian Diplomat Ryabkov")
    assert entry["channel"] == event["channel"]
    assert entry["time"].endswith("+00:00")


@pytest.mark.parametrize("tamper", ["bad-signature", "stale-timestamp", "no-signature"])
def test_bad_signature_or_stale_timestamp_gets_401_and_nothing_is_posted(make_bot, standin, answerer, tamper):
    spy = SpyAnswerer(answerer)
    bot = make_bot(spy)
    if tamper == "bad-signature":
        status, _, _ = bot.send_event(mention_event(DEADLINE_Q), secret="not-the-signing-secret")
    elif tamper == "stale-timestamp":  # correctly signed, but 6 minutes old (a replay)
        status, _, _ = bot.send_event(mention_event(DEADLINE_Q), timestamp=int(time.time()) - 360)
    else:
        from .slack_requests import event_body, http_post

        status, _, _ = http_post(bot.url, json.dumps(event_body(mention_event(DEADLINE_Q))),
                                 {"Content-Type": "application/json"})
    assert status == 401
    bot.wait_idle()
    assert [c.method for c in standin.all_calls() if c.method != "auth.test"] == []
    assert spy.calls == []


def test_answerer_error_gets_an_apology_in_the_thread(make_bot, standin, answerer, caplog):
    bot = make_bot(FailingAnswerer(answerer, RuntimeError("index shard exploded")))
    event = mention_event(DEADLINE_Q)
    with caplog.at_level("INFO", logger="bot.slack"):
        bot.send_event(event)
        post = standin.wait_for("chat.postMessage")[0]
        bot.wait_idle()
    assert post.params["thread_ts"] == event["ts"]
    assert post.params["text"].startswith("Sorry")
    assert "index shard exploded" not in post.text_and_blocks()  # details go to the log, not the channel
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert errors and "index shard exploded" in caplog.text
    assert errors[0].exc_info is not None  # the cause, with its traceback
    assert event["channel"] in errors[0].getMessage()  # where it happened, by id
    assert_question_not_logged(caplog, DEADLINE_Q)
    assert len(standin.calls("reactions.remove")) == 1  # the 👀 goes away on failure too


def assert_question_not_logged(caplog, question: str) -> None:
    """SECURITY.md: questions are not logged at INFO or above, not even when answering fails."""
    logged = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert logged, "expected the bot to log at INFO and above"
    for record in logged:
        assert question not in f"{record.getMessage()} {record.exc_text or ''}", record.getMessage()


def test_a_stalled_answer_times_out_with_an_apology(make_bot, standin, answerer, slack_settings, caplog):
    blocking = BlockingAnswerer(answerer)
    bot = make_bot(blocking, settings=slack_settings.replace("slack", answer_timeout_s=0.3))
    try:
        with caplog.at_level("INFO", logger="bot.slack"):
            bot.send_event(mention_event(DEADLINE_Q))
            post = standin.wait_for("chat.postMessage")[0]
        assert "took too long" in post.params["text"]
    finally:
        blocking.release.set()
    bot.wait_idle()
    assert len(standin.posts()) == 1  # the late answer is dropped, not posted after the apology
    assert any("timed out" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert_question_not_logged(caplog, DEADLINE_Q)


def test_rate_limited_post_is_retried_after_retry_after(make_bot, standin, answerer):
    bot = make_bot(answerer)
    standin.fail("chat.postMessage", status=429, retry_after=1)
    bot.send_event(mention_event(DEADLINE_Q))
    post = standin.wait_for("chat.postMessage", timeout=20)[0]
    attempts = [c for c in standin.all_calls() if c.method == "chat.postMessage"]
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.0  # Retry-After was honoured
    assert "within a few weeks" in post.text_and_blocks()


def test_server_errors_are_retried_and_a_failing_reaction_does_not_block_the_answer(make_bot, standin, answerer):
    bot = make_bot(answerer)
    standin.fail("reactions.add", error="missing_scope")
    standin.fail("chat.postMessage", status=503)
    bot.send_event(mention_event(DEADLINE_Q))
    post = standin.wait_for("chat.postMessage", timeout=20)[0]
    bot.wait_idle()
    assert "within a few weeks" in post.text_and_blocks()
    assert [c.status for c in standin.all_calls() if c.method == "chat.postMessage"] == [503, 200]


def test_posting_failure_is_logged_not_silent(make_bot, standin, answerer, caplog):
    bot = make_bot(answerer)
    standin.fail("chat.postMessage", error="not_in_channel", times=2)
    with caplog.at_level("INFO", logger="bot.slack"):
        bot.send_event(mention_event(DEADLINE_Q))
        wait_until(lambda: len([c for c in standin.all_calls() if c.method == "chat.postMessage"]) == 2)
        bot.wait_idle()
    assert "not_in_channel" in caplog.text
    assert_question_not_logged(caplog, DEADLINE_Q)


def test_allow_list_limits_channels_but_not_dms(make_bot, standin, answerer, slack_settings):
    spy = SpyAnswerer(answerer)
    bot = make_bot(spy, settings=slack_settings.replace("slack", allowed_channels=("C0ALLOWED",)))
    bot.send_event(mention_event(DEADLINE_Q, channel="C0OTHER"))
    status, body, _ = bot.send_command(DEADLINE_Q, standin.response_url(), channel="C0OTHER")
    assert status == 200 and "not enabled" in json.loads(body)["text"]
    bot.send_event(mention_event(DEADLINE_Q, channel="C0ALLOWED"))
    bot.send_event(message_event(DEADLINE_Q, channel="D0DM", channel_type="im"))
    standin.wait_for("chat.postMessage", 2)
    bot.wait_idle()
    assert sorted(p.params["channel"] for p in standin.posts()) == ["C0ALLOWED", "D0DM"]


def test_url_verification_challenge(make_bot):
    bot = make_bot(None)
    body = json.dumps({"token": "x", "challenge": "abc123", "type": "url_verification"})
    status, text, _ = bot.post_signed(body, "application/json")
    assert status == 200 and "abc123" in text
