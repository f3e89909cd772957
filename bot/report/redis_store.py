"""`store.ReportStore` on Redis (``[state] state_backend = "redis"``), for replicas on several hosts.

Keys, under the app's hash tag so the scripts also run on a Redis Cluster, version in the name:

- ``…:report:v1:times``: sorted set, record id → asked_at (what `read` and retention walk);
- ``…:report:v1:records``: hash, record id → the record as JSON (vector as base64 float16);
- ``…:report:v1:up`` / ``…:down``: hashes, record id → votes counted (kept apart from the records:
  a vote may come before its record is written); ``…:voted_at``: sorted set, id → latest vote.

A write is one Lua script: delete the records asked and the votes cast before the cut-off (a
bounded batch a call, more than the rate questions arrive), then store the new record. redis-py
is imported only when this backend is chosen.
"""

from __future__ import annotations

import json
from typing import Any

from ..state_store import PREFIX, StoreUnavailable, connect, redact_url
from .record import QuestionRecord, decode_vector, encode_vector
from .store import SCHEMA_VERSION, ReportStoreError

BASE = f"{PREFIX}report:v{SCHEMA_VERSION}:"
# Old records deleted per write at most (retention catches up over a few writes after a pause).
DELETE_PER_WRITE = 1000
READ_BATCH = 1000

# KEYS: times, records, up, down, voted_at. ARGV: id, asked_at, json, cutoff, delete budget.
_ADD = """
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[4], 'LIMIT', 0, tonumber(ARGV[5]))
for _, id in ipairs(old) do
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
end
local votes = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', '(' .. ARGV[4], 'LIMIT', 0, tonumber(ARGV[5]))
for _, id in ipairs(votes) do
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  redis.call('ZREM', KEYS[5], id)
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return #old
"""
# KEYS: counter, voted_at. ARGV: id, now.
_VOTE = """
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""
# KEYS: times, records. ARGV: id, json. Replace a record only while it exists (retention may race).
_REPLACE = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""


def _to_json(record: QuestionRecord) -> str:
    return json.dumps({"asked_at": record.asked_at, "via": record.via, "outcome": record.outcome,
                       "collections": list(record.collections), "documents": list(record.documents),
                       "question": record.question, "vector": encode_vector(record.vector)}, ensure_ascii=False)


def _from_json(record_id: str, raw: str, up: Any, down: Any) -> QuestionRecord:
    data = json.loads(raw)
    return QuestionRecord(record_id, float(data["asked_at"]), data["via"], data["outcome"],
                          tuple(data["collections"]), tuple(data["documents"]), data.get("question"),
                          decode_vector(data.get("vector")), int(up or 0), int(down or 0))


class RedisReportStore:
    """Question records in Redis (see the module docstring)."""

    def __init__(self, client: Any, url: str = "") -> None:
        self.redis = client
        self.url = redact_url(url) if url else "redis"
        self._keys = [BASE + "times", BASE + "records", BASE + "up", BASE + "down", BASE + "voted_at"]
        self._add = client.register_script(_ADD)
        self._vote = client.register_script(_VOTE)
        self._replace = client.register_script(_REPLACE)

    @classmethod
    def connect(cls, url: str) -> "RedisReportStore":
        try:
            return cls(connect(url), url)
        except StoreUnavailable as exc:
            raise ReportStoreError(str(exc)) from None

    def describe(self) -> str:
        return f"redis {self.url}"

    def add(self, record: QuestionRecord, *, delete_before: float) -> None:
        self._add(keys=self._keys, args=[record.id, repr(record.asked_at), _to_json(record), repr(delete_before),
                                         DELETE_PER_WRITE])

    def vote(self, record_id: str, vote: str, now: float) -> None:
        counter = self._keys[2] if vote == "up" else self._keys[3]
        self._vote(keys=[counter, self._keys[4]], args=[record_id, repr(now)])

    def read(self, since: float) -> list[QuestionRecord]:
        import redis

        try:
            ids = self.redis.zrevrangebyscore(self._keys[0], "+inf", repr(since))
            records = []
            for start in range(0, len(ids), READ_BATCH):
                batch = ids[start:start + READ_BATCH]
                with self.redis.pipeline(transaction=False) as pipe:
                    for key in self._keys[1:4]:
                        pipe.hmget(key, batch)
                    raw, ups, downs = pipe.execute()
                records += [_from_json(i, r, u, d) for i, r, u, d in zip(batch, raw, ups, downs) if r is not None]
        except redis.RedisError as exc:
            raise ReportStoreError(f"cannot read the report from the state Redis {self.url} "
                                   f"({type(exc).__name__})") from None
        return records

    def forget_text(self) -> int:
        changed = 0
        for record_id, raw in self.redis.hscan_iter(self._keys[1], count=1000):
            data = json.loads(raw)
            if data.get("question") is not None or data.get("vector") is not None:
                data["question"] = data["vector"] = None
                changed += int(self._replace(keys=self._keys[:2],
                                             args=[record_id, json.dumps(data, ensure_ascii=False)]))
        return changed

    def close(self) -> None:
        try:
            self.redis.close()
        except Exception:
            pass
