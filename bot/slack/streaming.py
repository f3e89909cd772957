"""Where an answer goes as it is produced: a streamed Slack message, or one message at the end.

`replies.answer_and_post` writes every answer into a `ReplySink`: ``append`` for each piece of the
answer's text as it is produced, then ``finish`` with the final rendering (or ``fail`` with an
apology). Two sinks:

- `PostedReply` posts the final rendering once (``chat.postMessage``, ``say``, a ``response_url``).
- `StreamedReply` streams into a thread with ``chat.startStream`` / ``chat.appendStream`` /
  ``chat.stopStream`` once text has been arriving for more than a moment
  (``[slack] stream_after_s``): an answer ready sooner is posted whole, as before. The final
  ``chat.stopStream`` adds the citations and the 👍/👎 buttons below the streamed text. If Slack
  or the installed slack_sdk lacks the streaming methods (``unknown_method``, a missing scope, an
  older SDK), the `Streamer` stops trying for the rest of the process and the answer goes to an
  `UpdatedReply` instead.
  slack_sdk's own `WebClient.chat_stream` / `ChatStream` does not fit here: it starts the stream
  on its first flush of a size buffer, with no way to wait `stream_after_s` first (so a quick
  answer is posted whole) or to hand the text so far to another sink when ``chat.startStream``
  is refused, and it does not cap the streamed text at STREAM_TEXT_LIMIT; the three calls it
  wraps are made here directly instead.
- `UpdatedReply`, where Slack cannot stream: the text so far is posted once it has been arriving
  for a moment, the message is edited (``chat.update``) about once a second as it grows, and the
  last edit puts in the whole answer with its citations and buttons.

Only an answerer that produces its text piece by piece feeds a stream: one that has
``ask_streaming`` (`StreamsAnswers`). The `Answerer` has it: with ``[llm] enabled`` a composed
answer's text streams as the LLM writes it; an extractive answer arrives whole and is posted
whole. When the final answer is not the text streamed (the LLM failed midway, or its reply failed
the grounding check, and the extractive answer stands in), ``finish`` stops the stream and
replaces it with the whole answer (``chat.update``): never half a message.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from ..answering.answer import Answer
from .blocks import Message, escape
from .client import api_error
from .question import Post

log = logging.getLogger(__name__)

# Streamed text is sent in pieces of at least this many characters (slack_sdk's own ChatStream
# buffers 256): fewer chat.appendStream calls, well inside Slack's per-method rate limits.
APPEND_CHARS = 256
# chat.startStream/appendStream take at most 12,000 characters of markdown_text (Slack's method
# reference); a streamed answer is cut there, which no answer this bot gives comes near.
STREAM_TEXT_LIMIT = 12_000
ELLIPSIS = "…"
# Where Slack cannot stream, a growing answer's message is edited at most this often (seconds):
# chat.update is a Tier 3 method (about 50 calls a minute per workspace).
UPDATE_EVERY_S = 1.0
# Errors that mean this workspace, app or token cannot stream at all (not a one-off failure).
STREAMING_UNAVAILABLE = frozenset({"unknown_method", "not_allowed_token_type", "missing_scope",
                                   "feature_not_enabled", "method_deprecated", "not_implemented"})
STREAM_METHODS = ("chat_startStream", "chat_appendStream", "chat_stopStream")


@runtime_checkable
class StreamsAnswers(Protocol):
    """An answerer that hands over its answer's text as it is produced (an LLM, token by token)."""

    def ask_streaming(self, question: str, history: Sequence[str], on_text: Callable[[str], None], *,
                      collections: Sequence[str] | None = None) -> Answer:
        """Like ``ask``, calling `on_text` with each new piece of the answer's text, in order
        (from the documents of `collections` alone when given)."""
        ...


class ReplySink(Protocol):
    """Receives one answer as it is produced (see the module docstring)."""

    streams: bool  # whether appended text can reach Slack before `finish`

    def append(self, text: str) -> None:
        """A new piece of the answer's plain text (any thread may call this)."""
        ...

    def finish(self, message: Message, details: Sequence[dict[str, Any]], text: str | None = None) -> None:
        """The final answer: `message` in full, or `details` (its blocks after the text) below a
        stream that already shows the text. `text` is the answer's plain text: when it is not what
        was streamed (the LLM failed midway and the extractive answer stands in), `message`
        replaces the stream."""
        ...

    def fail(self, message: Message) -> None:
        """The answer failed: show `message` (an apology) instead."""
        ...


class PostedReply:
    """The answer posted once it is complete; appended text is not shown before then."""

    streams = False

    def __init__(self, post: Post) -> None:
        self._post = post

    def append(self, text: str) -> None:
        pass

    def finish(self, message: Message, details: Sequence[dict[str, Any]], text: str | None = None) -> None:
        self._post(message)

    def fail(self, message: Message) -> None:
        self._post(message)


