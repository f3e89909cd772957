"""The README shows the answer layout exactly as it prints: its Quick start transcript is a real
`make run` session (ingest, then chat) and its Slack example the message the bot posts.

When the answers change, regenerate both blocks with ``.venv/bin/python -m tests.readme_transcript``
and paste them over the README's."""

from __future__ import annotations

import pytest

from .conftest import ROOT
from .readme_transcript import SLACK_QUESTION, blocks_in, quick_start, slack_example

README = (ROOT / "README.md").read_text(encoding="utf-8")
REGENERATE = "regenerate it with: .venv/bin/python -m tests.readme_transcript"


@pytest.mark.slow  # qabot processes to start: the integration tier
def test_the_quick_start_transcript_is_what_qabot_prints(tmp_path):
    shown = blocks_in(README).get("quick start")
    assert shown is not None, "the README has no Quick start transcript (a ``` block opening with $ make run)"
    assert shown == quick_start(tmp_path / "index"), f"the README's Quick start transcript is stale; {REGENERATE}"


def test_the_slack_example_is_the_message_the_bot_posts(answerer):
    shown = blocks_in(README).get("slack")
    assert shown is not None, f"the README has no Slack example (a ```text block opening with @qabot {SLACK_QUESTION})"
    assert shown == f"@qabot {SLACK_QUESTION}\n" + slack_example(answerer), \
        f"the README's Slack example is stale; {REGENERATE}"


def test_the_make_run_lines_are_the_makefiles():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "$(BIN)/qabot ingest --if-empty" in makefile
    assert 'SLACK_BOT_TOKEN is not set: starting the CLI chat (see README, \\"Slack setup\\", for the bot).' in makefile
