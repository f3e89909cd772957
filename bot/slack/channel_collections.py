"""Which document collections each Slack channel answers from, and the admins' changes to it.

The settings map channels to collections (``[slack] channel_collections``, ``default_collections``
for channels not listed, ``dm_collections`` for DMs and the assistant panel; "*" is every
collection). An admin changes a channel's collections from the Home tab; that override lives in
the state store — the ``state_db`` SQLite file, or Redis with ``state_backend = "redis"`` — so
every replica reads the same mapping, on every question (one indexed read).

This is a security boundary: a channel must never get an answer, a passage, a source or a
suggestion from a collection it is not mapped to. So when the overrides cannot be read, a channel
answers from no collection at all (the bot says it cannot answer there now) rather than from the
settings alone, which an admin may have narrowed.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable, Protocol

from embeddings.collections import check_names
from embeddings.errors import QabotError

from ..settings import EVERY_COLLECTION, Settings
from ..state_store import connect_state_db

log = logging.getLogger(__name__)

# `None` for a channel means every collection (nothing is filtered).
ChannelScope = tuple[str, ...] | None
REDIS_KEY = "qabot:{qabot}:channel_collections"  # one hash: channel id -> JSON list of names

_SCHEMA = """
CREATE TABLE IF NOT EXISTS channel_collections (
    channel TEXT PRIMARY KEY,      -- a Slack channel id
    names TEXT NOT NULL,           -- JSON list of collection names ("*": every collection)
    changed_at REAL NOT NULL
);
"""


class OverridesUnavailable(QabotError):
    """The state store holding the admins' overrides could not be read or written."""


class Overrides(Protocol):
    """Admins' per-channel collections, in the state store shared by every replica."""

    def get(self, channel: str) -> tuple[str, ...] | None:
        """The override of `channel` (None: none set); `OverridesUnavailable` if unreadable."""

    def all(self) -> dict[str, tuple[str, ...]]:
        """Every override."""

    def set(self, channel: str, names: tuple[str, ...] | None) -> None:
        """Set `channel`'s override (None removes it)."""


class SqliteOverrides:
    """The overrides in a table of the ``state_db`` SQLite file (every process of the host)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connect().executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect_state_db(self.path)
            self._local.conn = conn
        return conn

    def get(self, channel: str) -> tuple[str, ...] | None:
        try:
            row = self._connect().execute("SELECT names FROM channel_collections WHERE channel = ?",
                                          (channel,)).fetchone()
        except sqlite3.Error as exc:
            raise OverridesUnavailable(type(exc).__name__) from None
        return tuple(json.loads(row[0])) if row else None

    def all(self) -> dict[str, tuple[str, ...]]:
        try:
            rows = self._connect().execute("SELECT channel, names FROM channel_collections").fetchall()
        except sqlite3.Error as exc:
            raise OverridesUnavailable(type(exc).__name__) from None
        return {channel: tuple(json.loads(names)) for channel, names in rows}

    def set(self, channel: str, names: tuple[str, ...] | None) -> None:
        try:
            if names is None:
                self._connect().execute("DELETE FROM channel_collections WHERE channel = ?", (channel,))
            else:
                self._connect().execute(
                    "INSERT INTO channel_collections (channel, names, changed_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (channel) DO UPDATE SET names = excluded.names, changed_at = excluded.changed_at",
                    (channel, json.dumps(list(names)), time.time()))
        except sqlite3.Error as exc:
            raise OverridesUnavailable(type(exc).__name__) from None


class RedisOverrides:
    """The overrides in one Redis hash, for replicas on several hosts."""

    def __init__(self, client) -> None:
        self.redis = client

    def _call(self, call):
        import redis

        try:
            return call()
        except redis.RedisError as exc:
            raise OverridesUnavailable(type(exc).__name__) from None

    def get(self, channel: str) -> tuple[str, ...] | None:
        raw = self._call(lambda: self.redis.hget(REDIS_KEY, channel))
        return tuple(json.loads(raw)) if raw is not None else None

    def all(self) -> dict[str, tuple[str, ...]]:
        raw = self._call(lambda: self.redis.hgetall(REDIS_KEY))
        return {channel: tuple(json.loads(names)) for channel, names in raw.items()}

    def set(self, channel: str, names: tuple[str, ...] | None) -> None:
        if names is None:
            self._call(lambda: self.redis.hdel(REDIS_KEY, channel))
        else:
            self._call(lambda: self.redis.hset(REDIS_KEY, channel, json.dumps(list(names))))


def is_dm(channel: str) -> bool:
    return channel.startswith("D")


def as_scope(names: Iterable[str]) -> ChannelScope:
    """Configured names as what the answerer takes: None for every collection ("*")."""
    names = tuple(names)
    return None if EVERY_COLLECTION in names else check_names(names)


class ChannelCollections:
    """The collections a channel answers from: an admin's override, else the settings."""

    def __init__(self, settings: Settings, overrides: Overrides) -> None:
        self.settings = settings.slack
        self.overrides = overrides

    @classmethod
    def from_settings(cls, settings: Settings) -> "ChannelCollections":
        if settings.state.state_backend == "redis":
            from ..state_store import connect

            return cls(settings, RedisOverrides(connect(settings.state.redis_url)))
        return cls(settings, SqliteOverrides(settings.paths.state_db))

    def configured(self, channel: str) -> tuple[str, ...]:
        """What the settings say for `channel` (names, "*" for every collection): its own entry in
        channel_collections (a DM's id may have one too), else dm_collections or default_collections."""
        listed = self.settings.channel_collections.get(channel)
        if listed is not None:
            return listed
        return self.settings.dm_collections if is_dm(channel) else self.settings.default_collections

    def names_for(self, channel: str) -> tuple[str, ...]:
        """The names (with "*") `channel` answers from: its override, else `configured`; none
        when the overrides cannot be read (fail closed, see the module docstring)."""
        try:
            override = self.overrides.get(channel)
        except OverridesUnavailable as exc:
            log.warning("could not read the channel collections from the state store (%s): "
                        "answering %s from no collection", exc, channel)
            return ()
        return override if override is not None else self.configured(channel)

    def for_channel(self, channel: str | None) -> ChannelScope:
        """The collections `channel` answers from, as the answerer takes them (None: every one)."""
        return as_scope(self.names_for(channel or ""))

    def set_override(self, channel: str, names: Iterable[str] | None) -> None:
        """An admin's change (None: back to the settings); names are checked, "*" is kept."""
        if names is None:
            self.overrides.set(channel, None)
            return
        names = tuple(names)
        kept = (EVERY_COLLECTION,) if EVERY_COLLECTION in names else check_names(names)
        self.overrides.set(channel, kept)


def allows(scope: ChannelScope, owned: Iterable[str]) -> bool:
    """Whether a document of the collections `owned` may be shown where `scope` applies."""
    return scope is None or bool(set(scope) & set(owned))
