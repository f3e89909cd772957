"""Documents from where they live: URLs (a real HTTP server on 127.0.0.1), PDF and Word files
(made here with fpdf2 and python-docx), sitemaps and lists of URLs; and re-ingest by source.

Fast: the hashing encoder of conftest stands in for the model, except in the one end-to-end test
that asks the real `qabot` about a page it fetched.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from embeddings.errors import DocumentError
from embeddings.index import Index
from embeddings.ingest import IngestOptions, ingest
from embeddings.sources.web import FetchLimits, Fetched, fetch, sitemap_pages

from .conftest import ROOT, HashEncoder, snapshot
from .fixtures.webserver import HUGE_BYTES, Page, Site, huge_body
from .test_cli import FAST_INGEST, run
from .qabot_env import qabot_environ

LIMIT = 2**20  # 1 MiB: the size limit in these tests
FAST = FetchLimits(max_bytes=LIMIT, connect_timeout_s=2, read_timeout_s=0.5, total_timeout_s=5)

ARTICLE = """<!doctype html><html><head><title>Talks in Vienna</title>
<link rel="canonical" href="https://news.example.org/2026/vienna-talks">
</head><body><nav>Home | Back to top</nav><article><h1>Talks in Vienna</h1>
<p>Negotiators met in Vienna on March 3 to discuss the grain corridor. The delegation was led by
Maria Lindqvist, who said a final text could be ready by the end of April.</p>
<p>Observers from twelve countries attended the opening session, held in the old town hall.</p>
</article></body></html>"""

PLAIN_PAGE = """<html><head><title>Port schedule</title></head><body><main>
<p>The port of Constanta handles {n} ships a week under the new schedule agreed in Geneva.</p>
<p>Inspections take place at dawn and finish before the morning tide.</p></main></body></html>"""


def make_pdf(pages: list[str], title: str = "Grain Report") -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        pdf.set_font("helvetica", size=12)
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


REPORT_PAGES = [
    "Summary. The corridor carried grain to twelve ports during the spring season.",
    "Shipping. Insurance rates for the corridor fell by a third after the March agreement.",
    "Inspections. The joint inspection centre in Istanbul checked 41 ships in May.",
]


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Harbour Memo", 0)
    document.add_paragraph("The harbour master of Odesa reopened berth 7 on June 12.")
    table = document.add_table(rows=2, cols=2)
    for r, (a, b) in enumerate([("Berth", "Ships"), ("7", "14")]):
        table.rows[r].cells[0].text, table.rows[r].cells[1].text = a, b
    document.add_paragraph("Tugboats are assigned by the night shift.")
    document.save(path)
    return path


@pytest.fixture
def site():
    with Site() as site:
        site.routes.update({
            "/vienna.html": Page(ARTICLE.encode()),
            "/port.html": Page(PLAIN_PAGE.format(n=40).encode(), etag='"v1"'),
            "/notes.txt": Page(b"Convoy notes\n\nThe convoy left at noon on Tuesday.\n",
                               content_type="text/plain; charset=utf-8", last_modified=1_700_000_000),
            "/report.pdf": Page(make_pdf(REPORT_PAGES), content_type="application/pdf"),
            "/image.png": Page(b"\x89PNG\r\n\x1a\n" + b"\0" * 100, content_type="image/png"),
            "/slow.html": Page(ARTICLE.encode(), delay_s=3),
            "/huge.txt": Page(huge_body(), content_type="text/plain"),
            "/huge-declared.txt": Page(huge_body(), content_type="text/plain", declared_length=HUGE_BYTES),
            "/data.xml": Page(b"<catalog><item>1</item></catalog>", content_type="application/xml"),
        })
        for hop in range(1, 9):  # /hop/N redirects N more times, then to the article
            target = f"/hop/{hop - 1}" if hop > 1 else "/vienna.html"
            site.routes[f"/hop/{hop}"] = Page(b"", status=302, location=target)
        site.routes["/sitemap.xml"] = Page(
            ("<?xml version='1.0'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
             + "".join(f"<url><loc>{site.url(p)}</loc></url>" for p in ("/vienna.html", "/port.html", "/gone.html"))
             + "</urlset>").encode(), content_type="application/xml")
        site.routes["/sitemap-index.xml"] = Page(
            (f"<sitemapindex><sitemap><loc>{site.url('/sitemap.xml')}</loc></sitemap>"
             f"<sitemap><loc>{site.url('/vienna.html')}</loc></sitemap></sitemapindex>").encode(),
            content_type="text/xml")
        yield site


@pytest.fixture
def options(settings):
    return replace(IngestOptions.from_settings(settings), model_name=HashEncoder.model_name, max_bytes=LIMIT)


def _ingest(specs, index_dir, options, **kwargs):
    return ingest(specs, index_dir, options, encoder_factory=HashEncoder, fetch_limits=FAST, **kwargs)


# --- URLs -----------------------------------------------------------------------------------

def test_an_html_page_keeps_its_canonical_url_and_title(site, options, tmp_path):
    url = site.url("/vienna.html")
    result = _ingest([url], tmp_path / "index", options)
    assert result.report.added == [url]
    info = Index.stored_documents(tmp_path / "index")[url]
    assert (info.title, info.url, info.source) == ("Talks in Vienna", "https://news.example.org/2026/vienna-talks", url)
    text = " ".join(c.text for c in Index.load(tmp_path / "index").chunks)
    assert "Maria Lindqvist" in text and "Back to top" not in text


def test_a_page_without_a_charset_header_is_read_in_its_meta_charset(site, options, tmp_path):
    page = ('<html><head><meta charset="windows-1252"><title>Caf\u00e9 Notes</title></head><body>'
            "<p>The caf\u00e9 on the quay opens at seven every weekday morning for the dock workers.</p>"
            "</body></html>").encode("cp1252")
    site.routes["/cafe.html"] = Page(page, content_type="text/html")
    result = _ingest([site.url("/cafe.html")], tmp_path / "index", options)
    assert result.report.added == [site.url("/cafe.html")]
    assert any("The caf\u00e9 on the quay" in c.text for c in Index.load(tmp_path / "index").chunks)


def test_redirects_are_followed_within_the_bound_and_refused_past_it(site, options, tmp_path):
    index_dir = tmp_path / "index"
    fetched = fetch(site.url("/hop/3"), FAST)
    assert fetched.final_url == site.url("/vienna.html") and fetched.kind == "html"
    _ingest([site.url("/notes.txt")], index_dir, options)
    before = snapshot(index_dir)
    with pytest.raises(DocumentError, match=r"/hop/8: too many redirects \(more than 5\)"):
        _ingest([site.url("/hop/8"), site.url("/vienna.html")], index_dir, options)
    assert snapshot(index_dir) == before  # a named input failed: nothing was written


@pytest.mark.parametrize("path, reason", [
    ("/gone.html", r"HTTP 404"),
    ("/image.png", r"unsupported content type 'image/png'"),
    ("/data.xml", r"XML but not a sitemap"),
])
def test_a_broken_or_unsupported_url_is_refused_in_one_line_and_the_index_kept(site, options, tmp_path, path, reason):
    index_dir = tmp_path / "index"
    _ingest([site.url("/notes.txt")], index_dir, options)
    before = snapshot(index_dir)
    with pytest.raises(DocumentError, match=reason) as caught:
        _ingest([site.url(path)], index_dir, options)
    assert "\n" not in str(caught.value) and str(caught.value).startswith(site.url(path))
    assert snapshot(index_dir) == before


def test_a_slow_server_times_out(site):
    started = time.monotonic()
    with pytest.raises(DocumentError, match=r"no response within 0.5 s"):
        fetch(site.url("/slow.html"), FAST)
    assert time.monotonic() - started < 2.5


def test_a_100_mb_body_is_refused_without_reading_it_all(site):
    with pytest.raises(DocumentError, match=r"too large \(over 1 MiB"):
        fetch(site.url("/huge.txt"), FAST)
    assert site.stats.done.wait(10), "the server never finished or broke off the body"
    assert "/huge.txt" in site.stats.disconnected  # the client hung up mid-body
    # The client read at most the limit plus one block; the server got further only by filling the
    # sockets' kernel buffers (a few MiB on loopback), never near the 100 MiB body.
    print(f"server sent {site.stats.sent['/huge.txt'] / 2**20:.1f} MiB of {HUGE_BYTES / 2**20:.0f} MiB")
    assert site.stats.sent["/huge.txt"] < HUGE_BYTES // 5


def test_a_declared_100_mb_body_is_refused_before_reading_any_of_it(site):
    with pytest.raises(DocumentError, match=r"too large"):
        fetch(site.url("/huge-declared.txt"), FAST)
    assert site.stats.done.wait(10)
    assert site.stats.sent.get("/huge-declared.txt", 0) < HUGE_BYTES // 10


# --- re-ingest by source --------------------------------------------------------------------

def test_a_url_is_skipped_on_304_and_replaced_when_it_changed(site, options, tmp_path):
    index_dir, url = tmp_path / "index", site.url("/port.html")
    assert _ingest([url], index_dir, options).report.added == [url]
    assert Index.stored_documents(index_dir)[url].etag == '"v1"'

    again = _ingest([url], index_dir, options)
    assert again.report.skipped == [url] and not again.report.changed
    assert site.requests_to("/port.html")[-1].get("If-None-Match") == '"v1"'

    site.routes["/port.html"] = Page(PLAIN_PAGE.format(n=55).encode(), etag='"v2"')
    changed = _ingest([url], index_dir, options)
    assert changed.report.updated == [url]
    index = Index.load(index_dir)
    assert len(index.documents) == 1 and index.documents[url].etag == '"v2"'
    text = " ".join(c.text for c in index.chunks)
    assert "55 ships" in text and "40 ships" not in text


def test_last_modified_is_sent_back_and_a_rebuild_fetches_afresh(site, options, tmp_path):
    index_dir, url = tmp_path / "index", site.url("/notes.txt")
    _ingest([url], index_dir, options)
    assert _ingest([url], index_dir, options).report.skipped == [url]
    assert site.requests_to("/notes.txt")[-1]["If-Modified-Since"].endswith("GMT")
    _ingest([url], index_dir, options, rebuild=True)
    assert "If-Modified-Since" not in site.requests_to("/notes.txt")[-1]


def test_a_changed_file_replaces_its_old_version(options, tmp_path):
    path, index_dir = tmp_path / "memo.docx", tmp_path / "index"
    make_docx(path)
    _ingest([path], index_dir, options)
    assert _ingest([path], index_dir, options).report.skipped == [str(path)]
    import docx

    document = docx.Document(path)
    document.add_paragraph("Berth 9 stays closed until August.")
    document.save(path)
    assert _ingest([path], index_dir, options).report.updated == [str(path)]
    assert "Berth 9 stays closed" in " ".join(c.text for c in Index.load(index_dir).chunks)


# --- PDF and Word ---------------------------------------------------------------------------

def test_a_pdf_keeps_its_pages(site, options, tmp_path):
    path = tmp_path / "report.pdf"
    path.write_bytes(make_pdf(REPORT_PAGES))
    index_dir = tmp_path / "index"
    seen: list[tuple[float, int, str]] = []
    _ingest([path, site.url("/report.pdf")], index_dir, options, load_progress=lambda *a: seen.append(a))
    # A PDF reports its pages as it is read, so a long one moves the progress bar.
    assert (1 + 2 / 3, 2, site.url("/report.pdf") + " (2/3)") in seen and seen[-1][:2] == (2, 2)
    index = Index.load(index_dir)
    assert {d.title for d in index.documents.values()} == {"Grain Report"}
    for info in index.documents.values():
        assert [n for _, n in info.pages] == [1, 2, 3]
        pages = {c.text.split(".")[0]: info.page_at(c.start) for c in index.chunks if c.doc_id == info.doc_id}
        assert pages.get("Inspections") == 3 or any(
            "Inspections" in c.text and info.page_at(c.start + c.text.index("Inspections")) == 3
            for c in index.chunks if c.doc_id == info.doc_id)
    assert index.documents[site.url("/report.pdf")].url == site.url("/report.pdf")


def test_a_docx_gives_its_title_paragraphs_and_tables(options, tmp_path):
    path = make_docx(tmp_path / "memo.docx")
    _ingest([path], tmp_path / "index", options)
    index = Index.load(tmp_path / "index")
    (info,) = index.documents.values()
    text = "\n".join(c.text for c in index.chunks)
    assert info.title == "Harbour Memo" and "reopened berth 7 on June 12" in text
    assert "Berth | Ships" in text and "7 | 14" in text


@pytest.mark.parametrize("name, data, reason", [
    ("broken.pdf", b"%PDF-1.7\nthis is not really a PDF", r"not a readable PDF"),
    ("blank.pdf", None, r"no text to index \(a scanned PDF"),
    ("broken.docx", b"PK\x03\x04 not a zip at all", r"not a readable \.docx"),
    ("sheet.xlsx", b"PK\x03\x04", r"unsupported file type"),
])
def test_broken_files_are_refused_in_one_line(options, tmp_path, name, data, reason):
    if data is None:
        from fpdf import FPDF

        pdf = FPDF()
        pdf.add_page()  # a page with no text layer, as a scan has
        data = bytes(pdf.output())
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DocumentError, match=reason) as caught:
        _ingest([path], tmp_path / "index", options)
    assert "\n" not in str(caught.value)
    assert not Index.exists(tmp_path / "index")


# --- sitemaps and lists ---------------------------------------------------------------------

def test_a_sitemap_brings_its_pages_and_refuses_dead_ones_one_by_one(site, options, tmp_path):
    result = _ingest([site.url("/sitemap.xml")], tmp_path / "index", options)
    assert sorted(result.report.added) == sorted([site.url("/vienna.html"), site.url("/port.html")])
    assert len(result.refused) == 1 and "/gone.html: HTTP 404" in result.refused[0]


def test_a_sitemap_index_is_followed_one_level_down(site, options, tmp_path):
    result = _ingest([site.url("/sitemap-index.xml")], tmp_path / "index", options)
    assert sorted(result.report.added) == sorted([site.url("/vienna.html"), site.url("/port.html")])
    assert any("/vienna.html: not a sitemap" in r for r in result.refused)  # an index names sitemaps


def test_a_sitemap_is_bounded(site):
    body = ("<urlset>" + "".join(f"<url><loc>{site.url(f'/p{i}')}</loc></url>" for i in range(5))
            + "</urlset>").encode()
    pages, notes = sitemap_pages(Fetched(site.url("/s.xml"), site.url("/s.xml"), "xml", body), FAST, max_urls=2)
    assert pages == [site.url("/p0"), site.url("/p1")]
    assert notes == [f"{site.url('/s.xml')}: lists 5 pages; only the first 2 are ingested"]


def test_from_list_takes_urls_and_paths_and_refuses_members_one_by_one(site, options, tmp_path):
    (tmp_path / "memo.docx").write_bytes(make_docx(tmp_path / "m.docx").read_bytes())
    listing = tmp_path / "urls.txt"
    listing.write_text(f"# reading list\n{site.url('/vienna.html')}\n\n{site.url('/gone.html')}\nmemo.docx\n")
    result = _ingest([], tmp_path / "index", options, from_lists=[listing])
    assert sorted(result.report.added) == sorted([site.url("/vienna.html"), str(tmp_path / "memo.docx")])
    assert len(result.refused) == 1 and "HTTP 404" in result.refused[0]


def test_a_url_of_another_scheme_is_refused_as_such(options, tmp_path):
    with pytest.raises(DocumentError, match=r"^ftp://example\.org/a\.txt: only http:// and https:// URLs"):
        _ingest(["ftp://example.org/a.txt"], tmp_path / "index", options)
    listing = tmp_path / "urls.txt"
    listing.write_text("file:///etc/a.txt\n")
    result = _ingest([], tmp_path / "index", options, from_lists=[listing])  # a member: refused one by one
    assert result.refused == ["file:///etc/a.txt: only http:// and https:// URLs can be fetched"]


def test_an_unreadable_list_is_refused_in_one_line(options, tmp_path):
    with pytest.raises(DocumentError, match=r"urls.txt: cannot read the list"):
        _ingest([], tmp_path / "index", options, from_lists=[tmp_path / "urls.txt"])
    (tmp_path / "urls.txt").write_text("# nothing yet\n")
    with pytest.raises(DocumentError, match=r"the list names no URLs or files"):
        _ingest([], tmp_path / "index", options, from_lists=[tmp_path / "urls.txt"])
    assert not Index.exists(tmp_path / "index")


# --- the CLI, end to end with the real model ------------------------------------------------

@pytest.mark.slow
def test_ingest_a_url_then_ask_cites_it_with_its_url(site, tmp_path):
    index = tmp_path / "index"
    listing = tmp_path / "urls.txt"
    listing.write_text(site.url("/report.pdf") + "\n")
    added = run("ingest", "--json", site.url("/vienna.html"), "--from-list", str(listing), index=index, env=FAST_INGEST)
    assert added.returncode == 0, added.stderr
    assert sorted(json.loads(added.stdout)["added"]) == sorted([site.url("/vienna.html"), site.url("/report.pdf")])

    asked = run("ask", "--json", "-", index=index, stdin="Who led the delegation in Vienna?\n"
                                                       "How many ships did the Istanbul inspection centre check in May?\n")
    assert asked.returncode == 0, asked.stderr
    vienna, inspections = (json.loads(line) for line in asked.stdout.splitlines())
    assert "Maria Lindqvist" in vienna["answer"]
    assert vienna["citations"][0]["url"] == "https://news.example.org/2026/vienna-talks"
    assert "41 ships" in inspections["answer"]
    top = inspections["citations"][0]
    assert top["url"] == site.url("/report.pdf") and top["page"] == 3


@pytest.mark.slow
def test_progress_bars_show_on_a_terminal_and_never_in_json(site, tmp_path):
    """On a terminal (a real pty) stderr shows the loading and embedding bars; with --json, or
    piped, stdout is the JSON alone and stderr has no bar."""
    import os
    import pty
    import subprocess

    from .test_cli import QABOT

    master, slave = pty.openpty()
    index = tmp_path / "index"
    blocks: list[bytes] = []

    def drain() -> None:
        # Read while qabot writes: a bar redrawn for long enough fills the pty's buffer, and a
        # writer nobody reads from blocks.
        while True:
            try:
                block = os.read(master, 65536)
            except OSError:  # the pty is drained once its other end is closed
                break
            if not block:
                break
            blocks.append(block)

    reader = threading.Thread(target=drain, daemon=True)
    try:
        environ = qabot_environ(**FAST_INGEST, QABOT_INDEX=str(index), TERM="xterm", COLUMNS="100")
        terminal = subprocess.Popen([QABOT, "ingest", site.url("/vienna.html"), site.url("/report.pdf")],
                                    stdout=subprocess.PIPE, stderr=slave, env=environ, cwd=ROOT)
        os.close(slave)
        reader.start()
        terminal.communicate(timeout=300)
        reader.join(timeout=30)
    finally:
        os.close(master)
    shown = b"".join(blocks)
    assert terminal.returncode == 0
    assert b"Reading inputs" in shown and b"Embedding documents" in shown

    piped = run("ingest", "--json", "--rebuild", site.url("/vienna.html"), index=index, env=FAST_INGEST)
    assert piped.returncode == 0 and json.loads(piped.stdout)["added"] == [site.url("/vienna.html")]
    assert "Reading inputs" not in piped.stderr and "Embedding" not in piped.stderr
