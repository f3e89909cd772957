"""`qabot ask` piped prints its lines without rich (bot.plain_output), and they are the bytes rich
would print: the same rules for what is a terminal, the same text for every line it writes itself,
rich for the lines it would change. Rich is not imported on that path."""

from __future__ import annotations

import io
import itertools
import subprocess
import sys

import pytest
from rich.console import Console

from bot import plain_output
from bot.answer_lines import Line, answer_lines
from bot.cli_render import line_text, render_answer

from .conftest import ROOT
from .test_answer_layout import hand_made, questions_in_tests
from .qabot_env import qabot_environ


class Stream(io.StringIO):
    def __init__(self, tty: bool | None) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        if self.tty is None:
            raise ValueError("I/O operation on closed file")
        return self.tty


def rich_prints(line: Line) -> str:
    """What `bot.cli_render.out` (no terminal) prints for `line`."""
    console = Console(file=io.StringIO(), highlight=False, soft_wrap=True)
    console.print(line_text(line))
    return console.file.getvalue()


@pytest.mark.parametrize("tty, compatible, force", itertools.product(
    (True, False, None), (None, "", "0", "1", "yes"), (None, "", "1", "0")))
def test_plain_stdout_calls_a_terminal_what_rich_does(monkeypatch, tty, compatible, force):
    environ = {name: value for name, value in (("TTY_COMPATIBLE", compatible), ("FORCE_COLOR", force))
               if value is not None}
    stream = Stream(tty)
    monkeypatch.setattr(sys, "stdout", stream)
    rich_terminal = Console(highlight=False, soft_wrap=True, _environ=environ).is_terminal
    assert (plain_output.plain_stdout(environ) is None) == rich_terminal
    if not rich_terminal:
        assert plain_output.plain_stdout(environ) is stream


def test_rich_prints_every_other_character_as_it_is():
    """The characters rich rewrites are the ones `prints_as_is` refuses; every other one of the
    first 64K (and some beyond) comes out unchanged, styled or not."""
    for code in itertools.chain(range(0xD800), range(0xE000, 0x10000), (0x1F44D, 0x1F600, 0xE0001)):
        text = f"a{chr(code)} b{chr(code)}"
        unchanged = rich_prints(Line(text, "dim", (0, 1))) == text + "\n"
        assert unchanged == plain_output.prints_as_is(text), hex(code)


def test_answer_lines_print_as_rich_prints_them(answerer):
    """Every line of every answer the tests ask for (with and without --sources), and hand-made
    ones, is the text rich prints for it."""
    answers = [hand_made(), hand_made(two_sentences=True), hand_made(lead=False)]
    answers += [answerer.ask(q) for q in questions_in_tests()]
    for answer in answers:
        for sources in (False, True):
            console = Console(file=io.StringIO(), highlight=False, soft_wrap=True)
            render_answer(answer, console, sources=sources)
            lines = answer_lines(answer, sources=sources)
            assert all(plain_output.prints_as_is(line.text) for line in lines)
            assert "".join(line.text + "\n" for line in lines) == console.file.getvalue()


def test_write_line_writes_the_line_and_flushes():
    stream = Stream(False)
    plain_output.write_line("“Jan. 10” — x", stream)
    assert stream.getvalue() == "“Jan. 10” — x\n"


def test_a_piped_ask_prints_what_rich_prints_without_importing_rich(sample_index):
    """Two questions from stdin (one with a tab and a carriage return, which rich rewrites), as the
    console script runs them: the same bytes as the rich rendering, and rich never imported."""
    code = ("import sys; sys.argv = ['qabot', 'ask', '-']\n"
            "from bot.cli_main import main\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print('RICH', 'rich' in sys.modules)")
    environ = qabot_environ("FORCE_COLOR", "TTY_", QABOT_INDEX=str(sample_index))

    def ask(stdin: str) -> list[str]:
        result = subprocess.run([sys.executable, "-c", code], input=stdin, capture_output=True, text=True,
                                cwd=ROOT, env=environ, timeout=300)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines(keepends=True)

    plain = ask("When are the Geneva talks?\nWhich newspaper interviewed him?\n")
    assert plain[-1] == "RICH False\n"
    rewritten = ask("tab\there\rx?\nWhen are the Geneva talks?\n")
    assert rewritten[0] == "Q: tab  herex?\n" and rewritten[-1] == "RICH True\n"

    from bot.answering.answerer import Answerer
    from bot.settings import load_settings

    answerer = Answerer.from_settings(load_settings(None, environ), index_dir=sample_index)
    expected = []
    for question in ("When are the Geneva talks?", "Which newspaper interviewed him?"):
        expected.append(rich_prints(Line(f"Q: {question}", "bold")))
        expected += [rich_prints(line) for line in answer_lines(answerer.ask(question))]
        expected.append(rich_prints(Line("")))
    assert plain[:-1] == "".join(expected).splitlines(keepends=True)
