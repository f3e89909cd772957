"""The state store every part of the bot shares, opened one way: the ``[paths] state_db`` SQLite
file or the ``[state] redis_url`` Redis, and the one error when it cannot be opened.

Slack's memories (bot/slack/store.py, redis_state.py, handover.py), the channel overrides
(bot/slack/channel_collections.py) and the gaps report (bot/report/store.py, redis_store.py)
keep their own tables and keys in the same store; they differ in what they keep, not in how the
store is reached. Kept below both the Slack transport and the report, so `qabot report` (which
never talks to Slack) opens its store without the Slack package, and a Redis key prefix or a
SQLite setting has one place. redis-py is imported only by `connect`.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from urllib.parse import urlsplit

from embeddings.errors import QabotError

# How long a writer waits for another process's transaction before giving up (ms). Claims are a
# single-row INSERT (well under a millisecond); 5 s only matters when the disk stalls.
BUSY_TIMEOUT_MS = 5000
# Every Redis key of the app starts with this; one hash tag (``{qabot}``), so multi-key scripts
# also run on a Redis Cluster.
PREFIX = "qabot:{qabot}:"
# Seconds a command may wait for Redis; a claim fails closed (unanswered) past it.
SOCKET_TIMEOUT_S = 5.0


class StoreUnavailable(QabotError):
    """The state database cannot be opened (a one-line reason, printed by the CLI)."""


def connect_state_db(path: Path) -> sqlite3.Connection:
    """A connection to the ``state_db`` SQLite file, set up the one way every table in it is used
    (the Slack memories', the report's, the channel overrides'): autocommit (transactions are explicit,
    BEGIN IMMEDIATE ... COMMIT), a busy timeout for other processes' writers, WAL so readers never
    block the writer, synchronous NORMAL (durable across a process crash in WAL mode). Raises
    `OSError` or `sqlite3.Error`; each caller says what could not be opened, in its own terms."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    _use_wal(db)
    db.execute("PRAGMA synchronous = NORMAL")
    return db


def _use_wal(db: sqlite3.Connection) -> None:
    """Put the file in WAL mode. The conversion takes the file exclusively and SQLite does not run
    the busy handler for it, so two processes opening a new file at once (two replicas starting)
    could fail with "database is locked" at once; WAL is a property of the file, so an open after
    the first finds it set and takes no lock, and the conversion is retried within the busy
    timeout."""
    if db.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
        return
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            contended = "locked" in str(exc) or "busy" in str(exc)
            if not contended or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def redact_url(url: str) -> str:
    """The URL without its user and password, for logs and errors."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"
    except ValueError:
        return "(an invalid URL)"


def connect(url: str):
    """A redis-py client for `url`, checked with a PING; `StoreUnavailable` (one line, no
    password) when Redis cannot be reached."""
    try:
        import redis
    except ImportError:
        raise StoreUnavailable("state_backend is \"redis\" but the redis package is not installed; "
                               "install qabot[scale]") from None
    try:
        client = redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=SOCKET_TIMEOUT_S,
                                      decode_responses=True, health_check_interval=30)
        client.ping()
    except (redis.RedisError, ValueError) as exc:
        raise StoreUnavailable(f"cannot reach the state Redis at {redact_url(url)} "
                               f"({type(exc).__name__})") from None
    return client
