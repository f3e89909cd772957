"""Answers over the bundled article: the right sentences, quoted, or an honest abstention."""

from __future__ import annotations

import pytest

from bot.answering.answer import ABSTAIN_TEXT

from .conftest import READER_GAP


def _all_text(answer) -> str:
    return answer.text + " " + " ".join(c.text for c in answer.citations)


def test_deadline_question_quotes_within_a_few_weeks_and_the_qualifier(answerer):
    answer = answerer.ask("What deadline did Ryabkov give?")
    assert not answer.abstained
    assert "within a few weeks" in answer.text
    assert "without specifying a deadline" in _all_text(answer)
    assert answer.citations and answer.citations[0].quote
    assert answer.citations[0].document.startswith("Russian Diplomat Ryabkov")


def test_geneva_talks_date(answerer):
    answer = answerer.ask("When are the Geneva talks?")
    assert not answer.abstained
    assert "Jan. 10" in answer.text
    assert answer.highlighted == "Jan. 10"


def test_newspaper_that_interviewed_him(answerer):
    answer = answerer.ask("Which newspaper interviewed him?")
    assert not answer.abstained
    assert "Izvestia" in answer.text


@pytest.mark.parametrize("question", [
    "What is the capital of Australia?",
    "What did President Biden say about the Geneva talks?",
    "How do I bake sourdough bread?",
])
def test_questions_the_article_does_not_cover_abstain(answerer, question):
    answer = answerer.ask(question)
    assert answer.abstained
    assert answer.text == ABSTAIN_TEXT
    assert all(not c.quote for c in answer.citations)


@pytest.mark.parametrize("question", [
    "What deadline did Ryabkov give?", "When are the Geneva talks?", "Which newspaper interviewed him?",
    "What is the capital of Australia?", "home page", "Go to home page", "Back to top",
])
def test_no_answer_or_citation_quotes_navigation_text(answerer, question):
    answer = answerer.ask(question)
    for text in [answer.text] + [c.text for c in answer.citations] + [c.quote for c in answer.citations]:
        assert "Go to home page" not in text and "Back to top" not in text


def test_answer_is_quoted_from_the_cited_passage(answerer):
    answer = answerer.ask("When did Moscow deliver the draft agreements?")
    assert not answer.abstained
    assert "Dec. 15" in answer.text
    quoted = [c for c in answer.citations if c.quote]
    assert quoted and all(c.quote in c.text or all(part in c.text for part in c.quote.split('" ')) for c in quoted)
    assert set(answer.timings_ms) >= {"embed_ms", "retrieve_ms", "select_ms", "total_ms"}


def test_follow_up_uses_the_conversation(answerer):
    first = "What did Ryabkov say about the talks in Geneva?"
    answer = answerer.ask("And when are they?", history=[first])
    assert not answer.abstained
    assert "Jan. 10" in answer.text


@pytest.mark.parametrize("question", ["", "   ", "???", "\x00\x01"])
def test_empty_questions_get_a_polite_reply(answerer, question):
    answer = answerer.ask(question)
    assert answer.abstained and "question" in answer.text.lower()


def test_long_questions_are_truncated_before_embedding(answerer):
    answer = answerer.ask("When are the Geneva talks? " + "blah " * 20000)
    assert len(answer.question) <= answerer.settings.answer.max_question_chars


def test_json_shape_is_stable(answerer, reader_answerer):
    data = answerer.ask("When are the Geneva talks?").to_json()
    # "reader" came with the trained reader (issue 10), "composed", "notice", "llm" and a citation's
    # "number" with composed answers (issue 13): keys are only ever added.
    assert set(data) == {"question", "answer", "abstained", "highlight", "citations", "timings_ms", "reader",
                         "composed", "notice", "llm"}
    assert data["reader"] is None  # the rules answered
    assert data["composed"] is False and data["llm"] is None and data["notice"] is None  # [llm] is off
    read = reader_answerer.ask("When are the Geneva talks?").to_json()
    assert set(read) == set(data) and set(read["reader"]) == {"score", "span_score", "lead"}
    assert set(data["citations"][0]) == {"document", "chunk_id", "text", "score", "source", "url", "page", "number"}


# --- the reader: paraphrases in words the article lacks, answer first ------------------------------

@pytest.mark.parametrize("question, evidence", [
    ("How soon does the Kremlin want an outcome?", "within a few weeks"),  # "Kremlin", "outcome": not in it
    pytest.param("Which newswire reported his remarks?", "TASS", marks=READER_GAP),
    pytest.param("Which agency reported his remarks?", "TASS", marks=READER_GAP),
    pytest.param("What has the United States failed to specify?", "specifically indicated", marks=READER_GAP),
])
def test_paraphrases_in_words_the_article_lacks_are_answered(reader_answerer, question, evidence):
    answer = reader_answerer.ask(question)
    assert not answer.abstained, question
    assert evidence in answer.text


@READER_GAP
def test_a_confident_answer_leads_with_its_span_then_the_quote(reader_answerer):
    answer = reader_answerer.ask("How soon does Russia want to see results?")
    assert not answer.abstained and answer.reader is not None
    assert answer.highlighted == "within a few weeks"
    assert answer.lead == "within a few weeks"
    assert answer.to_json()["reader"]["lead"] == "within a few weeks"


def test_the_rules_answer_by_default_and_the_reader_is_selectable(answerer, reader_answerer):
    from bot.answering.judge import RuleJudge
    from bot.answering.reading import ReaderScorer
    from bot.answering.sentences import WeightedSentenceScorer

    # The rules stay the default until a reader beats them on the ablation table (docs/quality.md).
    assert isinstance(answerer.scorer, WeightedSentenceScorer) and isinstance(answerer.judge, RuleJudge)
    answer = answerer.ask("When are the Geneva talks?")
    assert answer.highlighted == "Jan. 10" and answer.reader is None and answer.lead is None
    assert isinstance(reader_answerer.scorer, ReaderScorer)
    read = reader_answerer.ask("When are the Geneva talks?")
    assert not read.abstained and "Jan. 10" in read.text and read.reader is not None
