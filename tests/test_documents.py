"""Loading and cleaning documents: boilerplate, HTML, Markdown, titles, encodings, bad files."""

from __future__ import annotations

import pytest

from embeddings.documents import decode_bytes, is_boilerplate, load_document, parse_document
from embeddings.errors import DocumentError

from .conftest import SAMPLE

MAX_BYTES = 2**20  # the [ingest] limit is the caller's; 1 MiB holds every file here


def test_sample_article_is_cleaned_of_navigation_and_curly_quotes():
    doc = load_document(SAMPLE, max_bytes=MAX_BYTES)
    assert doc.title.startswith("Russian Diplomat Ryabkov Affirms, 'Results Are Immediately Needed'")
    assert "Go to home page" not in doc.text
    assert "Back to top" not in doc.text
    assert "\u201c" not in doc.text and "\u2019" not in doc.text
    assert doc.text.startswith("Jan. 6, 2022 (EIRNS)")
    assert doc.text.rstrip().endswith('it will not be proper to deny it."')
    assert doc.title not in doc.text  # the title is metadata, not a paragraph
    assert "\n\n" in doc.text and "  " not in doc.text
    assert len(doc.sha256) == 64


@pytest.mark.parametrize("line", ["Go to home page", "Back to top    Go to home page clear",
                                  "Skip to content", "Home | Menu | Search", "Share this article"])
def test_navigation_lines_are_boilerplate(line):
    assert is_boilerplate(line)


@pytest.mark.parametrize("line", ["He went to the home page of the ministry.",
                                  "Back to top form, the team won the cup.", "Menu prices rose 5%."])
def test_sentences_mentioning_navigation_words_are_kept(line):
    assert not is_boilerplate(line)


def test_html_uses_title_drops_scripts_styles_and_nav():
    html = """<html><head><title>Talks in Geneva</title><style>p{color:red}</style>
    <link rel="canonical" href="https://example.org/geneva"></head><body>
    <nav><a href="/">Go to home page</a> <a href="/m">Menu</a></nav>
    <article><h1>Talks in Geneva</h1><script>alert('x')</script>
    <p>The talks open on Jan. 10 in Geneva. Both delegations &amp; their experts attend.</p>
    <p>Results are expected <b>within a few weeks</b>.</p></article>
    <footer>Back to top</footer></body></html>"""
    doc = parse_document(html, "html", "geneva.html")
    assert doc.title == "Talks in Geneva"
    assert doc.url == "https://example.org/geneva"
    assert "alert" not in doc.text and "color" not in doc.text
    assert "Go to home page" not in doc.text and "Back to top" not in doc.text
    assert "Both delegations & their experts attend." in doc.text
    assert "Results are expected within a few weeks." in doc.text


def test_markdown_heading_becomes_title_and_markup_is_removed():
    md = "# Quarterly report\n\nRevenue **grew** by [12 percent](http://x.y) in *Q3*.\n\n## Outlook\n\n- Hiring continues.\n"
    doc = parse_document(md, "markdown", "report.md")
    assert doc.title == "Quarterly report"
    assert "Revenue grew by 12 percent in Q3." in doc.text
    assert "Outlook" in doc.text and "Hiring continues." in doc.text
    assert "*" not in doc.text and "#" not in doc.text and "http" not in doc.text


def test_markdown_list_items_are_paragraphs_of_their_own():
    md = ("# Harbor\n\nThe team:\n\n- Lead engineer: Anna Kowalski\n- Budget: 4.2 million euros\n"
          "* Started in\n  Rotterdam\n1. First step\n2) Second step\n")
    doc = parse_document(md, "markdown", "harbor.md")
    assert doc.text.split("\n\n") == ["The team:", "Lead engineer: Anna Kowalski", "Budget: 4.2 million euros",
                                       "Started in Rotterdam", "First step", "Second step"]


def test_markdown_front_matter_gives_the_title_and_is_not_indexed():
    md = ('---\ntitle: "Release Notes 4.2"\ndate: 2024-05-01\ntags: [release]\n---\n\n# What is new\n\n'
          "Version 4.2 adds offline mode.\n")
    doc = parse_document(md, "markdown", "notes.md")
    assert doc.title == "Release Notes 4.2"
    assert doc.text.split("\n\n") == ["What is new", "Version 4.2 adds offline mode."]
    untitled = parse_document("---\nlayout: post\n---\n# Heading\n\nBody text here.\n", "markdown", "p.md")
    assert (untitled.title, untitled.text) == ("Heading", "Body text here.")
    folded = parse_document("---\ntitle: >\n  Long\n---\nBody text here.\n", "markdown", "folded-title.md")
    assert (folded.title, folded.text) == ("folded title", "Body text here.")
    rule = parse_document("Intro text.\n\n---\n\nMore text.\n", "markdown", "r.md")  # a rule, not front matter
    assert rule.text == "Intro text.\n\nMore text."


