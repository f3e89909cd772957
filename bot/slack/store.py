"""The durable memory that makes "answer each message at most once" hold across restarts and replicas.

Slack re-sends events (HTTP retries, Socket Mode redeliveries), sends a channel @mention twice
(``app_mention`` and ``message``) and, when a message that mentions the app is edited, sends
``app_mention`` again under a new event id. A process-local memory forgets all of that on restart
and is blind to a second replica, so every claim goes through an `AnsweredStore`:

- ``claim(key, ts)``: True exactly once per key, whichever process asks first. Keys are
  ``message_key(channel, ts)`` (the message, whatever event carried it) and ``event_key(id)``.
- ``remember_thread`` / ``is_bot_thread``: threads the bot answered in (follow-ups need no mention
  there), and which of them are assistant-panel threads.
- ``prune``: forget what is older than the TTL or beyond the row limit.

Forgetting must not reopen the door to a second answer, so the store keeps a *horizon*: the newest
Slack timestamp it ever pruned. A claim for anything at or before the horizon is refused (it may
have been answered and forgotten); a late edit of an old message is therefore never answered.

`SqliteAnsweredStore` is the default (``[paths] state_db``, in the data folder): one file shared by
every process on the host, WAL mode, a busy timeout, and claims that are a plain INSERT inside an
IMMEDIATE transaction, so the primary key decides the winner. `redis_state.RedisAnsweredStore`
is the same protocol on Redis, for replicas on several hosts.

A store can only vouch for what happened since it was *born* (`Claim.born`): a deleted SQLite
file or a Redis restarted empty knows nothing of the answers before it, and a claim it grants for
an older event is checked against the Slack thread first (guard.py). A claim that cannot be
recorded at all says so (`Claim.won is None`) instead of posing as a repeat.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

from ..state_store import StoreUnavailable, connect_state_db

log = logging.getLogger(__name__)

# Prune on every this-many writes (and on open): cheap (indexed DELETEs), keeps the file small.
PRUNE_EVERY_WRITES = 200
# Bot threads: a thread the bot answered in stays "its" thread this long after the last answer
# (the same week as the in-process `threads.ConversationMemory`), and at most this many are kept.
THREAD_TTL_S = 7 * 24 * 3600.0
MAX_THREADS = 50_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answered (
    key TEXT PRIMARY KEY,          -- message:<channel>:<ts> or event:<event id>
    ts REAL NOT NULL,              -- the Slack timestamp of the message or event (for the horizon)
    claimed_at REAL NOT NULL       -- wall-clock time of the claim (for the TTL)
);
CREATE INDEX IF NOT EXISTS answered_ts ON answered (ts);
CREATE INDEX IF NOT EXISTS answered_claimed_at ON answered (claimed_at);
CREATE TABLE IF NOT EXISTS bot_threads (
    channel TEXT NOT NULL,
    thread_ts TEXT NOT NULL,
    assistant INTEGER NOT NULL DEFAULT 0,   -- 1 for an assistant-panel thread
    seen_at REAL NOT NULL,
    PRIMARY KEY (channel, thread_ts)
);
CREATE INDEX IF NOT EXISTS bot_threads_seen_at ON bot_threads (seen_at);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value REAL NOT NULL);
"""


@dataclass(frozen=True)
class Claim:
    """What a claim found: `won` True (first claim: answer), False (a repeat, or older than the
    store remembers) or None (the store could not be reached: nothing was recorded); `born`, the
    wall-clock time since which the store has seen every claim (it vouches for nothing older)."""

    won: bool | None
    born: float


def message_key(channel: str, ts: str) -> str:
    """The key of one Slack message: its channel and timestamp (stable across edits and events)."""
    return f"message:{channel}:{ts}"


def event_key(event_id: str) -> str:
    """The key of one delivery of an Events API event (retries reuse the event id)."""
    return f"event:{event_id}"


def slack_ts(value: object, default: float) -> float:
    """A Slack timestamp ("1700000000.000100", or event_time seconds) as a number."""
    try:
        return float(value)  # type: ignore[arg-type]  # any object: what float() refuses is caught below
    except (TypeError, ValueError):
        return default


