"""The Sources modal: a click on an answer's Sources button opens (``views.open``) a modal listing
every passage the answer found, title link, page and passage text, looked up in the index by the
chunk ids the button carries. A modal, not an edit of the message: the answer stays short for
everyone in the channel, and it works the same under a streamed, an ephemeral or a ``/ask`` reply.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from slack_bolt import Ack
from slack_sdk import WebClient

from embeddings.chunk_record import ChunkRecord
from embeddings.index import Index
from embeddings.index_files import DocumentInfo

from ..answering.answer import Citation
from .blocks import PASSAGE_CHARS, _context, passage_block, source_label
from .channel_collections import ChannelScope, allows
from .client import api_error
from .sources import parse_sources_value
from .state import BotState

log = logging.getLogger(__name__)

MODAL_TITLE = "Sources"  # Slack caps a modal's title at 24 characters
MODAL_BLOCKS = 100  # Slack's cap on a modal's blocks
GONE = "This passage is no longer in the index (its document was removed or changed)."


def find_passages(index: Index, chunk_ids: Sequence[str],
                  scope: ChannelScope = None) -> list[tuple[str, ChunkRecord, DocumentInfo] | None]:
    """Each chunk id's chunk and document, or None where the index no longer holds it or it is not
    in the collections of `scope` (the channel clicked in: a button's ids are never trusted)."""
    by_short = {info.short_id: info for info in index.documents.values() if allows(scope, info.collections)}
    chunks: dict[str, dict[str, ChunkRecord]] = {}
    found: list[tuple[str, ChunkRecord, DocumentInfo] | None] = []
    for chunk_id in chunk_ids:
        info = by_short.get(chunk_id.partition("#")[0])
        if info is None:
            found.append(None)
            continue
        if info.doc_id not in chunks:
            chunks[info.doc_id] = {c.chunk_id: c for c in index.chunks_of(info.doc_id)}
        chunk = chunks[info.doc_id].get(chunk_id)
        found.append((chunk_id, chunk, info) if chunk is not None else None)
    return found


def sources_view(passages: Sequence[tuple[str, ChunkRecord, DocumentInfo] | None]) -> dict[str, Any]:
    """The modal: for each passage, its title (a link when it has a URL) and page, then the text."""
    blocks: list[dict[str, Any]] = []
    for number, passage in enumerate(passages, start=1):
        if blocks:
            blocks.append({"type": "divider"})
        if passage is None:
            blocks.append(_context(f"{number}. {GONE}"))
            continue
        chunk_id, chunk, info = passage
        page = info.page_at(chunk.start)
        citation = Citation(info.title, info.source, info.url, chunk_id, chunk.text, 0.0, page=page)
        blocks.append(_context(f"{number}. 📄 {source_label(citation)}" + (f", p. {page}" if page else "")))
        blocks.append(passage_block(citation, "", PASSAGE_CHARS))
    if not blocks:
        blocks.append(_context("No passages to show."))
    return {"type": "modal", "callback_id": "qabot_sources_view",
            "title": {"type": "plain_text", "text": MODAL_TITLE},
            "close": {"type": "plain_text", "text": "Close"},
            "blocks": blocks[:MODAL_BLOCKS]}


def on_sources(ack: Ack, body: dict, action: dict, client: WebClient, qabot: BotState) -> None:
    """A Sources click: acknowledge, then open the modal while the click's trigger_id is valid."""
    ack()
    chunk_ids = parse_sources_value(action.get("value"))
    index = getattr(qabot.answerer, "index", None)
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    scope = qabot.collections_for(channel)
    passages = find_passages(index, chunk_ids, scope) if isinstance(index, Index) else [None] * len(chunk_ids)
    try:
        client.views_open(trigger_id=body.get("trigger_id"), view=sources_view(passages))
    except Exception as exc:
        log.warning("could not open the Sources modal for %s: %s",
                    (body.get("user") or {}).get("id"), api_error(exc))
