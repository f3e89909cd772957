"""The benchmark's Slack path: a signed Events API request in, ``chat.postMessage`` out.

The bench measures the product, so it needs only the smallest Slack it can talk to: a Web API on
127.0.0.1 that answers the calls the bot makes while answering a mention (``auth.test``,
``reactions.add/remove``, ``conversations.replies``, ``chat.postMessage``) and notes when each
post arrives. The test suite's stand-in (tests/slack_standin.py, with tests/slack_socket.py) also fails on
demand, plays Socket Mode and records every call; the bench needs none of that and does not import the tests.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BOT_TOKEN = "xoxb-111-222-qabotBENCHbotTOKEN"
SIGNING_SECRET = "qabotBENCHsigningSECRET0123456789"
TEAM_ID, APP_ID, BOT_USER_ID, BOT_ID, USER = "T0BENCH", "A0BENCH", "UQABOT", "BQABOT", "U0ASKER"
_ts = itertools.count(1)


def new_ts() -> str:
    return f"{int(time.time())}.{next(_ts):06d}"


class WebApi:
    """Slack's Web API, as far as answering a mention needs it; `wait_post` returns arrival times."""

    def __init__(self) -> None:
        self._posts: dict[str, float] = {}  # thread_ts -> time.monotonic() the post arrived
        self._cond = threading.Condition()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8") if length else ""
                params = json.loads(raw) if "json" in self.headers.get("Content-Type", "") and raw else {}
                if not params and raw:
                    params = {k: v[-1] for k, v in urllib.parse.parse_qs(raw).items()}
                body = json.dumps(api._answer(self.path.rsplit("/", 1)[-1], params)).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def api_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/"

    def _answer(self, method: str, params: dict) -> dict:
        if method == "auth.test":
            return {"ok": True, "url": "https://bench.slack.com/", "team": "Bench", "user": "qabot",
                    "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID}
        if method == "chat.postMessage":
            with self._cond:
                self._posts[params.get("thread_ts") or ""] = time.monotonic()
                self._cond.notify_all()
            return {"ok": True, "channel": params.get("channel"), "ts": new_ts()}
        if method == "conversations.replies":
            return {"ok": True, "messages": [], "has_more": False}
        return {"ok": True}

    def wait_post(self, thread_ts: str, timeout: float = 30.0) -> float:
        """When the answer to the message `thread_ts` was posted (time.monotonic())."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while thread_ts not in self._posts:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RuntimeError(f"no chat.postMessage for {thread_ts} within {timeout:.0f} s")
                self._cond.wait(remaining)
            return self._posts[thread_ts]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class HttpBot:
    """The real bolt app in HTTP mode on 127.0.0.1, sent requests signed the way Slack signs them."""

    def __init__(self, api: WebApi, settings: Any, answerer: Any) -> None:
        from bot.slack.app import create_bot
        from bot.slack.server import make_http_server

        self.bot = create_bot(settings, answerer, bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET,
                              api_url=api.api_url)
        self.server = make_http_server(self.bot, "127.0.0.1", 0)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.port}/slack/events"

    def mention(self, question: str) -> tuple[str, int]:
        """Send an @mention event; returns its ts (the answer's thread) and the HTTP status."""
        ts = new_ts()
        event = {"type": "app_mention", "user": USER, "text": f"<@{BOT_USER_ID}> {question}",
                 "ts": ts, "event_ts": ts, "channel": "C0BENCH"}
        body = json.dumps({"team_id": TEAM_ID, "api_app_id": APP_ID, "event": event, "type": "event_callback",
                           "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}", "event_time": int(time.time()),
                           "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}]})
        stamp = str(int(time.time()))
        signature = hmac.new(SIGNING_SECRET.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
        request = urllib.request.Request(self.url, data=body.encode("utf-8"), method="POST", headers={
            "Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": f"v0={signature}"})
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return ts, response.status
        except urllib.error.HTTPError as exc:
            return ts, exc.code

    def wait_idle(self) -> None:
        if not self.bot.wait_idle(15.0):
            raise RuntimeError("the bot was still busy")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.bot.close(grace_s=5.0)
