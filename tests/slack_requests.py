"""The requests Slack sends, and the bot under test receiving them over real HTTP.

Payload builders for events, commands and button clicks, signed as Slack signs them;
`BotHarness` runs the real bolt app on a real port in HTTP mode against the Web API stand-in
(slack_standin.py); Answerer wrappers that spy on, block or fail the real Answerer; and the
`slack_settings` / `make_bot` fixtures.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Iterable

import pytest

from .slack_standin import APP_ID, BOT_ID, BOT_USER_ID, SIGNING_SECRET, TEAM_ID, USER, Call, SlackStandIn, new_ts

def signature_headers(body: str, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """X-Slack-Request-Timestamp and X-Slack-Signature, as Slack computes them (v0 HMAC-SHA256)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    base = f"v0:{timestamp}:{body}".encode("utf-8")
    digest = hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}


def http_post(url: str, body: str, headers: dict[str, str], timeout: float = 15.0) -> tuple[int, str, float]:
    """POST; returns (status, body, seconds taken)."""
    request = urllib.request.Request(url, data=body.encode("utf-8"), headers=headers, method="POST")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8"), time.monotonic() - started
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8"), time.monotonic() - started


def event_body(event: dict, event_id: str | None = None) -> dict:
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
    }


def mention_event(question: str, *, channel: str = "C0GENERAL", ts: str | None = None,
                  thread_ts: str | None = None, user: str = USER) -> dict:
    event = {"type": "app_mention", "user": user, "text": f"<@{BOT_USER_ID}> {question}",
             "ts": ts or new_ts(), "channel": channel, "event_ts": None}
    event["event_ts"] = event["ts"]
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def message_event(text: str, *, channel: str = "C0GENERAL", ts: str | None = None, thread_ts: str | None = None,
                  user: str | None = USER, channel_type: str = "channel", **extra: Any) -> dict:
    event = {"type": "message", "text": text, "ts": ts or new_ts(), "channel": channel,
             "channel_type": channel_type}
    event["event_ts"] = event["ts"]
    if user:
        event["user"] = user
    if thread_ts:
        event["thread_ts"] = thread_ts
    event.update(extra)
    return event


def twin_of(mention: dict) -> dict:
    """The `message` event Slack also sends for a channel @mention (same ts, other event)."""
    return message_event(mention["text"], channel=mention["channel"], ts=mention["ts"],
                         thread_ts=mention.get("thread_ts"), user=mention["user"])


def command_body(text: str, response_url: str, *, channel: str = "C0GENERAL", user: str = USER) -> dict[str, str]:
    return {"token": "legacy-verification-token", "team_id": TEAM_ID, "team_domain": "qabot-test",
            "channel_id": channel, "channel_name": "general", "user_id": user, "user_name": "asker",
            "command": "/ask", "text": text, "api_app_id": APP_ID, "response_url": response_url,
            "trigger_id": "1.2.3"}


def feedback_click(post: Call, vote: str, response_url: str, *, user: str = USER) -> dict:
    """The block_actions payload Slack sends when `user` clicks 👍/👎 on the posted answer."""
    buttons = next(b for b in post.blocks() if b.get("type") == "actions")
    button = next(e for e in buttons["elements"] if e["action_id"].endswith(vote))
    ts = post.params.get("ts") or new_ts()
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "asker", "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": ts, "channel_id": post.params["channel"],
                      "is_ephemeral": False},
        "trigger_id": "1.2.3",
        "team": {"id": TEAM_ID, "domain": "qabot-test"},
        "channel": {"id": post.params["channel"], "name": "general"},
        "message": {"type": "message", "ts": ts, "text": post.params.get("text"), "bot_id": BOT_ID,
                    "thread_ts": post.params.get("thread_ts")},
        "response_url": response_url,
        "actions": [{"type": "button", "action_id": button["action_id"], "block_id": buttons.get("block_id"),
                     "value": button["value"], "action_ts": str(time.time())}],
    }


