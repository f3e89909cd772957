"""A stand-in for Slack in tests: its Web API on 127.0.0.1, and its side of Socket Mode.

`SlackStandIn` is a real HTTP server answering the Web API methods the bot calls (``auth.test``,
``chat.postMessage``, ``chat.postEphemeral``, ``reactions.add/remove``, ``conversations.replies``,
``apps.connections.open``, ``assistant.threads.*``, ``users.info``, ``chat.startStream`` /
``appendStream`` / ``stopStream``, ``views.publish``) and ``response_url`` POSTs. It records every
call (method, parameters, raw body, the token used) and can be told to fail (HTTP 500, 429 with
Retry-After, delays), or to lack methods (``unsupported``: ``unknown_method``, as a workspace
without them answers). Messages the bot posts or streams are stored, so ``conversations.replies``
answers with a real thread; published Home views are kept per user (``views``).

`SocketModeServer` is a real websocket server playing Slack's Socket Mode side: it says ``hello``,
sends event envelopes and records the ``envelope_id`` acknowledgements.

`BotHarness` runs the real bolt app on a real port in HTTP mode and sends it correctly signed
requests, the way Slack does.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable

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
        self.views: dict[str, dict] = {}  # user id -> the Home view last published for them
        self._streams: dict[tuple[str, str], dict] = {}  # (channel, ts) -> a message still streaming
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
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

        with self._cond:
            failure = None
            queued = self._failures.get(method)
            if queued:
                failure = queued[0]
                failure.times -= 1
                if failure.times <= 0:
                    queued.pop(0)
        if failure is not None and failure.delay:
            time.sleep(failure.delay)
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
        if method in ("reactions.add", "reactions.remove", "assistant.threads.setStatus",
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


# --- Socket Mode's Slack side -------------------------------------------------------------------------

class SocketModeServer:
    """Slack's end of Socket Mode on ws://127.0.0.1: hello, envelopes out, acks in."""

    def __init__(self) -> None:
        from websockets.sync.server import serve

        self._outgoing: queue.Queue = queue.Queue()
        self.acks: list[dict] = []
        self.received: list[str] = []
        self._cond = threading.Condition()
        self.connections = 0
        self._server = serve(self._handle, "127.0.0.1", 0, compression=None)
        self._thread = threading.Thread(target=self._server.serve_forever, name="socket-mode-standin", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        port = self._server.socket.getsockname()[1]
        return f"ws://127.0.0.1:{port}/link/?ticket=standin-ticket"

    def close(self) -> None:
        self._server.shutdown()

    def _handle(self, websocket: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        with self._cond:
            self.connections += 1
            self._cond.notify_all()
        try:
            websocket.send(json.dumps({"type": "hello", "num_connections": 1,
                                       "debug_info": {"host": "standin", "approximate_connection_time": 3600},
                                       "connection_info": {"app_id": APP_ID}}))
            while True:
                try:
                    while True:
                        websocket.send(json.dumps(self._outgoing.get_nowait()))
                except queue.Empty:
                    pass
                try:
                    raw = websocket.recv(timeout=0.02)
                except TimeoutError:
                    continue
                with self._cond:
                    self.received.append(raw if isinstance(raw, str) else raw.decode("utf-8"))
                    try:
                        message = json.loads(self.received[-1])
                    except ValueError:
                        message = None
                    if isinstance(message, dict) and message.get("envelope_id"):
                        self.acks.append(message)
                    self._cond.notify_all()
        except ConnectionClosed:
            return

    def wait_connected(self, timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.connections > 0, timeout):
                raise AssertionError("the bot never opened the Socket Mode websocket")

    def send(self, envelope_type: str, payload: dict, *, envelope_id: str | None = None,
             retry_attempt: int = 0, retry_reason: str = "", accepts_response_payload: bool | None = None) -> str:
        envelope_id = envelope_id or str(uuid.uuid4())
        envelope = {"envelope_id": envelope_id, "type": envelope_type, "payload": payload,
                    "accepts_response_payload": (envelope_type != "events_api")
                    if accepts_response_payload is None else accepts_response_payload}
        if envelope_type == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        self._outgoing.put(envelope)
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 10.0) -> dict:
        with self._cond:
            found = self._cond.wait_for(
                lambda: next((a for a in self.acks if a["envelope_id"] == envelope_id), None), timeout)
        if not found:
            raise AssertionError(f"no ack for envelope {envelope_id}")
        return found


# --- Slack's requests ---------------------------------------------------------------------------------

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


# --- fixtures (import them into a test module to use them) ------------------------------------------

@pytest.fixture
def standin():
    """A fresh Web API stand-in per test."""
    with SlackStandIn() as server:
        yield server


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
