"""What the Slack app's middleware and listeners share: settings, the answerer, the pools and the
memories. One `BotState` per app, handed to every listener through bolt's context (see
`middleware.provide_state`), so nothing is kept at module level."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from ..report.recorder import QuestionRecorder
from ..settings import Settings
from .blocks import suggested_prompts
from .channel_collections import ChannelCollections, ChannelScope, allows
from .dedupe import SeenKeys
from .feedback import FeedbackLog
from .guard import StoreHealth
from .question import AnswersQuestions
from .store import AnsweredStore, SqliteAnsweredStore
from .streaming import Streamer
from .threads import ConversationMemory
from .workers import WorkerPool

if TYPE_CHECKING:
    from .handover import HandOver, Reaper

log = logging.getLogger(__name__)

# Threads checked with conversations.replies and found without the bot are not re-checked this long.
NOT_BOT_THREAD_TTL_S = 60.0
# On shutdown, answers in progress get this long to finish.
SHUTDOWN_GRACE_S = 10.0
# Listener threads mostly wait (on answers and on Slack): a few more than the answer workers.
LISTENERS_PER_WORKER = 2
EXTRA_LISTENERS = 4
# How long `close` waits for each pool's threads once it has stopped them.
POOL_JOIN_S = 1.0


@dataclass
class BotState:
    """The state behind one bolt `App` (built by `app.create_bot`)."""

    settings: Settings
    answerer: AnswersQuestions
    answered: AnsweredStore  # messages and events claimed, bot threads: durable, shared by every replica
    not_bot_threads: SeenKeys  # threads recently read from Slack and found without the bot
    memory: ConversationMemory  # threads the bot answered in, and the questions asked there
    feedback: FeedbackLog
    answers: WorkerPool  # runs Answerer calls, at most settings.slack.workers at once
    listeners: WorkerPool  # runs bolt listeners after the ack (bolt's listener_executor)
    prompts: list[dict[str, str]]  # the assistant panel's suggested prompts
    streamer: Streamer  # makes each reply's sink; remembers whether Slack can stream
    health: StoreHealth  # the store in use, whether it is reachable, answers given or dropped without it
    recorder: QuestionRecorder  # what became of each question, for `qabot report` (bot/report/)
    # Redis state only: message events held until answered, and the thread that takes over a dead
    # replica's (handover.py); None with SQLite, whose replicas share one host.
    handover: "HandOver | None" = None
    reaper: "Reaper | None" = None
    # Which document collections each channel answers from (channel_collections.py).
    channels: ChannelCollections | None = None

    @classmethod
    def from_settings(cls, settings: Settings, answerer: AnswersQuestions,
                      prompts: Sequence[dict[str, str]] | None = None) -> "BotState":
        cfg = settings.slack
        llm = settings.llm
        if llm.enabled and (llm.max_retries + 1) * llm.request_timeout_s >= cfg.answer_timeout_s:
            # A hung LLM would then meet the answer's time limit (an apology) before its own
            # fallback (the extractive answer) could take over.
            log.warning("[llm] request_timeout_s x (max_retries + 1) = %g s is not below [slack] "
                        "answer_timeout_s (%g s): a slow LLM ends in an apology, not the quoted passage",
                        (llm.max_retries + 1) * llm.request_timeout_s, cfg.answer_timeout_s)
        answered, memory, feedback, handover = shared_state(settings)
        return cls(
            settings=settings,
            answerer=answerer,
            answered=answered,
            not_bot_threads=SeenKeys(NOT_BOT_THREAD_TTL_S, cfg.dedupe_max_entries),
            memory=memory,
            feedback=feedback,
            answers=WorkerPool(cfg.workers, "qabot-answer"),
            listeners=WorkerPool(LISTENERS_PER_WORKER * cfg.workers + EXTRA_LISTENERS, "qabot-listener"),
            prompts=list(prompts) if prompts else suggested_prompts(document_titles(answerer)),
            streamer=Streamer(cfg.stream_after_s),
            health=StoreHealth(answered, settings.state.on_unavailable, cfg.dedupe_max_entries),
            recorder=QuestionRecorder.from_settings(settings, via="slack"),
            handover=handover,
            channels=ChannelCollections.from_settings(settings),
        )

    @property
    def timeout_s(self) -> float:
        return float(self.settings.slack.answer_timeout_s)

    def allowed(self, channel: str) -> bool:
        """Whether the bot may answer in `channel`: DMs always, channels per allowed_channels (and
        Q&A channels, which are named to be answered in)."""
        allowed = self.settings.slack.allowed_channels
        return not allowed or channel.startswith("D") or channel in allowed or self.is_qa_channel(channel)

    def is_qa_channel(self, channel: str) -> bool:
        """Whether top-level questions in `channel` are answered without a mention (qa_channels)."""
        return channel in self.settings.slack.qa_channels

    def collections_for(self, channel: str | None) -> ChannelScope:
        """The document collections `channel` answers from (None: every collection)."""
        return None if self.channels is None else self.channels.for_channel(channel)

    def prompts_for(self, channel: str | None) -> list[dict[str, str]]:
        """The assistant panel's suggested prompts in `channel`: from its collections' titles."""
        scope = self.collections_for(channel)
        return self.prompts if scope is None else suggested_prompts(document_titles(self.answerer, scope))

    def is_admin(self, user: str | None) -> bool:
        """Whether `user` is one of admin_users (who see the feedback tally on the Home tab)."""
        return bool(user) and user in self.settings.slack.admin_users

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no listener or answer is running or queued (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.listeners.wait_idle(max(0.0, deadline - time.monotonic())):
                return False
            if not self.answers.wait_idle(max(0.0, deadline - time.monotonic())):
                return False
            if self.listeners.pending == 0 and self.answers.pending == 0:
                return True

    def close(self, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        """Let answers in progress finish for up to `grace_s`, then stop the pools."""
        if self.reaper is not None:
            self.reaper.stop()
        if not self.wait_idle(grace_s):
            log.warning("shutting down with answers still in progress")
        self.listeners.shutdown(wait=True, cancel_futures=True, timeout=POOL_JOIN_S)
        self.answers.shutdown(wait=True, cancel_futures=True, timeout=POOL_JOIN_S)
        self.answered.close()
        self.recorder.close()


def shared_state(settings: Settings) -> tuple[AnsweredStore, ConversationMemory, FeedbackLog, "HandOver | None"]:
    """The answered-message store, thread memory, feedback log and hand-over of `[state]
    state_backend`: SQLite and a file on this host (no hand-over), or one Redis for replicas on
    several hosts (redis-py is imported only then)."""
    cfg = settings.slack
    if settings.state.state_backend == "redis":
        from .handover import LEASE_GRACE_S, HandOver
        from ..state_store import connect
        from .redis_state import RedisAnsweredStore, RedisConversationMemory, RedisFeedbackLog

        client = connect(settings.state.redis_url)
        store = RedisAnsweredStore(client, ttl_s=cfg.dedupe_ttl_s, max_rows=cfg.dedupe_max_entries,
                                   url=settings.state.redis_url)
        handover = HandOver(client, store.replica, lease_s=cfg.answer_timeout_s + LEASE_GRACE_S)
        return store, RedisConversationMemory(client, store), RedisFeedbackLog(client), handover
    sqlite = SqliteAnsweredStore(settings.paths.state_db, ttl_s=cfg.dedupe_ttl_s, max_rows=cfg.dedupe_max_entries)
    return sqlite, ConversationMemory(store=sqlite), FeedbackLog(settings.paths.feedback_log), None


def document_titles(answerer: AnswersQuestions, scope: ChannelScope = None) -> list[str]:
    """The indexed documents' titles, when the answerer exposes ``index.documents`` (else none);
    with a `scope`, only those of its collections."""
    index = getattr(answerer, "index", None)
    documents = getattr(index, "documents", None) or {}
    try:
        return [info.title for info in documents.values() if allows(scope, info.collections)]
    except Exception:
        return []
