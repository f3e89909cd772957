"""Block Kit rendering: escaping, bold highlight, cited passages, abstention, Slack's limits."""

from __future__ import annotations

import json
import re

import pytest

from bot.answering.answer import ABSTAIN_TEXT, Answer, Citation
from bot.slack.blocks import (
    MAX_BLOCKS,
    SECTION_TEXT_LIMIT,
    escape,
    escape_truncate,
    limit_blocks,
    parse_feedback_value,
    render_answer,
    render_apology,
    safe_url,
    suggested_prompts,
)
from bot.slack.markup import slack_to_plain

ACTIVE_MARKUP = re.compile(r"<\s*[!@#]|<https?:")


def citation(text: str, quote: str = "", **kwargs) -> Citation:
    fields = {"document": "Doc", "source": "doc.txt", "url": None, "chunk_id": "doc#0", "text": text,
              "score": 0.8, "quote": quote}
    fields.update(kwargs)
    return Citation(**fields)


def section_texts(blocks: list[dict]) -> list[str]:
    return [b["text"]["text"] for b in blocks if b["type"] == "section"]


def test_escape_and_truncate_never_split_an_entity():
    assert escape("a & <b> <!channel>") == "a &amp; &lt;b&gt; &lt;!channel&gt;"
    cut = escape_truncate("<" * 100, 10)
    assert cut == "&lt;" * 2 + "…" and len(cut) <= 10
    assert escape_truncate("short", 10) == "short"


def test_slack_markup_in_questions_becomes_plain_text():
    text = "<@UQABOT> what did <@U123|bob> say in <#C1|general> about <https://x.example|this> &amp; <!here> &lt;3"
    assert slack_to_plain(text, "UQABOT") == "what did @bob say in #general about this & @here <3"
    assert slack_to_plain("<@UQABOT>", "UQABOT") == ""


@pytest.mark.parametrize("url, expected", [
    ("https://example.com/a?b=1&c=2", "https://example.com/a?b=1&amp;c=2"),
    ("https://example.com/a|b>c", "https://example.com/a%7Cb&gt;c"),
    ("javascript:alert(1)", None),
    ("https://exa mple.com", None),
    (None, None),
])
def test_only_http_links_are_made_and_escaped(url, expected):
    assert safe_url(url) == expected


def test_the_answer_bolds_the_highlight_and_quotes_its_passage_with_a_title_link(answerer):
    answer = answerer.ask("What deadline did Ryabkov give?")
    linked = Answer(answer.question, answer.text, answer.abstained,
                    tuple(Citation(c.document, c.source, "https://example.com/news?id=1&x=<2>", c.chunk_id, c.text,
                                   c.score, c.quote) for c in answer.citations),
                    answer.highlight, answer.timings_ms, sentence_spans=answer.sentence_spans)
    message = render_answer(linked, feedback_id="f1")
    sections = section_texts(message.blocks)
    evidence = sections[-1]  # after the lead, when there is one
    if answer.highlight:
        assert f"*{escape(answer.highlighted.strip())}*" in evidence
    assert evidence.startswith("> “")
    assert "within a few weeks" in evidence
    context = json.dumps([b for b in message.blocks if b["type"] == "context"])
    assert "<https://example.com/news?id=1&amp;x=&lt;2&gt;|Russian Diplomat Ryabkov" in json.loads(context)[0][
        "elements"][0]["text"]
    assert message.blocks[-1]["type"] == "actions"
    assert parse_feedback_value(message.blocks[-1]["elements"][0]["value"]) == ("f1", "up")
    assert parse_feedback_value(message.blocks[-1]["elements"][1]["value"]) == ("f1", "down")


def test_abstention_says_so_plainly_and_may_show_the_nearest_passage(answerer):
    answer = answerer.ask("What is the boiling point of mercury on Mars?")
    assert answer.abstained
    message = render_answer(answer, feedback_id="f2")
    assert section_texts(message.blocks)[0] == escape(ABSTAIN_TEXT)
    assert message.text == escape(ABSTAIN_TEXT)
    if answer.citations:
        assert any("nearest passage" in json.dumps(b) for b in message.blocks)


def test_hostile_text_everywhere_is_escaped():
    hostile = "<!channel> <@U1> <#C1> <https://evil.example|click> & *bold*"
    answer = Answer(hostile, f"Answer {hostile}", False,
                    (citation(f"Before. Answer {hostile} After.", f"Answer {hostile}",
                              document=f"Title {hostile}", url="https://ok.example/?a=<!channel>"),),
                    (0, 6))
    message = render_answer(answer, feedback_id="f3", echo_question=True, asked_by="U0ASKER")
    texts = [message.text] + [t for b in message.blocks for t in _texts(b)]
    # The only live markup: the asker's mention and the document's own (escaped) URL as the title link.
    title_link = "<https://ok.example/?a=&lt;!channel&gt;|Title &lt;!channel&gt;"
    assert any(title_link in text for text in texts)
    for text in texts:
        assert not ACTIVE_MARKUP.search(text.replace("<@U0ASKER>", "").replace(title_link, "")), text
    assert "&lt;!channel&gt;" in message.text


def test_section_text_limit_and_block_limit_hold_for_huge_inputs():
    long_text = "<word> & " * 2000  # 18,000 characters before escaping
    citations = tuple(citation(long_text, long_text[:5000], chunk_id=f"d#{i}") for i in range(80))
    answer = Answer("q" * 5000, long_text, False, citations, (0, 9000))
    message = render_answer(answer, feedback_id="f4", echo_question=True)
    assert len(message.blocks) <= MAX_BLOCKS
    for block in message.blocks:
        for text in _texts(block):
            assert len(text) <= SECTION_TEXT_LIMIT
            assert not re.search(r"&[a-z]*…|&(?!amp;|lt;|gt;)", text), "a cut entity"
    assert len(message.text) <= 3000
    assert message.blocks[-1]["type"] == "actions"
    many = [{"type": "section", "text": {"type": "mrkdwn", "text": str(i)}} for i in range(70)]
    kept = limit_blocks(many + [{"type": "actions", "elements": []}])
    assert len(kept) == MAX_BLOCKS and kept[-1]["type"] == "actions"


def test_apologies_and_prompts():
    assert "took too long" in render_apology(timeout_s=30).text
    assert render_apology().text.startswith("Sorry")
    prompts = suggested_prompts(["A <b> title", "Another"] * 5)
    assert 1 <= len(prompts) <= 4
    assert suggested_prompts([]) and suggested_prompts([])[0]["message"]


def _texts(block: dict) -> list[str]:
    found = []
    if isinstance(block.get("text"), dict):
        found.append(block["text"]["text"])
    for element in block.get("elements", []):
        if "text" in element:
            found.append(element["text"] if isinstance(element["text"], str) else element["text"]["text"])
    return found
