"""Shared state on Redis, for replicas on several hosts (``[state] state_backend = "redis"``).

The SQLite store (`store.SqliteAnsweredStore`) is shared by the processes of one host only. Here
the same three memories live in one Redis, so any replica behind a load balancer can take any
delivery of an event:

- `RedisAnsweredStore`: the answered-message store. A claim is one Lua script (atomic on the
  server): refuse a key at or before the *horizon*, else ``HSETNX`` decides the winner, exactly as
  the SQLite primary key does. The same script forgets claims past the TTL (a few per call, so the
  hash stays bounded without a cron) and moves the horizon, keeping the SQLite store's rule: a key
  that may have been answered and forgotten is refused, never answered twice. The script also
  records when this Redis's memory began (``born``, set if missing): a Redis restarted empty is
  born again, and vouches for no older event (guard.py checks those against the thread). Bot
  threads are plain keys with a Redis TTL.
- `RedisConversationMemory`: the questions asked in each thread (a capped list a thread, with a
  TTL), so a follow-up that reaches the other replica keeps its context.
- `RedisFeedbackLog`: answers waiting for a 👍/👎 (with a TTL) and the votes (a capped list), so a
  vote can land on any replica and the Home tab tally sees every replica's votes.

Every key sits under one hash tag (``{qabot}``), so the scripts also run on a Redis Cluster.
This module is imported only when the backend is "redis" (redis-py itself by `state_store.connect`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ..answering.answer import Answer
from ..state_store import PREFIX, redact_url
from .feedback import FeedbackLog, answer_record
from .store import MAX_THREADS, THREAD_TTL_S, Claim
from .threads import DM_CONTEXT_S, MAX_HISTORY, ConversationMemory, ThreadContext

log = logging.getLogger(__name__)

# Expired claims forgotten per claim call: bounded work, and faster than claims arrive.
PRUNE_PER_CLAIM = 50
# Answers kept for a later vote (a vote on an older answer is logged with the message text only).
FEEDBACK_ANSWER_TTL_S = 30 * 24 * 3600
# Votes kept in Redis (the Home tab reads the last 500).
MAX_VOTES = 100_000
# Set while calls to Redis fail (see `RedisAnsweredStore._safe`).
_FAILING = threading.Event()

# KEYS: claims (zset key -> claimed_at), claim_ts (hash key -> Slack ts), horizon (string),
#       claim_owner (hash key -> replica id), born (string)
# ARGV: key, ts, now, cutoff (now - ttl), max_rows, prune budget, replica id
# Returns {result, born}: result 1 won, 0 a repeat, -1 at or before the horizon.
_CLAIM = """
redis.call('SET', KEYS[5], ARGV[3], 'NX')
local born = redis.call('GET', KEYS[5])
local function forget(keys)
  local newest = nil
  for _, k in ipairs(keys) do
    local t = tonumber(redis.call('HGET', KEYS[2], k))
    if t and (newest == nil or t > newest) then newest = t end
    redis.call('HDEL', KEYS[2], k)
    redis.call('HDEL', KEYS[4], k)
    redis.call('ZREM', KEYS[1], k)
  end
  if newest then
    local h = tonumber(redis.call('GET', KEYS[3]))
    if h == nil or newest > h then redis.call('SET', KEYS[3], string.format('%.6f', newest)) end
  end
  return #keys
