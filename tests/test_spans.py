"""The learned span scorer: candidate spans beyond named entities, the answer span picked by the
weights learned on ../shared/train, and the evidence trimmed to the clauses around it."""

from __future__ import annotations

import json

from bot.answering.answer_type import AnswerType, answer_type
from bot.answering.layout import ELLIPSIS, trim_around
from bot.answering.span_scorer import WEIGHTS_FILE, best_span, span_model
from bot.answering.span_question import focus_words, longest_run, run_features
from bot.answering.spans import MAX_WORDS, candidates, sentence_words, wh_class
from bot.answering.word_vectors import similarity

SENTENCE = ("The American Football Conference (AFC) champion Denver Broncos defeated the National "
            "Football Conference (NFC) champion Carolina Panthers 24–10 to earn their third Super Bowl title.")
ENTITIES = [(4, 34, "ORG"), (49, 63, "ORG"), (117, 134, "ORG"), (135, 140, "CARDINAL")]


def texts(question: str, sentence: str, entities=(), kind: AnswerType | None = None) -> list[str]:
    return [sentence[c.start:c.end] for c in candidates(question, kind, sentence, entities)]


def test_candidates_are_short_phrases_bounded_by_function_words_and_clause_punctuation():
    found = texts("Who won?", SENTENCE, ENTITIES)
    assert {"Denver Broncos", "Carolina Panthers", "American Football Conference", "24–10"} <= set(found)
    for text in found:
        words = text.split()
        assert words[0].lower() not in {"the", "of", "to", "their"} and words[-1].lower() not in {"the", "to"}
        assert "(" not in text and ")" not in text
        assert len(words) <= MAX_WORDS


def test_a_stored_entity_is_a_candidate_even_across_punctuation():
    sentence = "The game was played at Levi's Stadium in Santa Clara, California, on February 7."
    at = sentence.index("Santa Clara, California")
    found = texts("Where was the game played?", sentence, [(at, at + len("Santa Clara, California"), "GPE")])
    assert "Santa Clara, California" in found and "Levi's Stadium" in found
    assert "Clara, California" not in found  # no comma inside a span that is no entity


def test_an_abbreviation_full_stop_joins_a_span():
    sentence = "The talks in Geneva open on Jan. 10, Ryabkov said."
    assert "Jan. 10" in texts("When are the talks?", sentence)


def test_the_wh_class_of_a_question():
    assert wh_class("How many nuclear warheads does Russia have?") == "how many"
    assert wh_class("In what year did it open?") == "what"
    assert wh_class("Who will head the Russian delegation?") == "who"
    assert wh_class("Tell me about Geneva.") == "other"


def test_the_shipped_weights_carry_their_credit_and_a_learned_threshold():
    raw = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    assert "SQuAD" in raw["credit"] and "CC BY-SA 4.0" in raw["credit"]
    assert 0.0 < raw["threshold"] < 1.0
    assert raw["trained_on"]["questions"] > 1000


def test_the_scorer_picks_the_answer_not_the_words_the_question_repeats():
    question = "Which team won the Super Bowl title?"
    found = best_span(question, answer_type(question), SENTENCE, ENTITIES, 0.8)
    assert found is not None
    span, probability = found
    assert SENTENCE[span.start:span.end] == "Denver Broncos"
    assert 0.0 < probability < 1.0


def test_the_scorer_finds_answers_that_are_no_named_entity():
    sentence = "Plants use sunlight, water and carbon dioxide to make glucose in their leaves."
    question = "What do plants make in their leaves?"
    found = best_span(question, answer_type(question), sentence, (), 0.8)
    assert found is not None and sentence[found[0].start:found[0].end] == "glucose"


def test_the_sentence_tables_give_every_candidate_the_score_of_its_features_to_the_bit():
    # best_span scores from per-sentence tables (span_table.py); the features of spans.candidates
    # are the definition: same candidates, same order, every score equal, not merely close.
    model = span_model()
    cases = [(SENTENCE, ENTITIES), (SENTENCE, ()), (LONG, [(LONG.index("Jan. 10"), LONG.index("Jan. 10") + 7, "DATE")]),
             ("Plants use sunlight, water and carbon dioxide to make glucose in their leaves.", ()), ("...", ())]
    questions = ["Who won the Super Bowl?", "How many points did the Panthers score?", "When do the talks open?",
                 "What do plants make in their leaves?", "Which conference did Denver represent?", "and where?",
                 "In what city do the talks open?", "What type of title did the champion Denver Broncos earn?"]
    for sentence, entities in cases:
        for question in questions:
            for context in ("", "Where are the Geneva talks in January?"):
                kind = answer_type(question)
                found = candidates(question, kind, sentence, entities, context)
                spans, scores = model.tables.scores(question, kind, sentence, entities, context)
                assert [(s.start, s.end, s.label) for s in spans] == [(c.start, c.end, c.label) for c in found]
                assert scores == [model.score(c) for c in found]


LONG = ("In a long interview that covered many subjects, from the economy to the weather and the state of "
        "the roads in winter, he said the talks open on Jan. 10 in Geneva, after which the delegations "
        "will report to their capitals and then meet again in Brussels and in Vienna later in the month.")


def test_the_evidence_is_cut_at_clause_boundaries_around_the_lead():
    start = LONG.index("Jan. 10")
    text, bold = trim_around(LONG, (start, start + 7), 18)
    assert text == f"{ELLIPSIS}he said the talks open on Jan. 10 in Geneva{ELLIPSIS}"
    assert bold is not None and text[bold[0]:bold[1]] == "Jan. 10"


def test_without_a_span_the_evidence_is_kept_whole():
    assert trim_around(LONG, None, 18) == (LONG, None)  # nothing says where the answer is


def test_a_short_sentence_is_never_cut():
    sentence = "The talks open on Jan. 10 in Geneva."
    assert trim_around(sentence, (18, 25), 18) == (sentence, (18, 25))


def test_the_focus_noun_is_the_kind_of_thing_the_question_asks_for():
    assert focus_words("In what year did it open?") == ("year",)
    assert focus_words("Which NFL team won?") == ("nfl", "team")
    assert focus_words("How many people were there?") == ("people",)
    assert focus_words("What type of music did he play?") == ("music",)
    assert focus_words("What is the capital of France?") == ("capital",)
    assert focus_words("What did he say?") == () and focus_words("Who won?") == ()


def test_static_word_vectors_place_a_name_near_the_kind_it_names():
    # The input embeddings of all-MiniLM-L6-v2: a lookup, no transformer run.
    assert similarity("river", "thames") > similarity("river", "napoleon") + 0.2
    assert similarity("city", "london") > similarity("city", "1945") + 0.2
    assert similarity("river", "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq") is None


def test_a_span_is_placed_against_the_longest_run_of_the_question_s_words():
    sentence = "The talks in Geneva open on Jan. 10, Ryabkov said."
    words = sentence_words(sentence, ())
    assert words is not None
    # "talks in Geneva open": three question words, "in" between them
    run = longest_run(words.stemmed, words.stop, words.gap_marks, {"talk", "geneva", "open"})
    assert run == (1, 4, 3)
    assert run_features("when", run, 6, 7) == [("run_after=1", 1.0), ("wh=when|run_after=1", 1.0),
                                               ("run_after|m=3", 1.0)]
    assert run_features("when", run, 3, 3) == [("overlaps_run", 1.0)]
