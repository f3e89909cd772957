"""Run the bot: Socket Mode when ``SLACK_APP_TOKEN`` is set, otherwise HTTP on a port at
``/slack/events`` (Slack's request signatures checked), until SIGTERM / Ctrl-C.

Secrets come from the environment (see `secrets`) and are redacted from every log handler while
the bot runs.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping, Sequence
from urllib.error import URLError

from slack_bolt.request import BoltRequest
from slack_sdk.errors import SlackApiError

from ..settings import Settings
from .app import SlackBot, create_bot
from .client import api_error
from .errors import SlackConfigError
from .logfilters import SecretRedactor
from .question import AnswersQuestions
from .secrets import load_slack_secrets
from .state import SHUTDOWN_GRACE_S

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
MAX_REQUEST_BYTES = 1024 * 1024  # Slack's payloads are a few KB
# Slack can send bursts; the socketserver default backlog is 5.
REQUEST_QUEUE_SIZE = 128
# How often the HTTP server checks for shutdown, and `serve` for its stop event (seconds).
POLL_INTERVAL_S = 0.1
STOP_POLL_S = 0.5
# Socket Mode's concurrent envelope handlers: at least this many, else one per answer worker.
MIN_SOCKET_CONCURRENCY = 4


class _EventsHandler(BaseHTTPRequestHandler):
    """Hands ``POST /slack/events`` to the bolt app (which checks the signature); ``GET /healthz``."""

    server_version = "qabot"
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
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
        lists: dict[str, list[str]] = {}
        for key, value in self.headers.items():
            lists.setdefault(key.lower(), []).append(value)
        headers: dict[str, str | Sequence[str]] = dict(lists)
        try:
            # `server` is our EventsServer (which has `app`); the stdlib types it as the base class.
            response = self.server.app.dispatch(BoltRequest(body=body, query=query, headers=headers))  # type: ignore[attr-defined]
        except Exception as exc:
            log.error("could not handle a Slack request: %s", api_error(exc), exc_info=True)
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

    def do_GET(self) -> None:
        if self.path.partition("?")[0] == HEALTH_PATH:
            # Always 200 while serving: a state store outage is degraded mode, not a dead bot
            # (a probe restarting every replica would not bring Redis back).
            health = {"status": "ok", "state": self.server.bot.state.health.report()}  # type: ignore[attr-defined]
            self._reply(200, (json.dumps(health) + "\n").encode(), "application/json")
        else:
            self._reply(404, b"not found\n", "text/plain")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class EventsServer(ThreadingHTTPServer):
    """HTTP mode: Slack's Events API, slash commands and interactivity at ``/slack/events``."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = REQUEST_QUEUE_SIZE

    def __init__(self, bot: SlackBot, host: str, port: int) -> None:
        if not bot.verifies_requests:
            raise SlackConfigError("HTTP mode needs SLACK_SIGNING_SECRET (or set SLACK_APP_TOKEN for Socket Mode)")
        self.app = bot.app
        self.bot = bot
        super().__init__((host, port), _EventsHandler)

    @property
    def port(self) -> int:
        return self.server_address[1]


def make_http_server(bot: SlackBot, host: str, port: int) -> EventsServer:
    """The HTTP server for `bot` (port 0: any free port, see `EventsServer.port`)."""
    try:
        return EventsServer(bot, host, port)
    except OSError as exc:
        raise SlackConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None


def serve(settings: Settings, answerer: AnswersQuestions, *, port: int | None = None, host: str | None = None,
          environ: Mapping[str, str] | None = None, stop: threading.Event | None = None,
          ready: Callable[[dict], None] | None = None) -> None:
    """Run the bot until SIGTERM / Ctrl-C (or `stop` is set): Socket Mode if SLACK_APP_TOKEN is
    set, else HTTP on `host`:`port` (default settings.slack.host and .port). `ready` is called
    once connected with ``{"mode": "socket" or "http", "port": N (HTTP), "bot": the SlackBot}``."""
    secrets = load_slack_secrets(environ)
    if not secrets.app_token and not secrets.signing_secret:
        raise SlackConfigError("set SLACK_APP_TOKEN (Socket Mode, no public URL needed) or SLACK_SIGNING_SECRET "
                               "(HTTP mode on --port): see README, \"Slack setup\"")
    stop = stop or threading.Event()
    redactor = SecretRedactor(secrets.values)
    handlers = logging.getLogger().handlers[:]
    for handler in handlers:
        handler.addFilter(redactor)
    restore = _install_signal_handlers(stop)
    bot: SlackBot | None = None
    socket_handler = None
    server: EventsServer | None = None
    try:
        bot = create_bot(settings, answerer, bot_token=secrets.bot_token,
                         signing_secret=None if secrets.app_token else secrets.signing_secret,
                         api_url=secrets.api_url)
        if secrets.app_token:
            from slack_bolt.adapter.socket_mode.builtin import SocketModeHandler

            socket_handler = SocketModeHandler(bot.app, secrets.app_token,
                                               concurrency=max(MIN_SOCKET_CONCURRENCY, settings.slack.workers))
            try:
                socket_handler.connect()
            except SlackApiError as exc:
                raise SlackConfigError(f"Slack refused SLACK_APP_TOKEN for Socket Mode ({api_error(exc)})") from None
            except (URLError, OSError) as exc:
                raise SlackConfigError(f"cannot open the Socket Mode connection ({api_error(exc)})") from None
            log.info("qabot is connected to Slack in Socket Mode; Ctrl-C to stop")
            info: dict[str, Any] = {"mode": "socket", "bot": bot}
        else:
            host = settings.slack.host if host is None else host
            server = make_http_server(bot, host, settings.slack.port if port is None else port)
            threading.Thread(target=server.serve_forever, args=(POLL_INTERVAL_S,), name="qabot-http",
                             daemon=True).start()
            log.info("qabot is listening for Slack on http://%s:%d%s; Ctrl-C to stop", host, server.port, EVENTS_PATH)
            info = {"mode": "http", "port": server.port, "bot": bot}
        if ready is not None:
            ready(info)
        while not stop.wait(STOP_POLL_S):
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
        if bot is not None:
            bot.close(min(SHUTDOWN_GRACE_S, settings.slack.answer_timeout_s))
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
