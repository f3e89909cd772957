"""Inputs of one ingest (files, folders, URLs, sitemaps, lists of them) → documents to index.

Named inputs are all-or-nothing: a file or URL given by name that cannot be used stops the ingest
with its one-line reason, and the index stays as it was. Members found inside a folder, a sitemap
or a `--from-list` file are refused one by one (reported), so one dead link does not block the rest.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence
from urllib.parse import urljoin

from ..documents import SUPPORTED, Document, decode_bytes, find_documents, load_document, parse_bytes
from ..errors import DocumentError
from .web import FetchLimits, Fetched, fetch, is_url, normalize_url, sitemap_pages

log = logging.getLogger(__name__)

# (ETag, Last-Modified) stored for a URL by an earlier ingest, by its doc_id.
Validators = Mapping[str, tuple[str | None, str | None]]
# (done, total, the input being read): `done` counts inputs, with a fraction for the part of a
# long one (the pages of a PDF) read so far.
Progress = Callable[[float, int, str], None]
PartProgress = Callable[[int, int], None]  # (part, parts) of one input
# A URL of a scheme `fetch` does not speak (ftp://, file://, s3://): refused as such, not as a path.
_OTHER_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass
class Collected:
    documents: list[Document] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # URLs the server said are unchanged (304)
    refused: list[str] = field(default_factory=list)  # one-line reasons for members refused


def read_list(path: Path) -> list[str]:
    """A `--from-list` file: one URL or path a line; blank lines and # comments are skipped.
    Relative paths are taken from the list's folder."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read the list ({exc.strerror or exc})") from None
    entries = []
    for line in decode_bytes(data, str(path)).splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        entries.append(entry if is_url(entry) or _OTHER_SCHEME.match(entry) else str((path.parent / entry)))
    if not entries:
        raise DocumentError(f"{path}: the list names no URLs or files")
    return entries


def web_document(fetched: Fetched, encoding: str | None = None,
                 progress: Callable[[int, int], None] | None = None) -> Document:
    """A fetched page or file → `Document`; an HTML page's canonical URL becomes its link."""
    charset = encoding or fetched.charset  # else an HTML page's <meta charset> (parse_bytes)
    document = parse_bytes(fetched.data or b"", fetched.kind or "text", fetched.url,
                           normalize_url(fetched.url), encoding=charset, progress=progress)
    url = fetched.final_url
    if fetched.kind == "html" and document.url:
        canonical = urljoin(fetched.final_url, document.url)  # <link rel="canonical"> or og:url
        if is_url(canonical):  # a javascript: or data: "canonical" link is no link to cite
            url = canonical
    return replace(document, url=url, etag=fetched.etag, last_modified=fetched.last_modified)


def collect(specs: Sequence[str | Path], *, max_bytes: int, encoding: str | None = None,
            from_lists: Sequence[Path] = (), validators: Validators | None = None,
            limits: FetchLimits | None = None, progress: Progress | None = None) -> Collected:
    """Load every input; see the module docstring for which failures stop the ingest."""
    limits = limits or FetchLimits(max_bytes=max_bytes)
    validators = validators or {}
    result = Collected()
    queue: deque[tuple[str | Path, bool, bool]] = deque()  # (input, named, may be a sitemap)
    for spec in specs:
        queue.append((spec, True, True))
    for listing in from_lists:
        queue.extend((entry, False, True) for entry in read_list(listing))
    seen: set[str] = set()
    total, done = len(queue), 0
    while queue:
        spec, named, sitemap_ok = queue.popleft()
        key = normalize_url(str(spec)) if is_url(spec) else str(Path(spec).resolve())
        if key in seen:
            total -= 1
            continue
        seen.add(key)
        parts = None
        if progress is not None:
            # `total` is read when called, on purpose: pages a sitemap adds later raise it.
            def parts(part: int, of: int, at=done, item=str(spec)) -> None:
                progress(at + part / of, total, f"{item} ({part}/{of})")  # noqa: B023
        try:
            if is_url(spec):
                pages = _load_url(key, result, validators, limits, encoding, sitemap_ok, parts)
                queue.extend((page, False, False) for page in pages)
                total += len(pages)
            elif _OTHER_SCHEME.match(str(spec)) and not Path(spec).exists():
                # Read as a path, "ftp://host/a.txt" would be refused as "ftp:/host/a.txt: no such file".
                raise DocumentError(f"{spec}: only http:// and https:// URLs can be fetched")
            else:
                _load_path(Path(spec), named, result, max_bytes, encoding, parts)
        except DocumentError as exc:
            if named:
                raise
            result.refused.append(str(exc))
        done += 1
        if progress is not None:
            progress(done, total, str(spec))
    return result


def _load_url(url: str, result: Collected, validators: Validators, limits: FetchLimits,
              encoding: str | None, sitemap_ok: bool, parts: PartProgress | None) -> list[str]:
    """Fetch one URL into `result`; a sitemap's page URLs are returned to be fetched next."""
    etag, last_modified = validators.get(url, (None, None))
    fetched = fetch(url, limits, etag=etag, last_modified=last_modified)
    if fetched.not_modified:
        log.info("%s: not modified since the last ingest", url)
        result.unchanged.append(url)
        return []
    if fetched.kind == "xml":
        if not sitemap_ok:
            raise DocumentError(f"{url}: a sitemap inside a sitemap is not followed")
        pages, notes = sitemap_pages(fetched, limits)
        result.refused.extend(notes)
        return pages
    result.documents.append(web_document(fetched, encoding, parts))
    return []


def _load_path(path: Path, named: bool, result: Collected, max_bytes: int, encoding: str | None,
               parts: PartProgress | None) -> None:
    """Load one file, or a folder's supported files (refused one by one)."""
    if path.is_dir():
        found = False
        for member in find_documents([path]):
            found = True
            try:
                result.documents.append(load_document(member, encoding, max_bytes=max_bytes))
            except DocumentError as exc:
                result.refused.append(str(exc))
        if not found:
            raise DocumentError(f"{path}: no {SUPPORTED} files in this folder")
        return
    for member in find_documents([path]):
        result.documents.append(load_document(member, encoding, max_bytes=max_bytes, progress=parts))
