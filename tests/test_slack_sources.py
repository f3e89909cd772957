"""The Sources button under an answer opens a modal (views.open) with every passage found, over
real HTTP: the answer stays short in the channel, the other passages are one click away."""

from __future__ import annotations

import json
import time

from bot.slack.blocks import escape
from bot.slack.sources import SOURCES_ACTION, parse_sources_value, sources_value
from bot.slack.sources_modal import GONE, find_passages, sources_view

from .slack_requests import mention_event
from .slack_standin import APP_ID, BOT_ID, TEAM_ID, USER, Call, new_ts

QUESTION = "Which newspaper interviewed him?"


def sources_click(buttons: list[dict], channel: str, ts: str, *, trigger_id: str = "13345.6789.abc") -> dict:
    """The block_actions payload Slack sends when the asker clicks Sources under an answer."""
    button = next(e for e in buttons if e["action_id"] == SOURCES_ACTION)
    return {
        "type": "block_actions",
        "user": {"id": USER, "username": "asker", "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": trigger_id,
        "team": {"id": TEAM_ID, "domain": "qabot-test"},
        "channel": {"id": channel, "name": "general"},
        "message": {"type": "message", "ts": ts, "bot_id": BOT_ID},
        "actions": [{"type": "button", "action_id": SOURCES_ACTION, "block_id": "qabot_feedback",
                     "value": button["value"], "action_ts": str(time.time())}],
    }


def _buttons(call: Call) -> list[dict]:
    return next(b for b in call.blocks() if b["type"] == "actions")["elements"]


def _modal_text(view: dict) -> str:
    """Every text in the modal's blocks, one a line."""
    texts = [b["text"]["text"] for b in view["blocks"] if isinstance(b.get("text"), dict)]
    texts += [e["text"] for b in view["blocks"] for e in b.get("elements", [])]
    return "\n".join(texts)


def test_sources_opens_a_modal_with_every_passage_the_answer_found(make_bot, standin, answerer):
    bot = make_bot(answerer)
    bot.send_event(mention_event(QUESTION))
    post = standin.wait_for("chat.postMessage")[0]
    bot.wait_idle()
    answer = answerer.ask(QUESTION)  # the same answer again (the index is unchanged)
    message = json.dumps(post.blocks(), ensure_ascii=False)
    assert "Izvestia" in message
    folded = [c for c in answer.citations if c.text[:60] not in message]
    assert folded, "some passages are folded away in the message"

    status, _, _ = bot.send_action(sources_click(_buttons(post), post.params["channel"], new_ts()))
    assert status == 200
    opened = standin.wait_for("views.open")[0]
    assert opened.params["trigger_id"] == "13345.6789.abc" and opened.token == standin.bot_token
    (modal,) = standin.modals
    assert modal["type"] == "modal" and modal["title"]["text"] == "Sources"
    shown = _modal_text(modal)
    for citation in answer.citations:  # every passage, the folded ones too, each with its title
        assert escape(" ".join(citation.text.split())[:60]) in shown
    assert shown.count("Russian Diplomat Ryabkov Affirms") == len(answer.citations)
    assert standin.posts() == [post]  # the answer itself is left as it was


def test_sources_works_under_a_slash_command_answer(make_bot, standin, answerer):
    bot = make_bot(answerer)
    bot.send_command(QUESTION, standin.response_url())
    reply = standin.wait_for("response_url")[0]
    bot.send_action(sources_click(_buttons(reply), "C0GENERAL", new_ts(), trigger_id="1.2.slash"))
    assert standin.wait_for("views.open")[0].params["trigger_id"] == "1.2.slash"
    assert "Izvestia" in _modal_text(standin.modals[0])


def test_a_passage_no_longer_indexed_is_named_as_gone(answerer):
    (answer_citation, *_) = answerer.ask(QUESTION).citations
    ids = parse_sources_value(sources_value([answer_citation])) + ["gone~000000#3", "not-a-chunk-id"]
    found = find_passages(answerer.index, ids)
    assert found[0] is not None and found[0][1].text == answer_citation.text
    assert found[1:] == [None, None]
    view = sources_view(found)
    assert _modal_text(view).count(GONE) == 2 and len(view["blocks"]) <= 100
    assert parse_sources_value("not json") == [] and parse_sources_value('{"c": [1, "a#1"]}') == ["a#1"]