def test_markdown_table_rows_are_paragraphs_of_their_own_without_the_header_rule():
    md = "# Fleet\n\nThe ships:\n\n| Ship | Crew |\n| :--- | ---: |\n| Aurora | 42 |\n|Boreal|17\n\nAll sail in May.\n"
    doc = parse_document(md, "markdown", "fleet.md")
    assert doc.text.split("\n\n") == ["The ships:", "Ship | Crew", "Aurora | 42", "Boreal | 17", "All sail in May."]


def test_a_number_starting_a_line_of_markdown_prose_is_text_not_a_list_marker():
    md = "The company was founded in\n1998. It grew after the merger.\n\n1998. A year.\n\nSteps:\n1. Plan\n2. Build\n"
    doc = parse_document(md, "markdown", "history.md")
    assert doc.text.split("\n\n") == ["The company was founded in 1998. It grew after the merger.", "A year.",
                                       "Steps:", "Plan", "Build"]


def test_text_without_heading_takes_title_from_file_name(tmp_path):
    path = tmp_path / "budget-notes.txt"
    path.write_text("The budget was approved. It takes effect in May.\n", encoding="utf-8")
    assert load_document(path, max_bytes=MAX_BYTES).title == "budget notes"


def test_an_html_file_is_read_in_the_charset_its_meta_tag_declares(tmp_path):
    body = "<p>The caf\u00e9 on the harbour opens at seven every weekday morning.</p></body></html>"
    saved = tmp_path / "saved.html"  # as a browser saves a page: windows-1252, declared in a <meta>
    saved.write_bytes(f'<html><head><meta charset="windows-1252"><title>Caf\u00e9</title></head><body>{body}'
                      .encode("cp1252"))
    assert "The caf\u00e9 on the harbour" in load_document(saved, max_bytes=MAX_BYTES).text
    marked = tmp_path / "marked.html"  # a byte-order mark overrides the <meta>, as in browsers
    marked.write_bytes(b"\xef\xbb\xbf" + f'<html><head><meta charset="latin-1"></head><body>{body}'.encode())
    assert "The caf\u00e9 on the harbour" in load_document(marked, max_bytes=MAX_BYTES).text
    unknown = tmp_path / "unknown.html"  # a charset Python does not know: read as UTF-8
    unknown.write_bytes(f'<html><head><meta charset="x-klingon"></head><body>{body}'.encode())
    assert "The caf\u00e9 on the harbour" in load_document(unknown, max_bytes=MAX_BYTES).text


def test_utf16_with_bom_is_decoded():
    text = "Caf\u00e9 prices rose."
    assert decode_bytes(text.encode("utf-16"), "x.txt") == text


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"   \n\t\n", "empty file"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
    ("Caf\u00e9 cr\u00e8me".encode("latin-1"), "not UTF-8"),
    (b"Go to home page\n\nBack to top\n", "no text to index"),
])
def test_unusable_files_are_refused_with_one_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DocumentError) as info:
        load_document(path, max_bytes=MAX_BYTES)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_named_encoding_reads_latin1(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("Caf\u00e9 cr\u00e8me is sold in Paris.".encode("latin-1"))
    assert "Caf\u00e9 cr\u00e8me" in load_document(path, encoding="latin-1", max_bytes=MAX_BYTES).text


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(DocumentError, match="no such file"):
        load_document(tmp_path / "nope.txt", max_bytes=MAX_BYTES)
    (tmp_path / "x.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(DocumentError, match="unsupported file type"):
        load_document(tmp_path / "x.xlsx", max_bytes=MAX_BYTES)


def test_a_file_over_the_limit_is_refused_naming_the_setting(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("The port reopened on May 2. " * 100)
    with pytest.raises(DocumentError, match="too large.*QABOT_MAX_DOCUMENT_MB"):
        load_document(path, max_bytes=1024)
    assert load_document(path, max_bytes=4096).text.startswith("The port reopened")
