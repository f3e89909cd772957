"""Load documents (.txt, .md, .html/.htm, .pdf, .docx, or folders of them) and clean them into
plain paragraphs. PDF and Word files are read by embeddings/sources/; URLs are fetched there too.
What a cleaned document is, and the cleaning itself, are in text.py.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .errors import DocumentError
from .text import Document, clean_paragraphs, is_boilerplate, normalize_text, short_id

# Document and the cleaning helpers live in text.py; callers import them from here too.
__all__ = ["SUFFIXES", "SUPPORTED", "TEXT_SUFFIXES", "Document", "clean_paragraphs", "decode_bytes",
           "find_documents", "is_boilerplate", "load_document", "normalize_text", "parse_bytes",
           "parse_document", "short_id"]

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
                 ".html": "html", ".htm": "html"}
# Every file type `load_document` reads: the text kinds, and binary ones read by embeddings/sources/.
SUFFIXES = {**TEXT_SUFFIXES, ".pdf": "pdf", ".docx": "docx"}
SUPPORTED = ".txt, .md, .html, .pdf or .docx"

_MD_RULES = [
    (re.compile(r"^```.*$|^~~~.*$", re.MULTILINE), ""),  # code fences (their content stays)
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images → alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links → their text
    (re.compile(r"^\s{0,3}>\s?", re.MULTILINE), ""),  # block quotes
    (re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,})\s*$", re.MULTILINE), ""),  # rules
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])([*_])(?!\s)(.+?)(?<!\s)\1(?![\w*])"), r"\2"),  # italics
    (re.compile(r"`([^`]*)`"), r"\1"),  # inline code
    (re.compile(r"<[^>\n]+>"), ""),  # inline HTML tags
]
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
# YAML front matter (Jekyll, Hugo, MkDocs, Docusaurus pages): settings, not text; its title names the page.
_MD_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_MD_FRONT_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.MULTILINE)
_MD_BULLET = re.compile(r"^[ \t]*[-*+][ \t]+")
_MD_NUMBERED = re.compile(r"^[ \t]*(\d{1,9})[.)][ \t]+")
_MD_TABLE_ROW = re.compile(r"^[ \t]*\|(.*?)\|?[ \t]*$")
_MD_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)+\|?[ \t]*$")


def _markdown_lines(text: str) -> tuple[str | None, list[str]]:
    """Markdown → (title, plain lines); headings, list items and table rows become
    paragraphs of their own, so that items and rows without a full stop ("- Lead: Anna",
    "| Aurora | 42 |") are not run together into one sentence. A row reads as a Word table's
    does ("Aurora | 42"); the rule under a table's header row has no text and is dropped.

    As in CommonMark, a number opens a list item only at the start of a paragraph, inside a list,
    or as "1.": a line of wrapped prose that starts "1998. It grew" goes on its paragraph, year and all.

    The title is the first heading, or a YAML front matter block's `title:` (the heading then
    stays in the text); the rest of the front matter is settings, not text, and is dropped.
    """
    title: str | None = None
    front = _MD_FRONT_MATTER.match(text)
    if front:
        text = text[front.end():]
        named = _MD_FRONT_TITLE.search(front.group(1))
        if named and named.group(1)[0] not in "|>":  # not a multi-line YAML value
            title = normalize_text(named.group(1).strip("\"'")) or None
    for pattern, replacement in _MD_RULES:
        text = pattern.sub(replacement, text)
    lines: list[str] = []
    in_list = False  # the paragraph being read holds list items
    for line in text.splitlines():
        heading = _MD_HEADING.match(line)
        if heading:
            in_list = False
            if title is None:
                title = normalize_text(heading.group(1))
                continue
            lines.extend(["", heading.group(1), ""])
            continue
        if not line.strip():
            in_list = False
            lines.append(line)
            continue
        if _MD_TABLE_RULE.match(line):
            continue
        row = _MD_TABLE_ROW.match(line)
        if row:
            in_list = False
            lines.extend(["", " | ".join(cell.strip() for cell in row.group(1).split("|")), ""])
            continue
        numbered = _MD_NUMBERED.match(line)
        opens = not lines or not lines[-1].strip()
        item = _MD_BULLET.match(line) or (numbered if numbered and (opens or in_list or numbered.group(1) == "1")
                                          else None)
        if item:
            in_list = True
            lines.extend(["", line[item.end():]])
        else:
            lines.append(line)
    return title, lines


class _VisibleText(HTMLParser):
    """Visible text of a page with the standard library's streaming parser: no depth limit."""

    _SKIP = {"script", "style", "noscript", "template", "nav", "header", "footer", "head", "svg"}
    _BLOCK = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section",
              "article", "blockquote", "pre", "table", "ul", "ol", "dd", "dt"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._skipping = 0
        self._in_title = False
        self.title: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self._parts.append("\n")

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self._parts.append("\n")

    def handle_data(self, data):
        if self._in_title:
            self.title = (self.title or "") + data
        elif not self._skipping:
            self._parts.append(data)

    def text(self) -> str:
        return "".join(self._parts)


