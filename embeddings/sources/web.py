"""Fetch one URL within limits: size (streamed, refused without reading it all), time, redirects,
content type. And expand a sitemap into its page URLs.

The client is urllib3 (already installed with trafilatura): it streams bodies, bounds redirects
and separates connect from read timeouts. Every failure is a `DocumentError` with one line that
names the URL and says what went wrong.

A fetch for someone who is not the operator (`FetchLimits.allow_private` False: ``/ask add`` from
Slack) may reach public addresses only. The check is made on the address each connection is
actually opened to, after DNS resolution, so it holds for every redirect hop and against a name
that resolves differently the second time; nothing is sent before it passes.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Callable
from urllib.parse import urldefrag, urljoin, urlsplit

from ..errors import DocumentError

log = logging.getLogger(__name__)

# Limits of one fetch. Not measured: generous for a slow site, small enough that a dead one
# does not hang an ingest. Tests pass smaller ones through `FetchLimits`.
CONNECT_TIMEOUT_S = 10.0  # to open the connection
READ_TIMEOUT_S = 30.0  # between two packets of the response
TOTAL_TIMEOUT_S = 120.0  # for the whole body: a server dripping bytes is cut off here
MAX_REDIRECTS = 5  # browsers allow 20; a document link that needs more than 5 is broken
READ_BLOCK = 64 * 1024  # bytes read from the socket at a time while counting against the limit
# A sitemap names at most this many pages to ingest (the sitemap protocol allows 50,000 a file;
# an ingest that large should be split into several runs).
MAX_SITEMAP_URLS = 1000
USER_AGENT = "qabot-ingest (+https://github.com/; document fetcher)"

# Content types accepted, by their media type → the kind `parse_bytes` reads.
CONTENT_TYPES = {
    "text/html": "html", "application/xhtml+xml": "html",
    "text/plain": "text", "text/markdown": "markdown", "text/x-markdown": "markdown",
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/xml": "xml", "text/xml": "xml",  # a sitemap; other XML is refused
}
# Servers often send files as octet-stream: then the URL's extension decides.
_GENERIC_TYPES = {"application/octet-stream", "binary/octet-stream", "application/download"}
_EXTENSIONS = {".pdf": "pdf", ".docx": "docx", ".txt": "text", ".md": "markdown",
               ".html": "html", ".htm": "html", ".xml": "xml"}


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int  # [ingest] max_document_mb
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    read_timeout_s: float = READ_TIMEOUT_S
    total_timeout_s: float = TOTAL_TIMEOUT_S
    max_redirects: int = MAX_REDIRECTS
    # False: refuse loopback, private, link-local (cloud metadata), multicast and reserved
    # addresses ([ingest] allow_private_urls, for `/ask add`); the CLI keeps True.
    allow_private: bool = True


@dataclass(frozen=True)
class Fetched:
    """A fetched body, or (`data is None`) a 304: unchanged since the validators were stored."""

    url: str  # as asked for
    final_url: str  # after redirects
    kind: str | None  # a key of `parse_bytes`, or "xml"
    data: bytes | None
    charset: str | None = None
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.data is None


def is_url(spec: object) -> bool:
    return isinstance(spec, str) and spec.lower().startswith(("http://", "https://"))


def normalize_url(url: str) -> str:
    """The URL a document is known by: without its #fragment, which names no other document."""
    return urldefrag(url.strip())[0]


_POOL = None


def _pool():
    """One shared connection pool (created on first use; urllib3's pools are thread-safe)."""
    global _POOL
    if _POOL is None:
        import urllib3

        _POOL = urllib3.PoolManager(headers={"User-Agent": USER_AGENT})
    return _POOL


class BlockedAddress(DocumentError):
    """A connection to a non-public address, refused before anything was sent."""


