"""PDF → `Document` with pypdf, keeping where each page starts so a citation can say "p. 4".

Text comes from the PDF's text layer (a scanned PDF without one is refused: there is no OCR).
Lines are joined into paragraphs: a paragraph ends at a blank line or at a line that ends a
sentence well short of the page's usual line length; a word hyphenated across lines is rejoined.
"""

from __future__ import annotations

import io
import logging
import re
import statistics
from pathlib import Path
from typing import Callable

from ..text import Document, clean_paragraphs, normalize_text
from ..errors import DocumentError

log = logging.getLogger(__name__)

# A line shorter than this share of the page's median line length that ends a sentence ends its
# paragraph (the last line of a justified paragraph is short). 0.7 kept the paragraphs of the
# test reports and of a two-column article intact while splitting at every real paragraph end.
SHORT_LINE_RATIO = 0.7
_SENTENCE_END = re.compile(r"[.!?:\"')\]]$")
_HYPHENATED = re.compile(r"[A-Za-z]-$")


def _page_lines(text: str) -> list[str]:
    """A page's extracted text → lines with paragraph breaks marked by empty strings."""
    lines = [normalize_text(line) for line in text.splitlines()]
    lengths = [len(line) for line in lines if line]
    if not lengths:
        return []
    median = statistics.median(lengths)
    out: list[str] = []
    for line in lines:
        if out and out[-1] and _HYPHENATED.search(out[-1]) and line[:1].islower():
            out[-1] = out[-1][:-1] + line  # "inter-" + "national"
        else:
            out.append(line)
        if line and _SENTENCE_END.search(line) and len(line) < SHORT_LINE_RATIO * median:
            out.append("")
    return out


def _title(reader, source: str) -> str:
    """The PDF's own title when it has a real one, else the file name."""
    try:
        title = normalize_text(str((reader.metadata or {}).get("/Title") or ""))
    except Exception:
        title = ""
    if title and not title.lower().startswith(("microsoft word - ", "untitled")):
        return title
    stem = Path(source.rstrip("/").split("?")[0]).stem
    return stem.replace("_", " ").replace("-", " ") or source


def pdf_document(data: bytes, source: str, doc_id: str,
                 progress: Callable[[int, int], None] | None = None) -> Document:
    """Read a PDF's text page by page; raise `DocumentError` for a broken, encrypted or image-only one.
    `progress(page, pages)` is called after each page: a long PDF takes a while to read."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError(f"{source}: the PDF is encrypted; save an unencrypted copy")
        paragraphs: list[str] = []
        pages: list[tuple[int, int]] = []
        offset = 0
        total = len(reader.pages)
        for number, page in enumerate(reader.pages, start=1):
            found = clean_paragraphs(_page_lines(page.extract_text() or ""))
            if progress is not None:
                progress(number, total)
            if not found:
                continue
            pages.append((offset, number))
            for paragraph in found:
                paragraphs.append(paragraph)
                offset += len(paragraph) + 2  # the "\n\n" that joins paragraphs
        title = _title(reader, source)
    except DocumentError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError,
            RecursionError, ZeroDivisionError) as exc:
        log.debug("pypdf failed on %s", source, exc_info=True)
        raise DocumentError(f"{source}: not a readable PDF ({type(exc).__name__})") from None
    if not paragraphs:
        raise DocumentError(f"{source}: no text to index (a scanned PDF without a text layer?)")
    return Document(doc_id=doc_id, title=title, text="\n\n".join(paragraphs), source=source,
                    pages=tuple(pages))