def _html_parts(html: str) -> tuple[str | None, str | None, list[str]]:
    """HTML → (title, canonical url, lines of main text), via trafilatura's main-content extraction."""
    import trafilatura  # imported here: only ingesting HTML pays for it

    metadata = trafilatura.extract_metadata(html)
    title = metadata.title if metadata is not None else None
    url = metadata.url if metadata is not None else None
    text = trafilatura.extract(html, favor_recall=True, include_comments=False, include_tables=True)
    if not text:
        # Very short or very deeply nested pages defeat trafilatura: take the visible text instead.
        fallback = _VisibleText()
        fallback.feed(html)
        fallback.close()
        title = title or fallback.title
        text = fallback.text()
    # trafilatura puts one block per line: each line is a paragraph.
    lines: list[str] = []
    for line in text.splitlines():
        lines.extend([line, ""])
    return (normalize_text(title) if title else None), url, lines


def _text_title(paragraphs: list[str]) -> tuple[str | None, list[str]]:
    """A plain-text document's title is its first paragraph when that looks like a heading."""
    if len(paragraphs) > 1:
        first = paragraphs[0]
        if len(first) <= 200 and not re.search(r"[.!?:;,]$", first) and len(first.split()) <= 30:
            return first, paragraphs[1:]
    return None, paragraphs


# --- reading --------------------------------------------------------------------------------

