"""👍/👎 feedback: the answers the bot gave (in memory) and the votes on them (a JSON-lines log).

Each vote is one JSON object per line: time (UTC, ISO 8601), vote ("up"/"down"), user, channel,
message_ts, question, answer, abstained, citations (document, chunk_id, url, source, score, quote)
and answer_id. Nothing else from the Slack payload is written, so no token can reach the log.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from embeddings.jsonl import read_json_lines

from ..answering.answer import Answer

log = logging.getLogger(__name__)

MAX_REMEMBERED_ANSWERS = 10_000
# Only the end of the log is read for the recent votes (a vote line is well under 2 KB, so this
# holds far more than the Home tab's 500): opening it must not read a log that grew for years.
TAIL_BYTES = 1 << 20


def answer_record(answer: Answer) -> dict[str, Any]:
    """The parts of an answer worth keeping next to a vote."""
    return {
        "question": answer.question,
        "answer": answer.text,
        "abstained": answer.abstained,
        "citations": [
            {"document": c.document, "chunk_id": c.chunk_id, "url": c.url, "source": c.source,
             "score": round(float(c.score), 4), "quote": c.quote}
            for c in answer.citations
        ],
    }


class FeedbackLog:
    """Remembers answers by feedback id and appends votes on them to `path` (thread-safe)."""

    def __init__(self, path: Path, max_remembered: int = MAX_REMEMBERED_ANSWERS) -> None:
        self.path = Path(path)
        self.max_remembered = max_remembered
        self._answers: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def recent_votes(self, count: int) -> list[dict[str, Any]]:
        """The last `count` votes, oldest first (what the Home tab tallies), from the log's end."""
        return tail_entries(self.path, TAIL_BYTES)[-count:] if count > 0 else []

    def remember(self, answer: Answer) -> str:
        """Keep `answer` for later votes; returns the id to put in its buttons."""
        feedback_id = uuid.uuid4().hex[:20]
        with self._lock:
            self._answers[feedback_id] = answer_record(answer)
            while len(self._answers) > self.max_remembered:
                self._answers.popitem(last=False)
        return feedback_id

    def lookup(self, feedback_id: str | None) -> dict[str, Any] | None:
        if not feedback_id:
            return None
        with self._lock:
            record = self._answers.get(feedback_id)
            return dict(record) if record is not None else None

    def record_vote(self, *, feedback_id: str | None, vote: str, user: str | None, channel: str | None,
                    message_ts: str | None, fallback_answer: str | None = None) -> dict[str, Any]:
        """Append one vote. An answer this process no longer remembers (e.g. after a restart) is
        logged with the message text Slack sent back as its answer and an empty question."""
        known = self.lookup(feedback_id)
        if known is None:
            log.info("feedback on an answer not in memory (id %s): logging the message text only", feedback_id)
            known = {"question": "", "answer": fallback_answer or "", "abstained": None, "citations": []}
        entry = {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "vote": vote,
            "user": user,
            "channel": channel,
            "message_ts": message_ts,
            **known,
            "answer_id": feedback_id,
        }
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        return entry


def read_log(path: Path) -> list[dict[str, Any]]:
    """Every vote in a feedback log (skipping a torn last line)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return list(read_json_lines(text.splitlines(), str(path), strict=False))


def tail_entries(path: Path, max_bytes: int) -> list[dict]:
    """The JSON lines in the last `max_bytes` of `path` (a torn first or last line is skipped)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except FileNotFoundError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > max_bytes and lines:
        lines = lines[1:]  # started mid-line
    return list(read_json_lines(lines, "feedback log", strict=False))