def blocked_address(address: str) -> str | None:
    """Why `address` (an IP) is not public ("loopback", "private", "link-local" ...), or None."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "unparsable"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-global"


_PUBLIC_POOL = None


def _public_pool():
    """A pool whose connections check the peer address once connected (see `blocked_address`)."""
    global _PUBLIC_POOL
    if _PUBLIC_POOL is None:
        import urllib3
        from urllib3.connection import HTTPConnection, HTTPSConnection
        from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

        def refuse(host: str, address: str) -> None:
            kind = blocked_address(address)
            if kind is not None:
                raise BlockedAddress(f"refused: {host} is a {kind} address ({address}); set [ingest] "
                                     "allow_private_urls = true to allow it")

        def connect(conn: HTTPConnection, new_conn: Callable[[], socket.socket]) -> socket.socket:
            # Every address the name resolves to first (no connection to a private one is even
            # tried), then the one actually connected to (a name that resolves anew meanwhile).
            try:
                infos = socket.getaddrinfo(conn.host, conn.port, type=socket.SOCK_STREAM)
            except OSError:
                infos = []  # the connection below fails with urllib3's own error
            for info in infos:
                refuse(conn.host, str(info[4][0]))
            sock = new_conn()
            try:
                refuse(conn.host, str(sock.getpeername()[0]))
            except BlockedAddress:
                sock.close()
                raise
            return sock

        class PublicHTTPConnection(HTTPConnection):
            def _new_conn(self) -> socket.socket:
                return connect(self, super()._new_conn)

        class PublicHTTPSConnection(HTTPSConnection):
            def _new_conn(self) -> socket.socket:
                return connect(self, super()._new_conn)

        class PublicHTTPPool(HTTPConnectionPool):
            ConnectionCls = PublicHTTPConnection

        class PublicHTTPSPool(HTTPSConnectionPool):
            ConnectionCls = PublicHTTPSConnection

        pool = urllib3.PoolManager(headers={"User-Agent": USER_AGENT})
        pool.pool_classes_by_scheme = {"http": PublicHTTPPool, "https": PublicHTTPSPool}
        _PUBLIC_POOL = pool
    return _PUBLIC_POOL


def _kind(content_type: str, url: str) -> tuple[str | None, str | None]:
    """(kind, charset) of a response from its Content-Type (or URL extension when generic)."""
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    charset = None
    match = re.search(r"charset\s*=\s*\"?([\w.:-]+)", params, re.IGNORECASE)
    if match:
        charset = match.group(1)
    if media in CONTENT_TYPES:
        return CONTENT_TYPES[media], charset
    if media in _GENERIC_TYPES or not media:
        return _EXTENSIONS.get(PurePosixPath(urlsplit(url).path).suffix.lower()), charset
    return None, charset


def _error_reason(exc: Exception, limits: FetchLimits) -> str:
    """A urllib3 failure → a few words a user can act on."""
    from urllib3 import exceptions as e

    reason = exc.reason if isinstance(exc, e.MaxRetryError) and exc.reason is not None else exc
    if isinstance(reason, e.ResponseError) and "redirect" in str(reason):
        return f"too many redirects (more than {limits.max_redirects})"
    if isinstance(reason, e.ConnectTimeoutError):
        return f"no connection within {limits.connect_timeout_s:g} s"
    if isinstance(reason, (e.ReadTimeoutError, TimeoutError)):
        return f"no response within {limits.read_timeout_s:g} s"
    if isinstance(reason, e.SSLError):
        return "TLS error (certificate not trusted?)"
    if isinstance(reason, (e.NewConnectionError, e.NameResolutionError)):
        return "cannot connect (no such host, or nothing listening)"
    if isinstance(reason, e.LocationValueError):
        return "invalid URL"
    if isinstance(reason, e.ProtocolError):
        return "the connection broke off"
    return type(reason).__name__


def fetch(url: str, limits: FetchLimits, *, etag: str | None = None,
          last_modified: str | None = None) -> Fetched:
    """GET `url` within `limits`, conditionally when validators of a stored copy are given."""
    from urllib3 import Retry, Timeout
    from urllib3 import exceptions as e

    headers = {"Accept": ", ".join(CONTENT_TYPES) + ";q=0.9, */*;q=0.1"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    retries = Retry(total=None, connect=0, read=0, status=0, other=0,
                    redirect=limits.max_redirects, raise_on_redirect=True, raise_on_status=False)
    deadline = time.monotonic() + limits.total_timeout_s
    try:
        pool = _pool() if limits.allow_private else _public_pool()
        response = pool.request(
            "GET", url, headers=headers, retries=retries, preload_content=False, decode_content=True,
            timeout=Timeout(connect=limits.connect_timeout_s, read=limits.read_timeout_s))
    except BlockedAddress as exc:
        log.warning("refused to fetch %s: %s", url, exc)
        raise DocumentError(f"{url}: {exc}") from None
    except (e.HTTPError, ValueError, TimeoutError) as exc:
        raise DocumentError(f"{url}: {_error_reason(exc, limits)}") from None
    try:
        final_url = _final_url(url, response)
        if response.status == 304:
            return Fetched(url, final_url, None, None, etag=etag, last_modified=last_modified)
        if response.status >= 400 or response.status < 200 or response.status in (204, 206):
            raise DocumentError(f"{url}: HTTP {response.status} {response.reason or ''}".rstrip())
        if 300 <= response.status < 400:
            raise DocumentError(f"{url}: HTTP {response.status} redirect without a usable Location")
        kind, charset = _kind(response.headers.get("Content-Type", ""), final_url)
        if kind is None:
            raise DocumentError(f"{url}: unsupported content type "
                                f"{response.headers.get('Content-Type', 'none')!r} (use HTML, text, PDF or DOCX)")
        data = _read_limited(response, url, limits, deadline)
        return Fetched(url, final_url, kind, data, charset, response.headers.get("ETag"),
                       response.headers.get("Last-Modified"))
    finally:
        response.release_conn()


def _final_url(url: str, response) -> str:
    """The absolute URL the redirects led to (a Location header may be relative to its hop)."""
    current = url
    for hop in getattr(response.retries, "history", ()) or ():
        if hop.redirect_location:
            current = urljoin(current, hop.redirect_location)
    return current


def _read_limited(response, url: str, limits: FetchLimits, deadline: float) -> bytes:
    """The body, refused as soon as it is known to pass `limits.max_bytes`: from Content-Length
    before reading anything, else after at most one block past the limit. The connection is
    then closed rather than drained, so the rest is never downloaded."""
    from urllib3 import exceptions as e

    too_large = (f"{url}: too large (over {limits.max_bytes / 2**20:.0f} MiB, the limit set by "
                 "QABOT_MAX_DOCUMENT_MB)")
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limits.max_bytes:
        response.close()
        raise DocumentError(too_large)
    parts: list[bytes] = []
    size = 0
    try:
        while True:
            block = response.read(READ_BLOCK)
            if not block:
                break
            size += len(block)
            if size > limits.max_bytes:
                response.close()
                raise DocumentError(too_large)
            if time.monotonic() > deadline:
                response.close()
                raise DocumentError(f"{url}: took longer than {limits.total_timeout_s:g} s to download")
            parts.append(block)
    except (e.HTTPError, OSError) as exc:
        response.close()
        raise DocumentError(f"{url}: {_error_reason(exc, limits)}") from None
    return b"".join(parts)


# --- sitemaps -------------------------------------------------------------------------------

def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_sitemap(data: bytes, url: str) -> tuple[str, list[str]]:
    """("urlset" | "sitemapindex", the <loc> URLs) of a sitemap; `DocumentError` for other XML.

    Not trafilatura's sitemap support (trafilatura.sitemaps, 2.x): its `sitemap_search` and
    `SitemapObject` fetch every sitemap themselves, through trafilatura's downloader, so qabot's
    fetch limits (size cap read as a stream, timeouts, redirects, conditional re-fetch) would not
    apply, and they sleep between requests, drop other hosts' pages and guess sitemap locations;
    parsing the bytes qabot already fetched is these dozen lines of the standard library.
    """
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise DocumentError(f"{url}: not well-formed XML ({exc})") from None
    kind = _local(root.tag)
    if kind not in ("urlset", "sitemapindex"):
        raise DocumentError(f"{url}: XML but not a sitemap (root <{kind}>); "
                            "use HTML, text, PDF or DOCX, or a sitemap")
    locations = []
    for element in root.iter():
        if _local(element.tag) == "loc" and element.text and element.text.strip():
            locations.append(urljoin(url, element.text.strip()))
    return kind, locations


def sitemap_pages(fetched: Fetched, limits: FetchLimits,
                  max_urls: int = MAX_SITEMAP_URLS) -> tuple[list[str], list[str]]:
    """(page URLs, one-line notes) of a fetched sitemap. A sitemap index is followed one level
    down (its sitemaps listing pages); at most `max_urls` pages are returned."""
    kind, locations = parse_sitemap(fetched.data or b"", fetched.url)
    notes: list[str] = []
    pages: list[str] = []
    if kind == "urlset":
        pages = locations
    else:
        for child in locations:
            if len(pages) >= max_urls:
                break
            try:
                sub = fetch(child, limits)
                if sub.kind != "xml":
                    raise DocumentError(f"{child}: not a sitemap")
                sub_kind, sub_pages = parse_sitemap(sub.data or b"", child)
                if sub_kind != "urlset":
                    raise DocumentError(f"{child}: nested sitemap index (only one level is followed)")
                pages.extend(sub_pages)
            except DocumentError as exc:
                notes.append(str(exc))
    unique = list(dict.fromkeys(normalize_url(p) for p in pages if is_url(p)))
    if len(unique) > max_urls:
        notes.append(f"{fetched.url}: lists {len(unique)} pages; only the first {max_urls} are ingested")
        unique = unique[:max_urls]
    if not unique and not notes:
        notes.append(f"{fetched.url}: sitemap lists no pages")
    return unique, notes
