"""Sentence splitting (abbreviations) and chunk offsets."""

from __future__ import annotations

from embeddings.chunking import MAX_SENTENCE_CHARS, chunk_document, split_sentences
from embeddings.documents import Document, load_document

from .conftest import SAMPLE

MAX_BYTES = 2**20  # the [ingest] limit is the caller's; 1 MiB holds every file here


def test_abbreviations_do_not_end_sentences():
    text = ("Talks in Geneva on Jan. 10 follow drafts sent on Dec. 15 by Moscow. "
            "The U.S. stance was tough. Dr. Smith arrived at 5 p.m. on Monday.")
    sentences = [s.text for s in split_sentences(text)]
    assert sentences == [
        "Talks in Geneva on Jan. 10 follow drafts sent on Dec. 15 by Moscow.",
        "The U.S. stance was tough.",
        "Dr. Smith arrived at 5 p.m. on Monday.",
    ]


def test_sentence_offsets_point_into_the_text_and_never_cross_paragraphs():
    doc = load_document(SAMPLE, max_bytes=MAX_BYTES)
    sentences = split_sentences(doc.text)
    assert len(sentences) == 11
    for s in sentences:
        assert doc.text[s.start:s.end] == s.text
        assert "\n" not in s.text
    first = sentences[0].text
    assert "on Jan. 10, Russian Deputy Foreign Minister" in first  # "Jan." did not split it
    assert first.endswith("within a few weeks.")


def test_chunks_keep_offsets_sentences_and_overlap():
    doc = load_document(SAMPLE, max_bytes=MAX_BYTES)
    chunks = chunk_document(doc, chunk_words=60, sentence_overlap=1)
    assert len(chunks) >= 3
    for position, chunk in enumerate(chunks):
        assert chunk.position == position
        assert chunk.chunk_id.endswith(f"#{position}")
        assert doc.text[chunk.start:chunk.end] == chunk.text
        for s in chunk.sentences:
            assert doc.text[s.start:s.end] == s.text
            assert chunk.start <= s.start < s.end <= chunk.end
    for before, after in zip(chunks, chunks[1:]):
        if len(before.sentences) > 1:
            assert after.sentences[0] == before.sentences[-1]  # one sentence of overlap
        else:  # a chunk of one long sentence cannot share it and still move on
            assert after.sentences[0].start > before.sentences[0].start
    covered = {s.start for c in chunks for s in c.sentences}
    assert covered == {s.start for s in split_sentences(doc.text)}  # nothing is lost


def test_chunk_size_is_configurable():
    doc = load_document(SAMPLE, max_bytes=MAX_BYTES)
    small = chunk_document(doc, chunk_words=40, sentence_overlap=0)
    large = chunk_document(doc, chunk_words=400, sentence_overlap=0)
    assert len(small) > len(large) >= 1
    assert sum(len(c.sentences) for c in small) == sum(len(c.sentences) for c in large)


def test_a_huge_sentence_is_cut_at_word_boundaries():
    text = " ".join(["word"] * 2000)
    sentences = split_sentences(text)
    assert all(len(s.text) <= MAX_SENTENCE_CHARS for s in sentences)
    assert " ".join(s.text for s in sentences) == text
    chunks = chunk_document(Document("d", "t", text, "d"), chunk_words=120, sentence_overlap=1)
    assert all(len(c.text.split()) <= 2 * MAX_SENTENCE_CHARS for c in chunks)
