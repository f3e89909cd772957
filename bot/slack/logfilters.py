"""Logging filters for the Slack bot: redact known secrets, cut request bodies out of the Slack
libraries' log lines, drop one warning bolt always gives."""

from __future__ import annotations

import logging
import re
from typing import Callable, Sequence

# Secrets shorter than this are not redacted: replacing every short string would garble the logs,
# and no Slack token or signing secret is this short.
MIN_SECRET_CHARS = 8


class DropClientTokenWarning(logging.Filter):
    """bolt warns that its `token` is unused whenever SLACK_BOT_TOKEN is set and a client is given,
    which is always the case here (the client carries the API URL and retry handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("As you gave `client` as well")


DROP_CLIENT_TOKEN_WARNING = DropClientTokenWarning()


def rewrite_message(record: logging.LogRecord, redact: Callable[[str], str]) -> None:
    """Replace the record's formatted message with `redact(message)` when that changes it (a
    broken format string is left to the handler, which reports it)."""
    try:
        message = record.getMessage()
    except Exception:
        return
    redacted = redact(message)
    if redacted != message:
        record.msg, record.args = redacted, None


class SecretRedactor(logging.Filter):
    """A logging filter that replaces known secrets in messages and tracebacks (defence in depth:
    nothing in qabot logs a secret, but a library might)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= MIN_SECRET_CHARS]

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        rewrite_message(record, self.redact)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


# Loggers of the Slack libraries (and bolt's app logger, named after the app): the only records
# `RequestBodyRedactor` rewrites. qabot's own modules never log a request body.
LIBRARY_LOGGERS = ("slack_bolt", "slack_sdk", "slack")
# What a library puts before a request or message body in a log line ("body: {...}",
# "request body: ...", "body_params: ...", "(message: {...})", "payload: ...", "data: ...").
BODY_LABEL = re.compile(r"(?i)\b(?:request body|body_params|json_body|body|message|payload|data)\s*[:=]\s*(?=\S)")
# bolt's "A global middleware (...) skipped calling next() ... for the request ({body})".
FOR_THE_REQUEST = re.compile(r"for the request \(")
# Left in a library line after the cut, any of these next to a dict or form body still means a
# payload: the line is cut where the dict or the form starts.
PAYLOAD_HINTS = ("token", "response_url", "'text'", '"text"', "text=")
PAYLOAD_START = re.compile(r"[{\[]|\b\w+=")
REDACTED_BODY = "<request body redacted>"


class RequestBodyRedactor(logging.Filter):
    """Cut request and message bodies out of the Slack libraries' log lines, at every level.

    slack-bolt logs a request whose signature fails ("Invalid request signature detected (...
    body: ...)") in full: message text, file URLs, the legacy token and slash-command
    ``response_url``s (a credential for 30 minutes); slack_sdk logs API bodies and Socket Mode
    envelopes at DEBUG. What follows a body label is replaced by `REDACTED_BODY`.
    """

    def __init__(self, app_names: Sequence[str] = ()) -> None:
        super().__init__()
        self._names = tuple(LIBRARY_LOGGERS) + tuple(app_names)

    def _is_library(self, name: str) -> bool:
        return any(name == n or name.startswith((f"{n}.", f"{n}:", f"{n}_")) for n in self._names)

    def redact(self, text: str) -> str:
        cuts = [m.end() for m in (BODY_LABEL.search(text), FOR_THE_REQUEST.search(text)) if m]
        if cuts:
            text = text[:min(cuts)] + REDACTED_BODY
        if any(hint in text for hint in PAYLOAD_HINTS):
            start = PAYLOAD_START.search(text)
            if start:
                text = text[:start.start()] + REDACTED_BODY
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._is_library(record.name):
            rewrite_message(record, self.redact)
        return True


def install_body_redactor(redactor: RequestBodyRedactor) -> None:
    """Put `redactor` on every Slack library logger that exists now (so the record is clean before
    any handler sees it, even one added later) and on the root logger's handlers (which also catch
    records of library loggers created later). Installing twice is harmless."""
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and redactor._is_library(name):
            logger.addFilter(redactor)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)
