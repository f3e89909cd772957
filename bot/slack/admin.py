"""Adding documents from Slack: `/ask add <url>`, for the users in `[slack] admin_users` only.

The URL goes through the same `ingest()` as `qabot ingest URL` (size, time and redirect limits,
content type checked, one writer at a time, all or nothing) into the index the bot answers from;
the running bot takes the new version into use by itself (bot/answering/live.py). The reply says
what was added (title, chunks) or, in one line, why not. Everyone else gets a polite refusal and
nothing is fetched.
"""

from __future__ import annotations

import logging
import re
from typing import Callable

from .blocks import Message

log = logging.getLogger(__name__)

# `/ask add https://...`; Slack may send the link escaped as <https://...> or <https://...|label>.
ADD_COMMAND = re.compile(r"^\s*add\s+<?(https?://[^\s|>]+)(?:\|[^>]*)?>?\s*$", re.IGNORECASE)
NOT_ADMIN = ("Sorry, only the bot's admins can add documents. Ask one of them, or an operator "
             "with `qabot ingest URL`.")


def add_command_url(text: str) -> str | None:
    """The URL of an `add <url>` command, or None when the text is a question."""
    match = ADD_COMMAND.match(text or "")
    return match.group(1) if match else None


def add_url(settings, user_id: str | None, url: str, post: Callable[[Message], None]) -> None:
    """Ingest `url` for an admin and post what happened; refuse anyone else."""
    if not user_id or user_id not in settings.slack.admin_users:
        log.info("/ask add refused for %s: not in admin_users", user_id)
        post(Message(NOT_ADMIN))
        return
    from embeddings.errors import QabotError
    from embeddings.ingest import IngestOptions, ingest

    try:
        result = ingest([url], settings.paths.index, IngestOptions.from_settings(settings))
    except QabotError as exc:
        log.info("/ask add %s by %s refused: %s", url, user_id, exc)
        post(Message(f"Not added: {exc}"))
        return
    report = result.report
    if not report.changed:
        post(Message(f"Already indexed and unchanged: {url}"))
        return
    from embeddings.index import Index

    info = Index.stored_documents(settings.paths.index).get(url)
    title = info.title if info is not None else url
    chunks = info.chunks if info is not None else report.chunks_added
    verb = "Updated" if report.updated else "Added"
    log.info("/ask add by %s: %s %s (%d chunks)", user_id, verb.lower(), url, chunks)
    post(Message(f"{verb} “{title}” ({chunks} chunks) from {url}. It is answered from within a few seconds."))
