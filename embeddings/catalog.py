"""Find indexed documents by what a user types: an ID from `qabot docs list`, a chunk id from a
citation, a file path, a URL or the stored source, so `qabot docs show/remove` accept any of them."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from .errors import QabotError
from .index import DocumentInfo
from .sources.web import is_url, normalize_url


class NoSuchDocumentError(QabotError):
    """No indexed document, or more than one, matches what the user named."""


def match(documents: Mapping[str, DocumentInfo], ref: str) -> list[DocumentInfo]:
    """Every document `ref` names, best kind of match first (exact id, short id, source, path)."""
    ref = ref.strip()
    if ref in documents:
        return [documents[ref]]
    short = ref.split("#", 1)[0]  # a chunk id "name~abc123#4" names its document
    found = [d for d in documents.values() if d.short_id == short]
    if found:
        return found
    found = [d for d in documents.values() if d.source == ref]
    if found:
        return found
    if is_url(ref):
        return [d for d in documents.values() if d.doc_id == normalize_url(ref) or d.url == ref]
    resolved = str(Path(ref).expanduser().resolve())
    return [d for d in documents.values() if d.doc_id == resolved]


def resolve(documents: Mapping[str, DocumentInfo], ref: str) -> DocumentInfo:
    """The one document `ref` names, or a one-line error that says what to do."""
    found = match(documents, ref)
    if not found:
        raise NoSuchDocumentError(f"{ref}: no indexed document has this ID or source; "
                                  "see: qabot docs list")
    if len(found) > 1:
        raise NoSuchDocumentError(f"{ref}: matches {len(found)} documents; name one by its ID "
                                  "(qabot docs list)")
    return found[0]
