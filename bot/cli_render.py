"""How `qabot ask` and `qabot chat` print an answer: the text, then its evidence; a composed
answer's text as the LLM writes it."""

from __future__ import annotations

from rich.console import Console
from rich.live import Live
from rich.text import Text

from .answering.answer import Answer

out = Console(highlight=False, soft_wrap=True)


def render_answer(answer: Answer, console: Console | None = None, *, include_text: bool = True) -> None:
    """The short answer when the reader is confident about it, then the quote (its answer span
    highlighted), then the passages it quotes: the answer first, then the evidence. A composed
    answer lists its numbered sources, each with the sentence it rests on. Without
    `include_text` only what goes below the text (after a streamed composed answer)."""
    console = console or out
    if answer.notice:
        console.print(Text(answer.notice, style="yellow"))
    if include_text:
        if answer.lead:
            console.print(Text(answer.lead, style="bold cyan"))
        text = Text(answer.text, style="italic" if answer.abstained else "")
        if answer.highlight:
            text.stylize("bold cyan", *answer.highlight)
        console.print(text)
    for citation in answer.citations[: 1 if answer.abstained else 3]:
        if answer.abstained:
            label = "Nearest passage"
        elif citation.number is not None:
            label = f"[{citation.number}]"
        elif citation.quote:
            label = "Source"
        else:
            continue
        page = f", p. {citation.page}" if citation.page else ""
        console.print(Text(f"  {label}: {citation.document}{page}", style="bold dim"))
        passage = citation.quote or citation.text
        console.print(Text("  > " + (passage if len(passage) < 600 else passage[:600] + "…"), style="dim"))


class StreamedText:
    """A composed answer's text shown as the LLM produces it; then, once the answer is known, what
    goes below it. At a terminal the growing text is a live region that the final rendering
    replaces (so a reply that was not shown after all, after an outage midway or a failed check,
    vanishes for the extractive answer and its notice); piped, the text is written as it comes and
    a replacement follows it after a line break."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or out
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
            render_answer(answer, self.console)
            return
        if not self.shown:
            render_answer(answer, self.console)
            return
        self.console.file.write("\n")
        streamed_is_answer = answer.composed and answer.text.strip() == self.shown.strip()
        render_answer(answer, self.console, include_text=not streamed_is_answer)
