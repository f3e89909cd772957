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

    def judge(self, question, passages, best, ranked=(), untyped=None):
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


# --- the learned judge (answerability.py, weights trained by bot/evaluation/train_judge.py) ------

def test_the_shipped_answerability_trees_match_the_features_and_credit_squad():
    import json

    import numpy as np

    from bot.answering.answerability import FEATURES, MODEL_FILE, load_model

    raw = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    model = load_model()
    assert model.names == FEATURES
    assert 0 < model.trees.n_features <= len(FEATURES) and len(model.trees.leaf_value) > raw["model"]["rounds"]
    assert 0.0 < model.threshold < 1.0
    assert "SQuAD 2.0" in raw["credit"] and "CC BY-SA 4.0" in raw["credit"]
    assert "python -m bot.evaluation.train_judge" in raw["credit"]
    with np.load(MODEL_FILE.with_suffix(".npz"), allow_pickle=False) as trees:
        assert str(trees["credit"]) == raw["credit"]  # the binary says where it came from too


def test_the_tree_ensemble_gives_scikit_learns_probabilities():
    """The request path's numpy evaluation of the exported trees (tree_ensemble.py) against the
    fitted model itself, on data with interactions, ties at thresholds and missing values."""
    import numpy as np

    from bot.answering.answerability import AnswerabilityModel
    from bot.evaluation import train_judge

    rng = np.random.default_rng(7)
    x = rng.normal(size=(3000, 4)).round(1)  # rounded: many values fall exactly on a threshold
    y = ((x[:, 0] > 0) ^ (x[:, 1] * x[:, 2] > 0.3)).astype(int)
    x[rng.random(x.shape) < 0.05] = np.nan
    names = ("cover", "miss_max", "score", "fused")
    rows = [train_judge.Record("q", "t", int(label), "in", dict(zip(names, row)), False) for row, label in zip(x, y)]
    model = AnswerabilityModel(names, train_judge.fit(rows, (15, 40), names=names), 0.5)
    fitted = train_judge._model((15, 40)).fit(x, y, sample_weight=train_judge.weights(rows))
    expected = fitted.predict_proba(x)[:, 1]
    got = np.array([model.probability(dict(zip(names, row))) for row in x])
    assert np.abs(got - expected).max() < 1e-12
    assert ((got >= 0.5) == y).mean() > 0.8  # the trees learned the interaction, so the check means something


def test_a_tree_without_a_split_adds_to_the_baseline(tmp_path):
    import numpy as np

    from bot.answering.tree_ensemble import TreeEnsemble

    stump = {"feature": [0, 0, 0], "threshold": [0.5, 0, 0], "left": [1, -1, -1], "right": [2, -1, -1],
             "value": [0, -1.0, 2.0], "missing_left": [True, False, False]}
    leaf = {"feature": [0], "threshold": [0], "left": [-1], "right": [-1], "value": [0.25], "missing_left": [False]}
    trees = TreeEnsemble.from_trees(0.5, [stump, leaf])
    assert trees.score(np.array([0.5])) == 0.5 + 0.25 - 1.0
    assert trees.score(np.array([0.6])) == 0.5 + 0.25 + 2.0
    assert trees.score(np.array([np.nan])) == 0.5 + 0.25 - 1.0
    assert TreeEnsemble.from_trees(1.5, [leaf]).score(np.array([9.0])) == 1.75
    trees.save(tmp_path / "trees.npz", "made by hand for this test")
    again = TreeEnsemble.load(tmp_path / "trees.npz")
    assert [again.score(np.array([v])) for v in (0.5, 0.6, np.nan)] == [-0.25, 2.75, -0.25]


def test_trees_naming_a_feature_the_code_does_not_measure_are_refused():
    from bot.answering.answerability import AnswerabilityModel
    from bot.answering.tree_ensemble import TreeEnsemble

    with pytest.raises(ValueError, match="unknown features"):
        AnswerabilityModel.from_json({"features": ["cover", "shoe_size"], "threshold": 0.5},
                                     TreeEnsemble.from_trees(0.0, []))


def _model(intercept: float, typed_none_weight: float = 0.0):
    """A model whose log-odds are `intercept`, plus `typed_none_weight` when the typing step found no
    entity of a typed question's type (`typed_none`)."""
    from bot.answering.answerability import FEATURES, AnswerabilityModel
    from bot.answering.tree_ensemble import TreeEnsemble

    split = {"feature": [FEATURES.index("typed_none"), 0, 0], "threshold": [0.5, 0, 0], "left": [1, -1, -1],
             "right": [2, -1, -1], "value": [0, 0.0, typed_none_weight], "missing_left": [True, False, False]}
    return AnswerabilityModel(FEATURES, TreeEnsemble.from_trees(intercept, [split]), 0.5)