class BotHarness:
    """The real app (create_bot) served over real HTTP on 127.0.0.1, and a signed-request client."""

    def __init__(self, bot: Any, server: Any) -> None:
        self.app = bot.app
        self.bot = bot
        self.server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="qabot-test-http",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/slack/events"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.bot.close(grace_s=5.0)

    def post_signed(self, body: str, content_type: str, *, secret: str = SIGNING_SECRET,
                    timestamp: int | None = None, headers: dict[str, str] | None = None) -> tuple[int, str, float]:
        all_headers = {"Content-Type": content_type, **signature_headers(body, secret, timestamp), **(headers or {})}
        return http_post(self.url, body, all_headers)

    def send_event(self, event: dict, *, event_id: str | None = None, headers: dict[str, str] | None = None,
                   **kwargs: Any) -> tuple[int, str, dict]:
        """POST an Events API payload; returns (status, response body, the payload sent)."""
        payload = event_body(event, event_id)
        status, text, _ = self.post_signed(json.dumps(payload), "application/json", headers=headers, **kwargs)
        return status, text, payload

    def send_command(self, text: str, response_url: str, **kwargs: Any) -> tuple[int, str, float]:
        return self.post_signed(urllib.parse.urlencode(command_body(text, response_url, **kwargs)),
                                "application/x-www-form-urlencoded")

    def send_action(self, payload: dict) -> tuple[int, str, float]:
        return self.post_signed(urllib.parse.urlencode({"payload": json.dumps(payload)}),
                                "application/x-www-form-urlencoded")

    def wait_idle(self, timeout: float = 15.0) -> None:
        assert self.bot.wait_idle(timeout), "the bot was still busy"


def start_http_bot(standin: SlackStandIn, settings: Any, answerer: Any, **kwargs: Any) -> BotHarness:
    from bot.slack.app import create_bot
    from bot.slack.server import make_http_server

    bot = create_bot(settings, answerer, bot_token=standin.bot_token, signing_secret=SIGNING_SECRET,
                     api_url=standin.api_url, **kwargs)
    return BotHarness(bot, make_http_server(bot, "127.0.0.1", 0))


# --- Answerer wrappers (the real Answerer inside) -----------------------------------------------------

class SpyAnswerer:
    """Delegates to the real Answerer and records each (question, history)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.index = getattr(real, "index", None)
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self._lock = threading.Lock()

    def ask(self, question: str, history: Iterable[str] = ()) -> Any:
        with self._lock:
            self.calls.append((question, tuple(history)))
        return self.real.ask(question, history)


class BlockingAnswerer(SpyAnswerer):
    """Blocks every ask until `release` is set, then answers with the real Answerer."""

    def __init__(self, real: Any) -> None:
        super().__init__(real)
        self.started = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()

    def ask(self, question: str, history: Iterable[str] = ()) -> Any:
        self.started.set()
        self.release.wait(30)
        try:
            return super().ask(question, history)
        finally:
            self.finished.set()


class FailingAnswerer(SpyAnswerer):
    """Raises `error` on every ask."""

    def __init__(self, real: Any, error: BaseException) -> None:
        super().__init__(real)
        self.error = error

    def ask(self, question: str, history: Iterable[str] = ()) -> Any:
        with self._lock:
            self.calls.append((question, tuple(history)))
        raise self.error


@pytest.fixture
def slack_settings(settings, tmp_path):
    """The default settings with a private feedback log and state database."""
    return settings.replace("paths", feedback_log=tmp_path / "feedback.jsonl", state_db=tmp_path / "state.sqlite3")


@pytest.fixture
def make_bot(standin, slack_settings):
    """make_bot(answerer, settings=None) -> a running `BotHarness` (closed after the test)."""
    harnesses: list[BotHarness] = []

    def make(answerer: Any, settings: Any = None, **kwargs: Any) -> BotHarness:
        harness = start_http_bot(standin, settings or slack_settings, answerer, **kwargs)
        harnesses.append(harness)
        return harness

    yield make
    for harness in harnesses:
        harness.close()
