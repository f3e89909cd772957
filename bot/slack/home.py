"""The bot's Home tab: what it knows, how to ask it, and (for admins) how its answers were rated.

Published with ``views.publish`` each time a user opens the tab (``app_home_opened``), so it always
shows the index the bot is answering from. Every text from a document or a question is escaped
and every block stays within Slack's Block Kit limits: a Home view holds at most 100 blocks, a
section's text 3,000 characters, a header's 150. A large index is listed as far as the blocks go,
then summed up ("…and 812 more documents").

The index records no document dates today; a document's date is shown when its record has one.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient

from embeddings.index_search import collection_sizes

from .blocks import SECTION_TEXT_LIMIT, escape_truncate, safe_url
from .channel_collections import ChannelScope, allows
from .client import api_error
from .home_gaps import gap_blocks, top_gaps
from .home_collections import change_collections, home_collections
from .state import BotState

log = logging.getLogger(__name__)

# Slack's limits for a Home tab view (Block Kit reference: views, header and section blocks).
HOME_MAX_BLOCKS = 100
HEADER_TEXT_LIMIT = 150
CONTEXT_ELEMENT_LIMIT = 10
# A document's title and source are cut to this many characters in its line of the list.
TITLE_CHARS = 150
SOURCE_CHARS = 120
# Documents listed by name; beyond this the list is summed up ("…and 812 more documents"): a
# longer list is not read, and it keeps the published view small (~100 KB at most).
MAX_LISTED_DOCUMENTS = 200
# A longer URL is not made a link (it would crowd out the list and could overrun a section).
URL_CHARS = 1000
# Admins see the tally of this many most recent votes, and the answers voted on most recently.
RECENT_VOTES = 500
ANSWERS_SHOWN = 10
QUESTION_CHARS = 120

_SLACK_ID = re.compile(r"^[A-Z0-9]+$")


@dataclass(frozen=True)
class KnownDocument:
    """One indexed document as the Home tab lists it."""

    title: str
    source: str
    url: str | None
    chunks: int
    date: str | None = None


@dataclass(frozen=True)
class AnswerVotes:
    """The votes on one answer: each user's latest vote counts."""

    question: str
    answer: str
    up: int
    down: int


@dataclass(frozen=True)
class FeedbackTally:
    """👍/👎 over the most recent votes, and the answers voted on most recently (newest first)."""

    votes: int
    up: int
    down: int
    answers: tuple[AnswerVotes, ...]


# --- what the Home tab shows -------------------------------------------------------------------

def known_documents(answerer: Any, scope: ChannelScope = None) -> list[KnownDocument]:
    """The documents of the answerer's index (``index.documents``: `embeddings.index.DocumentInfo`
    records), by title; none when the answerer has no index; with a `scope`, only those of its
    collections (what the viewer can get answers from)."""
    index = answerer.index  # every answerer has one; None only for a stand-in without documents
    documents = index.documents if index is not None else {}
    known = [KnownDocument(info.title or "Untitled", info.source, info.url, int(info.chunks))
             for info in documents.values() if allows(scope, info.collections)]
    return sorted(known, key=lambda d: (d.title.casefold(), d.source))


class VoteLog(Protocol):
    """Where votes are kept: `feedback.FeedbackLog` (a file) or `redis_state.RedisFeedbackLog`."""

    def recent_votes(self, count: int) -> list[dict[str, Any]]: ...


def tally_feedback(log: VoteLog, recent: int = RECENT_VOTES, answers_shown: int = ANSWERS_SHOWN) -> FeedbackTally:
    """The tally of the last `recent` votes in the feedback log. A user who voted twice on one
    answer (changed their mind) counts once, with their latest vote."""
    votes = log.recent_votes(recent)
    latest: OrderedDict[tuple[str, str], dict] = OrderedDict()
    for entry in votes:
        answer_key = str(entry.get("answer_id") or entry.get("message_ts") or "")
        key = (answer_key, str(entry.get("user") or ""))
        latest.pop(key, None)
        latest[key] = entry  # ordered by the time of each user's latest vote
    per_answer: OrderedDict[str, list[dict]] = OrderedDict()
    for (answer_key, _), entry in reversed(latest.items()):
        per_answer.setdefault(answer_key, []).append(entry)
    counted = [e for entries in per_answer.values() for e in entries]
    answers = tuple(
        AnswerVotes(str(entries[0].get("question") or ""), str(entries[0].get("answer") or ""),
                    sum(e.get("vote") == "up" for e in entries), sum(e.get("vote") == "down" for e in entries))
        for entries in list(per_answer.values())[:answers_shown])
    return FeedbackTally(len(counted), sum(e.get("vote") == "up" for e in counted),
                         sum(e.get("vote") == "down" for e in counted), answers)


