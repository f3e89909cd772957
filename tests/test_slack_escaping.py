"""Text from documents and questions reaches Slack escaped: a document holding ``<!channel>`` or
``<https://evil|click>`` can neither ping anyone nor make a link (real index, real Answerer)."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import build_index
from .slack_requests import mention_event
from .slack_standin import BOT_USER_ID

DOCUMENT = """Ops notice <!here> & <https://evil.example|click me>

The maintenance window for the Geneva servers starts on March 3 <!channel> and lasts two days. \
Contact <https://evil.example/login|the help desk> for access & questions if the window runs > 2 hours.

The backup data centre in Zurich stays online during the whole maintenance window.
"""

# Slack markup that would act (ping, link, mention) if it reached Slack unescaped.
ACTIVE_MARKUP = re.compile(r"<\s*[!@#]|<https?:")


@pytest.fixture(scope="module")
def hostile_answerer(tmp_path_factory, settings):
    from bot.answering.answerer import Answerer

    folder = tmp_path_factory.mktemp("hostile")
    (folder / "ops-notice.txt").write_text(DOCUMENT, encoding="utf-8")
    index_dir = folder / "index"
    build_index([folder / "ops-notice.txt"], index_dir, settings)
    return Answerer.from_settings(settings, index_dir=index_dir)


def test_channel_ping_in_a_document_reaches_slack_escaped(make_bot, standin, hostile_answerer):
    bot = make_bot(hostile_answerer)
    # The asker's own message also carries Slack markup (an @here and a link).
    bot.send_event(mention_event("<!here> when does the maintenance window start? <https://x.example|see>"))
    post = standin.wait_for("chat.postMessage")[0]
    bot.wait_idle()
    sent = post.raw_body
    visible = post.text_and_blocks().replace("*", "")  # without bold marks
    assert "March 3" in visible  # it did answer from the document
    assert "&lt;!" in visible  # the document's text, escaped (the quoted sentence, not the whole passage)
    assert "Ops notice &lt;!here&gt; &amp; &lt;https://evil.example|click me&gt;" in visible  # the title
    for text in _all_texts(post.blocks()) + [post.params["text"]]:
        assert not ACTIVE_MARKUP.search(text), text
    assert "<!channel>" not in sent and "<!here>" not in sent and "<https://evil" not in sent
    # Texts holding document words are verbatim: Slack adds no links or mentions of its own.
    assert all(obj.get("verbatim") for obj in _text_objects(post.blocks()) if obj["type"] == "mrkdwn"
               and "Geneva" in obj["text"])


def test_question_markup_is_not_echoed_live(make_bot, standin, answerer, slack_settings):
    bot = make_bot(answerer, settings=slack_settings.replace("slack", slash_ephemeral=False))
    bot.send_command("<!channel> What deadline did <@U0OTHER|bob> give? <https://evil.example|x>",
                     standin.response_url())
    answer = standin.wait_for("response_url")[0]
    for text in _all_texts(answer.blocks()) + [answer.params["text"]]:
        # The only live markup allowed is the asker's own mention in the "asked" line.
        assert not ACTIVE_MARKUP.search(text.replace("<@U0ASKER>", "")), text
    assert f"<@{BOT_USER_ID}>" not in answer.raw_body


def _text_objects(blocks: list[dict]) -> list[dict]:
    found: list[dict] = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and "text" in node:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return found


def _all_texts(blocks: list[dict]) -> list[str]:
    return [obj["text"] for obj in _text_objects(blocks)] + [json.dumps(blocks)]
