"""Adding documents from Slack, for the users in `[slack] admin_users` only: `/ask add <url>`, and
a file (PDF, DOCX, TXT, MD, HTML) shared with the bot in a DM.

The URL goes through the same `ingest()` as `qabot ingest URL` (size, time and redirect limits,
content type checked, one writer at a time, all or nothing) into the index the bot answers from;
the running bot takes the new version into use by itself (bot/answering/live.py). The reply says
what was added (title, chunks) or, in one line, why not. Everyone else gets a polite refusal and
nothing is fetched.

What the bot may reach from here: a `/ask add` URL only at public addresses, checked on every
connection, redirects included, unless ``[ingest] allow_private_urls`` (embeddings/sources/web.py);
a shared file only from Slack's file hosts over https (`slack_file_url`), since the request
carries the bot token.
"""

from __future__ import annotations

import logging
import re
from typing import Callable
from urllib.parse import urljoin, urlsplit

from .blocks import Message

log = logging.getLogger(__name__)

# `/ask add https://...`; Slack may send the link escaped as <https://...> or <https://...|label>.
ADD_COMMAND = re.compile(r"^\s*add\s+<?(https?://[^\s|>]+)(?:\|[^>]*)?>?\s*$", re.IGNORECASE)
NOT_ADMIN_FILE = "Thanks for the file. Only the bot's admins can add documents, so I have not indexed it."
# Where Slack serves files (`url_private`, `url_private_download`): the bot token goes nowhere else.
SLACK_FILE_HOSTS = ("files.slack.com", "files.slack-gov.com")
# Redirects followed on a file download, each checked as the first URL.
MAX_FILE_REDIRECTS = 3
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
    from embeddings.sources.web import FetchLimits

    options = IngestOptions.from_settings(settings)
    limits = FetchLimits(max_bytes=options.max_bytes, allow_private=settings.ingest.allow_private_urls)
    try:
        result = ingest([url], settings.paths.index, options, fetch_limits=limits)
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


def add_files(settings, user_id: str | None, files: list[dict], bot_token: str,
              post: Callable[[Message], None], *, api_url: str | None = None) -> None:
    """Ingest the files of a DM for an admin, one reply line per file; refuse anyone else.

    A file is downloaded from its `url_private_download` with the bot token (scope `files:read`),
    within the same size limit as any document, only if its type is one qabot reads, and only
    from Slack's file hosts or `api_url`'s host (the configured Web API, a stand-in in tests)."""
    if not user_id or user_id not in settings.slack.admin_users:
        log.info("file share refused for %s: not in admin_users", user_id)
        post(Message(NOT_ADMIN_FILE))
        return
    from pathlib import PurePosixPath

    from embeddings.documents import SUFFIXES, SUPPORTED, parse_bytes
    from embeddings.errors import QabotError
    from embeddings.ingest import IngestOptions, ingest_documents

    options = IngestOptions.from_settings(settings)
    lines = []
    for item in files:
        name = item.get("name") or item.get("title") or item.get("id") or "file"
        kind = SUFFIXES.get(PurePosixPath(name).suffix.lower())
        url = item.get("url_private_download") or item.get("url_private")
        if kind is None:
            lines.append(f"Not added: {name}: unsupported file type (use {SUPPORTED})")
            continue
        if int(item.get("size") or 0) > options.max_bytes or not url:
            lines.append(f"Not added: {name}: too large or not downloadable")
            continue
        try:
            data = _download(url, bot_token, options.max_bytes, api_url)
            document = parse_bytes(data, kind, f"slack:{name}", f"slack-file:{item.get('id') or name}")
            result = ingest_documents([document], settings.paths.index, options)
        except QabotError as exc:
            lines.append(f"Not added: {name}: {exc}")
            continue
        chunks = result.report.chunks_added
        verb = "Updated" if result.report.updated else "Added" if result.report.added else "Unchanged:"
        lines.append(f"{verb} “{document.title}” ({chunks} chunks) from {name}.")
        log.info("file share by %s: %s %s", user_id, verb.lower(), name)
    post(Message("\n".join(lines) or "No files to add."))


_HTTP = None


def _http():
    """One connection pool for downloads (urllib3's pools are thread-safe)."""
    global _HTTP
    if _HTTP is None:
        import urllib3

        _HTTP = urllib3.PoolManager()
    return _HTTP


def slack_file_url(url: str, api_url: str | None = None) -> bool:
    """Whether the bot token may be sent to `url`: https on one of `SLACK_FILE_HOSTS`, or the
    scheme, host and port of the configured Web API `api_url`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme == "https" and (parts.hostname or "").lower() in SLACK_FILE_HOSTS and port in (None, 443):
        return True
    if not api_url:
        return False
    api = urlsplit(api_url)
    return (parts.scheme, parts.hostname, port) == (api.scheme, api.hostname, api.port)


def _download(url: str, bot_token: str, max_bytes: int, api_url: str | None = None) -> bytes:
    """The file's bytes with the bot token; refused past `max_bytes` without reading it all, and
    refused (nothing sent) at any URL or redirect `slack_file_url` does not allow."""
    from embeddings.errors import DocumentError

    for _ in range(MAX_FILE_REDIRECTS + 1):
        if not slack_file_url(url, api_url):
            log.warning("refused to download a shared file from %s: not a Slack file host", urlsplit(url).hostname)
            raise DocumentError("refused: the file is not on Slack's file servers (https://files.slack.com)")
        response = _http().request("GET", url, headers={"Authorization": f"Bearer {bot_token}"},
                                  preload_content=False, redirect=False, timeout=30.0)
        if response.status in (301, 302, 303, 307, 308) and response.headers.get("Location"):
            response.release_conn()
            url = urljoin(url, response.headers["Location"])
            continue
        break
    else:
        raise DocumentError(f"download failed (more than {MAX_FILE_REDIRECTS} redirects)")
    try:
        if response.status != 200:
            raise DocumentError(f"download failed (HTTP {response.status})")
        data = response.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise DocumentError(f"too large (over {max_bytes / 2**20:.0f} MiB)")
        return data
    finally:
        response.release_conn()
