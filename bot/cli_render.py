"""How `qabot ask` and `qabot chat` print an answer through rich: the lines `bot.answer_lines`
makes (from the answer's `AnswerLayout` only), each in its style, and a composed answer's text as
the LLM streams it."""

from __future__ import annotations

from typing import Callable, Sequence

from rich.console import Console
from rich.live import Live
from rich.text import Text

from .answer_lines import LEAD_STYLE, Line, answer_lines
from .answering.answer import Answer

# Soft wrap: into a pipe or a file a line is written whole, however long (rich would otherwise wrap
# it at 80 columns there); `show_line` word-wraps at a terminal's width instead.
out = Console(highlight=False, soft_wrap=True)


def render_answer(answer: Answer, console: Console | None = None, *, include_text: bool = True,
                  sources: bool = False) -> None:
    """Print `answer`. Without `include_text` only what goes below the text (after a streamed
    composed answer); with `sources` the folded passages are listed too. At a terminal a long
    line is wrapped between words, not where the terminal runs out of columns mid-word."""
    for line in answer_lines(answer, include_text=include_text, sources=sources):
        show_line(line, console)


def show_line(line: Line, console: Console | None = None) -> None:
    """One line through rich: whole into a pipe or file, wrapped between words at a terminal."""
    console = console or out
    console.print(line_text(line), soft_wrap=not console.is_terminal)


def line_text(line: Line) -> Text:
    """A printed line as rich shows it: its style, and the lead in bold inside an evidence line."""
    text = Text(line.text, style=line.style)
    if line.bold is not None:
        text.stylize(LEAD_STYLE, *line.bold)
    return text


class StreamedText:
    """A composed answer's text shown as the LLM produces it; then, once the answer is known, what
    goes below it. At a terminal the growing text is a live region that the final rendering
    replaces (so a reply that was not shown after all, after an outage midway or a failed check,
    vanishes for the extractive answer and its notice); piped, the text is written as it comes and
    a replacement follows it after a line break."""

    def __init__(self, console: Console | None = None, *, sources: bool = False) -> None:
        self.console = console or out
        self.sources = sources
        self.shown = ""
        self._live: Live | None = None

    def __call__(self, piece: str) -> None:
        self.shown += piece
        if not self.console.is_terminal:
            self.console.file.write(piece)
            self.console.file.flush()
            return
        if self._live is None:
            self._live = Live(Text(self.shown), console=self.console, auto_refresh=False, transient=True)
            self._live.start()
        self._live.update(Text(self.shown), refresh=True)

    def finish(self, answer: Answer) -> None:
        if self._live is not None:
            self._live.stop()  # transient: the streamed text gives way to the final rendering
            render_answer(answer, self.console, sources=self.sources)
            return
        if not self.shown:
            render_answer(answer, self.console, sources=self.sources)
            return
        self.console.file.write("\n")
        streamed_is_answer = answer.composed and answer.text.strip() == self.shown.strip()
        render_answer(answer, self.console, include_text=not streamed_is_answer, sources=self.sources)


def ask_and_show(answerer, question: str, history: list[str] | None = None, *, sources: bool = False,
                 show_query: Callable[[Answer], None] | None = None,
                 collections: Sequence[str] | None = None) -> Answer:
    """Ask and print the answer; a composed answer's text appears as the LLM writes it.
    `show_query` (chat's -v) is called with the answer before it is printed, or after a streamed one.
    `collections` limits the documents answered from (`--collection`; None: all)."""
    scoped: dict = {} if collections is None else {"collections": collections}
    if answerer.composer is None:
        answer = answerer.ask(question, history or (), **scoped)
        if show_query is not None:
            show_query(answer)
        render_answer(answer, sources=sources)
        return answer
    stream = StreamedText(sources=sources)
    answer = answerer.ask(question, history or (), on_text=stream, **scoped)
    stream.finish(answer)
    if show_query is not None:
        show_query(answer)
    return answer
