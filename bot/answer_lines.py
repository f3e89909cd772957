"""The lines `qabot ask` and `qabot chat` print for an answer, from its `AnswerLayout` only: the
lead, the evidence once (quoted, the lead in bold inside it), the source line, and the other
passages folded away unless asked for (``--sources`` / ``-v``). A decline says so, with the nearest
passage once when configured; a composed answer is its text, then its numbered sources.

Why apart from `bot.cli_render`: these are plain strings with the style each is shown in, and
nothing here imports rich. A cold `qabot ask` whose output is not a terminal prints them as they
are (`bot.plain_output`), which is what rich would print there, without importing rich (about a
twentieth of its time); `bot.cli_render` shows the same lines through rich everywhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from embeddings.chunking import split_sentences

from .answering.answer import Answer, Citation
from .answering.layout import ELLIPSIS, AnswerLayout, EvidenceLine, answer_layout, mark_headings

PASSAGE_CHARS = 600  # a passage listed with --sources (or the nearest one on a decline) is cut here
LEAD_STYLE = "bold cyan"


@dataclass(frozen=True)
class Line:
    """One printed line: its text, its rich style ("" for none), and the characters of `text`
    shown in `LEAD_STYLE` on top of it (the lead inside an evidence line), if any."""

    text: str
    style: str = ""
    bold: tuple[int, int] | None = None


def answer_lines(answer: Answer, *, include_text: bool = True, sources: bool = False) -> list[Line]:
    """The lines that show `answer`. Without `include_text` only what goes below the text (after a
    streamed composed answer); with `sources` the folded passages are listed too."""
    layout = answer_layout(answer)
    lines: list[Line] = []
    if layout.notice:
        lines.append(Line(layout.notice, "yellow"))
    if layout.abstained:
        _decline(answer, layout, lines, include_text)
    elif layout.composed:
        _composed(answer, layout, lines, include_text)
    else:
        _quoted(answer, layout, lines, include_text, sources)
    return lines


def _quoted(answer: Answer, layout: AnswerLayout, lines: list[Line], include_text: bool,
            sources: bool) -> None:
    if include_text:
        if layout.lead:
            lines.append(Line(layout.lead, LEAD_STYLE))
        for line in layout.evidence:
            lines.append(evidence_line(line))
    if layout.cited:
        lines.append(Line("  — " + "; ".join(dict.fromkeys(source_line(c) for c in layout.cited)), "dim"))
    if not layout.more:
        return
    if not sources:
        count = len(layout.more)
        lines.append(Line(f"  {count} more passage{'s' if count != 1 else ''} (--sources to show)", "dim"))
        return
    _folded(answer, layout, lines, {c.document for c in layout.cited})


def _folded(answer: Answer, layout: AnswerLayout, lines: list[Line], named: set[str]) -> None:
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
            lines.append(Line(f"  · {source_line(citation)}", "bold dim"))
        elif citation.page:
            excerpt = f"p. {citation.page}: {excerpt}"
        lines.append(Line("      " + excerpt, "dim"))


def _decline(answer: Answer, layout: AnswerLayout, lines: list[Line], include_text: bool) -> None:
    if include_text:
        lines.append(Line(answer.text, "italic"))
    if layout.source is not None:
        lines.append(Line(f"  Nearest passage — {source_line(layout.source)}:", "bold dim"))
        lines.append(Line("  > " + passage_excerpt(layout.source.text, set()), "dim"))


def _composed(answer: Answer, layout: AnswerLayout, lines: list[Line], include_text: bool) -> None:
    """The text, then each numbered source with the sentence it rests on, unless the text already
    says that sentence word for word (each sentence once)."""
    if include_text:
        lines.append(Line(answer.text))
    said = _normal(answer.text)
    for citation in answer.citations:
        label = f"[{citation.number}]" if citation.number is not None else "Source:"
        lines.append(Line(f"  {label} {source_line(citation)}", "bold dim"))
        quote = _normal(citation.quote)
        if quote and quote not in said:
            lines.append(Line(f"      “{citation.quote.strip()}”", "dim"))
            said += " " + quote


def evidence_line(line: EvidenceLine) -> Line:
    """One evidence line, quoted, the lead in bold inside it."""
    bold = None if line.bold is None else (line.bold[0] + 1, line.bold[1] + 1)
    return Line("“" + line.text + "”", bold=bold)


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
