"""Answer quality over the bundled article, with the real model and a real index: follow-ups that
lean on the conversation, calibrated abstention, highlights, and the retrieval modes."""

from __future__ import annotations

import pytest

from bot.answering.answer import ABSTAIN_TEXT
from bot.answering.answerer import AnswerTrace
from bot.answering.focus import find_focus, question_type
from bot.answering.fusion import fusion_strategy
from bot.answering.question import Turn, is_follow_up, key_terms, resolve_follow_up, stands_alone
from bot.answering.retrieval import retrieve

GENEVA = "What did Ryabkov say about the talks in Geneva?"


# --- follow-ups ---------------------------------------------------------------------------

def test_follow_up_detection_and_resolution():
    assert is_follow_up("And when are they?") and is_follow_up("What did he say about it?")
    assert not is_follow_up("When are the Geneva talks?")
    assert resolve_follow_up("When are the Geneva talks?", [GENEVA]) == "When are the Geneva talks?"
    assert resolve_follow_up("And when are they?", []) == "And when are they?"
    assert resolve_follow_up("And when are they?", [GENEVA]) == f"{GENEVA} And when are they?"
    # A follow-up of a follow-up leans on the question that set the subject.
    assert resolve_follow_up("Where are they held?", [GENEVA, "And when are they?"]) == \
        f"{GENEVA} Where are they held?"


def test_and_when_are_they_gives_the_date_of_the_talks(answerer):
    answer = answerer.ask("And when are they?", history=[GENEVA])
    assert not answer.abstained
    assert answer.highlighted == "Jan. 10"


def test_what_did_he_say_about_it_uses_the_earlier_subject(answerer):
    # The subject turn carries its answer ("When are the Geneva talks? Jan. 10"), as the asker saw
    # it; read with the question alone it was declined ("told" is no form of "say", irregular.py).
    trace = AnswerTrace()
    answer = answerer.ask("What did he say about it?", history=["When are the Geneva talks?"], trace=trace)
    assert not answer.abstained
    assert "Geneva" in trace.query
    assert "Ryabkov" in answer.text and "Geneva" in answer.text


def test_follow_up_chain_keeps_the_subject(answerer):
    answer = answerer.ask("And when were they made public?",
                          history=["When did Moscow deliver the draft agreements?"])
    assert not answer.abstained and answer.highlighted == "Dec. 17"
    answer = answerer.ask("Who will head the Russian delegation there?",
                          history=[GENEVA, "And when are they?"])
    assert not answer.abstained and answer.highlighted == "Ryabkov"


DELEGATION = "Who will head the Russian delegation?"


def test_a_follow_up_leans_on_the_latest_turn_that_named_something():
    # "When?" names nothing of its own: an elliptical question, asked of the turn before.
    assert is_follow_up("When?") and is_follow_up("Where?")
    assert resolve_follow_up("When?", [GENEVA, DELEGATION]) == f"{DELEGATION} When?"
    # The latest turn that named something is the subject, even when it leaned on an earlier one
    # itself ("there"): it is read as it was searched, not skipped for the first question.
    there = "Who will head the Russian delegation there?"
    assert resolve_follow_up("What did he tell Bloomberg?", [GENEVA, there]) == \
        f"{GENEVA} {there} What did he tell Bloomberg?"
    # A turn that named nothing ("And when are they?") is passed over for the one it leaned on.
    assert resolve_follow_up("When?", [GENEVA, "And when are they?"]) == f"{GENEVA} When?"


def test_a_follow_up_stands_alone_when_it_says_as_much_as_it_leaves_to_the_conversation():
    assert stands_alone("and when are the talks?", 1)  # one word of its own, nothing left
    assert stands_alone("Which newspaper interviewed him?", 1)
    assert stands_alone("What did he tell Bloomberg?", 1)  # "Bloomberg" for "he"
    assert not stands_alone("What did he say about it?", 1)  # "say" for "he" and "it"
    assert not stands_alone("And when are they?", 1)