class Streamer:
    """Makes the sink for each reply, and remembers when Slack said it cannot stream."""

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self._unavailable: str | None = None
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self._unavailable is None

    def mark_unavailable(self, reason: str) -> None:
        with self._lock:
            first = self._unavailable is None
            self._unavailable = reason
        if first:
            log.warning("Slack message streaming is unavailable (%s): answers are posted whole", reason)

    def reply(self, client: WebClient, post: Post, *, channel: str, thread_ts: str | None,
              recipient_user: str | None = None, recipient_team: str | None = None) -> ReplySink:
        """A `StreamedReply` into `thread_ts`; an `UpdatedReply` there once Slack said it cannot
        stream; a `PostedReply` outside threads (Slack streams only thread replies: top-level
        DMs and ``/ask`` answers are posted whole)."""
        if thread_ts is None:
            return PostedReply(post)
        missing = [m for m in STREAM_METHODS if not callable(getattr(client, m, None))]
        if missing:
            self.mark_unavailable(f"slack_sdk lacks {', '.join(missing)}")
        if not self.available:
            return UpdatedReply(client, post, channel=channel, thread_ts=thread_ts, after_s=self.after_s)
        return StreamedReply(self, client, post, channel=channel, thread_ts=thread_ts,
                             recipient_user=recipient_user, recipient_team=recipient_team)


class StreamedReply:
    """One answer streamed into a thread (see the module docstring). Thread-safe: text arrives on
    the answer worker, the end on the listener thread, and an abandoned (timed-out) answer may
    still append after the end, which is ignored."""

    streams = True

    def __init__(self, streamer: Streamer, client: WebClient, post: Post, *, channel: str, thread_ts: str,
                 recipient_user: str | None, recipient_team: str | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._streamer = streamer
        self._client = client
        self._post = post
        self._channel = channel
        self._thread_ts = thread_ts
        self._recipient: dict[str, Any] = {k: v for k, v in (("recipient_user_id", recipient_user),
                                             ("recipient_team_id", recipient_team)) if v}
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._pending = ""  # text not yet sent to Slack
        self._raw = ""  # all the plain text appended, as the answerer produced it
        self._used = 0  # characters of text accepted so far (sent or pending)
        self._ts: str | None = None  # the streamed message, once started
        self._updater: UpdatedReply | None = None  # takes over when the stream could not start
        self._state = "waiting"  # waiting -> streaming | posting; streaming -> broken; any -> done | failed

    @property
    def ts(self) -> str | None:
        """The streamed message's ts (None until the stream started)."""
        return self._ts

    def append(self, text: str) -> None:
        with self._lock:
            if self._state == "posting" and self._updater is not None:
                self._updater.append(text)
                return
            if self._state in ("done", "failed", "posting", "broken") or not text:
                return
            self._raw += text
            self._take(text)
            if self._state == "waiting" and self._clock() - self._started >= self._streamer.after_s:
                self._start()
            elif self._state == "streaming" and len(self._pending) >= APPEND_CHARS:
                self._send_pending()

    def finish(self, message: Message, details: Sequence[dict[str, Any]], text: str | None = None) -> None:
        with self._lock:
            state, self._state = self._state, "done"
            try:
                if state == "posting" and self._updater is not None:
                    self._updater.finish(message, details, text)
                elif state in ("waiting", "posting"):
                    self._post(message)
                elif state == "streaming" and text is not None and text.strip() != self._raw.strip():
                    # Not the streamed text (an LLM outage midway): end the stream, then put the
                    # whole answer in its place, never leaving half a message.
                    self._stop([])
                    self._replace(message)
                elif state == "streaming" and self._stop(list(details)):
                    return
                elif state != "done":
                    self._replace(message)  # the stream broke: the complete answer replaces it
            except Exception:
                self._state = "failed"  # `fail` may still post an apology
                raise

    def fail(self, message: Message) -> None:
        with self._lock:
            state, self._state = self._state, "done"
            if state == "done" or (state in ("streaming", "broken") and self._stop(message.blocks)):
                return
            if state == "posting" and self._updater is not None:
                self._updater.fail(message)
                return
            self._post(message)

    # -- with the lock held ----------------------------------------------------------------------

    def _take(self, text: str) -> None:
        if self._used >= STREAM_TEXT_LIMIT:
            return  # already cut, with its ellipsis
        room = STREAM_TEXT_LIMIT - len(ELLIPSIS) - self._used
        piece = escape(text)
        if len(piece) > room:
            piece = piece[:max(room, 0)] + ELLIPSIS
            self._used = STREAM_TEXT_LIMIT
        else:
            self._used += len(piece)
        self._pending += piece

    def _start(self) -> None:
        try:
            response = self._client.chat_startStream(channel=self._channel, thread_ts=self._thread_ts,
                                                     markdown_text=self._pending, **self._recipient)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "")
            if error in STREAMING_UNAVAILABLE:
                self._streamer.mark_unavailable(error)
            else:
                log.warning("could not start streaming in %s: %s; posting the answer instead", self._channel,
                            api_error(exc))
            self._post_instead()
            return
        except Exception as exc:
            log.warning("could not start streaming in %s: %s; posting the answer instead", self._channel,
                        api_error(exc))
            self._post_instead()
            return
        self._ts = response.get("ts")
        self._pending = ""
        self._state = "streaming" if self._ts else "posting"

    def _post_instead(self) -> None:
        """The stream could not start: the text so far is posted now and edited as it grows."""
        self._state = "posting"
        self._updater = UpdatedReply(self._client, self._post, channel=self._channel, thread_ts=self._thread_ts,
                                     after_s=0.0)
        self._updater.append(self._raw)

    def _send_pending(self) -> None:
        try:
            self._client.chat_appendStream(channel=self._channel, ts=_known(self._ts), markdown_text=self._pending)
            self._pending = ""
        except Exception as exc:
            log.warning("streaming into %s/%s failed: %s", self._channel, self._ts, api_error(exc))
            self._state = "broken"

    def _stop(self, blocks: list[dict[str, Any]]) -> bool:
        """End the stream with the text still pending and `blocks` below it; False on failure."""
        try:
            self._client.chat_stopStream(channel=self._channel, ts=_known(self._ts), markdown_text=self._pending or None,
                                         blocks=blocks or None)
            self._pending = ""
            return True
        except Exception as exc:
            log.warning("could not finish the stream %s/%s: %s", self._channel, self._ts, api_error(exc))
            return False

    def _replace(self, message: Message) -> None:
        """Put the complete answer in place of a broken stream; raises when even that fails."""
        self._client.chat_update(channel=self._channel, ts=_known(self._ts), **message.as_kwargs())


