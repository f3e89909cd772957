"""Slack message rendering: Block Kit for answers, escaping, and Slack's size limits.

Everything that comes from a document or a question is escaped (``&``, ``<``, ``>``) and sent in
``verbatim`` text objects, so a document containing ``<!channel>`` or ``<https://evil|click>``
can neither ping anyone nor make a link. Section texts stay within 3,000 characters and messages
within 50 blocks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence
from urllib.parse import urlsplit

from ..answering.answer import Answer, Citation
from ..answering.layout import AnswerLayout, answer_layout, mark_headings
from .sources import sources_button

SECTION_TEXT_LIMIT = 3000  # characters in a section's text object
CONTEXT_TEXT_LIMIT = 2000  # characters in one context element (kept well under Slack's cap)
FALLBACK_TEXT_LIMIT = 3000  # the notification / screen-reader text of a message
MAX_BLOCKS = 50  # blocks in one message
BUTTON_VALUE_LIMIT = 2000

PASSAGE_CHARS = 900  # a cited passage is shown up to about this long, centred on the quote
NEAREST_CHARS = 500  # the nearest passage shown when abstaining
MAX_PASSAGES = 3  # cited passages shown under one answer

FEEDBACK_ACTION_UP = "qabot_feedback_up"
FEEDBACK_ACTION_DOWN = "qabot_feedback_down"
FEEDBACK_ACTIONS = {FEEDBACK_ACTION_UP: "up", FEEDBACK_ACTION_DOWN: "down"}

WORKING_STATUS = "Searching the articles…"
GREETING = ("Hi{who}! I answer questions about the indexed articles, quoting the passages I "
            "used. Ask me anything, or pick a suggestion below.")
APOLOGY_ERROR = "Sorry, something went wrong while I was answering. The error has been logged; please try again."
APOLOGY_TIMEOUT = "Sorry, that took too long to answer (over {seconds:g} s). Please try again in a moment."


@dataclass(frozen=True)
class Message:
    """A Slack message body: fallback `text` plus Block Kit `blocks`."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


# --- escaping -------------------------------------------------------------------------------

def escape(text: str) -> str:
    """Slack's three control characters as entities: plain text can't ping, link or format links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    """`escape(text)` cut to at most `limit` characters without splitting an entity."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    out: list[str] = []
    used = 0
    budget = limit - len(ellipsis)
    for ch in text:
        piece = escape(ch)
        if used + len(piece) > budget:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out).rstrip() + ellipsis


