"""Exactly once when the state store cannot vouch for an event, and never silent when it fails.

The store (`store.AnsweredStore`) decides who answers a message. It cannot decide alone when:

- the delivery is a **Slack retry** (``X-Slack-Retry-Num``; Socket Mode's ``retry_attempt``
  arrives as the same header): the first delivery may have been answered and then forgotten;
- the store is **younger than the event** (`store.Claim.born`): a deleted SQLite file, a Redis
  restarted empty, or a Redis that was unreachable for a while (claims made meanwhile were not
  recorded) knows nothing of the answers before it;
- the store is **unreachable** (`Claim.won is None`).

In those cases, and only those, the Slack thread is read (``conversations.replies``, or
``conversations.history`` for a top-level DM, one call, `THREAD_REPLIES_LIMIT` messages) and the
message is answered only if no reply of ours follows it. A first delivery on a healthy store makes
no extra call.

With the store unreachable, ``[state] on_unavailable`` chooses: "answer" (the default) answers
with the thread check as the guard, "drop" leaves the message unanswered; both are logged and
counted (`StoreHealth`, shown on ``/healthz`` and the admins' Home tab). In "answer" mode twins
(``app_mention`` + ``message``) reaching one replica are told apart by a process-local memory, and
replicas by the working reaction: Slack lets the bot user put 👀 on a message once
(``already_reacted``), so the replica that adds it answers and the others leave the message alone.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from slack_bolt import BoltContext, BoltResponse
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from .client import api_error
from .dedupe import SeenKeys
from .store import AnsweredStore, Claim, message_key, slack_ts
from .threads import THREAD_REPLIES_LIMIT, bot_replied_after

log = logging.getLogger(__name__)

# Context keys set by `note_delivery` for the listeners.
RETRY_KEY = "qabot_retry_num"
EVENT_TIME_KEY = "qabot_event_time"
# Slack's event_time is whole seconds: an event up to this long before the store's birth may
# still be newer than it, and is trusted (a restart takes longer than that).
EVENT_TIME_SLACK_S = 1.0
# The reaction that marks a message being answered (listeners.WORKING_REACTION) and, with the
# store unreachable, the lock between replicas.
LOCK_REACTION = "eyes"
# Messages claimed in this process while the store was unreachable are remembered this long.
DEGRADED_MEMORY_S = 900.0


@dataclass(frozen=True)
class Granted:
    """The guard's verdict on one message: answer it or not; `reacted` when the guard already put
    the working reaction on it (the listener removes it when done)."""

    answer: bool
    reacted: bool = False


class StoreHealth:
    """Which state store is in use, whether it was reachable the last time it was asked (a change
    is logged once), and how many messages were answered or dropped without it."""

    def __init__(self, store: AnsweredStore, on_unavailable: str, max_entries: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.on_unavailable = on_unavailable
        self.degraded_answers = 0
        self.dropped = 0
        self.reachable = True
        self.local = SeenKeys(DEGRADED_MEMORY_S, max_entries, clock=clock)  # claims made without the store
        self._lock = threading.Lock()

    def describe(self) -> str:
        return self.store.describe()

    def observe(self, reachable: bool) -> None:
        """Record what the last store call found; log a change (once, not per message)."""
        with self._lock:
            changed, self.reachable = reachable != self.reachable, reachable
        if changed and reachable:
            log.warning("the state store (%s) is reachable again", self.describe())
        elif changed:
            log.warning("the state store (%s) is unreachable: on_unavailable = %s (docs/state.md)",
                        self.describe(), self.on_unavailable)

    def count(self, what: str) -> None:
        with self._lock:
            if what == "dropped":
                self.dropped += 1
            else:
                self.degraded_answers += 1

    def report(self) -> dict[str, Any]:
        """For ``/healthz``: the store, whether it answers now, and the degraded-mode counters."""
        self.observe(self.store.ping())
        with self._lock:
            return {"store": self.describe(), "reachable": self.reachable, "on_unavailable": self.on_unavailable,
                    "answered_without_store": self.degraded_answers, "dropped_without_store": self.dropped}


class Guarded(Protocol):
    """What the guard needs of the app's state (state.BotState has it)."""

    answered: AnsweredStore
    health: StoreHealth


def note_delivery(body: dict, request: BoltRequest, context: BoltContext,
                  next: Callable[[], BoltResponse]) -> BoltResponse:
    """Middleware: keep the delivery's retry number and event time for `claim_message`."""
    retry = (request.headers.get("x-slack-retry-num") or ["0"])[0]
    context[RETRY_KEY] = int(retry) if str(retry).isdigit() else 0
    context[EVENT_TIME_KEY] = slack_ts(body.get("event_time"), float("nan"))
    return next()


