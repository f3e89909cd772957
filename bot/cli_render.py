"""How `qabot ask` and `qabot chat` print an answer, from its `AnswerLayout` only: the lead, the
evidence once (quoted, the lead in bold inside it), the source line, and the other passages folded
away unless asked for (``--sources`` / ``-v``). A decline says so, with the nearest passage once
when configured; a composed answer is its text, then its numbered sources."""

from __future__ import annotations

import re
from typing import Callable, Sequence

from rich.console import Console
from rich.live import Live
from rich.text import Text

from embeddings.chunking import split_sentences

from .answering.answer import Answer, Citation
from .answering.layout import ELLIPSIS, AnswerLayout, EvidenceLine, answer_layout, mark_headings

out = Console(highlight=False, soft_wrap=True)

PASSAGE_CHARS = 600  # a passage listed with --sources (or the nearest one on a decline) is cut here
LEAD_STYLE = "bold cyan"


def render_answer(answer: Answer, console: Console | None = None, *, include_text: bool = True,
                  sources: bool = False) -> None:
    """Print `answer`. Without `include_text` only what goes below the text (after a streamed
    composed answer); with `sources` the folded passages are listed too."""
    console = console or out
    layout = answer_layout(answer)
    if layout.notice:
        console.print(Text(layout.notice, style="yellow"))
    if layout.abstained:
        _render_decline(answer, layout, console, include_text)
    elif layout.composed:
        _render_composed(answer, layout, console, include_text)
    else:
        _render_quoted(answer, layout, console, include_text, sources)


def _render_quoted(answer: Answer, layout: AnswerLayout, console: Console, include_text: bool,
                   sources: bool) -> None:
    if include_text:
        if layout.lead:
            console.print(Text(layout.lead, style=LEAD_STYLE))
        for line in layout.evidence:
            console.print(evidence_text(line))
    if layout.cited:
        console.print(Text("  — " + "; ".join(dict.fromkeys(source_line(c) for c in layout.cited)), style="dim"))
    if not layout.more:
        return
    if not sources:
        count = len(layout.more)
        console.print(Text(f"  {count} more passage{'s' if count != 1 else ''} (--sources to show)", style="dim"))
        return
    _render_folded(answer, layout, console, {c.document for c in layout.cited})


def _render_folded(answer: Answer, layout: AnswerLayout, console: Console, named: set[str]) -> None:
    """The other passages, grouped under their document's title (named once), each sentence once:
    what the evidence or an earlier passage already showed becomes "…"."""
    seen = {_normal(answer.text[start:end]) for start, end, _ in answer.sentence_spans}
    seen |= {_normal(line.text) for line in layout.evidence}
    for citation in layout.more:
        excerpt = passage_excerpt(citation.text, seen)
        if not excerpt:
            continue
        if citation.document not in named:
            named.add(citation.document)
            console.print(Text(f"  · {source_line(citation)}", style="bold dim"))
        elif citation.page:
            excerpt = f"p. {citation.page}: {excerpt}"
        console.print(Text("      " + excerpt, style="dim"))


def _render_decline(answer: Answer, layout: AnswerLayout, console: Console, include_text: bool) -> None:
    if include_text:
        console.print(Text(answer.text, style="italic"))
    if layout.source is not None:
        console.print(Text(f"  Nearest passage — {source_line(layout.source)}:", style="bold dim"))
        console.print(Text("  > " + passage_excerpt(layout.source.text, set()), style="dim"))


def _render_composed(answer: Answer, layout: AnswerLayout, console: Console, include_text: bool) -> None:
    """The text, then each numbered source with the sentence it rests on, unless the text already
    says that sentence word for word (each sentence once)."""
    if include_text:
        console.print(Text(answer.text))
    said = _normal(answer.text)
    for citation in answer.citations:
        label = f"[{citation.number}]" if citation.number is not None else "Source:"
        console.print(Text(f"  {label} {source_line(citation)}", style="bold dim"))
        quote = _normal(citation.quote)
        if quote and quote not in said:
            console.print(Text(f"      “{citation.quote.strip()}”", style="dim"))
            said += " " + quote


def evidence_text(line: EvidenceLine) -> Text:
    """One evidence line, quoted, the lead in bold inside it."""
    text = Text("“" + line.text + "”")
    if line.bold is not None:
        text.stylize(LEAD_STYLE, line.bold[0] + 1, line.bold[1] + 1)
    return text


def source_line(citation: Citation) -> str:
    """Title, then page and link when the document has them."""
    parts = [citation.document or citation.source]
    if citation.page:
        parts.append(f"p. {citation.page}")
    if citation.url:
        parts.append(citation.url)
    return ", ".join(parts)


def passage_excerpt(passage: str, seen: set[str], limit: int = PASSAGE_CHARS) -> str:
    """`passage` on one line, cut to `limit`, its sentences in `seen` (normalised) replaced by "…";
    adds the ones it shows to `seen`. "" when every sentence was already shown."""
    pieces: list[str] = []
    for sentence in split_sentences(mark_headings(passage)):
        key = _normal(sentence.text)
        if key in seen:
            if pieces and pieces[-1] != ELLIPSIS:
                pieces.append(ELLIPSIS)
            continue
        seen.add(key)
        pieces.append(_one_line(sentence.text))
    if not any(piece != ELLIPSIS for piece in pieces):
        return ""
    text = " ".join(pieces)
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:") + ELLIPSIS  # at a word's end


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _normal(text: str) -> str:
    return _one_line(text).casefold()


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