@runtime_checkable
class AnsweredStore(Protocol):
    """What the Slack app needs to answer each message at most once and to recognise its threads."""

    def claim(self, key: str, ts: float) -> bool:
        """True the first time `key` is claimed by any process; False for repeats, and for keys whose
        Slack timestamp `ts` is older than what the store still remembers."""
        ...

    def claimed(self, key: str) -> bool:
        """Whether `key` was claimed (a cheap pre-check; `claim` alone decides)."""
        ...

    def try_claim(self, key: str, ts: float) -> Claim:
        """`claim`, telling a repeat from a store that cannot be reached, and since when the store
        remembers (see `Claim`)."""
        ...

    def describe(self) -> str:
        """Which store this is and where (no password), for the health endpoint and the log."""
        ...

    def ping(self) -> bool:
        """Whether the store can be reached now."""
        ...

    def remember_thread(self, channel: str, thread_ts: str, *, assistant: bool = False) -> None:
        """Record that the bot answers in this thread (an assistant-panel thread if `assistant`)."""
        ...

    def is_bot_thread(self, channel: str, thread_ts: str) -> bool:
        ...

    def is_assistant_thread(self, channel: str, thread_ts: str) -> bool:
        ...

    def prune(self) -> None:
        """Forget entries past the TTL or the row limit (moving the horizon forward)."""
        ...

    def close(self) -> None:
        ...


