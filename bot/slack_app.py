"""The Slack app: a slack-bolt `App` whose listeners hand questions to one `Answerer`.

Where it answers: @mentions in channels (in a thread), follow-ups in threads it already answered
in (no mention needed), DMs, the ``/ask`` command (via ``response_url``) and Slack's assistant
panel (bolt's `Assistant`). Events are acknowledged at once (``process_before_response=False``);
answers are computed in a bounded pool of ``settings.slack.workers`` threads, each abandoned with
an apology after ``settings.slack.answer_timeout_s``. Every message is answered once: event ids
and ``(channel, ts)`` pairs are claimed in a bounded, expiring memory (`bot.dedupe.SeenKeys`).

`serve()` runs it: Socket Mode when ``SLACK_APP_TOKEN`` is set, otherwise HTTP on a port at
``/slack/events`` with Slack's request signatures checked. Secrets come from the environment
(``SLACK_BOT_TOKEN``, ``SLACK_APP_TOKEN``, ``SLACK_SIGNING_SECRET``, or ``…_FILE`` naming a file
holding one) and never reach logs, errors or the feedback log.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import signal
import threading
import time
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from http.client import RemoteDisconnected
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping, Sequence
from urllib.error import URLError
from weakref import WeakKeyDictionary

from slack_bolt import App, Assistant, BoltResponse
from slack_bolt.error import BoltError
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from embeddings.errors import QabotError

from .answers import Answer
from .conversations import ConversationMemory, ThreadContext, from_replies, is_from_bot
from .dedupe import SeenKeys
from .feedback import FeedbackLog
from .settings import Settings
from .slack_blocks import (
    FEEDBACK_ACTIONS,
    WORKING_STATUS,
    Message,
    escape_truncate,
    parse_feedback_value,
    render_answer,
    render_apology,
    render_greeting,
    slack_to_plain,
    suggested_prompts,
)

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://slack.com/api/"
EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
MAX_REQUEST_BYTES = 1024 * 1024  # Slack's payloads are a few KB
WORKING_REACTION = "eyes"
# Message subtypes that are a person writing (everything else: edits, joins, bots... is ignored).
ANSWERABLE_SUBTYPES = (None, "thread_broadcast", "file_share")
# Threads checked with conversations.replies and found without the bot are not re-checked this long.
NOT_BOT_THREAD_TTL_S = 60.0
# On shutdown, answers in progress get this long to finish.
SHUTDOWN_GRACE_S = 10.0
SLASH_USAGE = "Ask me about the indexed articles: `/ask <question>`, e.g. `/ask What deadline did Ryabkov give?`"
NOT_ENABLED_HERE = "I'm not enabled in this channel. Ask me in a direct message instead."


class SlackConfigError(QabotError):
    """The Slack connection is not configured or Slack refused it (the message never holds a secret)."""


# --- secrets ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SlackSecrets:
    bot_token: str
    app_token: str | None = None
    signing_secret: str | None = None
    api_url: str = DEFAULT_API_URL

    def __repr__(self) -> str:  # never print a secret, even by accident
        return (f"SlackSecrets(bot_token=<redacted>, app_token={'<redacted>' if self.app_token else None}, "
                f"signing_secret={'<redacted>' if self.signing_secret else None}, api_url={self.api_url!r})")

    __str__ = __repr__

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(v for v in (self.bot_token, self.app_token, self.signing_secret) if v)


def read_secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """``$NAME``, or the contents of the file named by ``$NAME_FILE``; None when neither is set."""
    environ = os.environ if environ is None else environ
    value = (environ.get(name) or "").strip()
    if value:
        return value
    path = (environ.get(f"{name}_FILE") or "").strip()
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.read().strip()
    except OSError as exc:
        raise SlackConfigError(f"{name}_FILE names {path}, which cannot be read ({exc.strerror or exc})") from None
    if not value:
        raise SlackConfigError(f"{name}_FILE names {path}, which is empty")
    return value


def load_slack_secrets(environ: Mapping[str, str] | None = None) -> SlackSecrets:
    """The Slack credentials and API URL from the environment, checked for the obvious mix-ups."""
    environ = os.environ if environ is None else environ
    bot_token = read_secret("SLACK_BOT_TOKEN", environ)
    if not bot_token:
        raise SlackConfigError("SLACK_BOT_TOKEN is not set: set it (or SLACK_BOT_TOKEN_FILE) to the app's "
                               "Bot User OAuth Token, xoxb-… (see README, \"Slack bot\")")
    if not bot_token.startswith("xoxb-"):
        raise SlackConfigError("SLACK_BOT_TOKEN does not look like a bot token (it should start with xoxb-)")
    app_token = read_secret("SLACK_APP_TOKEN", environ)
    if app_token and not app_token.startswith("xapp-"):
        raise SlackConfigError("SLACK_APP_TOKEN does not look like an app-level token (it should start with "
                               "xapp- and have the connections:write scope)")
    signing_secret = read_secret("SLACK_SIGNING_SECRET", environ)
    api_url = (environ.get("SLACK_API_URL") or "").strip() or DEFAULT_API_URL
    return SlackSecrets(bot_token, app_token, signing_secret, normalize_api_url(api_url))


def normalize_api_url(url: str) -> str:
    if not re.match(r"^https?://", url):
        raise SlackConfigError(f"SLACK_API_URL must be an http(s) URL, got {url!r}")
    return url if url.endswith("/") else url + "/"


class _DropClientTokenWarning(logging.Filter):
    """bolt warns that its `token` is unused whenever SLACK_BOT_TOKEN is set and a client is given,
    which is always the case here (the client carries the API URL and retry handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("As you gave `client` as well")


_DROP_CLIENT_TOKEN_WARNING = _DropClientTokenWarning()


class SecretRedactor(logging.Filter):
    """A logging filter that replaces known secrets in messages and tracebacks (defence in depth:
    nothing in qabot logs a secret, but a library might)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 8]

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


# --- thread pools -------------------------------------------------------------------------------

class WorkerPool(Executor):
    """A fixed pool of daemon threads (a stuck Answerer call can't block process exit, unlike
    `ThreadPoolExecutor`), counting tasks so tests and shutdown can wait for quiet."""

    def __init__(self, workers: int, name: str) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        self._closed = False
        self._name = name
        self._serial = max(1, workers)
        # Tasks running now, by future: their thread; threads abandoned to a stalled task.
        self._running: dict[Future, threading.Thread] = {}
        self._abandoned: set[threading.Thread] = set()
        self.max_abandoned = max(1, workers)
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True)
                         for i in range(max(1, workers))]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        with self._idle:
            if self._closed:
                raise RuntimeError("the pool is shut down")
            self._pending += 1
        self._queue.put((future, fn, args, kwargs))
        return future

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args, kwargs = item
            me = threading.current_thread()
            try:
                with self._idle:
                    self._running[future] = me
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn(*args, **kwargs)
                    except BaseException as exc:  # handed to whoever waits on the future
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
            finally:
                with self._idle:
                    self._running.pop(future, None)
                    abandoned = me in self._abandoned
                    if abandoned:
                        self._abandoned.discard(me)  # its task was already counted as done
                    else:
                        self._pending -= 1
                    self._idle.notify_all()
            if abandoned:
                return  # a replacement took this thread's place in the pool

    def abandon(self, future: Future) -> bool:
        """Give up on a stalled task: its thread is left to finish it alone (and then exit) and a
        new thread takes its place, so a stuck call can't hold a worker. At most `max_abandoned`
        threads are abandoned at once (beyond that the task keeps its worker). True if replaced."""
        if future.cancel():
            return True  # it had not started: nothing holds a worker
        with self._idle:
            thread = self._running.get(future)
            if (thread is None or thread in self._abandoned or self._closed
                    or len(self._abandoned) >= self.max_abandoned):
                return False
            self._abandoned.add(thread)
            self._pending -= 1
            self._threads.remove(thread)
            replacement = threading.Thread(target=self._run, name=f"{self._name}-{self._serial}", daemon=True)
            self._serial += 1
            self._threads.append(replacement)
            self._idle.notify_all()
        replacement.start()
        log.warning("abandoned a stalled task in %s; %d thread(s) now stalled", thread.name, len(self._abandoned))
        return True

    @property
    def pending(self) -> int:
        with self._idle:
            return self._pending

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no task is queued or running; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False, timeout: float | None = None) -> None:
        with self._idle:
            if self._closed:
                return
            self._closed = True
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
                    with self._idle:
                        self._pending -= 1
                        self._idle.notify_all()
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            deadline = None if timeout is None else time.monotonic() + timeout
            for thread in self._threads:
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))


class AnswerTimeout(Exception):
    pass


# --- Slack clients --------------------------------------------------------------------------------

def retry_handlers() -> list:
    """slack_sdk's own retry handlers: connection errors and timeouts, 429 + Retry-After, and 5xx."""
    # A read timeout (TimeoutError, not wrapped in URLError) counts as a connection error too.
    connection_errors = [URLError, ConnectionResetError, RemoteDisconnected, TimeoutError]
    return [ConnectionErrorRetryHandler(max_retry_count=2, error_types=connection_errors),
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2)]


