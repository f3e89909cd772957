"""What the bot may reach from Slack: a shared file's URL gets the bot token only on Slack's file
hosts (the stand-in's own host and port in tests), and `/ask add` fetches public addresses only
(checked after DNS resolution and on every redirect) unless `[ingest] allow_private_urls`.

Real servers on 127.0.0.1 and 127.0.0.2 record every request, so "nothing was sent" is read from
them, not assumed; the index is compared byte for byte before and after."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from bot.answering.live import LiveAnswerer
from bot.slack.admin import slack_file_url
from embeddings.sources import web

from .conftest import snapshot
from .slack_standin import USER
from .test_slack_admin import PAGE, file_event


class Recorder:
    """An HTTP server on `host` that records each request's path and Authorization header and
    answers with a page, or a redirect to `redirect_to`."""

    def __init__(self, host: str, redirect_to: str | None = None) -> None:
        self.requests: list[tuple[str, str | None]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.requests.append((self.path, self.headers.get("Authorization")))
                if redirect_to:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(PAGE)))
                self.end_headers()
                self.wfile.write(PAGE)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def loopback() -> Iterator[Recorder]:
    server = Recorder("127.0.0.1")
    yield server
    server.close()


@pytest.fixture
def other_host() -> Iterator[Recorder]:
    server = Recorder("127.0.0.2")
    yield server
    server.close()


def _bot(make_bot, slack_settings, index_copy, *, allow_private_urls: bool = False):
    settings = (slack_settings.replace("paths", index=index_copy).replace("slack", admin_users=(USER,))
                .replace("ingest", allow_private_urls=allow_private_urls))
    live = LiveAnswerer(settings, poll_s=0.2).start()
    return make_bot(live, settings=settings), live


# --- a shared file ---------------------------------------------------------------------------------

def test_the_bot_token_goes_to_slack_file_hosts_over_https_only():
    assert slack_file_url("https://files.slack.com/files-pri/T1-F2/memo.docx")
    assert slack_file_url("https://FILES.slack.com:443/files-pri/T1-F2/memo.docx")
    for url in ("http://files.slack.com/files-pri/T1-F2/memo.docx",  # not https
                "https://files.slack.com.example.org/memo.docx", "https://example.org/files.slack.com/memo.docx",
                "https://files.slack.com:8443/memo.docx", "https://user@169.254.169.254/memo.docx", "not a url"):
        assert not slack_file_url(url), url
    api = "http://127.0.0.1:4000/api/"
    assert slack_file_url("http://127.0.0.1:4000/files-pri/T1-F2/memo.docx", api)
    assert not slack_file_url("http://127.0.0.1:4001/files-pri/T1-F2/memo.docx", api)
    assert not slack_file_url("http://127.0.0.2:4000/files-pri/T1-F2/memo.docx", api)


@pytest.mark.parametrize("where", ["another host", "another port"])
def test_a_shared_file_elsewhere_is_refused_and_never_requested(make_bot, standin, slack_settings, index_copy,
                                                                other_host, loopback, where):
    server = other_host if where == "another host" else loopback  # the stand-in is 127.0.0.1:<its port>
    before = snapshot(index_copy)
    bot, live = _bot(make_bot, slack_settings, index_copy)
    try:
        bot.send_event(file_event(server.url("/files-pri/T0TEST-F1/memo.docx"), "memo.docx", 2000))
        reply = standin.wait_for("chat.postMessage")[0].params["text"]
        assert reply.startswith("Not added: memo.docx: refused:") and "\n" not in reply, reply
        assert server.requests == []  # no request at all, so no token either
        assert snapshot(index_copy) == before
    finally:
        live.stop()


# --- /ask add <url> --------------------------------------------------------------------------------

def _add(bot, standin, url: str) -> str:
    bot.send_command(f"add {url}", standin.response_url())
    return standin.wait_for("response_url")[0].text_and_blocks().strip()


@pytest.mark.parametrize("url, kind", [
    ("http://169.254.169.254/latest/meta-data/iam/", "link-local"),  # the cloud metadata address
    ("http://10.20.30.40/handbook.html", "private"),
    ("http://192.168.1.1/handbook.html", "private"),
    ("http://[::1]:9/handbook.html", "loopback"),
])
def test_ask_add_refuses_non_public_addresses(make_bot, standin, slack_settings, index_copy, url, kind):
    before = snapshot(index_copy)
    bot, live = _bot(make_bot, slack_settings, index_copy)
    try:
        reply = _add(bot, standin, url)
        assert reply.startswith(f"Not added: {url}: refused:") and f"a {kind} address" in reply, reply
        assert "allow_private_urls" in reply and "\n" not in reply
        assert snapshot(index_copy) == before
    finally:
        live.stop()


def test_ask_add_refuses_loopback_and_sends_it_nothing(make_bot, standin, slack_settings, index_copy, loopback):
    before = snapshot(index_copy)
    bot, live = _bot(make_bot, slack_settings, index_copy)
    try:
        reply = _add(bot, standin, loopback.url("/bulletin.html"))
        assert "refused: 127.0.0.1 is a loopback address" in reply, reply
        assert loopback.requests == []
        assert snapshot(index_copy) == before
    finally:
        live.stop()


def test_ask_add_refuses_a_public_page_that_redirects_to_loopback(make_bot, standin, slack_settings, index_copy,
                                                                   loopback, monkeypatch):
    # 127.0.0.2 plays a public web server (the only address made to pass), whose page redirects
    # to the loopback server: the redirect is refused before that server gets a request.
    public = Recorder("127.0.0.2", redirect_to=loopback.url("/admin/secrets.html"))
    real = web.blocked_address
    monkeypatch.setattr(web, "blocked_address", lambda address: None if address == "127.0.0.2" else real(address))
    before = snapshot(index_copy)
    bot, live = _bot(make_bot, slack_settings, index_copy)
    try:
        reply = _add(bot, standin, public.url("/news.html"))
        assert "refused: 127.0.0.1 is a loopback address" in reply, reply
        assert [path for path, _ in public.requests] == ["/news.html"]
        assert loopback.requests == []
        assert snapshot(index_copy) == before
    finally:
        live.stop()
        public.close()


def test_allow_private_urls_lets_ask_add_fetch_an_intranet_page(make_bot, standin, slack_settings, index_copy,
                                                                loopback):
    bot, live = _bot(make_bot, slack_settings, index_copy, allow_private_urls=True)
    try:
        assert "Added “Harbour bulletin”" in _add(bot, standin, loopback.url("/bulletin.html"))
        assert [path for path, _ in loopback.requests] == ["/bulletin.html"]
    finally:
        live.stop()


def test_the_cli_fetcher_keeps_reaching_the_operators_intranet(loopback):
    fetched = web.fetch(loopback.url("/bulletin.html"), web.FetchLimits(max_bytes=10_000))
    assert fetched.data == PAGE


@pytest.mark.parametrize("address, kind", [
    ("169.254.169.254", "link-local"), ("127.0.0.1", "loopback"), ("10.0.0.1", "private"),
    ("172.16.5.4", "private"), ("192.168.0.10", "private"), ("::1", "loopback"), ("fe80::1", "link-local"),
    ("::ffff:127.0.0.1", "loopback"), ("fd00::1", "private"), ("100.64.0.1", "non-global"), ("0.0.0.0", "private"),
    ("8.8.8.8", None), ("2606:4700:4700::1111", None),
])
def test_address_classes(address, kind):
    assert web.blocked_address(address) == kind