def test_a_person_follow_up_can_carry_whom_the_conversation_named():
    turns = {DELEGATION: Turn(DELEGATION, "Ryabkov"), GENEVA: Turn(GENEVA, "Jan. 10")}

    def turn_of(question, earlier):
        return turns[question]

    history = [GENEVA, DELEGATION]
    assert resolve_follow_up("What did he tell Bloomberg?", history, turn_of, referents=True) == \
        "Ryabkov Russian Jan. 10 Geneva What did he tell Bloomberg?"
    assert resolve_follow_up("What did he tell Bloomberg?", history, turn_of) == \
        f"{DELEGATION} Ryabkov What did he tell Bloomberg?"


@pytest.mark.parametrize("history", [
    ["When are the Geneva talks?", DELEGATION],
    [DELEGATION, "When are the talks there?"],  # the first question of the session is not the subject
    [DELEGATION, "What did he tell Izvestia?"],
])
def test_what_did_he_tell_bloomberg_means_the_person_just_named(answerer, history):
    # "he" is who the conversation just named or answered (Ryabkov), not what it asked about him:
    # read with "head the Russian delegation", the answer was the delegation sentence.
    answer = answerer.ask("What did he tell Bloomberg?", history=history)
    assert not answer.abstained
    assert "told Bloomberg News" in answer.text and "head the Russian delegation" not in answer.text
    # Answered alone (as `qabot ask` answers it), or with whom the conversation named; never with
    # what it asked about him.
    assert answer.query is None or ("Ryabkov" in answer.query and "delegation" not in answer.query)


def test_when_after_who_asks_when_that_happens(answerer):
    # "When?" right after "Who will head the Russian delegation?" asks when Ryabkov will head it.
    answer = answerer.ask("When?", history=["When are the Geneva talks?", DELEGATION])
    assert not answer.abstained and answer.lead == "next week"
    assert answer.query == f"{DELEGATION} Ryabkov When?"
    assert "Ryabkov will head the Russian delegation" in answer.text
    # "Where?" then still asks about the delegation (the elliptical "When?" named nothing new).
    answer = answerer.ask("Where?", history=["When are the Geneva talks?", DELEGATION, "When?"])
    assert not answer.abstained and answer.query == f"{DELEGATION} Ryabkov Where?"
    assert "Ryabkov will head the Russian delegation" in answer.text


def test_a_new_subject_is_not_a_follow_up_and_unknown_names_still_abstain(answerer):
    assert answerer.ask("What is the capital of Australia?", history=[GENEVA]).abstained
    assert answerer.ask("What did Biden say about them?", history=["When are the Geneva talks?"]).abstained


# --- abstention -----------------------------------------------------------------------------

@pytest.mark.parametrize("question", [
    "What did President Biden say about the Geneva talks?",  # a name it never mentions
    "What did Ryabkov say about NATO expansion?",  # the right person, a topic it never mentions
    "How do I bake sourdough bread?",
    "What is the weather tomorrow?",
    "How many troops are on the border?",
    "Who won the World Cup?",
])
def test_questions_outside_the_article_abstain_with_reasons(answerer, question):
    trace = AnswerTrace()
    answer = answerer.ask(question, trace=trace)
    assert answer.abstained and answer.text == ABSTAIN_TEXT and answer.highlight is None
    assert trace.reasons


@pytest.mark.parametrize("question, expected", [
    ("Who will head the Russian delegation?", "Ryabkov"),
    ("Who interviewed Ryabkov yesterday?", "Bloomberg News"),
    ("When did Moscow deliver the draft agreements?", "Dec. 15"),
    ("When were the draft agreements made public?", "Dec. 17"),
    ("Which newspaper interviewed him?", "Izvestia"),
    ("What deadline did Ryabkov give?", "within a few weeks"),
])
def test_questions_the_article_answers_highlight_the_answer(answerer, question, expected):
    trace = AnswerTrace()
    answer = answerer.ask(question, trace=trace)
    assert not answer.abstained and not trace.reasons
    assert answer.highlighted == expected