def make_web_client(bot_token: str, api_url: str | None = None, timeout: int = 30) -> WebClient:
    return WebClient(token=bot_token, base_url=normalize_api_url(api_url or DEFAULT_API_URL),
                     timeout=timeout, retry_handlers=retry_handlers())


def _api_error(exc: Exception) -> str:
    """A short, secret-free description of a Slack API failure."""
    if isinstance(exc, SlackApiError):
        try:
            return f"Slack API error: {exc.response.get('error') or exc.response.status_code}"
        except Exception:
            return "Slack API error"
    return f"{type(exc).__name__}: {exc}"


# --- the bot --------------------------------------------------------------------------------------

_RUNTIMES: "WeakKeyDictionary[App, SlackBot]" = WeakKeyDictionary()


def runtime(app: App) -> "SlackBot":
    """The `SlackBot` behind an app made by `create_app` (its pools, memories and feedback log)."""
    return _RUNTIMES[app]


class SlackBot:
    """Owns the bolt `App`, its listeners and middleware, and the state they share."""

    def __init__(self, settings: Settings, answerer: Any, client: WebClient, *, signing_secret: str | None,
                 token_verification: bool = True, prompts: Sequence[dict] | None = None) -> None:
        cfg = settings.slack
        self.settings = settings
        self.answerer = answerer
        self.timeout_s = float(cfg.answer_timeout_s)
        self.allowed_channels = frozenset(cfg.allowed_channels)
        self.seen = SeenKeys(cfg.dedupe_ttl_s, cfg.dedupe_max_entries)
        self.not_bot_threads = SeenKeys(NOT_BOT_THREAD_TTL_S, cfg.dedupe_max_entries)
        self.memory = ConversationMemory()
        self.feedback = FeedbackLog(settings.paths.feedback_log)
        self.answers = WorkerPool(cfg.workers, "qabot-answer")
        # Listener threads mostly wait (on answers and on Slack): a few more than the answer workers.
        self.listeners = WorkerPool(2 * cfg.workers + 4, "qabot-listener")
        self.verifies_requests = signing_secret is not None
        self.prompts = list(prompts) if prompts else suggested_prompts(self._document_titles())
        logging.getLogger("slack_bolt.App").addFilter(_DROP_CLIENT_TOKEN_WARNING)
        try:
            self.app = App(
                name="qabot",
                client=client,
                signing_secret=signing_secret or "",
                request_verification_enabled=signing_secret is not None,
                token_verification_enabled=token_verification,
                process_before_response=False,
                listener_executor=self.listeners,
            )
        except BoltError as exc:
            raise SlackConfigError(f"Slack did not accept SLACK_BOT_TOKEN ({_bolt_error_reason(exc)})") from None
        self._register()
        _RUNTIMES[self.app] = self

    # -- registration

    def _register(self) -> None:
        app = self.app
        app.middleware(self.ignore_duplicates)
        app.middleware(self.ignore_bots_and_other_channels)

        assistant = Assistant()
        assistant.thread_started(self.on_assistant_thread_started)
        assistant.user_message(self.on_assistant_message)
        app.assistant(assistant)

        app.event("app_mention")(self.on_app_mention)
        app.event("message")(self.on_message)
        app.command("/ask")(self.on_ask)
        app.action(re.compile(r"^qabot_feedback_(up|down)$"))(self.on_feedback)
        app.error(self.on_error)

    # -- middleware

    def ignore_duplicates(self, body: dict, next: Callable[[], Any]) -> Any:
        """Each event id once: HTTP retries (X-Slack-Retry-Num) and Socket Mode redeliveries reuse it."""
        event_id = body.get("event_id")
        if event_id and not self.seen.claim(("event", event_id)):
            log.info("ignoring a repeat of event %s (%s)", event_id, (body.get("event") or {}).get("type"))
            return BoltResponse(status=200, body="")
        return next()

    def ignore_bots_and_other_channels(self, body: dict, context: Any, next: Callable[[], Any]) -> Any:
        """Never answer a bot (this one included); answer only in allowed channels (DMs always)."""
        event = body.get("event") or {}
        if event and _is_bot_event(event, context.bot_user_id, context.bot_id):
            return BoltResponse(status=200, body="")
        channel = _channel_of(body)
        if channel and not self.allowed(channel):
            log.debug("ignoring %s in channel %s (not in allowed_channels)", _kind_of(body), channel)
            if body.get("command"):
                return BoltResponse(status=200, body={"response_type": "ephemeral", "text": NOT_ENABLED_HERE})
            return BoltResponse(status=200, body="")
        return next()

    def allowed(self, channel: str) -> bool:
        return not self.allowed_channels or channel.startswith("D") or channel in self.allowed_channels

    # -- listeners

    def on_app_mention(self, event: dict, context: Any, client: WebClient) -> None:
        self._on_user_message(event, context, client, mentioned=True)

    def on_message(self, event: dict, context: Any, client: WebClient) -> None:
        self._on_user_message(event, context, client, mentioned=False)

    def _on_user_message(self, event: dict, context: Any, client: WebClient, *, mentioned: bool) -> None:
        if event.get("subtype") not in ANSWERABLE_SUBTYPES or _is_bot_event(event, context.bot_user_id, context.bot_id):
            return
        channel, ts = event.get("channel"), event.get("ts")
        if not channel or not ts or self.seen.seen(("message", channel, ts)):
            return  # (the twin of a mention already being answered: skip the thread lookup)
        thread_ts = event.get("thread_ts")
        in_thread = bool(thread_ts) and thread_ts != ts
        text = event.get("text") or ""
        bot_user_id = context.bot_user_id
        mentioned = mentioned or bool(bot_user_id and f"<@{bot_user_id}" in text)
        is_dm = event.get("channel_type") == "im" or channel.startswith("D")

        if is_dm:
            reply_thread = thread_ts if in_thread else None  # a top-level DM is answered at the top level
        elif mentioned:
            reply_thread = thread_ts or ts
        elif in_thread:
            reply_thread = thread_ts
        else:
            return  # a plain channel message: not for us

        if reply_thread is not None and in_thread:
            thread = self._thread_context(client, context, channel, reply_thread, ts)
            if not (is_dm or mentioned or thread.bot_participated):
                return  # a thread the bot has not answered in
        elif reply_thread is None:
            thread = self.memory.get(channel, None) or ThreadContext(False, ())
        else:
            thread = ThreadContext(False, ())  # a new thread under a top-level mention

        if not self.seen.claim(("message", channel, ts)):
            log.debug("message %s/%s already being answered", channel, ts)
            return
        question = slack_to_plain(text, bot_user_id)
        self.memory.record(channel, reply_thread, question)
        log.info("answering %s in %s (user %s)", "a DM" if is_dm else "a mention" if mentioned else "a follow-up",
                 channel, event.get("user"))

        def post(message: Message) -> None:
            client.chat_postMessage(channel=channel, thread_ts=reply_thread, unfurl_links=False,
                                    unfurl_media=False, **message.as_kwargs())

        reacted = self._react(client, "add", channel, ts)
        try:
            self.answer_and_post(question, thread.history, post, where=f"{channel}/{reply_thread or ts}")
        finally:
            if reacted:
                self._react(client, "remove", channel, ts)

    def on_assistant_thread_started(self, event: dict, say: Callable, set_suggested_prompts: Callable) -> None:
        thread = event.get("assistant_thread") or {}
        if thread.get("channel_id") and thread.get("thread_ts"):
            self.memory.record(thread["channel_id"], thread["thread_ts"], "")  # the bot is in this thread
        say(**render_greeting(thread.get("user_id")).as_kwargs())
        try:
            set_suggested_prompts(prompts=self.prompts)
        except SlackClientError as exc:
            log.warning("could not set the assistant's suggested prompts: %s", _api_error(exc))

    def on_assistant_message(self, payload: dict, context: Any, client: WebClient, say: Callable,
                             set_status: Callable, set_title: Callable) -> None:
        channel, ts = payload.get("channel"), payload.get("ts")
        thread_ts = payload.get("thread_ts") or ts
        if not channel or not ts or payload.get("subtype") not in ANSWERABLE_SUBTYPES:
            return
        thread = self._thread_context(client, context, channel, thread_ts, ts)
        if not self.seen.claim(("message", channel, ts)):
            return
        question = slack_to_plain(payload.get("text") or "", context.bot_user_id)
        self.memory.record(channel, thread_ts, question)
        log.info("answering in the assistant panel %s (user %s)", channel, payload.get("user"))
        if not thread.history and question:
            self._quietly(set_title, question[:200], what="set the assistant thread title")
        self._quietly(set_status, WORKING_STATUS, what="set the assistant status")

        def post(message: Message) -> None:
            say(unfurl_links=False, unfurl_media=False, **message.as_kwargs())

        self.answer_and_post(question, thread.history, post, where=f"{channel}/{thread_ts}")

    def on_ask(self, ack: Callable, command: dict, context: Any) -> None:
        """``/ask``: acknowledge at once, then post the answer to the command's response_url."""
        question = slack_to_plain(command.get("text") or "", context.bot_user_id)
        if not question:
            ack(response_type="ephemeral", text=SLASH_USAGE)
            return
        ack(response_type="ephemeral", text=f"Searching the articles for “{escape_truncate(question, 300)}”…")
        response_url = command.get("response_url")
        if not response_url:
            log.error("/ask from %s came without a response_url; cannot answer", command.get("user_id"))
            return
        response_type = "ephemeral" if self.settings.slack.slash_ephemeral else "in_channel"
        log.info("answering /ask in %s (user %s)", command.get("channel_id"), command.get("user_id"))

        def post(message: Message) -> None:
            post_to_response_url(response_url, message, response_type=response_type)

        self.answer_and_post(question, (), post, where=f"/ask in {command.get('channel_id')}",
                             asked_by=command.get("user_id"), echo_question=True)

    def on_feedback(self, ack: Callable, body: dict, action: dict, client: WebClient) -> None:
        """A 👍/👎 click: acknowledge, append it to the feedback log, thank the user privately."""
        ack()
        feedback_id, vote = parse_feedback_value(action.get("value"))
        vote = vote or FEEDBACK_ACTIONS.get(action.get("action_id", ""), "up")
        user = (body.get("user") or {}).get("id")
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
        message = body.get("message") or {}
        message_ts = message.get("ts") or container.get("message_ts")
        try:
            self.feedback.record_vote(feedback_id=feedback_id, vote=vote, user=user, channel=channel,
                                      message_ts=message_ts, fallback_answer=message.get("text"))
            thanks = f"Thanks for the feedback ({'👍' if vote == 'up' else '👎'}): it was recorded."
        except OSError as exc:
            log.error("could not append to the feedback log %s: %s", self.feedback.path, exc, exc_info=True)
            thanks = "Sorry, I couldn't record your feedback. The error has been logged."
        log.info("feedback %s from %s on answer %s", vote, user, feedback_id)
        try:
            if body.get("response_url"):
                post_to_response_url(body["response_url"], Message(thanks), response_type="ephemeral")
            elif channel and user:
                client.chat_postEphemeral(channel=channel, user=user, text=thanks,
                                          thread_ts=message.get("thread_ts"))
        except Exception as exc:
            log.warning("could not thank %s for the feedback: %s", user, _api_error(exc))

    def on_error(self, error: Exception, body: dict) -> None:
        log.error("unhandled error in a Slack listener (%s): %s", _kind_of(body), _api_error(error), exc_info=error)

    # -- answering

    def ask(self, question: str, history: Sequence[str]) -> Answer:
        """The Answerer's answer, computed in the worker pool; AnswerTimeout past the time limit."""
        future = self.answers.submit(self.answerer.ask, question, tuple(history))
        try:
            return future.result(timeout=self.timeout_s)
        except FutureTimeout:
            self.answers.abandon(future)  # frees the worker for the next question
            raise AnswerTimeout() from None

    def answer_and_post(self, question: str, history: Sequence[str], post: Callable[[Message], None], *,
                        where: str, asked_by: str | None = None, echo_question: bool = False) -> Answer | None:
        """Answer `question` and `post` it; on any failure post an apology instead, and log why."""
        started = time.perf_counter()
        try:
            answer = self.ask(question, history)
        except AnswerTimeout:
            log.error("answering %r in %s timed out after %.1f s", question, where, self.timeout_s)
            self._post_apology(post, render_apology(timeout_s=self.timeout_s), where)
            return None
        except Exception as exc:
            log.error("answering %r in %s failed: %s", question, where, _api_error(exc), exc_info=True)
            self._post_apology(post, render_apology(), where)
            return None
        feedback_id = self.feedback.remember(answer)
        message = render_answer(answer, feedback_id=feedback_id, asked_by=asked_by, echo_question=echo_question)
        try:
            post(message)
        except Exception as exc:
            log.error("posting the answer to %r in %s failed: %s", question, where, _api_error(exc), exc_info=True)
            self._post_apology(post, render_apology(), where)
            return None
        log.info("answered in %s in %.0f ms (%s)", where, (time.perf_counter() - started) * 1000,
                 "abstained" if answer.abstained else f"{len(answer.citations)} passages")
        return answer

    def _post_apology(self, post: Callable[[Message], None], apology: Message, where: str) -> None:
        try:
            post(apology)
        except Exception as exc:
            log.error("could not post an apology in %s either: %s", where, _api_error(exc))

    def _thread_context(self, client: WebClient, context: Any, channel: str, thread_ts: str,
                        before_ts: str) -> ThreadContext:
        """Whether the bot answered in this thread, and the questions asked there before `before_ts`:
        from memory, else (after a restart) from conversations.replies."""
        known = self.memory.get(channel, thread_ts)
        if known is not None:
            return known
        if self.not_bot_threads.seen((channel, thread_ts)):
            return ThreadContext(False, ())
        try:
            response = client.conversations_replies(channel=channel, ts=thread_ts, limit=200)
        except Exception as exc:
            log.warning("could not read thread %s/%s: %s", channel, thread_ts, _api_error(exc))
            return ThreadContext(False, ())
        bot_user_id = context.bot_user_id
        found = from_replies(response.get("messages") or [], before_ts=before_ts, bot_user_id=bot_user_id,
                             bot_id=context.bot_id, to_question=lambda t: slack_to_plain(t, bot_user_id))
        if not found.bot_participated:
            self.not_bot_threads.claim((channel, thread_ts))
        return found

    def _react(self, client: WebClient, verb: str, channel: str, ts: str) -> bool:
        """Add or remove the 👀 "working" reaction; failures are logged, never fatal."""
        try:
            if verb == "add":
                client.reactions_add(channel=channel, timestamp=ts, name=WORKING_REACTION)
            else:
                client.reactions_remove(channel=channel, timestamp=ts, name=WORKING_REACTION)
            return True
        except Exception as exc:
            log.warning("could not %s the %s reaction on %s/%s: %s", verb, WORKING_REACTION, channel, ts,
                        _api_error(exc))
            return False

    @staticmethod
    def _quietly(call: Callable, *args: Any, what: str) -> None:
        try:
            call(*args)
        except Exception as exc:
            log.debug("could not %s: %s", what, _api_error(exc))

    def _document_titles(self) -> list[str]:
        index = getattr(self.answerer, "index", None)
        documents = getattr(index, "documents", None) or {}
        try:
            return [info.title for info in documents.values()]
        except Exception:
            return []

    # -- lifecycle

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
        if not self.wait_idle(grace_s):
            log.warning("shutting down with answers still in progress")
        self.listeners.shutdown(wait=True, cancel_futures=True, timeout=1.0)
        self.answers.shutdown(wait=True, cancel_futures=True, timeout=1.0)


def _bolt_error_reason(exc: BoltError) -> str:
    match = re.search(r"'error': '([a-z_]+)'", str(exc))
    return match.group(1) if match else "auth.test failed"


def _is_bot_event(event: Mapping, bot_user_id: str | None, bot_id: str | None) -> bool:
    """Messages from bots, this one or others (edits of them included)."""
    if event.get("type") not in ("message", "app_mention"):
        return False
    return bool(event.get("bot_id") or event.get("subtype") == "bot_message" or event.get("bot_profile")
                or is_from_bot(event, bot_user_id, bot_id))


def _channel_of(body: Mapping) -> str | None:
    event = body.get("event") or {}
    if event:
        return (event.get("channel") or (event.get("assistant_thread") or {}).get("channel_id")
                or (event.get("item") or {}).get("channel"))
    if body.get("command"):
        return body.get("channel_id")
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")


def _kind_of(body: Mapping) -> str:
    if body.get("event"):
        return f"event {body['event'].get('type')}"
    if body.get("command"):
        return f"command {body['command']}"
    return str(body.get("type") or "request")


def post_to_response_url(url: str, message: Message, *, response_type: str) -> None:
    """POST a message to a slash command's or action's response_url (with slack_sdk's retries)."""
    webhook = WebhookClient(url, timeout=15, retry_handlers=retry_handlers())
    response = webhook.send(text=message.text, blocks=message.blocks or None, response_type=response_type,
                            replace_original=False)
    if response.status_code != 200:
        # The URL itself is a credential for 30 minutes: never log it.
        raise RuntimeError(f"response_url answered HTTP {response.status_code}")


