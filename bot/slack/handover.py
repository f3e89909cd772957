"""Hand-over between replicas: a message event acknowledged by a replica that dies before it has
answered is answered by another one (Redis state only).

Slack retries a delivery that got no HTTP 200, so an event a dying replica never acknowledged
reaches another replica by itself. One it *did* acknowledge is never sent again: bolt acknowledges
an event before its listener runs, and the answer takes longer. So every message event that passes
the middleware is *held* in Redis (its request body, under its event id, with a lease) until its
listener has finished. Each replica's `Reaper` looks for holds whose lease ran out (their replica
died, or hung past any answer timeout), takes one over atomically, releases the dead replica's
claim on the message and dispatches the body through its own app: the message is then answered
exactly as if Slack had retried it.

Why a lease and not a heartbeat: an answer is abandoned after ``answer_timeout_s``, so a hold
older than that plus `LEASE_GRACE_S` belongs to a replica that is gone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from typing import Callable, Sequence

from ..state_store import PREFIX
from .store import message_key

log = logging.getLogger(__name__)

# A hold outlives the answer timeout by this much before another replica takes it over (seconds).
LEASE_GRACE_S = 10.0
# How often a replica looks for expired holds, and how many it takes at a time.
REAP_EVERY_S = 1.0
REAP_BATCH = 20
# An event taken over this many times is dropped (logged): no listener finishes it anywhere.
MAX_HANDOVERS = 2
HANDOVERS_KEY = "qabot_handovers"  # in the re-dispatched body (Slack's fields are untouched)

# KEYS: leases (zset hold id -> lease end), holds (hash hold id -> {"replica", "body"})
# ARGV: now, new lease end, limit. Returns [hold id, hold, ...] (each re-leased to the taker).
_TAKE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local hold = redis.call('HGET', KEYS[2], id)
  if hold then
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    table.insert(out, id)
    table.insert(out, hold)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"""


class HandOver:
    """The holds of one Redis, shared by every replica. A hold belongs to one delivery on one
    replica, so a retry of the same event, here or elsewhere, never ends another's hold."""

    def __init__(self, client, replica: str, lease_s: float, clock: Callable[[], float] = time.time) -> None:
        self.redis = client
        self.replica = replica
        self.lease_s = float(lease_s)
        self._clock = clock
        self._take = client.register_script(_TAKE)
        self._keys = [PREFIX + "hold_leases", PREFIX + "hold_bodies"]

    def hold(self, body: dict) -> str | None:
        """Keep `body` until `drop` of the returned hold id; taken over by another replica once its
        lease ends. Every delivery gets its own hold (a retry reaching this same replica too)."""
        event_id = body.get("event_id")
        if not event_id:
            return None
        hold_id = f"{self.replica}:{event_id}:{uuid.uuid4().hex[:8]}"
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys[1], hold_id, json.dumps({"replica": self.replica, "body": body}))
            pipe.zadd(self._keys[0], {hold_id: self._clock() + self.lease_s})
            pipe.execute()
        return hold_id

    def drop(self, hold_id: str) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._keys[0], hold_id)
            pipe.hdel(self._keys[1], hold_id)
            pipe.execute()

    def take_expired(self, limit: int = REAP_BATCH) -> list[tuple[str, str, dict]]:
        """(hold id, replica that held it, body) of holds whose lease ran out, each now leased to
        this replica (no other replica gets them)."""
        now = self._clock()
        flat = self._take(keys=self._keys, args=[repr(now), repr(now + self.lease_s), limit])
        taken = []
        for hold_id, raw in zip(flat[::2], flat[1::2]):
            hold = json.loads(raw)
            taken.append((hold_id, hold["replica"], hold["body"]))
        return taken

    def held(self) -> int:
        return int(self.redis.zcard(self._keys[0]))


def signed_headers(body: str, signing_secret: str | None) -> dict[str, str | Sequence[str]]:
    """Headers that let a re-dispatched body pass bolt's request verification, as Slack signs."""
    if not signing_secret:
        return {"content-type": ["application/json"]}
    timestamp = str(int(time.time()))
    digest = hmac.new(signing_secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"content-type": ["application/json"], "x-slack-request-timestamp": [timestamp],
            "x-slack-signature": [f"v0={digest}"]}


class Reaper:
    """A daemon thread that takes over expired holds and answers them through `dispatch`."""

    def __init__(self, handover: HandOver, release_claim: Callable[[str, str], object],
                 dispatch: Callable[[dict], None],
                 every_s: float = REAP_EVERY_S) -> None:
        self.handover = handover
        self.release_claim = release_claim
        self.dispatch = dispatch
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qabot-handover", daemon=True)

    def start(self) -> "Reaper":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.every_s):
            try:
                self.reap()
                failing = False
            except Exception as exc:  # a Redis hiccup must not kill the thread; logged once an outage
                log.log(logging.DEBUG if failing else logging.WARNING, "could not take over held events (%s)",
                        type(exc).__name__)
                failing = True

    def reap(self) -> int:
        taken = self.handover.take_expired()
        for hold_id, owner, body in taken:
            event = body.get("event") or {}
            channel, ts = event.get("channel"), event.get("ts")
            log.warning("taking over event %s (%s/%s): replica %s acknowledged it and did not finish it",
                        body.get("event_id"), channel, ts, owner)
            handovers = int(body.get(HANDOVERS_KEY, 0)) + 1
            if handovers > MAX_HANDOVERS:
                log.error("dropping event %s: taken over %d times and never finished", body.get("event_id"),
                          handovers - 1)
                self.handover.drop(hold_id)
                continue
            if channel and ts:
                self.release_claim(message_key(channel, ts), owner)  # only if the dead replica claimed it
            self.dispatch({**body, HANDOVERS_KEY: handovers})  # held again, by this replica, until answered
            self.handover.drop(hold_id)
        return len(taken)
