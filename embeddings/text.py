"""The cleaned `Document` every source produces, and the text cleaning they all share.

Kept apart from documents.py (which reads files and dispatches by type to embeddings/sources/)
so the PDF and Word readers import this, not the module that imports them.

A cleaned document is paragraphs of single-spaced text separated by one blank line, with navigation
boilerplate ("Go to home page", "Back to top") removed and curly quotes made straight, so that
sentence offsets computed later point into exactly the text that is quoted back to users.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Iterable


@dataclass(frozen=True)
class Document:
    """A cleaned document. `doc_id` is stable across re-ingests of the same source."""

    doc_id: str
    title: str
    text: str  # cleaned: paragraphs separated by "\n\n"
    source: str
    url: str | None = None
    # Where each page starts in `text`: (offset, page number), ascending; empty when the source
    # has no pages. A PDF's citations say "p. 4" from this.
    pages: tuple[tuple[int, int], ...] = ()
    size: int = 0  # bytes of the source as read (file or HTTP body), for `qabot docs list`
    # HTTP validators of a fetched URL, sent back on the next ingest so an unchanged page costs a 304.
    etag: str | None = None
    last_modified: str | None = None

    @property
    def short_id(self) -> str:
        return short_id(self.doc_id)

    @property
    def sha256(self) -> str:
        """Content hash: an unchanged title and text means an unchanged document."""
        digest = hashlib.sha256()
        digest.update(self.title.encode("utf-8"))
        digest.update(b"\0")
        digest.update(self.text.encode("utf-8"))
        return digest.hexdigest()


def short_id(doc_id: str) -> str:
    """A readable id for citations: the file name plus a few hex digits of the full id."""
    name = Path(doc_id).name or doc_id
    return f"{name[:60]}~{hashlib.sha1(doc_id.encode('utf-8')).hexdigest()[:6]}"


# --- cleaning -------------------------------------------------------------------------------

_QUOTES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"',
    "\u00a0": " ", "\u2007": " ", "\u202f": " ", "\u200b": "", "\ufeff": "",
})

# Phrases that make up site navigation. A short line made only of these (and punctuation) is
# boilerplate; a sentence that merely mentions "home page" is kept.
_NAV_PHRASES = [
    r"go to (?:the )?home ?page", r"back to (?:the )?top", r"skip to (?:main )?content",
    r"skip navigation", r"return to top", r"home ?page", r"home", r"menu", r"main menu",
    r"navigation", r"search", r"share(?: this)?(?: article| story| page)?", r"print(?: this)?(?: page| article)?",
    r"email", r"tweet", r"facebook", r"twitter", r"linkedin", r"subscribe(?: now)?", r"sign in",
    r"sign up", r"log ?in", r"log ?out", r"register", r"next(?: article| page| story)?",
    r"previous(?: article| page| story)?", r"read more", r"related articles?", r"advertisement",
    r"cookies?(?: policy| settings)?", r"accept(?: all)?(?: cookies)?", r"privacy policy",
    r"terms of (?:use|service)", r"contact us", r"about us", r"clear", r"close", r"top",
]
_NAV_LINE = r"^(?:[\s|\u2022\u00b7>\-–—/]*(?:" + "|".join(_NAV_PHRASES) + r")[\s|\u2022\u00b7>\-–—/.:]*)+$"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def is_boilerplate(line: str) -> bool:
    """True for a navigation line such as "Back to top    Go to home page clear"."""
    stripped = line.strip()
    return bool(stripped) and len(stripped) <= 120 and bool(_nav_line().match(stripped))


@cache
def _nav_line() -> re.Pattern[str]:
    """`_NAV_LINE` compiled, once a process when first needed: only reading documents needs it,
    and compiling it took ~1.5 ms of every cold `qabot ask`, which imports this module."""
    return re.compile(_NAV_LINE, re.IGNORECASE)


def normalize_text(text: str) -> str:
    """Unicode NFC, straight quotes, no control characters, one space between words."""
    text = unicodedata.normalize("NFC", text).translate(_QUOTES)
    text = _CONTROL.sub(" ", text)
    return re.sub(r"[ \t\r\f\v]+", " ", text).strip()


def clean_paragraphs(lines: Iterable[str]) -> list[str]:
    """Group lines into paragraphs (a blank line ends one), dropping navigation lines."""
    paragraphs: list[str] = []
    current: list[str] = []
    for raw in lines:
        line = normalize_text(raw)
        if not line or is_boilerplate(line):
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        current.append(line)
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs
