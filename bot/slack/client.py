"""Talking to Slack's Web API: the `WebClient` with slack_sdk's retries, ``response_url`` posts,
and secret-free descriptions of API failures for the logs."""

from __future__ import annotations

import re
from http.client import RemoteDisconnected
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RetryHandler
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from .blocks import Message
from .errors import SlackConfigError

DEFAULT_API_URL = "https://slack.com/api/"
# Seconds a Web API call may take; slack_sdk's own default (30 s).
WEB_API_TIMEOUT_S = 30
# Seconds a response_url post may take: the user is already waiting, so half Slack's 30 s ack window.
RESPONSE_URL_TIMEOUT_S = 15
# Retries per failure kind: enough to ride out a blip (tests/test_slack_load.py injects 500s, 429s
# and read timeouts), few enough that a post that keeps failing gives up within seconds.
CONNECTION_RETRIES = 2
RATE_LIMIT_RETRIES = 3
SERVER_ERROR_RETRIES = 2


def normalize_api_url(url: str) -> str:
    """`url` with a trailing slash (slack_sdk appends method names to it); http(s) only."""
    if not re.match(r"^https?://", url):
        raise SlackConfigError(f"SLACK_API_URL must be an http(s) URL, got {url!r}")
    return url if url.endswith("/") else url + "/"


def retry_handlers() -> list[RetryHandler]:
    """slack_sdk's own retry handlers: connection errors and timeouts, 429 + Retry-After, and 5xx."""
    # A read timeout (TimeoutError, not wrapped in URLError) counts as a connection error too.
    connection_errors = [URLError, ConnectionResetError, RemoteDisconnected, TimeoutError]
    return [ConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES, error_types=connection_errors),
            RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
            ServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES)]


def make_web_client(bot_token: str, api_url: str | None = None, timeout: int = WEB_API_TIMEOUT_S) -> WebClient:
    """The client every listener uses; it carries the API URL (a stand-in in tests) and the retries."""
    return WebClient(token=bot_token, base_url=normalize_api_url(api_url or DEFAULT_API_URL),
                     timeout=timeout, retry_handlers=retry_handlers())


def post_to_response_url(url: str, message: Message, *, response_type: str) -> None:
    """POST a message to a slash command's or action's response_url (with slack_sdk's retries)."""
    webhook = WebhookClient(url, timeout=RESPONSE_URL_TIMEOUT_S, retry_handlers=retry_handlers())
    response = webhook.send(text=message.text, blocks=message.blocks or None, response_type=response_type,
                            replace_original=False)
    if response.status_code != 200:
        # The URL itself is a credential for 30 minutes: never log it.
        raise RuntimeError(f"response_url answered HTTP {response.status_code}")


def api_error(exc: BaseException) -> str:
    """A short, secret-free description of a Slack API failure (or any exception) for the logs."""
    if isinstance(exc, SlackApiError):
        try:
            return f"Slack API error: {exc.response.get('error') or exc.response.status_code}"
        except Exception:
            return "Slack API error"
    return f"{type(exc).__name__}: {exc}"
