"""Build the bolt `App`: its client, its middleware and its listeners, around one `BotState`.

Events are acknowledged at once (``process_before_response=False``) and listeners run afterwards
in the state's listener pool; answers run in its answer pool under ``settings.slack.answer_timeout_s``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Sequence
from urllib.error import URLError

from slack_bolt import App, Assistant
from slack_bolt.error import BoltError
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from ..settings import Settings
from . import guard, home, listeners, middleware, sources_modal
from .blocks import FEEDBACK_ACTION_DOWN, FEEDBACK_ACTION_UP
from .client import api_error, make_web_client
from .errors import SlackConfigError
from .handover import Reaper, signed_headers
from .home_collections import ACTION_ID as CHANNEL_COLLECTIONS_ACTION
from .logfilters import DROP_CLIENT_TOKEN_WARNING, RequestBodyRedactor, install_body_redactor
from .question import AnswersQuestions
from .sources import SOURCES_ACTION
from .state import SHUTDOWN_GRACE_S, BotState

log = logging.getLogger(__name__)

APP_NAME = "qabot"  # also the name of bolt's app logger
# Installed on the Slack libraries' loggers and the root handlers by every `create_bot`.
BODY_REDACTOR = RequestBodyRedactor(app_names=(APP_NAME,))
FEEDBACK_ACTION_IDS = re.compile(f"^({re.escape(FEEDBACK_ACTION_UP)}|{re.escape(FEEDBACK_ACTION_DOWN)})$")


@dataclass(frozen=True)
class SlackBot:
    """A bolt `App` and the state its listeners share (what `create_bot` returns)."""

    app: App
    state: BotState
    verifies_requests: bool  # False only for Socket Mode, whose websocket the app token authenticates

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no listener or answer is running or queued (for tests and shutdown)."""
        return self.state.wait_idle(timeout)

    def close(self, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        """Let answers in progress finish for up to `grace_s`, then stop the pools."""
        self.state.close(grace_s)


def create_bot(settings: Settings, answerer: AnswersQuestions, *, bot_token: str, signing_secret: str | None = None,
               api_url: str | None = None, client: WebClient | None = None, token_verification: bool = True,
               prompts: Sequence[dict[str, str]] | None = None) -> SlackBot:
    """The bolt app answering with `answerer`.

    Without `signing_secret` requests are not verified: only for Socket Mode (where Slack's
    websocket is authenticated by the app token) — `server.make_http_server` refuses such a bot.
    With `token_verification` bolt calls auth.test now, so a bad token fails here, not later.
    """
    client = client or make_web_client(bot_token, api_url)
    state = BotState.from_settings(settings, answerer, prompts)
    logging.getLogger("slack_bolt.App").addFilter(DROP_CLIENT_TOKEN_WARNING)
    install_body_redactor(BODY_REDACTOR)
    try:
        app = App(
            name=APP_NAME,
            client=client,
            signing_secret=signing_secret or "",
            request_verification_enabled=signing_secret is not None,
            token_verification_enabled=token_verification,
            process_before_response=False,
            listener_executor=state.listeners,
            # Unhandled requests reach `listeners.on_error`, which acknowledges them (else: HTTP 404).
            raise_error_for_unhandled_request=True,
        )
    except BoltError as exc:
        state.close(0)
        raise SlackConfigError(f"Slack did not accept SLACK_BOT_TOKEN ({_bolt_error_reason(exc)})") from None
    except (URLError, OSError, SlackClientError) as exc:
        state.close(0)
        raise SlackConfigError(f"cannot reach the Slack API at {client.base_url} ({api_error(exc)})") from None
    install_body_redactor(BODY_REDACTOR)  # again: App() created more loggers
    register(app, state)
    log.info("state store: %s (%s), on_unavailable = %s", state.health.describe(),
             "reachable" if state.answered.ping() else "unreachable", settings.state.on_unavailable)
    if state.handover is not None:
        state.reaper = start_reaper(app, state, signing_secret)
    return SlackBot(app, state, verifies_requests=signing_secret is not None)


def register(app: App, state: BotState) -> None:
    """Middleware first (in this order), then one listener per entry point."""
    app.middleware(middleware.provide_state(state))
    app.middleware(guard.note_delivery)
    app.middleware(middleware.ignore_duplicates)
    app.middleware(middleware.ignore_bots_and_other_channels)
    app.middleware(middleware.mark_external_users)
    app.middleware(middleware.skip_handovers_already_answered)
    app.middleware(middleware.hold_until_answered)

    assistant = Assistant()
    assistant.thread_started(listeners.on_assistant_thread_started)
    # Only real assistant threads: bolt would also route plain DM threads here.
    # bolt takes a list of matchers here (as everywhere), though this method's annotation says one.
    assistant.user_message(listeners.on_assistant_message,
                           matchers=[middleware.in_assistant_thread])  # type: ignore[arg-type]
    app.assistant(assistant)

    app.event("app_mention")(listeners.on_app_mention)
    app.event("message")(listeners.on_message)
    app.event("app_home_opened")(home.on_app_home_opened)
    app.command("/ask")(listeners.on_ask)
    app.action(FEEDBACK_ACTION_IDS)(listeners.on_feedback)
    app.action(SOURCES_ACTION)(sources_modal.on_sources)
    app.action(CHANNEL_COLLECTIONS_ACTION)(home.on_channel_collections)
    app.error(listeners.on_error)


def start_reaper(app: App, state: BotState, signing_secret: str | None) -> Reaper:
    """The thread that answers what a dead replica acknowledged (handover.py), through this app."""

    def dispatch(body: dict) -> None:
        raw = json.dumps(body)
        app.dispatch(BoltRequest(body=raw, headers=signed_headers(raw, signing_secret)))

    assert state.handover is not None, "a reaper runs only where there is a handover (Redis state)"
    # Redis state, the one with a handover, has the store that releases claims (RedisAnsweredStore).
    release = state.answered.release  # type: ignore[attr-defined]
    return Reaper(state.handover, release, dispatch).start()


def _bolt_error_reason(exc: BoltError) -> str:
    """The Slack error code inside bolt's auth.test failure message (it never holds the token)."""
    match = re.search(r"'error': '([a-z_]+)'", str(exc))
    return match.group(1) if match else "auth.test failed"