def decode_bytes(data: bytes, source: str, encoding: str | None = None) -> str:
    """Bytes → text. UTF-8 (with or without BOM) and BOM-marked UTF-16/32 are read as such; any
    other encoding must be named, because guessing one silently corrupts quotes and names."""
    if encoding:
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise DocumentError(f"{source}: cannot decode as {encoding}: {exc}") from None
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"),
                       (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise DocumentError(f"{source}: invalid {codec} text at byte {exc.start}") from None
    if b"\x00" in data[:8192]:
        raise DocumentError(f"{source}: binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"{source}: not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "convert it to UTF-8 or pass --encoding (e.g. --encoding latin-1)"
        ) from None


_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def meta_charset(data: bytes) -> str | None:
    """The charset an HTML page declares in a <meta> tag near its top, if Python knows it. A
    byte-order mark overrides it, as in browsers (None then: `decode_bytes` reads the mark)."""
    match = None if data.startswith(_BOMS) else _META_CHARSET.search(data[:4096])
    if match is None:
        return None
    name = match.group(1).decode("ascii")
    try:
        codecs.lookup(name)
    except LookupError:
        return None  # an unknown name: read as UTF-8, as if none were declared
    return name


def parse_document(text: str, kind: str, source: str, doc_id: str | None = None,
                   default_title: str | None = None) -> Document:
    """Clean `text` of the given kind ("text", "markdown" or "html") into a `Document`."""
    url: str | None = None
    if kind == "html":
        title, url, lines = _html_parts(text)
        paragraphs = clean_paragraphs(lines)
    elif kind == "markdown":
        title, lines = _markdown_lines(text)
        paragraphs = clean_paragraphs(lines)
    else:
        paragraphs = clean_paragraphs(text.splitlines())
        title, paragraphs = _text_title(paragraphs)
    if title and paragraphs and paragraphs[0] == title:
        paragraphs = paragraphs[1:]
    body = "\n\n".join(paragraphs)
    if not body.strip():
        raise DocumentError(f"{source}: no text to index (empty, or only navigation)")
    title = title or default_title or Path(source).stem.replace("_", " ").replace("-", " ")
    return Document(doc_id=doc_id or source, title=title, text=body, source=source, url=url)


def parse_bytes(data: bytes, kind: str, source: str, doc_id: str, *, encoding: str | None = None,
                url: str | None = None, progress: Callable[[int, int], None] | None = None) -> Document:
    """Raw bytes of one `kind` (a value of SUFFIXES) → a cleaned `Document`, from a file or a URL.
    `progress(part, parts)` reports reading a long source (the pages of a PDF)."""
    if kind == "pdf":
        from .sources.pdf import pdf_document

        document = pdf_document(data, source, doc_id, progress)
    elif kind == "docx":
        from .sources.word import docx_document

        document = docx_document(data, source, doc_id)
    else:
        if kind == "html" and encoding is None:
            # A page's own declaration, for a saved .html file as for a URL: a page saved from a
            # browser is often windows-1252 and says so.
            encoding = meta_charset(data)
        document = parse_document(decode_bytes(data, source, encoding), kind, source, doc_id=doc_id)
    return replace(document, url=url or document.url, size=len(data))


def load_document(path: Path, encoding: str | None = None, *, max_bytes: int,
                  progress: Callable[[int, int], None] | None = None) -> Document:
    """Read and clean one file; raise `DocumentError` with a one-line reason if it can't be used.

    Files larger than `max_bytes` ([ingest] max_document_mb) are refused before they are read.
    """
    source = str(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DocumentError(f"{source}: unsupported file type (use {SUPPORTED})")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise DocumentError(f"{source}: too large ({size / 2**20:.1f} MiB; the limit is "
                                f"{max_bytes / 2**20:.0f} MiB, set by QABOT_MAX_DOCUMENT_MB)")
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)  # a file that grew since stat() still stops here
        if len(data) > max_bytes:
            raise DocumentError(f"{source}: too large (over {max_bytes / 2**20:.0f} MiB)")
    except FileNotFoundError:
        raise DocumentError(f"{source}: no such file") from None
    except PermissionError:
        raise DocumentError(f"{source}: permission denied") from None
    except IsADirectoryError:
        raise DocumentError(f"{source}: is a directory") from None
    except OSError as exc:
        raise DocumentError(f"{source}: cannot read ({exc.strerror or exc})") from None
    if not data.strip():
        raise DocumentError(f"{source}: empty file")
    return parse_bytes(data, kind, source, str(path.resolve()), encoding=encoding, progress=progress)


def find_documents(paths: Iterable[Path]) -> Iterator[Path]:
    """Expand files and folders into supported files, in a stable order, following no link twice."""
    for path in paths:
        if not path.exists() and not path.is_symlink():
            raise DocumentError(f"{path}: no such file or directory")
        if path.is_dir():
            seen: set[tuple[int, int]] = set()
            for root, dirs, files in os.walk(path, followlinks=True, onerror=_walk_error):
                stat = os.stat(root)
                if (stat.st_dev, stat.st_ino) in seen:  # a symlink loop
                    dirs[:] = []
                    continue
                seen.add((stat.st_dev, stat.st_ino))
                dirs.sort()
                for name in sorted(files):
                    candidate = Path(root) / name
                    if candidate.suffix.lower() in SUFFIXES and not name.startswith("."):
                        yield candidate
        else:
            yield path


def _walk_error(exc: OSError) -> None:
    raise DocumentError(f"{exc.filename}: {exc.strerror or 'cannot read'}")
