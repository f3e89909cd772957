"""`serve()`: configuration from the environment, HTTP mode end to end, clean stop on SIGTERM, and
secrets kept out of logs, errors, Slack and the feedback log."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from bot.slack.feedback import read_log
from bot.slack.errors import SlackConfigError
from bot.slack.secrets import SlackSecrets, load_slack_secrets
from bot.slack.server import serve

from .conftest import ROOT
from .slack_requests import (
    FailingAnswerer,
    event_body,
    feedback_click,
    http_post,
    mention_event,
    signature_headers,
)
from .slack_socket import SocketModeServer
from .slack_standin import APP_TOKEN, BOT_TOKEN, SECRETS, SIGNING_SECRET, wait_until

DEADLINE_Q = "What deadline did Ryabkov give?"


class Serving:
    """`serve()` in a thread until `stop()`."""

    def __init__(self, settings, answerer, environ, **kwargs):
        self.stop_event = threading.Event()
        self.info: dict = {}
        self.errors: list[BaseException] = []
        self._ready = threading.Event()

        def on_ready(info):
            self.info.update(info)
            self._ready.set()

        def run():
            try:
                serve(settings, answerer, environ=environ, stop=self.stop_event, ready=on_ready, **kwargs)
            except BaseException as exc:
                self.errors.append(exc)
                self._ready.set()

        self.thread = threading.Thread(target=run, name="serve", daemon=True)
        self.thread.start()
        assert self._ready.wait(30), "serve() did not start"
        assert not self.errors, self.errors

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.info['port']}/slack/events"

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(20)
        assert not self.thread.is_alive(), "serve() did not stop"
        assert not self.errors, self.errors


def post_event(url: str, event: dict, **kwargs) -> int:
    body = json.dumps(event_body(event))
    status, _, _ = http_post(url, body, {"Content-Type": "application/json", **signature_headers(body)}, **kwargs)
    return status


def test_serve_http_mode_reads_secret_files_answers_and_stops(standin, slack_settings, answerer, tmp_path):
    (tmp_path / "bot-token").write_text(BOT_TOKEN + "\n")
    (tmp_path / "signing-secret").write_text(SIGNING_SECRET)
    env = {"SLACK_BOT_TOKEN_FILE": str(tmp_path / "bot-token"),
           "SLACK_SIGNING_SECRET_FILE": str(tmp_path / "signing-secret"),
           "SLACK_API_URL": standin.api_url.rstrip("/")}
    serving = Serving(slack_settings, answerer, env, port=0, host="127.0.0.1")
    try:
        assert serving.info["mode"] == "http"
        event = mention_event(DEADLINE_Q)
        assert post_event(serving.url, event) == 200
        post = standin.wait_for("chat.postMessage")[0]
        assert post.params["thread_ts"] == event["ts"] and post.token == BOT_TOKEN
        status, text, _ = http_post(serving.url.replace("/slack/events", "/healthz"), "", {})
        assert status in (200, 404)  # GET-only health check; a POST there is not found
    finally:
        serving.stop()


@pytest.mark.parametrize("env, message", [
    ({}, "SLACK_BOT_TOKEN is not set"),
    ({"SLACK_BOT_TOKEN": SIGNING_SECRET}, "does not look like a bot token"),
    ({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": BOT_TOKEN}, "does not look like an app-level token"),
    ({"SLACK_BOT_TOKEN": BOT_TOKEN}, "set SLACK_APP_TOKEN"),
    ({"SLACK_BOT_TOKEN_FILE": "/nonexistent/qabot-token"}, "cannot be read"),
])
def test_serve_refuses_bad_configuration_without_showing_secrets(slack_settings, answerer, env, message):
    with pytest.raises(SlackConfigError) as caught:
        serve(slack_settings, answerer, environ=env, stop=threading.Event())
    assert message in str(caught.value)
    assert not any(secret in str(caught.value) for secret in SECRETS)


def test_serve_reports_a_token_slack_rejects(standin, slack_settings, answerer):
    env = {"SLACK_BOT_TOKEN": "xoxb-999-wrong-TOKENvalue", "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "SLACK_API_URL": standin.api_url}
    with pytest.raises(SlackConfigError) as caught:
        serve(slack_settings, answerer, environ=env, stop=threading.Event(), port=0, host="127.0.0.1")
    assert "invalid_auth" in str(caught.value)
    assert "wrong-TOKENvalue" not in str(caught.value)


def test_serve_reports_an_unreachable_api(slack_settings, answerer):
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "SLACK_API_URL": "http://127.0.0.1:1/api"}  # nothing listens on port 1
    with pytest.raises(SlackConfigError) as caught:
        serve(slack_settings, answerer, environ=env, stop=threading.Event(), port=0, host="127.0.0.1")
    assert "cannot reach the Slack API at http://127.0.0.1:1/api/" in str(caught.value)


def test_secrets_repr_is_redacted():
    secrets = load_slack_secrets({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN,
                                  "SLACK_SIGNING_SECRET": SIGNING_SECRET})
    assert isinstance(secrets, SlackSecrets)
    for text in (repr(secrets), str(secrets), f"{secrets}"):
        assert not any(secret in text for secret in SECRETS)


def test_secrets_never_reach_logs_slack_or_the_feedback_log(standin, make_bot, slack_settings, answerer, caplog):
    """Every path at DEBUG level: HTTP and Socket Mode, answers, retries, 429s, slash commands,
    feedback, failures, bad signatures."""
    caplog.set_level(logging.DEBUG)
    # HTTP mode through serve().
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": standin.api_url}
    serving = Serving(slack_settings, answerer, env, port=0, host="127.0.0.1")
    try:
        standin.fail("chat.postMessage", status=429, retry_after=0)
        event = mention_event(DEADLINE_Q)
        assert post_event(serving.url, event) == 200
        post = standin.wait_for("chat.postMessage")[0]
        body = json.dumps(event_body(event))
        bad = {"Content-Type": "application/json", **signature_headers(body, secret="wrong")}
        assert http_post(serving.url, body, bad)[0] == 401
        click = json.dumps(feedback_click(post, "up", standin.response_url()))
        form = "payload=" + __import__("urllib.parse").parse.quote(click)
        headers = {"Content-Type": "application/x-www-form-urlencoded", **signature_headers(form)}
        assert http_post(serving.url, form, headers)[0] == 200
        wait_until(lambda: read_log(slack_settings.paths.feedback_log), message="the feedback line")
        assert serving.info["bot"].wait_idle(15)
    finally:
        serving.stop()
    # An Answerer failure (errors are logged with their traceback).
    failing = make_bot(FailingAnswerer(answerer, RuntimeError("boom")))
    failing.send_event(mention_event(DEADLINE_Q))
    standin.wait_for("chat.postMessage", 2)
    failing.wait_idle()
    # Socket Mode through serve(), app-level token included.
    websocket = SocketModeServer()
    standin.socket_url = websocket.url
    try:
        env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_API_URL": standin.api_url}
        socket_serving = Serving(slack_settings, answerer, env)
        try:
            envelope = websocket.send("events_api", event_body(mention_event(DEADLINE_Q)))
            websocket.wait_ack(envelope)
            standin.wait_for("chat.postMessage", 3)
            assert socket_serving.info["bot"].wait_idle(15)
        finally:
            socket_serving.stop()
    finally:
        websocket.close()

    assert len(caplog.records) > 50 and any(r.levelno == logging.DEBUG for r in caplog.records)
    logged = caplog.text + "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
    sent = "\n".join(f"{c.path} {c.raw_body} {c.params} {c.headers}" for c in standin.all_calls())
    feedback = slack_settings.paths.feedback_log.read_text(encoding="utf-8")
    for secret in SECRETS:
        assert secret not in logged
        assert secret not in sent
        assert secret not in feedback
        assert secret not in "".join(websocket.received)
    # The tokens were used, as Authorization headers only (response_url posts carry none).
    assert {c.token for c in standin.all_calls() if c.method != "response_url"} == {BOT_TOKEN, APP_TOKEN}


def test_serve_stops_cleanly_on_sigterm(standin, sample_index, tmp_path):
    """The real process: `serve` in HTTP mode answers, then SIGTERM stops it with exit status 0.
    Its DEBUG log never shows a secret."""
    script = (
        "import logging, sys\n"
        "from pathlib import Path\n"
        "from bot.settings import load_settings\n"
        "from bot.answering.answerer import Answerer\n"
        "from bot.slack.server import serve\n"
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format='%(levelname)s %(name)s %(message)s')\n"
        "settings = load_settings(environ={}).replace('paths', feedback_log=Path(sys.argv[2]),\n"
        "                                              state_db=Path(sys.argv[2]).with_name('state.sqlite3'))\n"
        "answerer = Answerer.from_settings(settings, index_dir=Path(sys.argv[1]))\n"
        "serve(settings, answerer, port=0, host='127.0.0.1')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "QABOT_"))}
    env.update(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=standin.api_url,
               HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-c", script, str(sample_index), str(tmp_path / "fb.jsonl")],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def pump():
        for line in process.stdout:
            lines.append(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        listening = wait_until(lambda: next((ln for ln in lines if "listening for Slack on" in ln), None),
                               timeout=60, message="the server to listen")
        port = int(listening.split("http://127.0.0.1:")[1].split("/")[0])
        event = mention_event(DEADLINE_Q)
        assert post_event(f"http://127.0.0.1:{port}/slack/events", event) == 200
        standin.wait_for("chat.postMessage")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
        assert time.monotonic() - started < 15
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        reader.join(5)
    output = "".join(lines)
    assert "received SIGTERM" in output and "qabot stopped" in output
    assert "DEBUG" in output
    assert not any(secret in output for secret in SECRETS)