def safe_url(url: str | None) -> str | None:
    """An http(s) URL made safe to put inside ``<url|label>``, or None if it is not one."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        return None
    return escape(url.replace("|", "%7C"))


# --- text building ------------------------------------------------------------------------------

_MRKDWN_MARKS = set("*_~`")


def _bold_mrkdwn(text: str, spans: Sequence[tuple[int, int]], limit: int) -> str:
    """Escaped `text` with `spans` in bold, cut to `limit` characters (bold markers kept paired)."""
    segments: list[tuple[str, bool]] = []
    pos = 0
    for start, end in sorted(spans):
        start, end = max(start, pos), min(end, len(text))
        if end <= start:
            continue
        span = text[start:end]
        # Bold only a clean span: mrkdwn needs no inner markers and no edge whitespace.
        lead = len(span) - len(span.lstrip())
        trail = len(span) - len(span.rstrip())
        inner = span.strip()
        if not inner or _MRKDWN_MARKS & set(inner):
            continue
        segments.append((text[pos:start + lead], False))
        segments.append((inner, True))
        pos = end - trail
    segments.append((text[pos:], False))

    out: list[str] = []
    used = 0
    ellipsis = "…"
    for raw, bold in segments:
        if not raw:
            continue
        piece = escape(raw)
        extra = 2 if bold else 0
        if used + len(piece) + extra <= limit - len(ellipsis):
            out.append(f"*{piece}*" if bold else piece)
            used += len(piece) + extra
            continue
        room = limit - len(ellipsis) - used - extra
        cut = escape_truncate(raw, room, ellipsis="") if room > 0 else ""
        cut = cut.rstrip()
        if cut:
            out.append(f"*{cut}*" if bold else cut)
        out.append(ellipsis)
        break
    return "".join(out)


def _find(haystack: str, needle: str) -> tuple[int, int] | None:
    """Where `needle` occurs in `haystack`, tolerating differences in whitespace."""
    if not needle.strip():
        return None
    index = haystack.find(needle)
    if index >= 0:
        return index, index + len(needle)
    pattern = r"\s+".join(re.escape(word) for word in needle.split())
    match = re.search(pattern, haystack)
    return (match.start(), match.end()) if match else None


def _window(text: str, span: tuple[int, int] | None, size: int) -> tuple[str, tuple[int, int] | None]:
    """At most about `size` characters of `text` around `span`, cut at spaces, with "…" marks."""
    if len(text) <= size:
        return text, span
    start, end = span if span else (0, 0)
    room = max(size - (end - start), 0)
    left = max(0, start - room // 2)
    right = min(len(text), max(end + (room - (start - left)), left + size))
    if left > 0:
        space = text.find(" ", left)
        left = space + 1 if 0 <= space < start else left
    if right < len(text):
        space = text.rfind(" ", end, right)
        right = space if space > end else right
    prefix = "…" if left > 0 else ""
    suffix = "…" if right < len(text) else ""
    shown = prefix + text[left:right] + suffix
    if span is None:
        return shown, None
    offset = len(prefix) - left
    return shown, (max(start + offset, len(prefix)), min(end + offset, len(shown) - len(suffix)))


def _single_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack must not turn bare URLs, #channels or @mentions in this text into links.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text[:SECTION_TEXT_LIMIT])}


def _context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(t[:CONTEXT_TEXT_LIMIT]) for t in texts[:10]]}


def source_label(citation: Citation) -> str:
    """The document title, as a link when the document has a URL (escaped either way)."""
    title = escape_truncate(_single_line(citation.document) or "Untitled", 200)
    url = safe_url(citation.url)
    return f"<{url}|{title}>" if url else title


def passage_block(citation: Citation, quote: str, size: int = PASSAGE_CHARS) -> dict[str, Any]:
    """The passage as a block quote, the quoted sentences in bold."""
    text = _single_line(mark_headings(citation.text))
    span = _find(text, _single_line(quote)) if quote else None
    shown, span = _window(text, span, size)
    body = _bold_mrkdwn(shown, [span] if span else [], SECTION_TEXT_LIMIT - 2)
    return _section("> " + body)


# --- messages -------------------------------------------------------------------------------------

def feedback_value(feedback_id: str, vote: str) -> str:
    return json.dumps({"id": feedback_id, "vote": vote}, separators=(",", ":"))[:BUTTON_VALUE_LIMIT]


def parse_feedback_value(value: str | None) -> tuple[str | None, str | None]:
    """(feedback id, vote) from a button value; (None, None) if it is not ours."""
    try:
        data = json.loads(value or "")
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    fid, vote = data.get("id"), data.get("vote")
    return (str(fid) if fid else None), (vote if vote in ("up", "down") else None)


def feedback_actions(feedback_id: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": "qabot_feedback",
        "elements": [
            {"type": "button", "action_id": FEEDBACK_ACTION_UP, "value": feedback_value(feedback_id, "up"),
             "text": {"type": "plain_text", "text": "👍 Helpful", "emoji": True}},
            {"type": "button", "action_id": FEEDBACK_ACTION_DOWN, "value": feedback_value(feedback_id, "down"),
             "text": {"type": "plain_text", "text": "👎 Not helpful", "emoji": True}},
        ],
    }


def limit_blocks(blocks: list[dict[str, Any]], max_blocks: int = MAX_BLOCKS) -> list[dict[str, Any]]:
    """At most `max_blocks` blocks, keeping the last one when it is the feedback buttons."""
    if len(blocks) <= max_blocks:
        return blocks
    if blocks and blocks[-1].get("type") == "actions":
        return blocks[: max_blocks - 1] + [blocks[-1]]
    return blocks[:max_blocks]


def _evidence_mrkdwn(layout: AnswerLayout) -> str:
    """The evidence lines as one block quote, each quoted once, the lead in bold inside it."""
    room = (SECTION_TEXT_LIMIT - 8 * len(layout.evidence)) // max(len(layout.evidence), 1)
    lines = [_bold_mrkdwn(_single_line(line.text), [line.bold] if line.bold else [], room)
             for line in layout.evidence]
    return "\n".join(f"> “{line}”" for line in lines if line)


def _source_context(layout: AnswerLayout) -> dict[str, Any]:
    """📄 the passage(s) the evidence is quoted from (title link, page), and how many more were found."""
    labels = [source_label(c) + (f", p. {c.page}" if c.page else "") for c in layout.cited]
    text = "📄 " + " · ".join(dict.fromkeys(labels))
    if layout.more:
        text += f" · {len(layout.more)} more passage{'s' if len(layout.more) != 1 else ''}"
    return _context(text)


def _composed_sources(answer: Answer) -> list[dict[str, Any]]:
    """A composed answer's numbered sources, each with the sentence it rests on unless the text
    already says it word for word (each sentence once)."""
    said = _single_line(answer.text).casefold()
    blocks = []
    for citation in answer.citations[:MAX_PASSAGES * 3]:
        number = f"[{citation.number}] " if citation.number is not None else ""
        quote = _single_line(citation.quote)
        line = f"{number}{source_label(citation)}"
        if quote and quote.casefold() not in said:
            line += f": “{escape_truncate(quote, CONTEXT_TEXT_LIMIT - len(line) - 8)}”"
            said += " " + quote.casefold()
        blocks.append(_context(line))
    return blocks


def render_answer(answer: Answer, *, feedback_id: str | None = None, asked_by: str | None = None,
                  echo_question: bool = False, include_text: bool = True) -> Message:
    """The Block Kit message for an answer (or an abstention), from its `AnswerLayout`: the lead,
    the evidence quoted once with the lead in bold, the source, then a Sources button (the other
    passages, in a modal) beside the feedback buttons.

    `echo_question` repeats the question on top (for ``/ask`` answers, which have no thread);
    `asked_by` is the Slack user id of the asker, mentioned in that line. Without `include_text`
    the answer's own text is left out: the blocks that go below a streamed text (`streaming`).
    """
    layout = answer_layout(answer)
    blocks: list[dict[str, Any]] = []
    if echo_question and answer.question:
        who = f"<@{asked_by}> asked" if asked_by and re.fullmatch(r"[A-Z0-9]+", asked_by) else "Question"
        blocks.append(_context(f"{who}: {escape_truncate(answer.question, CONTEXT_TEXT_LIMIT - 40)}"))

    if layout.notice:  # "LLM unavailable; showing the passage"
        blocks.append(_context(f"⚠️ {escape_truncate(layout.notice, CONTEXT_TEXT_LIMIT - 4)}"))
    buttons: list[dict[str, Any]] = []
    if layout.abstained:
        if include_text:
            blocks.append(_section(escape_truncate(answer.text, SECTION_TEXT_LIMIT)))
        if layout.source is not None:
            blocks.append(_context("The nearest passage I found (it may not answer your question):"))
            blocks.append(passage_block(layout.source, "", NEAREST_CHARS))
            blocks.append(_context(f"📄 {source_label(layout.source)}"))
    elif layout.composed:
        if include_text:
            blocks.append(_section(escape_truncate(answer.text, SECTION_TEXT_LIMIT)))
        blocks.extend(_composed_sources(answer))
    else:
        if include_text:
            if layout.lead:  # the answer first ("*Jan. 10*"), then the sentence that proves it
                blocks.append(_section(_bold_mrkdwn(layout.lead, [(0, len(layout.lead))], SECTION_TEXT_LIMIT)))
            blocks.append(_section(_evidence_mrkdwn(layout)))
        if answer.citations:
            blocks.append(_source_context(layout))
    if answer.citations and not layout.abstained:
        buttons.append(sources_button(answer.citations))
    if feedback_id:
        buttons = feedback_actions(feedback_id)["elements"] + buttons
    if buttons:
        blocks.append({"type": "actions", "block_id": "qabot_feedback", "elements": buttons})
    return Message(escape_truncate(notification_text(answer, layout, echo_question), FALLBACK_TEXT_LIMIT),
                   limit_blocks(blocks))


def notification_text(answer: Answer, layout: AnswerLayout, echo_question: bool = False) -> str:
    """The plain notification / screen-reader text: the lead, then the evidence once."""
    if layout.abstained or layout.composed:
        text = answer.text
    else:
        evidence = " ".join(f"“{_single_line(line.text)}”" for line in layout.evidence)
        text = f"{layout.lead} — {evidence}" if layout.lead else evidence
    return f"{answer.question}: {text}" if echo_question and answer.question else text


def render_notice(text: str) -> Message:
    """A one-section message (apologies, hints). `text` is plain and gets escaped."""
    safe = escape_truncate(text, SECTION_TEXT_LIMIT)
    return Message(safe, [_section(safe)])


def render_apology(*, timeout_s: float | None = None) -> Message:
    """The short apology posted when answering fails, so the asker never meets silence. The cause
    goes to the log only: error details can name servers and paths."""
    if timeout_s is not None:
        return render_notice(APOLOGY_TIMEOUT.format(seconds=timeout_s))
    return render_notice(APOLOGY_ERROR)


def render_greeting(user_id: str | None = None) -> Message:
    who = f" <@{user_id}>" if user_id and re.fullmatch(r"[A-Z0-9]+", user_id) else ""
    text = GREETING.format(who=who)
    return Message(text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])


def suggested_prompts(titles: Iterable[str], limit: int = 4) -> list[dict[str, str]]:
    """Assistant panel suggestions: one per indexed document title (Slack allows 1 to 4)."""
    prompts: list[dict[str, str]] = []
    for title in titles:
        # A prompt becomes the user's own message when clicked: keep Slack markup out of it.
        title = _single_line(re.sub(r"[<>]", " ", title))
        if not title:
            continue
        short = title if len(title) <= 60 else title[:57].rstrip() + "…"
        prompts.append({"title": f"About “{short}”", "message": f"What does “{title[:300]}” say?"})
        if len(prompts) >= limit:
            break
    return prompts or [{"title": "Ask about the articles",
                        "message": "What are the main points of the articles?"}]
