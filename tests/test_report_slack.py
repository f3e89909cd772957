"""Every Slack path that answers records its question for `qabot report` (over real HTTP, the
real app and Answerer): a mention, a thread follow-up, a DM, the assistant panel and ``/ask``; a
👍/👎 click counts on that record; no Slack user or channel id is stored; admins' Home tab shows
the week's gap groups. `qabot chat` records too, `qabot ask` never."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

from bot.report.redis_store import RedisReportStore
from bot.report.store import SqliteReportStore

from .conftest import ROOT
from .slack_requests import feedback_click, mention_event, message_event
from .slack_standin import BOT_USER_ID, USER, new_ts
from .test_slack_assistant import thread_started
from .test_slack_home import home_opened, texts

ADMIN = "U0ADMIN"
ANSWERABLE = "What deadline did Ryabkov give?"
GAP = "What is on the cafeteria menu this Friday?"


def test_every_slack_path_records_its_question_and_votes_count(make_bot, standin, answerer, slack_settings):
    bot = make_bot(answerer, slack_settings.replace("slack", admin_users=(ADMIN,)))
    mention = mention_event(ANSWERABLE)
    bot.send_event(mention)                                                          # 1. a channel mention
    first = standin.wait_for("chat.postMessage")[0]
    bot.send_event(message_event(GAP, thread_ts=mention["ts"]))                      # 2. a thread follow-up
    bot.send_event(message_event(GAP + " (DM)", channel="D0DIRECT", channel_type="im"))  # 3. a DM
    panel, thread_ts = "D0PANEL", new_ts()
    bot.send_event(thread_started(panel, thread_ts))
    standin.wait_for("chat.postMessage", 4)
    bot.send_event(message_event("Where is the cafeteria?", channel=panel, channel_type="im",
                                 thread_ts=thread_ts))                               # 4. the assistant panel
    bot.send_command("When will the cafeteria open?", standin.response_url("ask"))  # 5. /ask
    standin.wait_for("chat.postMessage", 5)
    standin.wait_for("response_url")
    bot.send_action(feedback_click(first, "down", standin.response_url()))
    bot.send_action(feedback_click(first, "down", standin.response_url(), user="U0OTHER"))
    bot.send_action(feedback_click(first, "up", standin.response_url(), user="U0THIRD"))
    standin.wait_for("response_url", 4)
    bot.wait_idle()

    store = SqliteReportStore(slack_settings.paths.state_db)
    records = {r.question: r for r in store.read(0)}
    assert set(records) == {ANSWERABLE, GAP, GAP + " (DM)", "Where is the cafeteria?", "When will the cafeteria open?"}
    assert all(r.via == "slack" for r in records.values())
    assert records[ANSWERABLE].outcome == "answered" and (records[ANSWERABLE].up, records[ANSWERABLE].down) == (1, 2)
    assert records[ANSWERABLE].documents and records[ANSWERABLE].documents[0] in first.text_and_blocks()
    assert records[GAP].outcome == "declined"
    store.close()
    # No user, channel or message id in the report's rows (the file's other tables hold channel
    # ids for exactly-once answers; this one holds none).
    with sqlite3.connect(slack_settings.paths.state_db) as db:
        rows = " ".join(map(str, db.execute("SELECT * FROM report_questions_v1").fetchall()))
    for user_or_place in (USER, "U0OTHER", "U0THIRD", BOT_USER_ID, "D0DIRECT", "D0PANEL", "C0GENERAL", mention["ts"]):
        assert user_or_place not in rows, user_or_place

    bot.send_event(home_opened(ADMIN))
    standin.wait_for("views.publish")
    body = "\n".join(texts(standin.views[ADMIN]))
    assert "Unanswered this week" in body
    assert "cafeteria" in body  # the gap group's name, with its count
    bot.send_event(home_opened(USER))
    standin.wait_for("views.publish", 2)
    assert "Unanswered this week" not in "\n".join(texts(standin.views[USER]))  # admins only


def test_chat_records_and_ask_does_not(sample_index, tmp_path):
    env = {**os.environ, "QABOT_INDEX": str(sample_index), "QABOT_STATE_DB": str(tmp_path / "state.sqlite3"),
           "HF_HUB_OFFLINE": "1"}
    run = [sys.executable, "-m", "bot.cli_main"]
    asked = subprocess.run([*run, "ask", GAP], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert asked.returncode == 0, asked.stderr
    chat = subprocess.run([*run, "chat"], input=f"{ANSWERABLE}\n{GAP}\nexit\n", cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert chat.returncode == 0, chat.stderr
    store = SqliteReportStore(tmp_path / "state.sqlite3")
    assert sorted((r.question, r.outcome, r.via) for r in store.read(0)) == [
        (ANSWERABLE, "answered", "chat"), (GAP, "declined", "chat")]
    store.close()


def test_on_redis_state_the_record_and_its_votes_are_in_redis(make_bot, standin, answerer, slack_settings, redis_url):
    settings = slack_settings.replace("state", state_backend="redis", redis_url=redis_url)
    bot = make_bot(answerer, settings)
    bot.send_event(mention_event(GAP))
    post = standin.wait_for("chat.postMessage")[0]
    bot.send_action(feedback_click(post, "down", standin.response_url()))
    standin.wait_for("response_url")
    bot.wait_idle()
    store = RedisReportStore.connect(redis_url)
    (record,) = store.read(0)
    store.close()
    assert (record.question, record.outcome, record.via, record.down) == (GAP, "declined", "slack", 1)
    assert not SqliteReportStore(slack_settings.paths.state_db).read(0)  # nothing in the SQLite file
