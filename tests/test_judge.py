"""The judge step on synthetic signals: confidence, and the typed answer-or-decline verdict.

No model and no index files: the rules of config/default.toml's [answer] section, checked one by
one, plus the name look-up over a real (tiny) BM25 index.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bot.answering.judge import (FULL_COVER, MAX_PENALISED_SHORT_NAMES, NameLookup, Signals, Verdict,
                                 VerdictKind, confidence, decide)
from bot.settings import AnswerSettings
from embeddings.keyword import KeywordIndex

CFG = AnswerSettings()


def signals(**changes) -> Signals:
    """A strong answer's signals, with some changed."""
    base = dict(passage=0.6, sentence=0.6, keyword=0.5, known=1.0, missing_names=(), cover=1.0, typed=1.0)
    return Signals(**{**base, **changes})


def test_confidence_adds_keyword_cover_and_subtracts_unknown_words_and_short_names():
    s = signals(sentence=0.5, cover=0.4, known=0.75, missing_names=("sp",))
    expected = (0.5 + CFG.keyword_bonus * 0.4 - CFG.unknown_penalty * 0.25 - CFG.missing_name_penalty * 1)
    assert confidence(s, CFG) == pytest.approx(expected)


def test_only_a_few_short_missing_names_are_penalised():
    many = signals(missing_names=("sp", "nyc", "eu", "un"))
    none = signals()
    assert confidence(none, CFG) - confidence(many, CFG) == \
        pytest.approx(CFG.missing_name_penalty * MAX_PENALISED_SHORT_NAMES)


def test_a_confident_sentence_is_answered():
    verdict = decide(signals(), CFG)
    assert verdict.kind is VerdictKind.CONFIDENT and verdict.answer
    assert verdict.signals["sentence"] == 0.6


def test_a_long_name_the_index_never_mentions_declines_without_the_nearest_passage():
    verdict = decide(signals(missing_names=("biden",)), CFG)
    assert verdict.kind is VerdictKind.UNKNOWN_NAME and not verdict.answer
    assert not verdict.nearest_is_relevant
    assert "biden" in verdict.reason


def test_a_weak_best_passage_declines_with_the_nearest_passage():
    verdict = decide(signals(passage=CFG.min_passage_score - 0.01), CFG)
    assert verdict.kind is VerdictKind.WEAK_PASSAGE and not verdict.answer
    assert verdict.nearest_is_relevant


def test_low_confidence_declines():
    verdict = decide(signals(sentence=0.2, cover=0.3, typed=-1.0), CFG)
    assert verdict.kind is VerdictKind.LOW_CONFIDENCE and not verdict.answer
    assert confidence(signals(sentence=0.2, cover=0.3), CFG) < CFG.min_sentence_score


@pytest.mark.parametrize("changes, answered", [
    ({}, True),  # every known keyword, a span of the asked type: answered on lexical evidence
    ({"cover": FULL_COVER - 0.01}, False),  # a keyword missing
    ({"typed": -1.0}, False),  # no span of the asked type
    ({"typed": 0.0}, False),  # an untyped question ("why ...?") has no span to find
    ({"missing_names": ("sp",)}, False),  # names something the index lacks
])
def test_lexical_evidence_rescues_a_low_confidence_sentence_only_when_complete(changes, answered):
    weak = signals(sentence=0.05, **changes)
    assert confidence(weak, CFG) < CFG.min_sentence_score
    verdict = decide(weak, CFG)
    assert verdict.answer is answered
    assert verdict.kind is (VerdictKind.LEXICAL if answered else VerdictKind.LOW_CONFIDENCE)


def test_lexical_answers_can_be_switched_off():
    cfg = AnswerSettings(lexical_answers=False)
    assert decide(signals(sentence=0.05), cfg).kind is VerdictKind.LOW_CONFIDENCE


def test_the_thresholds_come_from_the_settings():
    s = signals(sentence=0.3, cover=0.0, known=1.0)
    assert not decide(s, CFG).answer
    assert decide(s, AnswerSettings(min_sentence_score=0.25)).answer


@pytest.fixture(scope="module")
def names():
    keyword = KeywordIndex.build(["Paul Krugman wrote about the Sahara desert.",
                                  "The Hollywood studios moved west."])
    return NameLookup(SimpleNamespace(keyword=keyword))


@pytest.mark.parametrize("term, unknown", [
    ("krugman", False),  # in the index
    ("saharan", False),  # same first five letters as "sahara"
    ("krugmen", False),  # one letter wrong
    ("hollwood", False),  # one letter missing
    ("biden", True),
    ("nato", True),  # too short for the prefix and typo rules
])
def test_names_count_as_known_in_another_form(names, term, unknown):
    assert names.unknown(term) is unknown


# --- the judge is a seam of the Answerer ------------------------------------------------------

class _Declines:
    """A judge that declines everything as off-topic (a trained reader's judge plugs in the same way)."""

    def judge(self, question, passages, best):
        return Verdict(VerdictKind.UNKNOWN_NAME, "test judge", {"reader": 0.0})


def test_the_answerer_follows_the_judges_verdict(fake_encoder, settings):
    from bot.answering.answerer import Answerer, AnswerTrace
    from embeddings.documents import Document
    from embeddings.index import Index

    index = Index(fake_encoder.model_name, fake_encoder.dimension, chunk_words=40, sentence_overlap=0)
    index.add([Document("geneva", "Geneva talks", "Talks open in Geneva on January 10.", "g.txt")],
              fake_encoder, batch_size=32)
    question = "When do the Geneva talks open?"
    answered = Answerer(index, fake_encoder, settings).ask(question)
    assert not answered.abstained and "January 10" in answered.text
    trace = AnswerTrace()
    declined = Answerer(index, fake_encoder, settings, judge=_Declines()).ask(question, trace=trace)
    assert declined.abstained and declined.citations == ()  # off-topic: no nearest passage
    assert trace.verdict is not None and trace.verdict.kind is VerdictKind.UNKNOWN_NAME
    assert trace.reasons == ["test judge"] and trace.signals == {"reader": 0.0}