# --- public API ---------------------------------------------------------------------------------

def create_app(settings: Settings, answerer: Any, *, bot_token: str, signing_secret: str | None = None,
               api_url: str | None = None, client: WebClient | None = None, token_verification: bool = True,
               prompts: Sequence[dict] | None = None) -> App:
    """The bolt `App` answering with `answerer`.

    Without `signing_secret` requests are not verified: only for Socket Mode (where Slack's
    websocket is authenticated by the app token) — `make_http_server` refuses such an app.
    `runtime(app)` gives the `SlackBot` behind it (pools, memories, `close()`).
    """
    client = client or make_web_client(bot_token, api_url)
    try:
        bot = SlackBot(settings, answerer, client, signing_secret=signing_secret,
                       token_verification=token_verification, prompts=prompts)
    except (URLError, OSError, SlackClientError) as exc:
        raise SlackConfigError(f"cannot reach the Slack API at {client.base_url} ({_api_error(exc)})") from None
    return bot.app


class _EventsHandler(BaseHTTPRequestHandler):
    server_version = "qabot"
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        path, _, query = self.path.partition("?")
        if path != EVENTS_PATH:
            self._reply(404, b"not found\n", "text/plain")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_REQUEST_BYTES:
            self._reply(413, b"request too large\n", "text/plain")
            return
        body = self.rfile.read(length).decode("utf-8", errors="replace")
        headers: dict[str, list[str]] = {}
        for key, value in self.headers.items():
            headers.setdefault(key.lower(), []).append(value)
        try:
            response = self.server.app.dispatch(BoltRequest(body=body, query=query, headers=headers))  # type: ignore[attr-defined]
        except Exception as exc:
            log.error("could not handle a Slack request: %s", _api_error(exc), exc_info=True)
            self._reply(500, b"internal error\n", "text/plain")
            return
        payload = (response.body or "").encode("utf-8")
        self.send_response(response.status)
        for key, values in response.headers.items():
            if key.lower() == "content-length":
                continue
            for value in values:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.partition("?")[0] == HEALTH_PATH:
            self._reply(200, b"ok\n", "text/plain")
        else:
            self._reply(404, b"not found\n", "text/plain")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s %s", self.address_string(), format % args)