end
local budget = tonumber(ARGV[6])
forget(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[4], 'LIMIT', 0, budget))
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[5])
if excess > 0 then forget(redis.call('ZRANGE', KEYS[1], 0, math.min(excess, budget) - 1)) end
if ARGV[1] == '' then return {0, born} end
local h = tonumber(redis.call('GET', KEYS[3]))
if h ~= nil and tonumber(ARGV[2]) <= h then return {-1, born} end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return {0, born} end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[7])
return {1, born}
"""
# Forget a claim only if `owner` made it (a replica taking over a dead one's event, handover.py).
# KEYS: claims, claim_ts, claim_owner; ARGV: key, owner
_RELEASE = """
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"""


class RedisAnsweredStore:
    """`store.AnsweredStore` on Redis: the same rules as the SQLite store, for every host."""

    def __init__(self, client, *, ttl_s: float, max_rows: int, thread_ttl_s: float = THREAD_TTL_S,
                 max_threads: int = MAX_THREADS, clock: Callable[[], float] = time.time,
                 replica: str | None = None, url: str = "") -> None:
        if ttl_s <= 0 or max_rows < 1:
            raise ValueError("ttl_s must be positive and max_rows at least 1")
        self.redis = client
        self.ttl_s = float(ttl_s)
        self.max_rows = int(max_rows)
        self.thread_ttl_s = float(thread_ttl_s)
        self.max_threads = int(max_threads)  # not enforced: the thread keys' TTL bounds them
        self._clock = clock
        self.replica = replica or uuid.uuid4().hex[:12]  # who made a claim (see `release`)
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._keys = [PREFIX + "claims", PREFIX + "claim_ts", PREFIX + "horizon", PREFIX + "claim_owner",
                      PREFIX + "born"]
        self.url = redact_url(url) if url else "redis"
        # When this process last failed to reach Redis, and when it reached it again: claims made
        # while it was away were not recorded, so it vouches for nothing before `_recovered`.
        self._failed = False
        self._recovered = float("-inf")

    def _run(self, key: str, ts: float) -> tuple[int, float]:
        now = self._clock()
        result, born = self._claim(keys=self._keys, args=[key, repr(float(ts)), repr(now), repr(now - self.ttl_s),
                                                          self.max_rows, PRUNE_PER_CLAIM, self.replica])
        return int(result), float(born)

    def describe(self) -> str:
        return f"redis {self.url}"

    def ping(self) -> bool:
        return bool(self._safe(self.redis.ping, False))

    def claim(self, key: str, ts: float) -> bool:
        return self.try_claim(key, ts).won is True

    def try_claim(self, key: str, ts: float) -> Claim:
        import redis

        try:
            won, born = self._run(key, ts)
        except redis.RedisError as exc:
            # Nothing recorded: the caller decides ([state] on_unavailable, guard.py).
            log.error("could not record %s in the state Redis (%s)", key, type(exc).__name__)
            self._failed = True
            return Claim(None, float("inf"))
        if self._failed:
            self._failed = False
            self._recovered = self._clock()
        if won < 0:
            log.info("not answering %s: older than what the state Redis remembers", key)
        return Claim(won == 1, max(born, self._recovered))

    def release(self, key: str, owner: str) -> bool:
        """Forget `owner`'s claim on `key` so the message can be answered by another replica
        (`handover.Reaper`: `owner` died before answering). A claim by anyone else stays."""
        keys = [self._keys[0], self._keys[1], self._keys[3]]
        return bool(self._safe(lambda: self._release(keys=keys, args=[key, owner]), 0))

    def claimed(self, key: str) -> bool:
        return self._safe(lambda: bool(self.redis.hexists(self._keys[1], key)), False)

    def remember_thread(self, channel: str, thread_ts: str, *, assistant: bool = False) -> None:
        key, ttl = self._thread_key(channel, thread_ts), max(1, int(self.thread_ttl_s))

        def write() -> None:
            if assistant:
                self.redis.set(key, "1", ex=ttl)
            elif not self.redis.set(key, "0", ex=ttl, nx=True):
                self.redis.expire(key, ttl)  # keeps "1": an assistant thread stays one
        self._safe(write, None)

    def is_bot_thread(self, channel: str, thread_ts: str) -> bool:
        return self._safe(lambda: self.redis.get(self._thread_key(channel, thread_ts)) is not None, False)

    def is_assistant_thread(self, channel: str, thread_ts: str) -> bool:
        return self._safe(lambda: self.redis.get(self._thread_key(channel, thread_ts)) == "1", False)

    def prune(self) -> None:
        self._safe(lambda: self._run("", 0.0), None)

    def counts(self) -> dict[str, int]:
        """Claims and threads held (for tests and diagnostics)."""
        threads = sum(1 for _ in self.redis.scan_iter(PREFIX + "thread:*", count=1000))
        return {"answered": int(self.redis.zcard(self._keys[0])), "bot_threads": threads}

    def close(self) -> None:
        self._safe(self.redis.close, None)

    @staticmethod
    def _thread_key(channel: str, thread_ts: str) -> str:
        return f"{PREFIX}thread:{channel}:{thread_ts}"

    @staticmethod
    def _safe(call: Callable[[], Any], default: Any) -> Any:
        """`call()`, or `default` when Redis fails: logged as a warning once per outage (every
        message touches Redis several times), at debug level after that."""
        import redis

        try:
            result = call()
        except redis.RedisError as exc:
            first = not _FAILING.is_set()
            _FAILING.set()
            log.log(logging.WARNING if first else logging.DEBUG, "the state Redis failed (%s)", type(exc).__name__)
            return default
        _FAILING.clear()
        return result


class RedisConversationMemory(ConversationMemory):
    """`threads.ConversationMemory` whose questions live in Redis: one capped list a conversation,
    expiring `ttl_s` after its last question (wall-clock times, comparable across hosts)."""

    def __init__(self, client, store: RedisAnsweredStore, ttl_s: float = THREAD_TTL_S,
                 max_history: int = MAX_HISTORY, dm_context_s: float = DM_CONTEXT_S,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(ttl_s=ttl_s, max_history=max_history, dm_context_s=dm_context_s, clock=clock, store=store)
        self.store: RedisAnsweredStore = store  # always given here
        self.redis = client

    def record(self, channel: str, thread_ts: str | None, question: str, *, assistant: bool = False) -> None:
        if thread_ts is not None:
            self.store.remember_thread(channel, thread_ts, assistant=assistant)
        key = self._key(channel, thread_ts)
        entry = json.dumps([self._clock(), question])  # "" still marks the conversation as answered in

        def write() -> None:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.rpush(key, entry)
                pipe.ltrim(key, -self.max_history, -1)
                pipe.expire(key, max(1, int(self.ttl_s)))
                pipe.execute()
        RedisAnsweredStore._safe(write, None)

    def get(self, channel: str, thread_ts: str | None) -> ThreadContext | None:
        raw = RedisAnsweredStore._safe(lambda: self.redis.lrange(self._key(channel, thread_ts), 0, -1), None)
        if not raw:
            return None
        now = self._clock()
        entries = [json.loads(item) for item in raw]
        if thread_ts is None:
            questions = [q for t, q in entries if q and now - t <= self.dm_context_s]
        else:
            questions = [q for _, q in entries if q]
        return ThreadContext(True, tuple(questions))

    @staticmethod
    def _key(channel: str, thread_ts: str | None) -> str:
        return f"{PREFIX}history:{channel}:{thread_ts or '-'}"


class RedisFeedbackLog(FeedbackLog):
    """`feedback.FeedbackLog` on Redis: answers by feedback id (expiring) and the votes (capped),
    so a click may reach any replica. `path` is kept only to name the log in messages."""

    def __init__(self, client, answer_ttl_s: float = FEEDBACK_ANSWER_TTL_S, max_votes: int = MAX_VOTES) -> None:
        super().__init__(Path("redis:feedback"))
        self.redis = client
        self.answer_ttl_s = int(answer_ttl_s)
        self.max_votes = int(max_votes)

    def remember(self, answer: Answer) -> str:
        feedback_id = uuid.uuid4().hex[:20]
        record = json.dumps(answer_record(answer), ensure_ascii=False)
        RedisAnsweredStore._safe(lambda: self.redis.set(PREFIX + "answer:" + feedback_id, record,
                                                        ex=self.answer_ttl_s), None)
        return feedback_id

    def lookup(self, feedback_id: str | None) -> dict[str, Any] | None:
        if not feedback_id:
            return None
        raw = RedisAnsweredStore._safe(lambda: self.redis.get(PREFIX + "answer:" + feedback_id), None)
        return json.loads(raw) if raw else None

    def record_vote(self, *, feedback_id: str | None, vote: str, user: str | None, channel: str | None,
                    message_ts: str | None, fallback_answer: str | None = None) -> dict[str, Any]:
        """Append one vote (raises OSError when Redis fails, as a file log does, so the user is told)."""
        import redis

        known = self.lookup(feedback_id)
        if known is None:
            log.info("feedback on an answer Redis no longer holds (id %s): logging the message text only", feedback_id)
            known = {"question": "", "answer": fallback_answer or "", "abstained": None, "citations": []}
        entry = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "vote": vote, "user": user,
                 "channel": channel, "message_ts": message_ts, **known, "answer_id": feedback_id}
        try:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.rpush(PREFIX + "votes", json.dumps(entry, ensure_ascii=False))
                pipe.ltrim(PREFIX + "votes", -self.max_votes, -1)
                pipe.execute()
        except redis.RedisError as exc:
            raise OSError(f"the state Redis failed ({type(exc).__name__})") from None
        return entry

    def recent_votes(self, count: int) -> list[dict[str, Any]]:
        """The last `count` votes, oldest first (what the Home tab tallies)."""
        raw = RedisAnsweredStore._safe(lambda: self.redis.lrange(PREFIX + "votes", -count, -1), [])
        return [json.loads(item) for item in raw]