# --- rendering ---------------------------------------------------------------------------------

def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text[:SECTION_TEXT_LIMIT], "verbatim": True}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:HEADER_TEXT_LIMIT], "emoji": True}}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(t) for t in texts[:CONTEXT_ELEMENT_LIMIT]]}


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def document_line(doc: KnownDocument) -> str:
    """One list line: the title (a link when the document has a URL), its source, size and date."""
    title = escape_truncate(" ".join(doc.title.split()), TITLE_CHARS)
    url = safe_url(doc.url)
    url = url if url and len(url) <= URL_CHARS else None
    shown = f"<{url}|{title}>" if url else f"*{title}*" if "*" not in title else title
    parts = [escape_truncate(" ".join(doc.source.split()), SOURCE_CHARS), _plural(doc.chunks, "passage")]
    if doc.date:
        parts.append(escape_truncate(str(doc.date), 40))
    return f"• {shown} — {' · '.join(parts)}"


def _document_blocks(documents: Sequence[KnownDocument], budget: int) -> list[dict[str, Any]]:
    """Sections listing `documents`, as many lines per section as fit, in at most `budget` blocks
    (the last one saying how many did not fit)."""
    if not documents:
        return [_section("No documents are indexed yet. An admin adds them with `qabot ingest PATH…`.")]
    blocks: list[dict[str, Any]] = []
    lines: list[str] = []
    used = 0
    listed = 0
    for doc in documents[:MAX_LISTED_DOCUMENTS]:
        line = document_line(doc)
        if lines and used + 1 + len(line) > SECTION_TEXT_LIMIT:
            if len(blocks) + 2 > budget:  # this section, and the "more" note after it
                break
            blocks.append(_section("\n".join(lines)))
            lines, used = [], 0
        lines.append(line)
        used += len(line) + 1
        listed += 1
    if lines and len(blocks) + (1 if listed == len(documents) else 2) <= budget:  # (2: the note too)
        blocks.append(_section("\n".join(lines)))
    else:
        listed -= len(lines)
    if listed < len(documents):
        blocks.append(_context(f"…and {_plural(len(documents) - listed, 'more document')}."))
    return blocks


def _how_to_ask(settings: Any, bot_user_id: str | None) -> list[dict[str, Any]]:
    me = f"<@{bot_user_id}>" if bot_user_id and _SLACK_ID.match(bot_user_id) else "@qabot"
    slash = "only you see the answer" if settings.slack.slash_ephemeral else "the answer is posted in the channel"
    lines = [
        f"• *Mention me* in a channel I'm in ({me} _your question_) and I answer in a thread. "
        "Follow-ups in that thread need no mention.",
        "• *Message me directly* in the Messages tab.",
        f"• Type `/ask &lt;question&gt;` in any channel: {slash}.",
    ]
    lines.append("• Open me in the *assistant panel* (the AI apps icon at the top of Slack), if your "
                 "workspace has it.")
    channels = [c for c in settings.slack.qa_channels if _SLACK_ID.match(c)]
    if channels:
        lines.append(f"• In {', '.join(f'<#{c}>' for c in channels)} just post your question — "
                     "no mention needed.")
    lines.append("Every answer quotes the passage it comes from; when the documents don't say, I say so.")
    return [_header("How to ask"), _section("\n".join(lines))]


