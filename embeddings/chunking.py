"""Split a cleaned document into sentences (pysbd) and sentences into overlapping chunks.

Every sentence and chunk keeps character offsets into `Document.text`, so an answer can quote the
exact words and a citation can point at where they stand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .text import Document

# A single "sentence" longer than this (a table dump, a run-on line) is cut at word boundaries,
# so no chunk grows past what the model reads.
MAX_SENTENCE_CHARS = 1000


@dataclass(frozen=True)
class Sentence:
    start: int  # offsets into the document text
    end: int
    text: str


@dataclass(frozen=True)
class Chunk:
    chunk_id: str  # "<doc_id>#<position>"
    doc_id: str
    position: int  # 0-based order within the document
    start: int  # offsets into the document text
    end: int
    text: str
    sentences: tuple[Sentence, ...]


@lru_cache(maxsize=1)
def _segmenter():
    import pysbd  # rule-based, knows "Jan.", "U.S.", "Dr." and friends

    # pysbd uses more distinct regex patterns than `re` caches by default, so it would recompile
    # them constantly; a larger cache makes sentence splitting about a quarter faster.
    re._MAXCACHE = max(re._MAXCACHE, 4096)

    return pysbd.Segmenter(language="en", clean=False)


def _cut_long(start: int, text: str) -> list[tuple[int, int]]:
    """Cut an over-long sentence into pieces of at most MAX_SENTENCE_CHARS at spaces."""
    pieces = []
    offset = 0
    while len(text) - offset > MAX_SENTENCE_CHARS:
        cut = text.rfind(" ", offset, offset + MAX_SENTENCE_CHARS)
        if cut <= offset:
            cut = offset + MAX_SENTENCE_CHARS
        pieces.append((start + offset, start + cut))
        offset = cut
        while offset < len(text) and text[offset] == " ":
            offset += 1
    if offset < len(text):
        pieces.append((start + offset, start + len(text)))
    return pieces


# pysbd slows down sharply on very long paragraphs, so long ones are fed to it in blocks of about
# this many characters, cut at a safe-looking sentence end.
BLOCK_CHARS = 3000
_SAFE_END = re.compile(r"(?<=[a-z0-9)\]\"'][a-z0-9)\]\"'][a-z0-9)\]\"'][.!?])[\"')\]]?\s+(?=[A-Z\"'])")


def _blocks(body: str) -> list[tuple[int, str]]:
    """Cut a long paragraph into (offset, block) pieces for the segmenter."""
    blocks = []
    offset = 0
    while len(body) - offset > BLOCK_CHARS:
        window = body[offset:offset + BLOCK_CHARS]
        ends = [m.end() for m in _SAFE_END.finditer(window)]
        cut = ends[-1] if ends and ends[-1] > BLOCK_CHARS // 3 else BLOCK_CHARS
        if cut == BLOCK_CHARS:  # no sentence end: cut at a space, or anywhere
            space = window.rfind(" ")
            cut = space + 1 if space > BLOCK_CHARS // 3 else BLOCK_CHARS
        blocks.append((offset, body[offset:offset + cut]))
        offset += cut
    blocks.append((offset, body[offset:]))
    return blocks


def split_sentences(text: str) -> list[Sentence]:
    """Sentences of `text` with offsets; never crosses a paragraph break."""
    sentences: list[Sentence] = []
    for paragraph in re.finditer(r"[^\n]+", text):
        for block_offset, body in _blocks(paragraph.group()):
            base = paragraph.start() + block_offset
            cursor = 0
            for piece in _segmenter().segment(body):
                stripped = piece.strip()
                if not stripped:
                    continue
                found = body.find(stripped, cursor)
                if found < 0:  # pysbd returned altered text; resynchronise on the next word
                    found = cursor
                end = min(found + len(stripped), len(body))
                cursor = end
                for start, stop in _cut_long(base + found, text[base + found:base + end]):
                    if text[start:stop].strip():
                        sentences.append(Sentence(start, stop, text[start:stop]))
    return sentences


def chunk_document(document: Document, chunk_words: int, sentence_overlap: int) -> list[Chunk]:
    """Group whole sentences into chunks of about `chunk_words` words.

    Each chunk after the first repeats the last `sentence_overlap` sentences of the one before,
    so a question whose answer spans a chunk boundary still finds both sentences together.
    Chunks never span paragraphs unless a paragraph is shorter than a third of a chunk. Both
    numbers come from the [chunking] settings (the index records them in its manifest).
    """
    if chunk_words < 1 or sentence_overlap < 0:
        raise ValueError("chunk_words must be >= 1 and sentence_overlap >= 0")
    sentences = split_sentences(document.text)
    words = [len(s.text.split()) for s in sentences]
    chunks: list[Chunk] = []
    i = 0
    while i < len(sentences):
        j = i
        total = 0
        while j < len(sentences) and (j == i or total + words[j] <= chunk_words):
            # Start a new chunk at a paragraph break once this one is reasonably full.
            if j > i and total >= chunk_words // 3 and "\n" in document.text[sentences[j - 1].end:sentences[j].start]:
                break
            total += words[j]
            j += 1
        members = tuple(sentences[i:j])
        start, end = members[0].start, members[-1].end
        chunks.append(Chunk(
            chunk_id=f"{document.short_id}#{len(chunks)}",
            doc_id=document.doc_id,
            position=len(chunks),
            start=start,
            end=end,
            text=document.text[start:end],
            sentences=members,
        ))
        if j >= len(sentences):
            break
        i = max(j - sentence_overlap, i + 1)
    return chunks