class SqliteAnsweredStore:
    """`AnsweredStore` in one SQLite file, safe for several threads and several processes.

    `ttl_s` and `max_rows` bound the answered keys (``[slack] dedupe_ttl_s`` and
    ``dedupe_max_entries``); threads are kept `THREAD_TTL_S`, at most `MAX_THREADS`.
    """

    def __init__(self, path: Path, *, ttl_s: float, max_rows: int, thread_ttl_s: float = THREAD_TTL_S,
                 max_threads: int = MAX_THREADS, clock: Callable[[], float] = time.time) -> None:
        if ttl_s <= 0 or max_rows < 1:
            raise ValueError("ttl_s must be positive and max_rows at least 1")
        self.path = Path(path)
        self.ttl_s = float(ttl_s)
        self.max_rows = int(max_rows)
        self.thread_ttl_s = float(thread_ttl_s)
        self.max_threads = int(max_threads)
        self._clock = clock
        self._lock = threading.Lock()
        self._writes = 0
        try:
            self._db = connect_state_db(self.path)
            self._db.executescript(_SCHEMA)
            # A new (or deleted and re-created) file is born now: it vouches for nothing older.
            self._db.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('born', ?)", (self._clock(),))
            self.born = float(self._db.execute("SELECT value FROM meta WHERE name = 'born'").fetchone()[0])
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open the state database {self.path} ({exc})") from None
        self.prune()

    def describe(self) -> str:
        return f"sqlite {self.path}"

    def ping(self) -> bool:
        with self._lock:
            try:
                self._db.execute("SELECT 1 FROM meta LIMIT 1").fetchall()
                return True
            except sqlite3.Error:
                return False

    # -- answered messages and events

    def claim(self, key: str, ts: float) -> bool:
        return self.try_claim(key, ts).won is True

    def try_claim(self, key: str, ts: float) -> Claim:
        now = self._clock()
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    if ts <= self._horizon():
                        log.info("not answering %s: older than what the state database remembers", key)
                        self._db.execute("ROLLBACK")
                        return Claim(False, self.born)
                    self._db.execute("INSERT INTO answered (key, ts, claimed_at) VALUES (?, ?, ?)", (key, ts, now))
                    self._db.execute("COMMIT")
                except sqlite3.IntegrityError:  # the primary key: someone claimed it first
                    self._db.execute("ROLLBACK")
                    return Claim(False, self.born)
                except BaseException:
                    self._rollback()
                    raise
            except sqlite3.Error as exc:
                # Nothing recorded: the caller decides ([state] on_unavailable, guard.py).
                log.error("could not record %s in the state database %s (%s)", key, self.path, exc)
                return Claim(None, self.born)
            self._writes += 1
            due = self._writes % PRUNE_EVERY_WRITES == 0
        if due:
            self.prune()
        return Claim(True, self.born)

    def claimed(self, key: str) -> bool:
        with self._lock:
            try:
                return self._db.execute("SELECT 1 FROM answered WHERE key = ?", (key,)).fetchone() is not None
            except sqlite3.Error as exc:
                log.warning("could not read the state database %s (%s)", self.path, exc)
                return False

    # -- bot threads

    def remember_thread(self, channel: str, thread_ts: str, *, assistant: bool = False) -> None:
        now = self._clock()
        with self._lock:
            try:
                # An assistant thread stays one when a later answer records it again.
                self._db.execute(
                    "INSERT INTO bot_threads (channel, thread_ts, assistant, seen_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (channel, thread_ts) DO UPDATE SET seen_at = excluded.seen_at, "
                    "assistant = MAX(assistant, excluded.assistant)",
                    (channel, thread_ts, int(assistant), now))
            except sqlite3.Error as exc:
                log.warning("could not record thread %s/%s in the state database (%s)", channel, thread_ts, exc)

    def is_bot_thread(self, channel: str, thread_ts: str) -> bool:
        return self._thread_flag(channel, thread_ts, "1")

    def is_assistant_thread(self, channel: str, thread_ts: str) -> bool:
        return self._thread_flag(channel, thread_ts, "assistant")

    def _thread_flag(self, channel: str, thread_ts: str, column: str) -> bool:
        cutoff = self._clock() - self.thread_ttl_s
        with self._lock:
            try:
                row = self._db.execute(f"SELECT {column} FROM bot_threads WHERE channel = ? AND thread_ts = ? "
                                       "AND seen_at > ?", (channel, thread_ts, cutoff)).fetchone()
            except sqlite3.Error as exc:
                log.warning("could not read the state database %s (%s)", self.path, exc)
                return False
        return bool(row and row[0])

    # -- bounds

    def prune(self) -> None:
        now = self._clock()
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._forget_answered(now)
                    self._db.execute("DELETE FROM bot_threads WHERE seen_at <= ?", (now - self.thread_ttl_s,))
                    self._db.execute("DELETE FROM bot_threads WHERE rowid IN (SELECT rowid FROM bot_threads "
                                     "ORDER BY seen_at DESC LIMIT -1 OFFSET ?)", (self.max_threads,))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            except sqlite3.Error as exc:
                log.warning("could not prune the state database %s (%s)", self.path, exc)

    def _forget_answered(self, now: float) -> None:
        """Drop answered keys past the TTL, then the oldest beyond `max_rows`, and move the horizon
        to the newest Slack timestamp dropped (inside the caller's transaction)."""
        cutoff = now - self.ttl_s
        forgotten = [self._db.execute("SELECT MAX(ts) FROM answered WHERE claimed_at <= ?", (cutoff,)).fetchone()[0]]
        self._db.execute("DELETE FROM answered WHERE claimed_at <= ?", (cutoff,))
        excess = self._db.execute("SELECT COUNT(*) FROM answered").fetchone()[0] - self.max_rows
        if excess > 0:
            oldest = "SELECT key, ts FROM answered ORDER BY ts LIMIT ?"
            forgotten.append(self._db.execute(f"SELECT MAX(ts) FROM ({oldest})", (excess,)).fetchone()[0])
            self._db.execute(f"DELETE FROM answered WHERE key IN (SELECT key FROM ({oldest}))", (excess,))
            log.warning("the state database holds more than %d answered messages: forgetting the oldest early; "
                        "raise dedupe_max_entries if this happens often", self.max_rows)
        newest = max((t for t in forgotten if t is not None), default=None)
        if newest is not None and newest > self._horizon():
            self._db.execute("INSERT INTO meta (name, value) VALUES ('horizon', ?) "
                             "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (newest,))

    def counts(self) -> dict[str, int]:
        """Rows per table (for tests and diagnostics)."""
        with self._lock:
            return {table: self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                    for table in ("answered", "bot_threads")}

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error:
                pass

    def _horizon(self) -> float:
        row = self._db.execute("SELECT value FROM meta WHERE name = 'horizon'").fetchone()
        return float(row[0]) if row else float("-inf")

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass
