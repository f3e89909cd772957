"""`qabot docs list|show|remove`: what the index holds, and removing a document for good.

The removal itself (index + lock + atomic write) is tested fast with the hashing encoder; the
CLI tests run the installed `qabot` like a user, and the last one shows that `ask` stops citing a
removed document. Kill trials for remove live in test_reliability.py beside those for ingest.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from embeddings.catalog import NoSuchDocumentError, match, resolve
from embeddings.errors import IndexLockedError
from embeddings.index import Index
from embeddings.ingest import IngestOptions, index_lock, ingest, remove_documents

from .conftest import SAMPLE, HashEncoder, snapshot
from .test_cli import FAST_INGEST, run
from .test_sources import make_docx, make_pdf

PORT = "Port report\n\nThe port of Odesa reopened on May 2 after repairs to berth 4.\n"
RAIL = "Rail report\n\nThe rail line to Lviv carried 40 trains on May 3.\n"


@pytest.fixture
def small(tmp_path, settings):
    """An index of two text files and a PDF, built with the hashing encoder."""
    (tmp_path / "port.txt").write_text(PORT)
    (tmp_path / "rail.txt").write_text(RAIL)
    (tmp_path / "report.pdf").write_bytes(make_pdf(["Page one text about grain.", "Page two about ships."]))
    options = replace(IngestOptions.from_settings(settings), model_name=HashEncoder.model_name)
    ingest([tmp_path / n for n in ("port.txt", "rail.txt", "report.pdf")], tmp_path / "index", options,
           encoder_factory=HashEncoder)
    return tmp_path / "index"


def test_remove_drops_the_document_its_chunks_and_its_words(small, tmp_path):
    port = str((tmp_path / "port.txt").resolve())
    assert Index.load(small).search_keyword("Odesa", 1)[0].chunk.doc_id == port
    removed = remove_documents(small, [port], lock_timeout=5)
    assert [d.doc_id for d in removed] == [port]
    index = Index.load(small)  # checksums verified: a complete new version
    assert port not in index.documents and len(index.documents) == 2
    assert all(c.doc_id != port for c in index.chunks) and len(index) == len(index.store)
    assert all(h.chunk.doc_id != port for h in index.search_keyword("Odesa port berth", 5))


def test_removing_nothing_writes_nothing(small):
    before = snapshot(small)
    assert remove_documents(small, ["/no/such/doc.txt"], lock_timeout=5) == []
    assert snapshot(small) == before


def test_remove_waits_for_the_ingest_lock_then_gives_up(small, tmp_path):
    before = snapshot(small)
    with index_lock(small, timeout=5):
        with pytest.raises(IndexLockedError, match="locked by another ingest"):
            remove_documents(small, [str((tmp_path / "port.txt").resolve())], lock_timeout=0.2)
    assert snapshot(small) == before


def test_documents_are_found_by_id_chunk_id_source_and_path(small, tmp_path, monkeypatch):
    documents = Index.stored_documents(small)
    port = documents[str((tmp_path / "port.txt").resolve())]
    assert match(documents, port.short_id) == [port]
    assert match(documents, port.short_id + "#0") == [port]
    assert match(documents, port.source) == [port]
    monkeypatch.chdir(tmp_path)
    assert match(documents, "port.txt") == [port]
    with pytest.raises(NoSuchDocumentError, match="no indexed document.*qabot docs list"):
        resolve(documents, "nothing-like-it")


def test_stored_documents_keep_when_size_and_pages(small, tmp_path):
    documents = Index.stored_documents(small)
    pdf = documents[str((tmp_path / "report.pdf").resolve())]
    assert [n for _, n in pdf.pages] == [1, 2] and pdf.size == (tmp_path / "report.pdf").stat().st_size
    assert all(d.added and d.added.endswith("+00:00") for d in documents.values())


# --- the CLI ----------------------------------------------------------------------------------

@pytest.fixture
def cli_index(tmp_path):
    (tmp_path / "port.txt").write_text(PORT)
    make_docx(tmp_path / "memo.docx")
    index = tmp_path / "index"
    result = run("ingest", str(SAMPLE), str(tmp_path / "port.txt"), str(tmp_path / "memo.docx"),
                 index=index, env=FAST_INGEST)
    assert result.returncode == 0, result.stderr
    return index


@pytest.mark.slow
def test_docs_list_show_and_remove_from_the_cli(cli_index, tmp_path):
    listed = run("docs", "list", "--json", index=cli_index)
    assert listed.returncode == 0, listed.stderr
    docs = {d["title"]: d for d in json.loads(listed.stdout)}
    assert set(docs) >= {"Port report", "Harbour Memo"} and len(docs) == 3
    memo = docs["Harbour Memo"]
    assert set(memo) >= {"id", "title", "source", "added", "chunks", "size"}
    assert memo["chunks"] >= 1 and memo["size"] == (tmp_path / "memo.docx").stat().st_size

    table = run("docs", "list", index=cli_index, env={"COLUMNS": "160"})
    assert table.returncode == 0 and "Harbour Memo" in table.stdout and "3 documents" in table.stdout

    shown = run("docs", "show", memo["id"], "--json", index=cli_index)
    assert shown.returncode == 0, shown.stderr
    assert "berth 7" in json.loads(shown.stdout)["passages"][0]["text"]
    assert "Harbour Memo" in run("docs", "show", str(tmp_path / "memo.docx"), index=cli_index).stdout

    missing = run("docs", "remove", "no-such-doc", str(tmp_path / "port.txt"), index=cli_index)
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
    assert "no-such-doc: no indexed document" in missing.stderr
    assert len(json.loads(run("docs", "list", "--json", index=cli_index).stdout)) == 3  # all or none

    removed = run("docs", "remove", "--json", memo["id"], index=cli_index)
    assert removed.returncode == 0, removed.stderr
    assert [d["title"] for d in json.loads(removed.stdout)["removed"]] == ["Harbour Memo"]
    assert {d["title"] for d in json.loads(run("docs", "list", "--json", index=cli_index).stdout)} == {
        docs[t]["title"] for t in docs if t != "Harbour Memo"}


@pytest.mark.slow
def test_after_docs_remove_ask_no_longer_cites_the_document(cli_index, tmp_path):
    question = "When did the port of Odesa reopen?\n"
    before = run("ask", "--json", "-", index=cli_index, stdin=question)
    assert before.returncode == 0, before.stderr
    answer = json.loads(before.stdout)
    assert "May 2" in answer["answer"]
    assert answer["citations"][0]["source"] == str(tmp_path / "port.txt")

    assert run("docs", "remove", str(tmp_path / "port.txt"), index=cli_index).returncode == 0
    after = json.loads(run("ask", "--json", "-", index=cli_index, stdin=question).stdout)
    assert all(c["source"] != str(tmp_path / "port.txt") for c in after["citations"])
    assert "May 2 after repairs" not in after["answer"]


def test_docs_on_a_missing_index_is_one_line(tmp_path):
    result = run("docs", "list", index=tmp_path / "none")
    assert result.returncode == 1 and "no index at" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_web_document_is_found_by_its_url_with_or_without_fragment_or_by_its_canonical_link():
    from embeddings.index import DocumentInfo

    url = "http://127.0.0.1:8000/news/vienna.html"
    info = DocumentInfo(url, "Talks in Vienna", url, "https://news.example.org/vienna", "0" * 64, 2)
    documents = {url: info}
    assert info.short_id.startswith("vienna.html~")
    for ref in (url, url + "#section-2", "https://news.example.org/vienna", info.short_id):
        assert match(documents, ref) == [info], ref
    assert match(documents, "http://127.0.0.1:8000/news/other.html") == []


def test_title_and_source_share_the_free_width_by_what_they_need():
    """The title says what a document is; a source cut at the left still ends with its file name."""
    from bot.cli_docs import _share

    assert _share(40, (11, 20)) == (11, 20)  # both fit: neither is cut
    assert _share(30, (11, 60)) == (11, 19)  # a short title keeps its width, the source takes the rest
    assert _share(30, (60, 11)) == (20, 10)  # a long title leaves the source a third
    assert _share(30, (50, 60)) == (20, 10)  # both long: the title is favoured, the source keeps a third


def test_docs_list_at_80_columns_gives_the_source_what_the_title_leaves(small, tmp_path):
    result = run("docs", "list", index=small, env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()[:-1]  # the table; the last line names the index
    assert all(len(row) <= 80 for row in rows), rows
    for title, name in (("Port report", "port.txt"), ("Rail report", "rail.txt")):
        row = next(r for r in rows if title in r)  # short titles whole
        source = row.split(title, 1)[1].split()[0]
        full = str(tmp_path / name)
        assert source == full or (source.startswith("…") and full.endswith(source[1:])), row
        assert source == full or len(row.rstrip()) >= 78, rows  # cut only when the width is used up


def test_a_narrow_terminal_drops_size_added_and_chunks_before_the_title_is_a_stub():
    from bot.cli_docs import TITLE_FLOOR, _fitted

    fixed = {"ID": 29, "Collections": 11, "Added": 10, "Chunks": 6, "Size": 6}
    kept, (title, _) = _fitted(fixed, (97, 22), 80)
    assert kept == ["ID", "Collections"] and title >= TITLE_FLOOR
    kept, (title, _) = _fitted(fixed, (97, 22), 100)
    assert kept == ["ID", "Collections", "Added", "Chunks"] and title >= TITLE_FLOOR  # Size goes first
    assert _fitted(fixed, (97, 22), 200)[0] == list(fixed)  # room for all: nothing goes
    assert _fitted(fixed, (11, 22), 100)[0] == list(fixed)  # a short title whole: the source is cut instead


def test_docs_list_at_80_columns_keeps_a_long_title_readable(tmp_path, settings):
    from bot.cli_docs import TITLE_FLOOR

    title = "Russian Diplomat Ryabkov Affirms, 'Results Are Immediately Needed' on Accord for Security"
    (tmp_path / "talks.txt").write_text(f"{title}\n\nThe talks in Geneva open on Jan. 10.\n")
    options = replace(IngestOptions.from_settings(settings), model_name=HashEncoder.model_name)
    ingest([tmp_path / "talks.txt"], tmp_path / "index", options, encoder_factory=HashEncoder)
    result = run("docs", "list", index=tmp_path / "index", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()[:2]
    assert len(row) <= 80 and header.split()[:4] == ["ID", "Title", "Source", "Collections"]
    assert "Size" not in header and title[:TITLE_FLOOR - 1] in row and "talks.txt" in row


@pytest.mark.slow
def test_docs_list_into_a_pipe_shows_every_column_whole(cli_index):
    """Piped with no COLUMNS (no screen to fit), titles and sources are not cut: `qabot docs list |
    grep` finds a document by any word of them."""
    documents = json.loads(run("docs", "list", "--json", index=cli_index).stdout)
    table = run("docs", "list", index=cli_index, env={"COLUMNS": ""})
    assert table.returncode == 0, table.stderr
    assert "…" not in table.stdout and max(len(line) for line in table.stdout.splitlines()) > 80
    for document in documents:
        assert document["title"] in table.stdout and document["id"] in table.stdout