class EventsServer(ThreadingHTTPServer):
    """HTTP mode: Slack's Events API, slash commands and interactivity at ``/slack/events``."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # Slack can send bursts; the socketserver default backlog is 5

    def __init__(self, app: App, host: str, port: int) -> None:
        bot = _RUNTIMES.get(app)
        if bot is not None and not bot.verifies_requests:
            raise SlackConfigError("HTTP mode needs SLACK_SIGNING_SECRET (or set SLACK_APP_TOKEN for Socket Mode)")
        self.app = app
        super().__init__((host, port), _EventsHandler)

    @property
    def port(self) -> int:
        return self.server_address[1]


def make_http_server(app: App, host: str = "0.0.0.0", port: int = 3000) -> EventsServer:
    try:
        return EventsServer(app, host, port)
    except OSError as exc:
        raise SlackConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None


def serve(settings: Settings, answerer: Any, *, port: int | None = None, host: str = "0.0.0.0",
          environ: Mapping[str, str] | None = None, stop: threading.Event | None = None,
          ready: Callable[[dict], None] | None = None) -> None:
    """Run the bot until SIGTERM / Ctrl-C (or `stop` is set): Socket Mode if SLACK_APP_TOKEN is
    set, else HTTP on `port` (default settings.slack.port). `ready` is called once connected
    with ``{"mode": "socket" or "http", "port": N (HTTP), "app": the bolt App}``."""
    secrets = load_slack_secrets(environ)
    if not secrets.app_token and not secrets.signing_secret:
        raise SlackConfigError("set SLACK_APP_TOKEN (Socket Mode, no public URL needed) or SLACK_SIGNING_SECRET "
                               "(HTTP mode on --port): see README, \"Slack bot\"")
    stop = stop or threading.Event()
    redactor = SecretRedactor(secrets.values)
    handlers = logging.getLogger().handlers[:]
    for handler in handlers:
        handler.addFilter(redactor)
    restore = _install_signal_handlers(stop)
    app: App | None = None
    socket_handler = None
    server: EventsServer | None = None
    try:
        app = create_app(settings, answerer, bot_token=secrets.bot_token,
                         signing_secret=None if secrets.app_token else secrets.signing_secret,
                         api_url=secrets.api_url)
        if secrets.app_token:
            from slack_bolt.adapter.socket_mode.builtin import SocketModeHandler

            socket_handler = SocketModeHandler(app, secrets.app_token, concurrency=max(4, settings.slack.workers))
            try:
                socket_handler.connect()
            except SlackApiError as exc:
                raise SlackConfigError(f"Slack refused SLACK_APP_TOKEN for Socket Mode ({_api_error(exc)})") from None
            except (URLError, OSError) as exc:
                raise SlackConfigError(f"cannot open the Socket Mode connection ({_api_error(exc)})") from None
            log.info("qabot is connected to Slack in Socket Mode; Ctrl-C to stop")
            info: dict = {"mode": "socket", "app": app}
        else:
            server = make_http_server(app, host, settings.slack.port if port is None else port)
            threading.Thread(target=server.serve_forever, args=(0.1,), name="qabot-http", daemon=True).start()
            log.info("qabot is listening for Slack on http://%s:%d%s; Ctrl-C to stop", host, server.port, EVENTS_PATH)
            info = {"mode": "http", "port": server.port, "app": app}
        if ready is not None:
            ready(info)
        while not stop.wait(0.5):
            pass
        log.info("stopping: finishing answers in progress")
    finally:
        if socket_handler is not None:
            try:
                socket_handler.close()
            except Exception as exc:
                log.debug("closing the Socket Mode connection: %s", exc)
        if server is not None:
            server.shutdown()
            server.server_close()
        if app is not None:
            runtime(app).close(min(SHUTDOWN_GRACE_S, settings.slack.answer_timeout_s))
        restore()
        for handler in handlers:
            handler.removeFilter(redactor)
    log.info("qabot stopped")


def _install_signal_handlers(stop: threading.Event) -> Callable[[], None]:
    """SIGTERM and SIGINT set `stop` (only possible in the main thread); returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}

    def handle(signum: int, frame: Any) -> None:
        if stop.is_set():  # a second Ctrl-C / SIGTERM: stop waiting for answers in progress
            raise KeyboardInterrupt
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, handle)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore
