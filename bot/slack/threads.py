"""Follow-up context: which threads the bot answered in, and the questions asked there so far.

The questions are remembered per process; *which* threads are the bot's is also written to the
durable `store.AnsweredStore` (when one is given), so a restarted bot or another replica knows them
too. Either way the questions of a thread the process has not seen come from
``conversations.replies`` (`from_replies`), so follow-ups keep their context.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from cachetools import TTLCache

from .store import AnsweredStore

# A thread the bot answered in stays "its" thread this long after the last question.
THREAD_TTL_S = 7 * 24 * 3600.0
# Top-level DM questions count as context for the next one only this long (a DM has no threads).
DM_CONTEXT_S = 30 * 60.0
MAX_CONVERSATIONS = 10_000
# Questions kept per conversation (the Answerer only needs the last few).
MAX_HISTORY = 8
# Messages read from a thread (one conversations.replies page): after a restart, and before a
# replica answers a message taken over from a dead one.
THREAD_REPLIES_LIMIT = 200
# Message subtypes that are a person writing (everything else: edits, joins, bots... is ignored).
# (An edited message arrives as subtype message_changed, or as app_mention with an ``edited`` field.)
ANSWERABLE_SUBTYPES = (None, "thread_broadcast", "file_share")


@dataclass(frozen=True)
class ThreadContext:
    """What a thread tells about a new message in it."""

    bot_participated: bool
    history: tuple[str, ...]  # earlier user questions, oldest first


class ConversationMemory:
    """Thread-safe, bounded memory of conversations keyed by ``(channel, thread_ts)``.

    ``thread_ts`` is None for the top level of a DM, whose questions expire after `dm_context_s`.
    With a `store`, the threads (not the questions) are also recorded there, for other processes.
    """

    def __init__(self, ttl_s: float = THREAD_TTL_S, max_conversations: int = MAX_CONVERSATIONS,
                 max_history: int = MAX_HISTORY, dm_context_s: float = DM_CONTEXT_S,
                 clock: Callable[[], float] = time.monotonic, store: AnsweredStore | None = None) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.max_conversations = max_conversations
        self.max_history = max_history
        self.dm_context_s = dm_context_s
        self._clock = clock
        # key -> deque of (time, question): forgotten `ttl_s` after its last record, the least
        # recently used first when more than `max_conversations` (cachetools' TTLCache).
        self._items: TTLCache[tuple[str, str | None], deque] = TTLCache(max_conversations, ttl_s, timer=clock)
        self._lock = threading.Lock()

    def record(self, channel: str, thread_ts: str | None, question: str, *, assistant: bool = False) -> None:
        """Remember that the bot answered `question` in this conversation (an assistant-panel thread
        if `assistant`)."""
        if self.store is not None and thread_ts is not None:
            self.store.remember_thread(channel, thread_ts, assistant=assistant)
        now = self._clock()
        key = (channel, thread_ts)
        with self._lock:
            questions = self._items.pop(key, None) or deque(maxlen=self.max_history)
            if question:
                questions.append((now, question))
            self._items[key] = questions  # (re)starts its TTL

    def get(self, channel: str, thread_ts: str | None) -> ThreadContext | None:
        """The remembered context, or None when the bot has not answered here (or forgot)."""
        now = self._clock()
        key = (channel, thread_ts)
        with self._lock:
            questions = self._items.get(key)
            if questions is None:
                return None
            if thread_ts is None:
                recent = [q for t, q in questions if now - t <= self.dm_context_s]
            else:
                recent = [q for _, q in questions]
            return ThreadContext(True, tuple(recent))

    def is_bot_thread(self, channel: str, thread_ts: str) -> bool:
        """Whether any process recorded this thread as the bot's (False without a store)."""
        return self.store is not None and self.store.is_bot_thread(channel, thread_ts)

    def is_assistant_thread(self, channel: str, thread_ts: str) -> bool:
        """Whether this thread was opened in the assistant panel (per the store)."""
        return self.store is not None and self.store.is_assistant_thread(channel, thread_ts)


def is_from_bot(message: Mapping, bot_user_id: str | None, bot_id: str | None) -> bool:
    """True for messages posted by this bot (by user id or bot id)."""
    return bool((bot_user_id and message.get("user") == bot_user_id)
                or (bot_id and message.get("bot_id") == bot_id))


def bot_replied_after(messages: Iterable[Mapping], after_ts: str, bot_user_id: str | None,
                      bot_id: str | None) -> bool:
    """Whether this bot posted in the thread (``conversations.replies``) after message `after_ts`."""
    return any(is_from_bot(m, bot_user_id, bot_id) and _ts_key(m.get("ts", "0")) > _ts_key(after_ts)
               for m in messages)


def from_replies(messages: Iterable[Mapping], *, before_ts: str, bot_user_id: str | None,
                 bot_id: str | None, to_question: Callable[[str], str],
                 max_history: int = MAX_HISTORY) -> ThreadContext:
    """Context from a thread's messages (``conversations.replies``), for messages before `before_ts`.

    `to_question` turns a message's Slack text into a plain question ("" to skip it).
    """
    participated = False
    questions: list[str] = []
    for message in sorted(messages, key=lambda m: _ts_key(m.get("ts", "0"))):
        if _ts_key(message.get("ts", "0")) >= _ts_key(before_ts):
            continue
        if is_from_bot(message, bot_user_id, bot_id):
            participated = True
            continue
        if message.get("bot_id") or message.get("subtype") not in ANSWERABLE_SUBTYPES:
            continue
        question = to_question(message.get("text") or "")
        if question:
            questions.append(question)
    return ThreadContext(participated, tuple(questions[-max_history:]))


def _ts_key(ts: str) -> tuple[int, int]:
    """Slack timestamps ("1700000000.000100") compared as numbers, not strings."""
    seconds, _, fraction = str(ts).partition(".")
    try:
        return int(seconds), int(fraction.ljust(6, "0")[:6])
    except ValueError:
        return 0, 0