def _geneva_index(fake_encoder, entities: bool = False):
    """One sentence about the Geneva talks; with `entities`, tagged by the real NER at ingest (a
    place and a date), so typed questions are checked."""
    from embeddings.documents import Document
    from embeddings.entities import model_id
    from embeddings.index import Index

    index = Index(fake_encoder.model_name, fake_encoder.dimension, chunk_words=40, sentence_overlap=0,
                  entities=model_id() if entities else None)
    index.add([Document("geneva", "Geneva talks", "Talks open in Geneva on January 10.", "g.txt")],
              fake_encoder, batch_size=32)
    return index


@pytest.mark.parametrize("intercept, lexical_answers, kind", [
    (40.0, True, VerdictKind.LIKELY),
    (-40.0, False, VerdictKind.UNLIKELY),
    (-40.0, True, VerdictKind.LEXICAL),  # every known keyword and a date: the rules' rescue still answers
])
def test_the_learned_judge_answers_by_its_probability(fake_encoder, settings, intercept, lexical_answers, kind):
    from dataclasses import replace

    from bot.answering.answerer import Answerer, AnswerTrace
    from bot.answering.judge import LearnedJudge
    from bot.answering.sentences import SentenceVectors

    index = _geneva_index(fake_encoder)
    model = _model(intercept)
    cfg = replace(settings.answer, lexical_answers=lexical_answers)
    judge = LearnedJudge(index, SentenceVectors(fake_encoder.encode), cfg, model)
    trace = AnswerTrace()
    answer = Answerer(index, fake_encoder, settings, judge=judge).ask("When do the Geneva talks open?", trace=trace)
    assert trace.verdict is not None and trace.verdict.kind is kind
    assert answer.abstained is (kind is VerdictKind.UNLIKELY)
    assert 0.0 <= trace.signals["answerability"] <= 1.0


def test_the_rules_vetoes_come_before_the_learned_model(fake_encoder, settings):
    from bot.answering.answerer import Answerer, AnswerTrace
    from bot.answering.judge import LearnedJudge
    from bot.answering.sentences import SentenceVectors

    index = _geneva_index(fake_encoder)
    sure = _model(40.0)
    judge = LearnedJudge(index, SentenceVectors(fake_encoder.encode), settings.answer, sure)
    trace = AnswerTrace()
    answer = Answerer(index, fake_encoder, settings, judge=judge).ask("When does Biden visit Geneva?", trace=trace)
    assert answer.abstained and trace.verdict is not None and trace.verdict.kind is VerdictKind.UNKNOWN_NAME


@pytest.mark.parametrize("weight, kind", [
    (0.0, VerdictKind.LIKELY),  # the model sees no entity of the type and answers anyway: no veto
    (-80.0, VerdictKind.NO_TYPED_ENTITY),  # the same finding, weighed heavily: declined, and says why
])
def test_the_typing_steps_verdict_is_a_feature_of_the_learned_judge_not_a_veto(fake_encoder, settings,
                                                                                 weight, kind):
    from bot.answering.answerer import Answerer, AnswerTrace
    from bot.answering.judge import LearnedJudge
    from bot.answering.sentences import SentenceVectors

    index = _geneva_index(fake_encoder, entities=True)
    judge = LearnedJudge(index, SentenceVectors(fake_encoder.encode), settings.answer, _model(40.0, weight))
    trace = AnswerTrace()
    # "How many" asks for a count; the only sentence holds a place and a date, no number of talks.
    answer = Answerer(index, fake_encoder, settings, judge=judge).ask("How many Geneva talks open?", trace=trace)
    assert trace.verdict is not None and trace.verdict.kind is kind
    assert answer.abstained is (kind is VerdictKind.NO_TYPED_ENTITY)


def test_the_rules_judge_still_declines_a_typed_question_without_an_entity_of_its_type(fake_encoder, settings):
    from bot.answering.answerer import Answerer, AnswerTrace
    from bot.answering.judge import RuleJudge
    from bot.answering.sentences import SentenceVectors

    index = _geneva_index(fake_encoder, entities=True)
    judge = RuleJudge(index, SentenceVectors(fake_encoder.encode), settings.answer)
    trace = AnswerTrace()
    answered = Answerer(index, fake_encoder, settings, judge=judge).ask("When do the Geneva talks open?")
    assert not answered.abstained
    answer = Answerer(index, fake_encoder, settings, judge=judge).ask("How many Geneva talks open?", trace=trace)
    assert answer.abstained and trace.verdict is not None and trace.verdict.kind is VerdictKind.NO_TYPED_ENTITY


@pytest.mark.parametrize("name, judge_class", [("learned", "LearnedJudge"), ("rules", "RuleJudge")])
def test_the_judge_setting_picks_the_judge(fake_encoder, name, judge_class):
    from bot.answering.judge import make_judge
    from bot.answering.sentences import SentenceVectors

    judge = make_judge(_geneva_index(fake_encoder), SentenceVectors(fake_encoder.encode), AnswerSettings(judge=name))
    assert type(judge).__name__ == judge_class
