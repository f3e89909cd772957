"""Secrets (issue 5, item 6): with distinctive fake tokens and signing secret, every Slack flow —
HTTP and Socket Mode through `serve()`, answers, retries, a slash command, feedback clicks, error
paths, configuration errors, and `qabot serve` as a real process with a token Slack refuses — leaves
no secret (nor an obvious fragment of one) in logs at DEBUG, error messages, what is sent to Slack,
the feedback log or the index."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import traceback
import urllib.parse
from pathlib import Path
from typing import Any, Iterable

import pytest

from bot.slack.errors import SlackConfigError
from bot.slack.feedback import read_log
from bot.slack.secrets import load_slack_secrets
from bot.slack.server import serve

from .conftest import ROOT, SAMPLE, build_index
from .slack_requests import (
    SpyAnswerer,
    command_body,
    event_body,
    feedback_click,
    http_post,
    mention_event,
    signature_headers,
)
from .slack_socket import SocketModeServer
from .slack_standin import SlackStandIn, wait_until
from .test_slack_serve import Serving
from .qabot_env import qabot_environ

BOT = "xoxb-7301-8842-QBsecBOTvR4nD0mK9zq"
APP = "xapp-1-A0TEST-5566-QBsecAPPtW7yH2pL3xc"
SIGN = "QBsecSIGNe81f4c2a9b7d3056ffee"
BAD = "xoxb-4410-9931-QBsecBADjU6sF1wE8rr"  # a well-formed bot token Slack refuses
SECRETS = (BOT, APP, SIGN, BAD)
PREFIXES = ("xoxb-", "xapp-1-A0TEST-")
DEADLINE_Q = "What deadline did Ryabkov give?"


def fragments(secret: str, size: int = 10) -> set[str]:
    """The secret, its part after the well-known prefix, and every `size`-character piece of that."""
    body = secret
    for prefix in PREFIXES:
        if body.startswith(prefix):
            body = body[len(prefix):]
    return {secret, body} | {body[i:i + size] for i in range(len(body) - size + 1)}


FRAGMENTS = set().union(*(fragments(s) for s in SECRETS))


def leaks(text: str) -> list[str]:
    return sorted(f for f in FRAGMENTS if f in text)


class Capture(logging.Handler):
    """Every record on the root logger at DEBUG, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def capture():
    root = logging.getLogger()
    handler, level = Capture(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


class ExplodingAnswerer(SpyAnswerer):
    """The real Answerer, except questions mentioning "explode" raise (an error path)."""

    def ask(self, question: str, history: Iterable[str] = ()) -> Any:
        if "explode" in question:
            raise RuntimeError("the index shard exploded")
        return super().ask(question, history)


def signed(url: str, body: str, content_type: str, secret: str = SIGN) -> int:
    return http_post(url, body, {"Content-Type": content_type, **signature_headers(body, secret)})[0]


def test_no_secret_reaches_logs_errors_slack_feedback_or_the_index(capture, slack_settings, answerer, tmp_path,
                                                                   monkeypatch):
    (tmp_path / "signing-secret").write_text(SIGN + "\n")
    errors: list[str] = []
    websocket = SocketModeServer()
    with SlackStandIn(bot_token=BOT, app_token=APP) as standin:
        standin.socket_url = websocket.url
        spy = ExplodingAnswerer(answerer)
        # --- HTTP mode through serve(), the signing secret from a file
        env = {"SLACK_BOT_TOKEN": BOT, "SLACK_SIGNING_SECRET_FILE": str(tmp_path / "signing-secret"),
               "SLACK_API_URL": standin.api_url}
        serving = Serving(slack_settings, spy, env, port=0, host="127.0.0.1")
        try:
            # A library that logs a secret (it happens): the redactor installed by serve() hides it.
            logging.getLogger("slack_sdk.web.base_client").debug("sending with Authorization: Bearer %s", BOT)
            logging.getLogger("slack_bolt.App").debug("secrets in use: %r", load_slack_secrets(
                {"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": APP, "SLACK_SIGNING_SECRET": SIGN}))
            logging.getLogger("qabot.canary").warning("signing with %s", SIGN)

            standin.fail("chat.postMessage", status=429, retry_after=0)
            event = mention_event(DEADLINE_Q)
            assert signed(serving.url, json.dumps(event_body(event)), "application/json") == 200
            post = standin.wait_for("chat.postMessage")[0]
            assert signed(serving.url, json.dumps(event_body(event)), "application/json", secret="wrong") == 401
            click = feedback_click(post, "up", standin.response_url())
            form = urllib.parse.urlencode({"payload": json.dumps(click)})
            assert signed(serving.url, form, "application/x-www-form-urlencoded") == 200
            wait_until(lambda: read_log(slack_settings.paths.feedback_log), message="the feedback line")
            command = urllib.parse.urlencode(command_body(DEADLINE_Q, standin.response_url()))
            assert signed(serving.url, command, "application/x-www-form-urlencoded") == 200
            standin.wait_for("response_url", 2)
            # Error paths: the Answerer raises; then Slack refuses the post (and the apology).
            assert signed(serving.url, json.dumps(event_body(mention_event("explode please"))),
                          "application/json") == 200
            standin.wait_for("chat.postMessage", 2)
            standin.fail("chat.postMessage", error="not_in_channel", times=2)
            assert signed(serving.url, json.dumps(event_body(mention_event(DEADLINE_Q))), "application/json") == 200
            wait_until(lambda: "not_in_channel" in capture.text, message="the failed post to be logged")
            assert serving.info["bot"].wait_idle(15)
        finally:
            serving.stop()
        assert "<redacted>" in capture.text  # the canaries were logged, redacted

        # --- Socket Mode through serve(): a mention, a feedback click, a slash command
        env = {"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": APP, "SLACK_API_URL": standin.api_url}
        socket_serving = Serving(slack_settings, spy, env)
        try:
            logging.getLogger("slack_sdk.socket_mode").debug("app token %s", APP)
            envelope = websocket.send("events_api", event_body(mention_event(DEADLINE_Q, channel="C0SOCKET")))
            websocket.wait_ack(envelope)
            post = standin.wait_for("chat.postMessage", where=lambda c: c.params.get("channel") == "C0SOCKET")[0]
            envelope = websocket.send("interactive", feedback_click(post, "down", standin.response_url()))
            websocket.wait_ack(envelope)
            wait_until(lambda: len(read_log(slack_settings.paths.feedback_log)) >= 2, message="the 2nd feedback")
            envelope = websocket.send("slash_commands", command_body(DEADLINE_Q, standin.response_url()))
            websocket.wait_ack(envelope)
            standin.wait_for("response_url", 4)
            assert socket_serving.info["bot"].wait_idle(15)
        finally:
            socket_serving.stop()
        websocket.close()

        # --- configuration errors, and a token Slack refuses
        for bad_env in ({"SLACK_BOT_TOKEN": SIGN, "SLACK_SIGNING_SECRET": SIGN},
                        {"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": BOT},
                        {"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": SIGN},
                        {"SLACK_BOT_TOKEN_FILE": str(tmp_path / "missing"), "SLACK_SIGNING_SECRET": SIGN},
                        {"SLACK_BOT_TOKEN": BAD, "SLACK_SIGNING_SECRET": SIGN, "SLACK_API_URL": standin.api_url},
                        {"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": APP, "SLACK_API_URL": "http://127.0.0.1:1/api"}):
            with pytest.raises(SlackConfigError) as caught:
                serve(slack_settings, spy, environ=bad_env, stop=threading.Event(), port=0, host="127.0.0.1")
            errors.append(f"{caught.value} {caught.value!r}\n" + "".join(traceback.format_exception(caught.value)))
        assert any("invalid_auth" in e for e in errors)
        sent = standin.all_calls()

    # --- the index, built while the secrets are in the environment
    for name, value in {"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": APP, "SLACK_SIGNING_SECRET": SIGN}.items():
        monkeypatch.setenv(name, value)
    index_dir = tmp_path / "index"
    build_index([SAMPLE], index_dir, slack_settings)
    index_files = {p: p.read_bytes().decode("latin-1") for p in index_dir.rglob("*") if p.is_file()}
    assert index_files

    # --- everything the runs produced
    assert len(capture.lines) > 100 and any(line.startswith("DEBUG") for line in capture.lines)
    assert any("the index shard exploded" in line for line in capture.lines)  # the error path was logged
    feedback = slack_settings.paths.feedback_log.read_text(encoding="utf-8")
    assert len(read_log(slack_settings.paths.feedback_log)) == 2
    to_slack = "\n".join(f"{c.path} {c.raw_body} {json.dumps(c.params)} {json.dumps(c.headers)}" for c in sent)
    outputs = {"logs": capture.text, "errors": "\n".join(errors), "requests to Slack": to_slack,
               "websocket": "\n".join(websocket.received), "feedback log": feedback,
               **{f"index file {p.name}": text for p, text in index_files.items()}}
    found = {where: leaks(text) for where, text in outputs.items() if leaks(text)}
    assert not found, f"secrets leaked: {found}"
    # The tokens were sent only as Authorization headers, each where it belongs.
    assert {c.token for c in sent if c.method == "apps.connections.open"} == {APP}
    assert {c.token for c in sent if c.method not in ("apps.connections.open", "response_url")} == {BOT, BAD}
    assert {c.token for c in sent if c.method == "response_url"} == {None}


@pytest.mark.parametrize("token, message", [
    (BAD, "Slack did not accept SLACK_BOT_TOKEN (invalid_auth)"),
    (SIGN, "does not look like a bot token"),
])
def test_qabot_serve_with_a_bad_token_gives_one_line_without_the_token(sample_index, tmp_path, token, message):
    with SlackStandIn(bot_token=BOT, app_token=APP) as standin:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "QABOT_"))}
        env.update(SLACK_BOT_TOKEN=token, SLACK_SIGNING_SECRET=SIGN, SLACK_API_URL=standin.api_url,
                   QABOT_INDEX=str(sample_index), QABOT_FEEDBACK_LOG=str(tmp_path / "fb.jsonl"),
                   QABOT_STATE_DB=str(tmp_path / "state.sqlite3"), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", COLUMNS="200")
        qabot = Path(sys.executable).with_name("qabot")
        command = [str(qabot)] if qabot.exists() else [sys.executable, "-m", "bot.cli"]
        with socket.socket() as probe:  # a free port, in case it got as far as listening (it must not)
            probe.bind(("127.0.0.1", 0))
            port = str(probe.getsockname()[1])
        done = subprocess.run(command + ["-v", "serve", "--host", "127.0.0.1", "--port", port], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120)
        calls = standin.all_calls()
    assert done.returncode == 1, done.stderr[-2000:]
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and message in error_lines[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    if token == BAD:
        assert [c.token for c in calls if c.method == "auth.test"] == [BAD]  # Slack was asked, and refused
        assert "DEBUG" in done.stderr  # -v: the debug log is in the output searched
    found = leaks(done.stdout + done.stderr)
    assert not found, f"secrets in qabot serve's output: {found}"


def test_the_llm_api_key_never_reaches_logs_errors_or_slack(capture, make_bot, standin, answerer, slack_settings,
                                                            llm_standin, sample_index):
    """Composed answers (issue 13): the LLM key, sent only as its Authorization header, is in no log
    line at DEBUG (the openai client's and httpx's included), no error, nothing sent to Slack and no
    `qabot ask -v --json` output — through a composed answer, a key the server refuses (401), a 500,
    a stream that breaks and a timeout."""
    from .llm_standin import API_KEY, GOOD, KEY_ENV, MODEL
    from .test_llm_article import QABOT, composing

    key_fragments = fragments(API_KEY)
    settings = slack_settings.replace("slack", stream_after_s=0.0)
    bot = make_bot(composing(answerer, settings, llm_standin, max_retries=0, request_timeout_s=1.0), settings)
    for number, (mode, options) in enumerate((("reply", {"delay": 0.01}), ("status", {"status": 401}),
                                              ("status", {"status": 500}), ("drop", {}), ("slow", {"delay": 3.0}))):
        llm_standin.script(mode, GOOD, **options)
        bot.send_event(mention_event(DEADLINE_Q))
        wait_until(lambda number=number: len(llm_standin.calls) > number, message="the LLM call")
        bot.wait_idle()
    assert any(c.authorization == f"Bearer {API_KEY}" for c in llm_standin.calls)  # it was sent, as a header
    assert standin.calls("chat.stopStream")  # the composed answer streamed

    env = qabot_environ(QABOT_INDEX=str(sample_index), QABOT_LLM_ENABLED="1", QABOT_LLM_MODEL=MODEL,
                        QABOT_LLM_BASE_URL=llm_standin.url, QABOT_LLM_API_KEY_ENV=KEY_ENV, QABOT_LLM_MAX_RETRIES="0")
    env[KEY_ENV] = API_KEY
    llm_standin.script("status", GOOD, status=401)
    done = subprocess.run([QABOT, "-v", "ask", "--json", DEADLINE_Q], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0 and "DEBUG" in done.stderr and json.loads(done.stdout)["llm"]["outcome"] == "unavailable"

    to_slack = "\n".join(f"{c.path} {c.raw_body} {json.dumps(c.params)} {json.dumps(c.headers)}"
                         for c in standin.all_calls())
    outputs = {"logs": capture.text, "requests to Slack": to_slack, "qabot ask": done.stdout + done.stderr,
               "feedback log": slack_settings.paths.feedback_log.read_text(encoding="utf-8")
               if slack_settings.paths.feedback_log.exists() else ""}
    assert "openai" in capture.text and "HTTP 500" in capture.text  # the libraries' debug lines were captured
    found = {where: sorted(f for f in key_fragments if f in text) for where, text in outputs.items()}
    assert not any(found.values()), f"the LLM key leaked: {found}"
