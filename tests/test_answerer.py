"""Answers over the bundled article: the right sentences, quoted, or an honest abstention."""

from __future__ import annotations

import pytest

from bot.answering.answer import ABSTAIN_TEXT

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


@pytest.mark.parametrize("question", ["", "   ", "???", "\x00\x01"])
def test_empty_questions_get_a_polite_reply(answerer, question):
    answer = answerer.ask(question)
    assert answer.abstained and "question" in answer.text.lower()


def test_long_questions_are_cut_with_a_one_line_notice(answerer):
    answer = answerer.ask("When are the Geneva talks? " + "blah " * 2000)
    limit = answerer.settings.answer.max_question_chars
    assert len(answer.question) <= limit
    assert answer.notice == f"The question was cut to its first {limit} characters (of 10026)."
    assert "\n" not in answer.notice
    assert answerer.ask("When are the Geneva talks?").notice is None


def test_json_shape_is_stable(answerer):
    data = answerer.ask("When are the Geneva talks?").to_json()
    # "reader" came with the trained reader (issue 10) and stays, null, since it was removed;
    # "composed", "notice", "llm" and a citation's "number" came with composed answers (issue 13):
    # keys are only ever added.
    assert set(data) >= {"question", "answer", "abstained", "highlight", "citations", "timings_ms", "reader",
                         "composed", "notice", "llm"}
    assert data["reader"] is None
    assert data["composed"] is False and data["llm"] is None and data["notice"] is None  # [llm] is off
    assert set(data["citations"][0]) == {"document", "chunk_id", "text", "score", "source", "url", "page", "number"}


# --- typed answers: the lead is an entity of the asked type, stored at ingest ----------------------

def test_a_when_question_leads_with_the_date(answerer):
    answer = answerer.ask("When are the Geneva talks?")
    assert answer.lead == "Jan. 10" and answer.typed


def test_a_typed_question_whose_evidence_holds_no_entity_of_its_type_is_declined(answerer):
    # The article holds no count of warheads: "a few weeks" (a DATE) is no answer to "how many".
    answer = answerer.ask("How many nuclear warheads does Russia have?")
    assert answer.abstained and answer.lead is None


def test_the_evidence_is_the_one_sentence_that_holds_the_answer(answerer):
    from bot.answering.layout import answer_layout

    layout = answer_layout(answerer.ask("Who will head the Russian delegation?"))
    assert len(layout.evidence) == 1
    assert "Ryabkov will head the Russian delegation" in layout.evidence[0].text


def test_a_follow_up_answerable_alone_gets_the_answer_ask_gives(answerer):
    # `qabot ask` has no conversation; `qabot chat` has one. The same question answers the same.
    alone = answerer.ask("Which newspaper interviewed him?")
    history = ["When are the Geneva talks?", "What deadline did Ryabkov give?"]
    in_chat = answerer.ask("Which newspaper interviewed him?", history=history)
    assert "Izvestia" in alone.text and in_chat.text == alone.text and in_chat.lead == alone.lead
    assert in_chat.query is None  # answered as it stands: nothing was rewritten


def test_a_follow_up_that_needs_the_conversation_says_what_it_searched(answerer):
    first = "What did Ryabkov say about the talks in Geneva?"
    answer = answerer.ask("And when are they?", history=[first])
    assert not answer.abstained and "Jan. 10" in answer.text
    assert answer.query == f"{first} And when are they?"


def test_the_request_path_does_not_import_spacy(sample_index):
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from bot.answering.answerer import Answerer; "
            "from bot.settings import load_settings; "
            f"a = Answerer.from_settings(load_settings(environ={{}}), index_dir=Path({str(sample_index)!r})); "
            "r = a.ask('When are the Geneva talks?'); "
            "assert r.lead == 'Jan. 10', r; assert 'spacy' not in sys.modules, 'spacy imported'; "
            "assert 'sklearn' not in sys.modules, 'sklearn imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
