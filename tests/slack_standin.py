"""A stand-in for Slack in tests: its Web API on 127.0.0.1.

`SlackStandIn` is a real HTTP server answering the Web API methods the bot calls (``auth.test``,
``chat.postMessage``, ``chat.postEphemeral``, ``reactions.add/remove``, ``conversations.replies``,
``apps.connections.open``, ``assistant.threads.*``, ``users.info``, ``users.conversations`` (of
``memberships``), ``chat.startStream`` /
``appendStream`` / ``stopStream``, ``views.publish``, ``views.open``) and ``response_url`` POSTs. It records every
call (method, parameters, raw body, the token used) and can be told to fail (HTTP 500, 429 with
Retry-After, delays), or to lack methods (``unsupported``: ``unknown_method``, as a workspace
without them answers). Messages the bot posts or streams are stored, so ``conversations.replies``
answers with a real thread; published Home views are kept per user (``views``), opened modals in
order (``modals``).

Slack's side of Socket Mode is in slack_socket.py; the requests Slack sends (signed events,
commands, actions) and the bot under test over HTTP are in slack_requests.py.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest

BOT_TOKEN = "xoxb-111-222-qabotTESTbotTOKENsecret"
APP_TOKEN = "xapp-1-A0TEST-333-qabotTESTappTOKENsecret"
SIGNING_SECRET = "qabotTESTsigningSECRET0123456789abcdef"
SECRETS = (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET)

TEAM_ID = "T0TEST"
APP_ID = "A0TEST"
BOT_USER_ID = "UQABOT"
BOT_ID = "BQABOT"
USER = "U0ASKER"

_ts_counter = itertools.count(1)


def new_ts() -> str:
    """A fresh, increasing Slack message timestamp."""
    return f"{1_700_000_000 + next(_ts_counter)}.{next(_ts_counter) % 1_000_000:06d}"


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01,
               message: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {message}")
        time.sleep(interval)


# --- the Web API stand-in --------------------------------------------------------------------------

@dataclass
class Call:
    method: str  # Web API method, or "response_url"
    params: dict[str, Any]
    raw_body: str
    token: str | None  # from the Authorization header
    headers: dict[str, str]  # without Authorization
    path: str
    status: int = 200
    at: float = field(default_factory=time.monotonic)

    def text_and_blocks(self) -> str:
        """Everything user-visible in a message call, as one string (text + blocks JSON)."""
        blocks = self.params.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except ValueError:
                pass
        return f"{self.params.get('text', '')}\n{json.dumps(blocks, ensure_ascii=False) if blocks else ''}"

    def blocks(self) -> list[dict]:
        blocks = self.params.get("blocks") or []
        return json.loads(blocks) if isinstance(blocks, str) else blocks


@dataclass
class Failure:
    status: int = 500
    times: int = 1
    retry_after: int | None = None
    delay: float = 0.0
    error: str | None = None  # an {"ok": false, "error": ...} answer with HTTP 200


class SlackStandIn:
    def __init__(self, bot_token: str = BOT_TOKEN, app_token: str = APP_TOKEN) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self._calls: list[Call] = []
        self._failures: dict[str, list[Failure]] = {}
        self._messages: dict[str, list[dict]] = {}  # channel -> messages
        self._cond = threading.Condition()
        self.socket_url: str | None = None
        self.unsupported: set[str] = set()  # methods answered with unknown_method
        self._reactions: set[tuple[str, str, str]] = set()  # (channel, ts, name) the bot reacted with
        self.views: dict[str, dict] = {}  # user id -> the Home view last published for them
        self._files: dict[str, bytes] = {}  # path -> a shared file's bytes (Slack's url_private)
        self.modals: list[dict] = []  # the modals views.open opened, in order
        self._streams: dict[tuple[str, str], dict] = {}  # (channel, ts) -> a message still streaming
        self.memberships: dict[str, list[str]] = {}  # user id -> the channels users.conversations lists
        self._slowed: dict[int, tuple[Call, float]] = {}  # calls held by a `fail(delay=...)` now, since when
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                standin._handle(self)

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                import sys

                if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                    return  # the client gave up (a timeout test): not the stand-in's error
                super().handle_error(request, client_address)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="slack-standin",
                                        daemon=True)
        self._thread.start()

    # -- addresses

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, name: str | None = None) -> str:
        return f"{self.base_url}/response/{name or uuid.uuid4().hex[:12]}"

    def add_file(self, name: str, data: bytes) -> str:
        """Serve `data` as a shared file (to the bot token only, as Slack does); its url_private."""
        path = f"/files-pri/{TEAM_ID}-F{len(self._files) + 1}/{name}"
        with self._cond:
            self._files[path] = data
        return self.base_url + path

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "SlackStandIn":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- control

    def fail(self, method: str, *, status: int = 500, times: int = 1, retry_after: int | None = None,
             delay: float = 0.0, error: str | None = None) -> None:
        """Make the next `times` calls of `method` fail: HTTP `status` (with Retry-After), or
        HTTP 200 with ``{"ok": false, "error": error}``; `delay` alone makes them slow successes."""
        with self._cond:
            if error is not None or (delay and status == 500):
                status = 200  # an {"ok": false} answer, or just a slow success
            self._failures.setdefault(method, []).append(Failure(status, times, retry_after, delay, error))

    def add_message(self, channel: str, ts: str, text: str, *, user: str | None = USER,
                    thread_ts: str | None = None, bot_id: str | None = None) -> dict:
        """Put a message in the stand-in's history (what conversations.replies returns)."""
        message = {"type": "message", "ts": ts, "text": text}
        if user:
            message["user"] = user
        if thread_ts:
            message["thread_ts"] = thread_ts
        if bot_id:
            message["bot_id"] = bot_id
        with self._cond:
            self._messages.setdefault(channel, []).append(message)
        return message

    # -- inspection

    def calls(self, method: str | None = None, where: Callable[[Call], bool] | None = None) -> list[Call]:
        with self._cond:
            return [c for c in self._calls
                    if (method is None or c.method == method) and c.status == 200 and (where is None or where(c))]

    def all_calls(self) -> list[Call]:
        """Every call, failed ones included."""
        with self._cond:
            return list(self._calls)

    def wait_for(self, method: str, count: int = 1, timeout: float = 15.0,
                 where: Callable[[Call], bool] | None = None) -> list[Call]:
        """Wait until at least `count` successful calls of `method` (matching `where`) arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [c for c in self._calls if c.method == method and c.status == 200
                         and (where is None or where(c))]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out waiting for {count} {method} call(s); got {len(found)}: "
                                         f"{[c.method for c in self._calls]}")
                self._cond.wait(remaining)

    def slowed(self, method: str) -> list[tuple[Call, float]]:
        """Calls of `method` a `fail(delay=...)` is holding back right now, each with the
        `time.monotonic()` it arrived at: the caller is still waiting for them."""
        with self._cond:
            return [(call, since) for call, since in self._slowed.values() if call.method == method]

    def reactions(self) -> set[tuple[str, str, str]]:
        """(channel, ts, name) of the bot's reactions on messages now."""
        with self._cond:
            return set(self._reactions)

    def posts(self, channel: str | None = None) -> list[Call]:
        return self.calls("chat.postMessage", where=lambda c: channel is None or c.params.get("channel") == channel)

    # -- serving

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length).decode("utf-8") if length else ""
        params: dict[str, Any] = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query).items()}
        content_type = request.headers.get("Content-Type", "")
        if raw:
            if "json" in content_type:
                try:
                    params.update(json.loads(raw))
                except ValueError:
                    pass
            else:
                params.update({k: v[-1] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()})
        auth = request.headers.get("Authorization") or ""
        token = auth[7:] if auth.startswith("Bearer ") else None
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        if parsed.path.startswith("/api/"):
            method = parsed.path[len("/api/"):]
        elif parsed.path.startswith("/response/"):
            method = "response_url"
        else:
            method = parsed.path
        call = Call(method, params, raw, token, headers, parsed.path)
        if parsed.path.startswith("/files-pri/"):
            with self._cond:
                data = self._files.get(parsed.path)
            call.method = "file"
            call.status = 200 if data is not None and token == self.bot_token else 404
            self._record(call)
            request.send_response(call.status)
            request.send_header("Content-Type", "application/octet-stream")
            request.send_header("Content-Length", str(len(data or b"")))
            request.end_headers()
            request.wfile.write(data if call.status == 200 and data else b"")
            return

        with self._cond:
            failure = None
            queued = self._failures.get(method)
            if queued:
                failure = queued[0]
                failure.times -= 1
                if failure.times <= 0:
                    queued.pop(0)
        if failure is not None and failure.delay:
            with self._cond:
                self._slowed[id(call)] = (call, time.monotonic())
            try:
                time.sleep(failure.delay)
            finally:
                with self._cond:
                    self._slowed.pop(id(call), None)
        if failure is not None and failure.status != 200:
            call.status = failure.status
            extra = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            body = {"ok": False, "error": "ratelimited" if failure.status == 429 else "internal_error"}
            self._record(call)
            self._send(request, failure.status, body, extra)
            return
        if failure is not None and failure.error:
            self._record(call)
            self._send(request, 200, {"ok": False, "error": failure.error})
            return

        body = self._answer(method, params, token)
        self._record(call)
        if method == "response_url":
            self._send(request, 200, "ok")
        else:
            self._send(request, 200, body)

    def _record(self, call: Call) -> None:
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()

    def _answer(self, method: str, params: dict, token: str | None) -> dict | str:
        if method == "response_url":
            return "ok"
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            return {"ok": False, "error": "invalid_auth"}
        if method in self.unsupported:
            return {"ok": False, "error": "unknown_method"}
        if method.startswith("chat.") and method.endswith("Stream"):
            return self._stream(method, params)
        if method == "views.publish":
            return self._publish(params)
        if method == "views.open":
            return self._open(params)
        if method == "auth.test":
            return {"ok": True, "url": "https://qabot-test.slack.com/", "team": "Qabot Test", "user": "qabot",
                    "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}
        if method == "chat.postMessage":
            ts = new_ts()
            channel = params.get("channel")
            message = self.add_message(channel, ts, params.get("text", ""), user=BOT_USER_ID,
                                       thread_ts=params.get("thread_ts"), bot_id=BOT_ID)
            return {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": new_ts()}
        if method == "conversations.replies":
            channel, ts = params.get("channel"), params.get("ts")
            with self._cond:
                thread = [m for m in self._messages.get(channel, [])
                          if m["ts"] == ts or m.get("thread_ts") == ts]
            thread.sort(key=lambda m: float(m["ts"]))
            return {"ok": True, "messages": thread, "has_more": False}
        if method == "apps.connections.open":
            if not self.socket_url:
                return {"ok": False, "error": "no_socket_mode_server"}
            return {"ok": True, "url": self.socket_url}
        if method == "users.conversations":  # the channels a user is in, 200 a page at most
            with self._cond:
                channels = list(self.memberships.get(params.get("user") or "", []))
            start = int(params.get("cursor") or 0)
            limit = min(int(params.get("limit") or 100), 200)
            page = channels[start:start + limit]
            following = str(start + limit) if start + limit < len(channels) else ""
            return {"ok": True, "channels": [{"id": c, "is_channel": True} for c in page],
                    "response_metadata": {"next_cursor": following}}
        if method == "users.info":
            return {"ok": True, "user": {"id": params.get("user"), "name": "asker", "is_bot": False}}
        if method == "chat.update":  # the stored message takes the new text and blocks, as in Slack
            blocks = params.get("blocks") or []
            with self._cond:
                for message in self._messages.get(params.get("channel"), []):
                    if message["ts"] == params.get("ts"):
                        message["text"] = params.get("text", "")
                        message["blocks"] = json.loads(blocks) if isinstance(blocks, str) else blocks
            return {"ok": True, "channel": params.get("channel"), "ts": params.get("ts")}
        if method in ("reactions.add", "reactions.remove"):  # once per user and name, as in Slack
            reaction = (params.get("channel"), params.get("timestamp"), params.get("name"))
            with self._cond:
                present = reaction in self._reactions
                if method == "reactions.add" and present:
                    return {"ok": False, "error": "already_reacted"}
                if method == "reactions.remove" and not present:
                    return {"ok": False, "error": "no_reaction"}
                (self._reactions.add if method == "reactions.add" else self._reactions.discard)(reaction)
            return {"ok": True}
        if method == "conversations.history":  # the top level, newest first, after `oldest`
            channel, oldest = params.get("channel"), float(params.get("oldest") or 0)
            with self._cond:
                top = [m for m in self._messages.get(channel, [])
                       if float(m["ts"]) > oldest and m.get("thread_ts") in (None, m["ts"])]
            top.sort(key=lambda m: float(m["ts"]), reverse=True)
            return {"ok": True, "messages": top[:int(params.get("limit") or 100)], "has_more": False}
        if method in ("assistant.threads.setStatus",
                      "assistant.threads.setSuggestedPrompts", "assistant.threads.setTitle"):
            return {"ok": True}
        return {"ok": False, "error": "unknown_method"}

    def _stream(self, method: str, params: dict) -> dict:
        """chat.startStream / appendStream / stopStream, with the checks Slack documents: a
        stream is a thread reply, in a channel it names its recipient, text is at most 12,000
        characters a call, and only a message still streaming takes more."""
        channel, text = params.get("channel"), params.get("markdown_text") or ""
        if not channel or len(text) > 12_000:
            return {"ok": False, "error": "invalid_arguments"}
        if method == "chat.startStream":
            if not params.get("thread_ts"):
                return {"ok": False, "error": "invalid_arguments"}
            if channel[0] in "CG" and not (params.get("recipient_user_id") and params.get("recipient_team_id")):
                return {"ok": False, "error": "invalid_arguments"}
            ts = new_ts()
            message = self.add_message(channel, ts, text, user=BOT_USER_ID, thread_ts=params["thread_ts"],
                                       bot_id=BOT_ID)
            with self._cond:
                self._streams[(channel, ts)] = message
            return {"ok": True, "channel": channel, "ts": ts}
        if method not in ("chat.appendStream", "chat.stopStream"):
            return {"ok": False, "error": "unknown_method"}
        with self._cond:
            message = self._streams.get((channel, params.get("ts")))
            if message is None:
                return {"ok": False, "error": "message_not_in_streaming_state"}
            blocks = params.get("blocks") or []
            blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
            if len(blocks) > 50:  # stopStream's blocks (rendered below the text): at most 50
                return {"ok": False, "error": "invalid_arguments"}
            message["text"] += text
            if method == "chat.stopStream":
                del self._streams[(channel, params["ts"])]
                if blocks:
                    message["blocks"] = blocks
        return {"ok": True, "channel": channel, "ts": params.get("ts")}

    def _publish(self, params: dict) -> dict:
        """views.publish of a Home tab: Slack refuses a view that is not ``home`` or holds more
        than 100 blocks."""
        view = params.get("view")
        view = json.loads(view) if isinstance(view, str) else view
        if not params.get("user_id") or not isinstance(view, dict) or view.get("type") != "home" \
                or len(view.get("blocks") or []) > 100:
            return {"ok": False, "error": "invalid_arguments"}
        with self._cond:
            self.views[params["user_id"]] = view
        return {"ok": True, "view": {"id": "V0HOME", "type": "home", **view}}

    def _open(self, params: dict) -> dict:
        """views.open of a modal, with the checks Slack documents: a trigger_id, a ``modal`` view
        with a plain_text title of at most 24 characters, at most 100 blocks, and section and
        context texts within their caps."""
        view = params.get("view")
        view = json.loads(view) if isinstance(view, str) else view
        if not params.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        title = (view or {}).get("title") or {}
        blocks = (view or {}).get("blocks") or []
        texts = [b["text"]["text"] for b in blocks if isinstance(b.get("text"), dict)]
        texts += [e.get("text", "") for b in blocks for e in b.get("elements", []) if b.get("type") == "context"]
        if not isinstance(view, dict) or view.get("type") != "modal" or title.get("type") != "plain_text" \
                or not 0 < len(title.get("text", "")) <= 24 or len(blocks) > 100 \
                or any(len(t) > 3000 for t in texts):
            return {"ok": False, "error": "invalid_arguments"}
        with self._cond:
            self.modals.append(view)
        return {"ok": True, "view": {"id": f"V0MODAL{len(self.modals)}", **view}}

    def message(self, channel: str, ts: str) -> dict | None:
        """A stored message (posted or streamed) by its ts."""
        with self._cond:
            return next((dict(m) for m in self._messages.get(channel, []) if m["ts"] == ts), None)

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, body: dict | str,
              headers: dict[str, str] | None = None) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
        request.send_response(status)
        request.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json; charset=utf-8")
        for key, value in (headers or {}).items():
            request.send_header(key, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)


# --- fixtures (import them into a test module to use them) ------------------------------------------

@pytest.fixture
def standin():
    """A fresh Web API stand-in per test."""
    with SlackStandIn() as server:
        yield server