@pytest.mark.parametrize("question", [
    # "say" is not in the article ("said" is, an irregular form Snowball does not join to it):
    # not a reason to abstain (irregular.py).
    "What did Putin say?",
    "What did Ryabkov say about strategic stability?",
    "What did the U.S. not indicate?",
    "What did Ryabkov say about the talks in Genva?",  # a typo in a name
])
def test_answerable_questions_with_unseen_words_or_typos_answer(answerer, question):
    assert not answerer.ask(question).abstained


def test_unknown_names_and_acronyms():
    assert key_terms("What did President Biden say about the Geneva talks?") == ["presid", "biden", "geneva"]
    assert key_terms("When are the talks?") == []


# --- retrieval and the trace -----------------------------------------------------------------

def test_trace_reports_ranked_passages_without_changing_the_answer(answerer):
    plain = answerer.ask("When are the Geneva talks?")
    trace = AnswerTrace(depth=10)
    traced = answerer.ask("When are the Geneva talks?", trace=trace)
    assert traced.text == plain.text and traced.highlight == plain.highlight
    assert len(trace.passages) == min(10, len(answerer.index))
    assert [p.rank for p in trace.passages] == list(range(len(trace.passages)))
    assert trace.best is not None and trace.best.text in traced.text
    assert "Jan. 10" in trace.best.text


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_every_retrieval_mode_finds_the_geneva_passage(answerer, mode):
    question = "When are the Geneva talks?"
    vector = answerer.encoder.encode([question])[0]
    r = answerer.settings.retrieval
    strategy = fusion_strategy(mode, r.fusion, dense_weight=r.dense_weight, rrf_k=r.rrf_k)
    passages = retrieve(answerer.index, question, vector, top_k=3, candidates=10, fusion=strategy)
    assert passages and any("Jan. 10" in p.hit.chunk.text for p in passages[:2])
    assert all(a.fused >= b.fused for a, b in zip(passages, passages[1:]))
    assert all(-1.0 <= p.dense <= 1.0 and 0.0 <= p.keyword_norm <= 1.0 for p in passages)


def test_unknown_retrieval_mode_or_fusion_is_refused():
    with pytest.raises(ValueError, match="mode 'magic'.*hybrid, dense, keyword"):
        fusion_strategy("magic", "score", dense_weight=0.6, rrf_k=60)
    with pytest.raises(ValueError, match="fusion 'bogus'.*score, rrf"):
        fusion_strategy("hybrid", "bogus", dense_weight=0.6, rrf_k=60)


# --- highlight rules ---------------------------------------------------------------------------

@pytest.mark.parametrize("question, kind", [
    ("When did the crisis begin?", "DATE"), ("What year was it founded?", "DATE"),
    ("How many people live there?", "NUMBER"), ("What percentage of oil is imported?", "NUMBER"),
    ("Who wrote the report?", "PERSON"), ("Which company bought ABC?", "PERSON"),
    ("Where is the parliament?", "PLACE"), ("In which city did it open?", "PLACE"),
    ("Why did prices rise?", None),
])
def test_question_types(question, kind):
    assert question_type(question) == kind


@pytest.mark.parametrize("question, sentence, expected", [
    ("When did the embargo end?", "The embargo ended in March 1974, after talks.", "March 1974"),
    ("How many people died?", "The crash killed 42 people and injured dozens.", "42 people"),
    ("Who led the delegation?", "The delegation was led by Sergey Ryabkov, a deputy minister.", "Sergey Ryabkov"),
    ("Where did the talks take place?", "The talks took place in Geneva last week.", "Geneva"),
    ("How much did the program cost?", "The program cost $25.4 billion in total.", "$25.4 billion"),
])
def test_find_focus_picks_the_span_of_the_asked_type(question, sentence, expected):
    span = find_focus(question, sentence)
    assert span is not None and sentence[span[0]:span[1]] == expected
