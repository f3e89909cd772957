"""Adding documents from Slack over the stand-in: `/ask add <url>` (admins add a page the bot then
answers from: a real page on a real HTTP server on 127.0.0.1, the real ingest, the real model) and a
file shared in a DM (a real .docx made with python-docx, downloaded with the bot token). Everyone
else is refused and nothing is fetched; an unsupported type is refused and the index kept."""

from __future__ import annotations

import time

import pytest

from bot.answering.live import LiveAnswerer
from bot.slack.admin import NOT_ADMIN, add_command_url
from embeddings.index import Index

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


def _bot(make_bot, slack_settings, index_copy, admins, allow_private_urls=True):
    # The pages are served on 127.0.0.1: allowed here, refused by default (test_fetch_guards.py).
    settings = (slack_settings.replace("paths", index=index_copy).replace("slack", admin_users=admins)
                .replace("ingest", allow_private_urls=allow_private_urls))
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


# --- a file shared with the bot in a DM ----------------------------------------------------------

def file_event(url: str, name: str, size: int):
    """A DM file share whose file Slack serves at `url`."""
    from .slack_requests import message_event

    shared = {"id": f"F{abs(hash(name)) % 10**8}", "name": name, "size": size, "url_private_download": url}
    return message_event("", channel="D0DM", channel_type="im", subtype="file_share", files=[shared])


class FileSite:
    """Shared files served by the stand-in, as Slack serves them (to the bot token only)."""

    def __init__(self, standin, memo: bytes) -> None:
        self.standin = standin
        self.memo_size = len(memo)
        self.urls = {"/files/memo.docx": standin.add_file("memo.docx", memo),
                     "/files/sheet.xlsx": standin.add_file("sheet.xlsx", b"PK\x03\x04")}

    def url(self, path: str) -> str:
        return self.urls[path]

    def requests_to(self, path: str) -> list:
        target = self.urls[path].split("/", 3)[3]
        return [c for c in self.standin.all_calls() if c.path == "/" + target]


def _file_event(site, name: str, path: str, size: int):
    return file_event(site.url(path), name, size)


@pytest.fixture
def file_site(tmp_path, standin):
    from .test_sources import make_docx

    return FileSite(standin, make_docx(tmp_path / "memo.docx").read_bytes())


def _dm_reply(standin) -> str:
    return standin.wait_for("chat.postMessage")[0].params["text"]


def test_an_admin_shares_a_docx_in_a_dm_and_it_is_indexed(make_bot, standin, slack_settings, index_copy, file_site):
    bot, live = _bot(make_bot, slack_settings, index_copy, (USER,))
    try:
        bot.send_event(_file_event(file_site, "memo.docx", "/files/memo.docx", file_site.memo_size))
        reply = _dm_reply(standin)
        assert "Added “Harbour Memo”" in reply and "chunks" in reply, reply
        # Downloaded with the bot token, as Slack's url_private requires.
        assert file_site.requests_to("/files/memo.docx")[-1].token == standin.bot_token
        assert "Harbour Memo" in {d.title for d in Index.stored_documents(index_copy).values()}
    finally:
        live.stop()


def test_a_non_admin_file_is_politely_refused_and_not_downloaded(make_bot, standin, slack_settings, index_copy, file_site):
    from bot.slack.admin import NOT_ADMIN_FILE

    before = snapshot(index_copy)
    bot, live = _bot(make_bot, slack_settings, index_copy, ("U0ADMIN",))
    try:
        bot.send_event(_file_event(file_site, "memo.docx", "/files/memo.docx", file_site.memo_size))
        assert _dm_reply(standin) == NOT_ADMIN_FILE
        assert file_site.requests_to("/files/memo.docx") == []
        assert snapshot(index_copy) == before
    finally:
        live.stop()


def test_a_shared_file_of_an_unsupported_type_is_refused(make_bot, standin, slack_settings, index_copy, file_site):
    before = snapshot(index_copy)
    bot, live = _bot(make_bot, slack_settings, index_copy, (USER,))
    try:
        bot.send_event(_file_event(file_site, "sheet.xlsx", "/files/sheet.xlsx", 4))
        reply = _dm_reply(standin)
        assert reply.startswith("Not added: sheet.xlsx: unsupported file type"), reply
        assert file_site.requests_to("/files/sheet.xlsx") == []
        assert snapshot(index_copy) == before
    finally:
        live.stop()