class UpdatedReply:
    """One answer shown as it grows in a thread where Slack cannot stream: the text so far is
    posted (``chat.postMessage``) once it has been arriving for `after_s`, edited (``chat.update``)
    at most every UPDATE_EVERY_S while it grows, and the last edit is the whole answer with its
    citations and buttons. An answer ready sooner is posted whole, once. Thread-safe, like
    `StreamedReply`."""

    streams = True

    def __init__(self, client: WebClient, post: Post, *, channel: str, thread_ts: str, after_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._post = post
        self._channel = channel
        self._thread_ts = thread_ts
        self._after_s = after_s
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._raw = ""
        self._ts: str | None = None  # the posted message, once the text so far was posted
        self._edited = 0.0  # when it was last posted or edited
        self._state = "waiting"  # waiting -> shown | broken; any -> done | failed

    @property
    def ts(self) -> str | None:
        return self._ts

    def append(self, text: str) -> None:
        with self._lock:
            if self._state not in ("waiting", "shown") or not text:
                return
            self._raw += text
            now = self._clock()
            if self._state == "waiting" and now - self._started >= self._after_s:
                self._show(now)
            elif self._state == "shown" and now - self._edited >= UPDATE_EVERY_S:
                self._edit(now)

    def finish(self, message: Message, details: Sequence[dict[str, Any]], text: str | None = None) -> None:
        with self._lock:
            state, self._state = self._state, "done"
            try:
                if state == "done":
                    return
                if self._ts is None:
                    self._post(message)
                else:
                    self._client.chat_update(channel=self._channel, ts=self._ts, **message.as_kwargs())
            except Exception:
                self._state = "failed"  # `fail` may still show an apology
                raise

    def fail(self, message: Message) -> None:
        with self._lock:
            state, self._state = self._state, "done"
            if state == "done":
                return
            if self._ts is not None:
                try:
                    self._client.chat_update(channel=self._channel, ts=self._ts, **message.as_kwargs())
                    return
                except Exception as exc:
                    log.warning("could not edit %s/%s: %s", self._channel, self._ts, api_error(exc))
            self._post(message)

    # -- with the lock held ----------------------------------------------------------------------

    def _text(self) -> str:
        piece = escape(self._raw)
        return piece if len(piece) <= STREAM_TEXT_LIMIT else piece[:STREAM_TEXT_LIMIT - 1] + ELLIPSIS

    def _show(self, now: float) -> None:
        try:
            response = self._client.chat_postMessage(channel=self._channel, thread_ts=self._thread_ts,
                                                     text=self._text(), unfurl_links=False, unfurl_media=False)
        except Exception as exc:
            log.warning("could not post the answer so far in %s: %s; posting it whole", self._channel,
                        api_error(exc))
            self._state = "broken"
            return
        self._ts = response.get("ts")
        self._edited = now
        self._state = "shown" if self._ts else "broken"

    def _edit(self, now: float) -> None:
        self._edited = now
        try:
            self._client.chat_update(channel=self._channel, ts=_known(self._ts), text=self._text())
        except Exception as exc:  # the next edit, or the last one, tries again
            log.warning("could not edit %s/%s: %s", self._channel, self._ts, api_error(exc))


def _known(ts: str | None) -> str:
    """The message's ts, in the calls made only once it was started or posted."""
    assert ts is not None, "the message was not started or posted"
    return ts