def _admin_blocks(tally: FeedbackTally) -> list[dict[str, Any]]:
    blocks = [{"type": "divider"}, _header("Feedback on recent answers"),
              _context(f"Only admins see this. Last {_plural(tally.votes, 'vote')}: "
                       f"👍 {tally.up:,} · 👎 {tally.down:,}")]
    if not tally.answers:
        blocks.append(_section("No votes yet."))
        return blocks
    lines = []
    for votes in tally.answers:
        asked = " ".join((votes.question or votes.answer or "(answer text not recorded)").split())
        lines.append(f"👍 {votes.up} · 👎 {votes.down} — “{escape_truncate(asked, QUESTION_CHARS)}”")
    blocks.append(_section("\n".join(lines)))
    return blocks


def _store_block(store: Mapping[str, Any]) -> dict[str, Any]:
    """For admins: the state store (guard.StoreHealth.report) and what was done without it."""
    status = "reachable" if store.get("reachable") else "*unreachable*"
    return _context(f"State store: {escape_truncate(str(store.get('store')), QUESTION_CHARS)}, {status} · "
                    f"answered without it: {store.get('answered_without_store', 0):,} · "
                    f"dropped without it: {store.get('dropped_without_store', 0):,} "
                    f"(on_unavailable = {store.get('on_unavailable')})")


def render_home(documents: Sequence[KnownDocument], settings: Any, *, bot_user_id: str | None = None,
                tally: FeedbackTally | None = None, store: Mapping[str, Any] | None = None,
                gaps: list | None = None, collections: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The Home tab view: what the bot knows, how to ask, where it answers from (`collections`,
    home_collections.py), and `tally` and `gaps` when the viewer is an admin."""
    chunks = sum(d.chunks for d in documents)
    top = [_header("Answers from your documents"),
           _section("I answer questions about the documents below, quoting the passages I used. "
                    "I only answer from them, and I say so when they don't hold the answer."),
           {"type": "divider"},
           _header("What I know"),
           _context(f"{_plural(len(documents), 'document')} · {_plural(chunks, 'passage')} indexed")]
    bottom = [{"type": "divider"}, *_how_to_ask(settings, bot_user_id), *collections]
    if tally is not None:
        bottom += _admin_blocks(tally)
    if gaps is not None:
        bottom += gap_blocks(gaps)
    if store is not None:
        bottom.append(_store_block(store))
    budget = HOME_MAX_BLOCKS - len(top) - len(bottom)
    return {"type": "home", "blocks": top + _document_blocks(documents, budget) + bottom}


# --- the listener --------------------------------------------------------------------------------

def on_app_home_opened(event: Mapping, context: BoltContext, client: WebClient, qabot: BotState) -> None:
    """``app_home_opened``: publish the Home tab for the user who opened it (admins see the tally).
    The same event comes for the Messages tab, which needs nothing."""
    user = event.get("user")
    if event.get("tab", "home") != "home" or not user:
        return
    publish_home(client, qabot, user, context.bot_user_id)


def on_channel_collections(ack: Ack, body: dict, action: dict, client: WebClient, qabot: BotState) -> None:
    """An admin's change of a channel's collections (home_collections.py), then the tab again."""
    ack()
    user = change_collections(body, action, qabot)
    if user:
        publish_home(client, qabot, user, None)


def publish_home(client: WebClient, qabot: BotState, user: str, bot_user_id: str | None) -> None:
    """Publish the Home tab for `user` (admins see the tally and the collection controls)."""
    tally = None
    if qabot.is_admin(user):
        try:
            tally = tally_feedback(qabot.feedback)
        except OSError as exc:
            log.warning("could not read the feedback log %s for the Home tab: %s", qabot.feedback.path, exc)
    index = getattr(qabot.answerer, "index", None)
    names = sorted(collection_sizes(index.documents.values())) if index is not None else []
    collections, scope = home_collections(qabot, client, user, names)
    view = render_home(known_documents(qabot.answerer, scope), qabot.settings, bot_user_id=bot_user_id,
                       tally=tally, store=qabot.health.report() if qabot.is_admin(user) else None,
                       gaps=top_gaps(qabot.recorder, time.time()) if qabot.is_admin(user) else None,
                       collections=collections)
    try:
        client.views_publish(user_id=user, view=view)
    except Exception as exc:
        log.warning("could not publish the Home tab for %s: %s", user, api_error(exc))

