"""Socket Mode: `serve()` with SLACK_APP_TOKEN connects to a local websocket server playing Slack
(hello, event envelopes, envelope_id acks) and answers through the Web API stand-in."""

from __future__ import annotations

import json
import threading

import pytest

from bot.slack.feedback import read_log
from bot.slack.server import serve

from .slack_requests import command_body, event_body, feedback_click, mention_event, twin_of
from .slack_socket import SocketModeServer
from .slack_standin import APP_TOKEN, BOT_TOKEN, SlackStandIn

DEADLINE_Q = "What deadline did Ryabkov give?"


# One bot serves the whole module: closing a Socket Mode client takes slack_sdk a few seconds.

@pytest.fixture(scope="module")
def standin():
    with SlackStandIn() as server:
        yield server


@pytest.fixture(scope="module")
def slack(standin):
    websocket = SocketModeServer()
    standin.socket_url = websocket.url
    yield websocket
    websocket.close()


@pytest.fixture(scope="module")
def serving(standin, slack, settings, tmp_path_factory, answerer):
    """`serve()` in Socket Mode in a thread; yields the running app."""
    stop = threading.Event()
    ready: dict = {}
    started = threading.Event()
    errors: list[BaseException] = []
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_API_URL": standin.api_url}
    folder = tmp_path_factory.mktemp("socket")
    settings = settings.replace("paths", feedback_log=folder / "feedback.jsonl", state_db=folder / "state.sqlite3")

    def on_ready(info):
        ready.update(info)
        started.set()

    def run():
        try:
            serve(settings, answerer, environ=env, stop=stop, ready=on_ready)
        except BaseException as exc:  # surfaced by the fixture
            errors.append(exc)
            started.set()

    thread = threading.Thread(target=run, name="serve-socket", daemon=True)
    thread.start()
    assert started.wait(30), "serve() did not start"
    assert not errors, errors
    assert ready["mode"] == "socket"
    slack.wait_connected()
    ready["settings"] = settings
    yield ready
    stop.set()
    thread.join(20)
    assert not thread.is_alive(), "serve() did not stop"
    assert not errors, errors


def test_socket_mode_mention_is_acked_and_answered_once(serving, slack, standin):
    bot = serving["bot"]
    event = mention_event(DEADLINE_Q)
    body = event_body(event)
    first = slack.send("events_api", body)
    assert slack.wait_ack(first)["envelope_id"] == first
    in_thread = lambda c: c.params.get("thread_ts") == event["ts"]
    post = standin.wait_for("chat.postMessage", where=in_thread)[0]
    assert "within a few weeks" in post.text_and_blocks()
    # Slack redelivers the envelope it thinks was not acked, and sends the `message` twin.
    again = slack.send("events_api", body, retry_attempt=1, retry_reason="timeout")
    twin = slack.send("events_api", event_body(twin_of(event)))
    slack.wait_ack(again)
    slack.wait_ack(twin)
    assert bot.wait_idle(15)
    assert len(standin.calls("chat.postMessage", where=in_thread)) == 1
    # apps.connections.open was called with the app-level token, everything else with the bot token.
    opens = standin.calls("apps.connections.open")
    assert opens and all(c.token == APP_TOKEN for c in opens)
    assert all(c.token == BOT_TOKEN for c in standin.all_calls() if c.method != "apps.connections.open")


def test_socket_mode_slash_command_ack_carries_the_response(serving, slack, standin):
    response_url = standin.response_url("sm-ask")
    envelope = slack.send("slash_commands", command_body(DEADLINE_Q, response_url))
    ack = slack.wait_ack(envelope)
    assert "Searching the articles" in json.dumps(ack.get("payload"))
    answer = standin.wait_for("response_url", where=lambda c: c.path == "/response/sm-ask")[0]
    assert "within a few weeks" in answer.text_and_blocks()


def test_socket_mode_feedback_click_is_recorded(serving, slack, standin):
    event = mention_event(DEADLINE_Q)
    slack.send("events_api", event_body(event))
    post = standin.wait_for("chat.postMessage", where=lambda c: c.params.get("thread_ts") == event["ts"])[0]
    envelope = slack.send("interactive", feedback_click(post, "up", standin.response_url("thanks")))
    slack.wait_ack(envelope)
    standin.wait_for("response_url", where=lambda c: c.path == "/response/thanks")
    entries = read_log(serving["settings"].paths.feedback_log)
    assert [e["vote"] for e in entries] == ["up"]
    assert entries[0]["question"] == DEADLINE_Q
