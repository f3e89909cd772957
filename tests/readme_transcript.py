"""The README's Quick start transcript and Slack example, produced by running them for real.

`python -m tests.readme_transcript` prints both blocks, ready to paste into the README;
tests/test_readme_transcript.py checks that the README shows exactly these.

The transcript is what `make run` prints on a new checkout: `qabot ingest` of the bundled article
into a fresh index (its path shown as the default, data/index), then `qabot chat` with the Quick
start questions typed in. The Slack example is the Block Kit message the bot posts for one of
them, drawn as text: sections, the quoted evidence, context lines and the buttons.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .qabot_env import qabot_environ

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "articles" / "ryabkov-2022-01-06.txt"
QABOT = str(Path(sys.executable).parent / "qabot")

QUICK_START = ("What deadline did Ryabkov give?", "And when are the talks?", "Which newspaper interviewed him?",
               "What is the capital of Australia?")
SLACK_QUESTION = "When are the Geneva talks?"
# What `make run` prints around the commands it runs (see the Makefile's `run` target).
MAKE_RUN = ("$ make run", ".venv/bin/qabot ingest --if-empty")
NO_SLACK = 'SLACK_BOT_TOKEN is not set: starting the CLI chat (see README, "Slack setup", for the bot).'
PROMPT = "? "


def _qabot(*args: str, stdin: str | None = None) -> str:
    environ = qabot_environ()
    result = subprocess.run([QABOT, *args], input=stdin, capture_output=True, text=True, cwd=ROOT,
                            env=environ, timeout=600, check=True)
    return result.stdout


def quick_start(index_dir: Path) -> str:
    """The Quick start transcript, from a real ingest into `index_dir` and a real chat on it."""
    ingested = _qabot("ingest", str(SAMPLE.relative_to(ROOT)), "--index", str(index_dir))
    ingested = ingested.replace(str(index_dir), "data/index")
    chat = _qabot("chat", "--index", str(index_dir), stdin="".join(q + "\n" for q in QUICK_START) + "exit\n")
    # Piped, chat writes its "? " prompt without the typed question (no echo): put it back.
    banner, *replies = chat.split("\n" + PROMPT)
    lines = [*MAKE_RUN, *ingested.strip().splitlines(), NO_SLACK, banner.strip()]
    for question, reply in zip(QUICK_START, replies[:len(QUICK_START)], strict=True):
        lines.append(PROMPT + question)
        lines.extend(reply.rstrip("\n").splitlines())
        lines.append("")
    lines.append(PROMPT + "exit")
    return "\n".join(lines)


def slack_preview(message: Any) -> str:
    """A Block Kit message drawn as text: each section and context line as Slack shows it, the
    buttons in brackets, then the notification text."""
    lines: list[str] = []
    for block in message.blocks:
        kind = block.get("type")
        if kind == "section":
            lines.extend(block["text"]["text"].splitlines())
        elif kind == "context":
            lines.append(" ".join(e["text"] for e in block["elements"]))
        elif kind == "actions":
            lines.append(" ".join(f"[{e['text']['text']}]" for e in block["elements"]))
    lines.append(f"(notification: {message.text})")
    return "\n".join(lines)


def slack_example(answerer: Any) -> str:
    """The Slack example: the message the bot posts for `SLACK_QUESTION`."""
    from bot.slack.blocks import render_answer

    return slack_preview(render_answer(answerer.ask(SLACK_QUESTION), feedback_id="example"))


def blocks_in(readme: str) -> dict[str, str]:
    """The README's fenced blocks that hold the transcript and the Slack example, by name, without
    the indentation of a block inside a list item."""
    found: dict[str, str] = {}
    for name, opener in (("quick start", r"```\n(?=\$ make run\n)"),
                         ("slack", r"```text\n(?=\1@qabot " + re.escape(SLACK_QUESTION) + ")")):
        match = re.search(r"^( *)" + opener, readme, re.MULTILINE)
        if match is None:
            continue
        indent = match.group(1)
        end = readme.index("\n" + indent + "```", match.end())
        lines = readme[match.end():end].split("\n")
        found[name] = "\n".join(line[len(indent):] if line.startswith(indent) else line for line in lines)
    return found


def main() -> None:
    from bot.answering.answerer import Answerer
    from bot.settings import load_settings

    settings = load_settings(environ={})
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        print("```\n" + quick_start(index_dir) + "\n```\n")
        answerer = Answerer.from_settings(settings, index_dir=index_dir)
        print("```text\n@qabot " + SLACK_QUESTION + "\n" + slack_example(answerer) + "\n```")


if __name__ == "__main__":
    main()
