"""Word (.docx) → `Document` with python-docx: paragraphs and table rows in reading order."""

from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path

from ..text import Document, clean_paragraphs, normalize_text
from ..errors import DocumentError

log = logging.getLogger(__name__)


def _blocks(document) -> list[tuple[str, str]]:
    """(style name, text) of each paragraph and table row in body order."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    blocks: list[tuple[str, str]] = []
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            blocks.append((item.style.name if item.style is not None else "", item.text))
        elif isinstance(item, Table):
            for row in item.rows:
                cells: list[str] = []
                for cell in row.cells:  # merged cells repeat: keep each text once per row
                    if cell.text.strip() and cell.text not in cells:
                        cells.append(cell.text)
                blocks.append(("Table", " | ".join(cells)))
    return blocks


def docx_document(data: bytes, source: str, doc_id: str) -> Document:
    """Read a .docx; raise `DocumentError` for a file that is not one (or holds no text)."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
        blocks = _blocks(document)
        core_title = normalize_text(document.core_properties.title or "")
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, AttributeError) as exc:
        log.debug("python-docx failed on %s", source, exc_info=True)
        raise DocumentError(f"{source}: not a readable .docx file ({type(exc).__name__})") from None
    title = core_title or None
    lines: list[str] = []
    for style, text in blocks:
        if title is None and style in ("Title", "Heading 1") and text.strip():
            title = normalize_text(text)
            continue
        lines.extend([text, ""])  # every Word paragraph is a paragraph
    paragraphs = clean_paragraphs(lines)
    if title and paragraphs and paragraphs[0] == title:
        paragraphs = paragraphs[1:]
    if not paragraphs:
        raise DocumentError(f"{source}: no text to index (empty document)")
    stem = Path(source.rstrip("/").split("?")[0]).stem.replace("_", " ").replace("-", " ")
    return Document(doc_id=doc_id, title=title or stem or source, text="\n\n".join(paragraphs),
                    source=source)
