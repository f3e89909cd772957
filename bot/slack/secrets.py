"""Slack credentials from the environment (``$NAME`` or a file named by ``$NAME_FILE``), checked
for the obvious mix-ups, and never shown by ``repr``, logs or errors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from .client import DEFAULT_API_URL, normalize_api_url
from .errors import SlackConfigError


@dataclass(frozen=True)
class SlackSecrets:
    """The tokens `serve` needs, plus the API URL (a stand-in in tests)."""

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
        """Every secret that is set (for `logfilters.SecretRedactor`)."""
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
                               "Bot User OAuth Token, xoxb-… (see README, \"Slack setup\")")
    if not bot_token.startswith("xoxb-"):
        raise SlackConfigError("SLACK_BOT_TOKEN does not look like a bot token (it should start with xoxb-)")
    app_token = read_secret("SLACK_APP_TOKEN", environ)
    if app_token and not app_token.startswith("xapp-"):
        raise SlackConfigError("SLACK_APP_TOKEN does not look like an app-level token (it should start with "
                               "xapp- and have the connections:write scope)")
    signing_secret = read_secret("SLACK_SIGNING_SECRET", environ)
    api_url = (environ.get("SLACK_API_URL") or "").strip() or DEFAULT_API_URL
    return SlackSecrets(bot_token, app_token, signing_secret, normalize_api_url(api_url))