def claim_message(state: Guarded, client: WebClient, context: BoltContext, channel: str, ts: str,
                  reply_thread: str | None, *, lock: bool = True) -> Granted:
    """Whether to answer message `ts` of `channel`, replied to in `reply_thread` (None: at the top
    level of a DM). `lock`: with the store unreachable, take the working reaction as the lock
    between replicas (where the listener shows that reaction anyway)."""
    key = message_key(channel, ts)
    claim = state.answered.try_claim(key, slack_ts(ts, 0.0))
    state.health.observe(claim.won is not None)
    if claim.won is False:
        log.debug("message %s/%s already answered (or being answered)", channel, ts)
        return Granted(False)
    if claim.won is None:
        return _without_store(state, client, context, channel, ts, reply_thread, lock)
    why = unvouched(context, claim)
    if why and replied(client, context, channel, ts, reply_thread):
        log.info("not answering %s/%s (%s): its thread already holds our reply", channel, ts, why)
        return Granted(False)
    return Granted(True)


def unvouched(context: BoltContext, claim: Claim) -> str | None:
    """Why a claim the store granted may still be a second answer, or None."""
    retry = int(context.get(RETRY_KEY) or 0)
    if retry:
        return f"Slack's retry {retry}"
    event_time = context.get(EVENT_TIME_KEY)
    if isinstance(event_time, float) and event_time == event_time and event_time + EVENT_TIME_SLACK_S < claim.born:
        return "an event older than the state store's memory"
    return None


def _without_store(state: Guarded, client: WebClient, context: BoltContext, channel: str, ts: str,
                   reply_thread: str | None, lock: bool) -> Granted:
    """The store is unreachable: drop the message, or answer it guarded by its thread."""
    if state.health.on_unavailable == "drop":
        state.health.count("dropped")
        log.warning("not answering %s/%s: the state store is unreachable and on_unavailable = \"drop\"",
                    channel, ts)
        return Granted(False)
    if not state.health.local.claim(message_key(channel, ts)):
        return Granted(False)  # its twin, or a retry, already reached this process
    reacted = False
    if lock:
        taken = _take_reaction(client, channel, ts)
        if taken is False:
            log.info("not answering %s/%s: another replica is answering it", channel, ts)
            return Granted(False)
        reacted = bool(taken)
    if replied(client, context, channel, ts, reply_thread):
        log.info("not answering %s/%s: its thread already holds our reply", channel, ts)
        if reacted:
            _drop_reaction(client, channel, ts)
        return Granted(False)
    state.health.count("answered")
    log.warning("answering %s/%s without the state store (on_unavailable = \"answer\"): guarded by its thread",
                channel, ts)
    return Granted(True, reacted)


def replied(client: WebClient, context: BoltContext, channel: str, ts: str, reply_thread: str | None) -> bool:
    """Whether the conversation holds a reply of this bot after message `ts`: in its thread, or
    after it at the top level of a DM. A thread that cannot be read counts as unanswered (a
    possible second answer beats a lost one)."""
    try:
        if reply_thread:
            response = client.conversations_replies(channel=channel, ts=reply_thread, limit=THREAD_REPLIES_LIMIT)
        else:
            response = client.conversations_history(channel=channel, oldest=ts, limit=THREAD_REPLIES_LIMIT)
    except Exception as exc:
        log.warning("could not read the conversation of %s/%s: %s", channel, ts, api_error(exc))
        return False
    return bot_replied_after(response.get("messages") or [], ts, context.bot_user_id, context.bot_id)


def _take_reaction(client: WebClient, channel: str, ts: str) -> bool | None:
    """Add the working reaction: True if added, False if the bot already has it there (another
    replica is answering), None if Slack could not be asked (go on without the lock)."""
    try:
        client.reactions_add(channel=channel, timestamp=ts, name=LOCK_REACTION)
        return True
    except SlackApiError as exc:
        if exc.response.get("error") == "already_reacted":
            return False
        log.warning("could not add the %s reaction on %s/%s: %s", LOCK_REACTION, channel, ts, api_error(exc))
        return None
    except Exception as exc:
        log.warning("could not add the %s reaction on %s/%s: %s", LOCK_REACTION, channel, ts, api_error(exc))
        return None


def _drop_reaction(client: WebClient, channel: str, ts: str) -> None:
    try:
        client.reactions_remove(channel=channel, timestamp=ts, name=LOCK_REACTION)
    except Exception as exc:
        log.warning("could not remove the %s reaction on %s/%s: %s", LOCK_REACTION, channel, ts, api_error(exc))
