"""The Home tab: rendered within Slack's Block Kit limits however large the index, and published
over real HTTP (``app_home_opened`` → ``views.publish`` on the stand-in) with the real index's
documents, the ways to ask, and for admins the 👍/👎 tally from the feedback log."""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

import pytest

from bot.slack.feedback import FeedbackLog
from bot.slack.home import KnownDocument, known_documents, render_home, tally_feedback

from .slack_requests import feedback_click, mention_event
from .slack_standin import USER, new_ts

ADMIN = "U0ADMIN"

# Slack's documented limits for a Home tab view and its blocks.
MAX_VIEW_BLOCKS = 100
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
CONTEXT_ELEMENTS_MAX = 10
TEXT_OBJECT_MAX = 3000
BLOCK_ID_MAX = 255


def texts(view: dict) -> Iterator[str]:
    for block in view["blocks"]:
        if isinstance(block.get("text"), dict):
            yield block["text"]["text"]
        for element in block.get("elements", []):
            yield element["text"]


def check_limits(view: dict) -> None:
    """Every Block Kit limit the Home view could break, as Slack documents them."""
    assert view["type"] == "home"
    blocks = view["blocks"]
    assert 0 < len(blocks) <= MAX_VIEW_BLOCKS
    for block in blocks:
        assert block["type"] in ("header", "section", "context", "divider")
        assert len(block.get("block_id", "")) <= BLOCK_ID_MAX
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text" and 0 < len(block["text"]["text"]) <= HEADER_MAX
        if block["type"] == "section":
            assert block["text"]["type"] == "mrkdwn" and 0 < len(block["text"]["text"]) <= SECTION_TEXT_MAX
        if block["type"] == "context":
            assert 0 < len(block["elements"]) <= CONTEXT_ELEMENTS_MAX
            assert all(0 < len(e["text"]) <= TEXT_OBJECT_MAX for e in block["elements"])
    assert json.loads(json.dumps(view)) == view


def listed_count(view: dict) -> tuple[int, int]:
    """(document lines listed, documents summed up in the "…and N more" note)."""
    lines = sum(len(re.findall(r"(?m)^• .+ · [\d,]+ passages?\b", t)) for t in texts(view))
    more = [int(m.group(1).replace(",", "")) for t in texts(view) for m in re.finditer(r"and ([\d,]+) more", t)]
    return lines, sum(more)


def many_documents(n: int) -> list[KnownDocument]:
    return [KnownDocument(title=f"Report {i:05d} <!channel> on *strategic* stability & security " + "x" * 120,
                          source=f"/srv/docs/archive/{i:05d}/<@U123>-report.html",
                          url=f"https://example.org/docs/{i:05d}?a=1&b=2" if i % 2 else None,
                          chunks=i % 40 + 1, date="2022-01-06" if i % 3 == 0 else None)
            for i in range(n)]


@pytest.mark.parametrize("count", [0, 1, 17, 400, 5000])
def test_home_view_stays_within_slack_limits_however_many_documents(slack_settings, count):
    settings = slack_settings.replace("slack", qa_channels=("C0ASKDOCS",))
    tally = tally_feedback(FeedbackLog(slack_settings.paths.feedback_log))
    for with_tally in (None, tally):
        view = render_home(many_documents(count), settings, bot_user_id="UQABOT", tally=with_tally)
        check_limits(view)
        lines, more = listed_count(view)
        assert lines + more == count  # each document is either listed or counted as "more"
        assert lines >= min(count, 50)  # and the blocks are used: dozens per section
        body = json.dumps(view, ensure_ascii=False)
        assert "<!channel>" not in body and "<@U123>" not in body  # document text is escaped
        assert "&lt;!channel&gt;" in body or count == 0
        assert f"{count:,} documents" in body or (count == 1 and "1 document ·" in body)


def test_tally_counts_each_users_latest_vote_on_recent_answers(tmp_path, answerer):
    log = FeedbackLog(tmp_path / "feedback.jsonl")
    first = log.remember(answerer.ask("What deadline did Ryabkov give?"))
    second = log.remember(answerer.ask("When are the Geneva talks?"))
    for feedback_id, vote, user in [(first, "up", "U1"), (first, "down", "U2"), (first, "down", "U1"),
                                    (second, "up", "U1"), (second, "up", "U3")]:
        log.record_vote(feedback_id=feedback_id, vote=vote, user=user, channel="C1", message_ts=new_ts())
    with open(log.path, "a", encoding="utf-8") as handle:
        handle.write('{"vote": "up", "torn')  # a crash mid-write leaves a torn last line
    tally = tally_feedback(log)
    assert (tally.votes, tally.up, tally.down) == (4, 2, 2)  # U1 changed their mind on the first
    assert [(a.question, a.up, a.down) for a in tally.answers] == [
        ("When are the Geneva talks?", 2, 0), ("What deadline did Ryabkov give?", 0, 2)]
    assert tally_feedback(FeedbackLog(tmp_path / "missing.jsonl")).votes == 0


def home_opened(user: str, tab: str = "home") -> dict[str, Any]:
    return {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": tab,
            "event_ts": new_ts(), "view": {"id": "V0HOME", "type": "home", "blocks": []}}


def test_opening_home_publishes_the_documents_and_how_to_ask(make_bot, standin, answerer, slack_settings):
    bot = make_bot(answerer)
    status, _, _ = bot.send_event(home_opened(USER))
    assert status == 200
    publish = standin.wait_for("views.publish")[0]
    assert publish.params["user_id"] == USER
    view = standin.views[USER]
    check_limits(view)
    body = "\n".join(texts(view))
    (document,) = known_documents(answerer)
    assert "Ryabkov Affirms" in body and f"{document.chunks} passages" in body
    assert document.source in body
    for way in ("Mention me", "Message me", "/ask", "assistant panel"):
        assert way in body
    assert "Feedback" not in body  # not an admin

    bot.send_event(home_opened(USER, tab="messages"))  # the Messages tab needs no view
    bot.wait_idle()
    assert len(standin.calls("views.publish")) == 1


def test_admins_see_the_feedback_tally(make_bot, standin, answerer, slack_settings):
    bot = make_bot(answerer, slack_settings.replace("slack", admin_users=(ADMIN,)))
    bot.send_event(mention_event("What deadline did Ryabkov give?"))
    post = standin.wait_for("chat.postMessage")[0]
    bot.send_action(feedback_click(post, "up", standin.response_url()))
    bot.send_action(feedback_click(post, "down", standin.response_url(), user="U0OTHER"))
    standin.wait_for("response_url", 2)
    bot.wait_idle()

    bot.send_event(home_opened(ADMIN))
    standin.wait_for("views.publish")
    body = "\n".join(texts(standin.views[ADMIN]))
    assert "Feedback on recent answers" in body
    assert "Last 2 votes: 👍 1 · 👎 1" in body
    assert "What deadline did Ryabkov give?" in body
