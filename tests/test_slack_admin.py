"""`/ask add <url>` over the Slack stand-in: admins add a page the bot then answers from (a real
page on a real HTTP server on 127.0.0.1, the real ingest, the real model); everyone else is
refused and nothing is fetched; a URL of an unsupported type is refused and the index kept."""

from __future__ import annotations

import time

import pytest

from bot.answering.live import LiveAnswerer
from bot.slack.admin import NOT_ADMIN, add_command_url

from .conftest import snapshot
from .fixtures.webserver import Page, Site
from .slack_standin import USER

PAGE = b"""<html><head><title>Harbour bulletin</title></head><body><main>
<p>The harbour of Constanta opened its new grain terminal on April 9 with six berths.</p>
<p>The terminal is run by the port authority and handles ships of up to 70,000 tonnes.</p>
</main></body></html>"""


@pytest.fixture
def site():
    with Site() as site:
        site.routes.update({"/bulletin.html": Page(PAGE),
                            "/photo.png": Page(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, content_type="image/png")})
        yield site


def _bot(make_bot, slack_settings, index_copy, admins):
    settings = slack_settings.replace("paths", index=index_copy).replace("slack", admin_users=admins)
    live = LiveAnswerer(settings, poll_s=0.2).start()
    return make_bot(live, settings=settings), live


def _reply(standin, count: int = 1) -> str:
    return standin.wait_for("response_url", count)[count - 1].text_and_blocks()


def test_add_command_is_told_from_a_question():
    assert add_command_url("add https://example.org/a.html") == "https://example.org/a.html"
    assert add_command_url("add <https://example.org/a.html|a page>") == "https://example.org/a.html"
    assert add_command_url("add up the numbers in the report?") is None
    assert add_command_url("What did they add https://x.org?") is None


def test_an_admin_adds_a_url_and_the_bot_answers_from_it(make_bot, standin, slack_settings, index_copy, site):
    bot, live = _bot(make_bot, slack_settings, index_copy, (USER,))
    try:
        status, body, _ = bot.send_command(f"add {site.url('/bulletin.html')}", standin.response_url("add"))
        assert status == 200 and "Adding" in body
        reply = _reply(standin)
        assert "Added “Harbour bulletin”" in reply and "chunks" in reply
        deadline = time.monotonic() + 5
        while live.swaps == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live.swaps == 1, "the bot did not take the new index version into use within 5 s"
        bot.send_command("When did the new grain terminal in Constanta open?", standin.response_url("q"))
        assert "April 9" in _reply(standin, 2)
    finally:
        live.stop()


def test_a_non_admin_is_refused_and_nothing_is_fetched(make_bot, standin, slack_settings, index_copy, site):
    before = snapshot(index_copy)
    bot, live = _bot(make_bot, slack_settings, index_copy, ("U0ADMIN",))
    try:
        bot.send_command(f"add {site.url('/bulletin.html')}", standin.response_url())
        assert _reply(standin) == NOT_ADMIN or NOT_ADMIN in _reply(standin)
        assert site.requests_to("/bulletin.html") == []
        assert snapshot(index_copy) == before
    finally:
        live.stop()


def test_a_url_of_an_unsupported_type_is_refused_in_one_line(make_bot, standin, slack_settings, index_copy, site):
    before = snapshot(index_copy)
    bot, live = _bot(make_bot, slack_settings, index_copy, (USER,))
    try:
        bot.send_command(f"add {site.url('/photo.png')}", standin.response_url())
        reply = _reply(standin)
        assert reply.startswith("Not added:") and "unsupported content type 'image/png'" in reply
        assert snapshot(index_copy) == before
    finally:
        live.stop()
