"""The shipped reader model (bot/reader/model) on the bundled article: real model, real tokenizer,
real sentences. It must find the answering sentence and its span, and score unrelated questions
below the calibrated decline threshold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.reader.features import Candidate, before_sentence
from bot.reader.runtime import MODEL_DIR, Reader
from embeddings.chunking import split_sentences
from embeddings.documents import load_document

from .conftest import READER_GAP

# The real shipped model on the bundled article: the integration tier.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ARTICLE = ROOT / "data" / "articles" / "ryabkov-2022-01-06.txt"


@pytest.fixture(scope="module")
def reader() -> Reader:
    return Reader.load()


@pytest.fixture(scope="module")
def candidates() -> list[Candidate]:
    """Every sentence of the article, with its title and the sentence before it as context."""
    document = load_document(ARTICLE, max_bytes=10**6)
    sentences = split_sentences(document.text)
    offsets = [(s.start, s.end) for s in sentences]
    return [Candidate(s.text, before_sentence(document.text, offsets, i), document.title)
            for i, s in enumerate(sentences)]


def best(reader: Reader, question: str, candidates: list[Candidate]):
    readings = reader.read(question, candidates)
    top = max(range(len(readings)), key=lambda i: readings[i].score)
    reading = readings[top]
    span = candidates[top].text[reading.span[0]:reading.span[1]] if reading.span else ""
    return candidates[top].text, span, reading, readings


@pytest.mark.parametrize("question", ["What deadline did Ryabkov give?",
                                      "How soon does the Kremlin want an outcome?",
                                      "How soon does Russia want results?"])
@READER_GAP
def test_the_within_a_few_weeks_sentence_answers_when(reader, candidates, question):
    text, span, reading, readings = best(reader, question, candidates)
    assert "within a few weeks" in text
    assert "few weeks" in span
    assert not reader.declines(readings)


@READER_GAP
def test_agency_question_highlights_tass(reader, candidates):
    text, span, _, readings = best(reader, "Which news agency reported his remarks?", candidates)
    assert "reported TASS" in text
    assert span == "TASS"
    assert not reader.declines(readings)


@pytest.mark.parametrize("question", ["What is the boiling point of mercury?",
                                      "Who won the 1998 football World Cup?"])
def test_unrelated_questions_are_declined(reader, candidates, question):
    readings = reader.read(question, candidates)
    assert max(r.score for r in readings) < reader.threshold
    assert reader.declines(readings)


def test_readings_keep_order_and_spans_lie_inside_their_sentence(reader, candidates):
    readings = reader.read("When are the talks in Geneva?", candidates[:6])
    assert len(readings) == 6
    for candidate, reading in zip(candidates[:6], readings):
        assert 0.0 <= reading.score <= 1.0 and 0.0 <= reading.span_score <= 1.0
        if reading.span is not None:
            assert 0 <= reading.span[0] < reading.span[1] <= len(candidate.text)
    assert reader.read("When?", []) == []


def test_load_is_cached_and_the_threshold_is_calibrated(reader):
    assert Reader.load() is reader and Reader.load(MODEL_DIR) is reader
    assert reader.config["calibrated_on"]["articles"], "reader.json must say where it was calibrated"
    assert 0.0 < reader.threshold < 1.0


def test_question_time_does_not_import_torch():
    code = ("import sys; from bot.reader.runtime import Reader; from bot.reader.features import Candidate; "
            "Reader.load().read('When?', [Candidate('On Monday.')]); "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
