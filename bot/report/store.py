"""Where question records live: the state store the Slack app already uses.

`ReportStore` is what the recorder writes and `qabot report` reads. `SqliteReportStore` keeps its
own table in the ``[paths] state_db`` file (beside the answered-message tables, which it never
touches); `redis_store.RedisReportStore` keeps its own keys in the ``[state] redis_url`` Redis.
Both carry a schema version in their names (``report_questions_v1``, ``…:report:v1:…``): a
changed layout gets new names, and an old reader never misreads new rows.

Votes are kept apart from the records they count on, by record id, so a 👍 clicked before its
record is written (the record is written after the reply is posted) still counts. Retention is
enforced on write: adding a record first deletes every record, and every vote, older than the
cut-off the recorder passes (``[report] retention_days`` before its clock's now).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from embeddings.errors import QabotError

from ..state_store import connect_state_db
from .record import VECTOR_DTYPE, QuestionRecord

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
TABLE = f"report_questions_v{SCHEMA_VERSION}"
VOTES = f"report_votes_v{SCHEMA_VERSION}"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id TEXT PRIMARY KEY,            -- the answer's feedback id in Slack, a random id in chat
    asked_at REAL NOT NULL,         -- seconds since the epoch, UTC
    via TEXT NOT NULL,              -- slack or chat
    outcome TEXT NOT NULL,          -- answered, declined or llm_fallback
    collections TEXT NOT NULL,      -- JSON list; [] = every collection
    documents TEXT NOT NULL,        -- JSON list of cited documents' short ids
    question TEXT,                  -- NULL unless [report] keep_questions
    vector BLOB                     -- float16 question vector; NULL unless keep_questions
);
CREATE INDEX IF NOT EXISTS {TABLE}_asked_at ON {TABLE} (asked_at);
CREATE TABLE IF NOT EXISTS {VOTES} (
    id TEXT PRIMARY KEY,            -- the record voted on (which may be written after the vote)
    up INTEGER NOT NULL DEFAULT 0,
    down INTEGER NOT NULL DEFAULT 0,
    voted_at REAL NOT NULL          -- the latest vote, for retention
);
CREATE INDEX IF NOT EXISTS {VOTES}_voted_at ON {VOTES} (voted_at);
"""
_COLUMNS = "id, asked_at, via, outcome, collections, documents, question, vector"


class ReportStoreError(QabotError):
    """The report's store cannot be opened or read (one line, no password)."""


class ReportStore(Protocol):
    """Question records, newest first on read."""

    def add(self, record: QuestionRecord, *, delete_before: float) -> None:
        """Store `record`, first deleting every record asked before `delete_before`."""
        ...

    def vote(self, record_id: str, vote: str, now: float) -> None:
        """Count one "up" or "down" on a record, written already or not yet."""
        ...

    def read(self, since: float) -> list[QuestionRecord]:
        """Every record asked at or after `since`, newest first."""
        ...

    def forget_text(self) -> int:
        """Remove every question text and vector (``keep_questions = false``); how many rows had one."""
        ...

    def describe(self) -> str:
        ...

    def close(self) -> None:
        ...


def _row(record: QuestionRecord) -> tuple:
    vector = None if record.vector is None else np.asarray(record.vector, dtype=VECTOR_DTYPE).tobytes()
    return (record.id, record.asked_at, record.via, record.outcome, json.dumps(list(record.collections)),
            json.dumps(list(record.documents)), record.question, vector)


def _record(row: Sequence) -> QuestionRecord:
    vector = None if row[7] is None else np.frombuffer(row[7], dtype=VECTOR_DTYPE).astype(np.float32)
    return QuestionRecord(row[0], float(row[1]), row[2], row[3], tuple(json.loads(row[4])),
                          tuple(json.loads(row[5])), row[6], vector, int(row[8]), int(row[9]))


class SqliteReportStore:
    """`ReportStore` as one table of the ``state_db`` SQLite file (thread-safe; WAL, as store.py)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = connect_state_db(self.path)
            # A deleted record's bytes are overwritten, not left in free pages (retention, and
            # keep_questions = false removing texts kept before).
            self._db.execute("PRAGMA secure_delete = ON")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ReportStoreError(f"cannot open the state database {self.path} ({exc})") from None

    def describe(self) -> str:
        return f"sqlite {self.path}"

    def add(self, record: QuestionRecord, *, delete_before: float) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(f"DELETE FROM {TABLE} WHERE asked_at < ?", (delete_before,))
                self._db.execute(f"DELETE FROM {VOTES} WHERE voted_at < ?", (delete_before,))
                self._db.execute(f"INSERT OR REPLACE INTO {TABLE} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                 _row(record))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def vote(self, record_id: str, vote: str, now: float) -> None:
        up = int(vote == "up")
        with self._lock:
            self._db.execute(f"INSERT INTO {VOTES} (id, up, down, voted_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) "
                             "DO UPDATE SET up = up + excluded.up, down = down + excluded.down, "
                             "voted_at = excluded.voted_at", (record_id, up, 1 - up, now))

    def read(self, since: float) -> list[QuestionRecord]:
        try:
            with self._lock:
                columns = ", ".join(f"q.{c}" for c in _COLUMNS.split(", "))
                rows = self._db.execute(f"SELECT {columns}, COALESCE(v.up, 0), COALESCE(v.down, 0) FROM {TABLE} q "
                                        f"LEFT JOIN {VOTES} v ON v.id = q.id WHERE q.asked_at >= ? "
                                        "ORDER BY q.asked_at DESC", (since,)).fetchall()
        except sqlite3.Error as exc:
            raise ReportStoreError(f"cannot read the state database {self.path} ({exc})") from None
        return [_record(row) for row in rows]

    def forget_text(self) -> int:
        with self._lock:
            cursor = self._db.execute(f"UPDATE {TABLE} SET question = NULL, vector = NULL "
                                      "WHERE question IS NOT NULL OR vector IS NOT NULL")
            return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
