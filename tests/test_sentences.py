"""Sentence choice on synthetic passages (the best sentence plus the ones that complete it, within
its paragraph, `max_sentences` as a count), and sentence scoring over a small real index embedded
with the fake hash encoder: no model."""

from __future__ import annotations

import math

import pytest

from bot.answering.compose import choose_sentences
from bot.answering.question import Question
from bot.answering.retrieval import Passage
from bot.answering.sentences import (FOLLOW_UP_SUBJECT_WEIGHT, ScoredSentence, SentenceVectors,
                                     WeightedSentenceScorer, keyword_weights, question_weights)
from bot.settings import AnswerSettings
from embeddings.documents import Document
from embeddings.index import ChunkRecord, Hit, Index


def passage(row: int, sentences: list[str], separators: list[str] | None = None, start: int = 0) -> Passage:
    """A passage whose chunk holds `sentences`, joined by `separators` (default: one space)."""
    separators = separators or [" "] * (len(sentences) - 1)
    text, spans = "", []
    for i, sentence in enumerate(sentences):
        spans.append((len(text), len(text) + len(sentence)))
        text += sentence + (separators[i] if i < len(separators) else "")
    chunk = ChunkRecord(f"doc#{row}", "doc", row, start, start + len(text), text, tuple(spans))
    return Passage(row, Hit(row, chunk, 0.5), 0.5, 0.5, 0.0, row)


def scored(p: Passage, index: int, score: float, keyword: float = 0.0) -> ScoredSentence:
    return ScoredSentence(p, index, p.hit.chunk.sentence_texts()[index], 0.5, keyword, score)


def texts(chosen) -> list[str]:
    return [s.text for s in chosen]


A = passage(0, ["Ryabkov led the delegation.", "He said the talks start on Jan. 10.",
                "It was cold in Geneva.", "Markets were calm."])


def test_the_best_sentence_alone_when_nothing_completes_it():
    best = scored(A, 3, 1.0)
    assert texts(choose_sentences(best, [best], 2)) == ["Markets were calm."]


def test_a_sentence_that_opens_leaning_on_the_one_before_brings_it_along_in_reading_order():
    best = scored(A, 1, 1.0)  # "He said ...": who is "he"?
    assert texts(choose_sentences(best, [best], 2)) == ["Ryabkov led the delegation.",
                                                       "He said the talks start on Jan. 10."]


def test_with_a_lead_in_the_best_sentence_it_stands_alone():
    best = scored(A, 1, 1.0)
    assert texts(choose_sentences(best, [best], 2, has_lead=True)) == ["He said the talks start on Jan. 10."]


def test_a_quote_attribution_brings_the_one_before_a_continuing_next_one_nothing():
    p = passage(0, ["Ryabkov led the delegation.", "Talks start on Jan. 10, he said.",
                    "But Moscow wants guarantees first."])
    best = scored(p, 1, 1.0)
    assert texts(choose_sentences(best, [best], 2)) == ["Ryabkov led the delegation.",
                                                       "Talks start on Jan. 10, he said."]
    p = passage(0, ["Ryabkov led the delegation.", "Officials said he will talk on Jan. 10.",
                    "But Moscow wants guarantees first."])
    best = scored(p, 1, 1.0)
    assert texts(choose_sentences(best, [best], 2)) == ["Officials said he will talk on Jan. 10."]


def test_neighbours_across_a_paragraph_break_do_not_join():
    p = passage(0, ["Ryabkov led the delegation.", "He said the talks start on Jan. 10.",
                    "But nothing was agreed."], separators=["\n\n", "\n\n"])
    best = scored(p, 1, 1.0)
    assert texts(choose_sentences(best, [best], 2)) == ["He said the talks start on Jan. 10."]


def test_max_sentences_is_a_count():
    best = scored(A, 1, 1.0)
    assert texts(choose_sentences(best, [best], 1)) == ["He said the talks start on Jan. 10."]
    assert len(choose_sentences(best, [best], 10)) == 2  # nothing else completes it


def test_runners_up_elsewhere_stay_out():
    other = passage(1, ["The Geneva talks start on Jan. 10, officials said."], start=500)
    best = scored(A, 3, 1.0, keyword=0.5)
    assert texts(choose_sentences(best, [best, scored(other, 0, 0.99, keyword=0.5)], 2)) == ["Markets were calm."]


# --- scoring over a small real index --------------------------------------------------------------

@pytest.fixture(scope="module")
def small_index(fake_encoder):
    index = Index(fake_encoder.model_name, fake_encoder.dimension, chunk_words=40, sentence_overlap=0)
    index.add([
        Document("geneva", "Geneva talks", "Talks open in Geneva on January 10. Ryabkov will lead the "
                 "Russian delegation. The weather was cold.", "geneva.txt"),
        Document("oil", "Oil crisis", "The oil embargo began in 1973. Prices rose for months.", "oil.txt"),
    ], fake_encoder, batch_size=32)
    return index


def test_keyword_weights_are_the_index_idf(small_index):
    weights = keyword_weights(small_index, "When are the Geneva talks?")
    assert set(weights) == {"geneva", "talk"}
    assert weights["geneva"] == small_index.keyword.idf("geneva")
    assert weights["geneva"] == pytest.approx(math.log(1 + len(small_index) / (1 + 0.5)))


def test_a_follow_up_adds_its_subject_at_a_lower_weight(small_index):
    question = Question("And when are they?", "Who leads the Geneva delegation? And when are they?")
    weights = question_weights(small_index, question)
    alone = keyword_weights(small_index, question.query)
    assert weights["geneva"] == pytest.approx(FOLLOW_UP_SUBJECT_WEIGHT * alone["geneva"])


def test_the_sentence_holding_the_question_words_scores_best(small_index, fake_encoder):
    vectors = SentenceVectors(fake_encoder.encode)
    scorer = WeightedSentenceScorer(small_index, vectors, AnswerSettings())
    question = Question("Who will lead the Russian delegation?", "Who will lead the Russian delegation?")
    passages = [Passage(row, Hit(row, small_index.chunks[row], 0.5), 0.5, 0.5, 0.0, row)
                for row in range(len(small_index))]
    ranked = scorer.score(question, fake_encoder.encode([question.text])[0], passages)
    assert ranked[0].text == "Ryabkov will lead the Russian delegation."
    assert ranked[0].keyword == pytest.approx(1.0)
    assert all(a.score >= b.score for a, b in zip(ranked, ranked[1:]))
    assert len(ranked) == sum(len(c.sentences) for c in small_index.chunks)
