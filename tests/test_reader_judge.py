"""The reader's judge, ranking and composition on synthetic readings (fast: no model, no index
files), plus accent folding and the span-threshold calibration rule.

The real model on the bundled article is tested in tests/test_quality.py and tests/test_reader.py.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from bot.answering.answer import Answer, ReaderFigures
from bot.answering.compose import QuotedSentence, compose_answer
from bot.answering.judge import VerdictKind
from bot.answering.question import Question
from bot.answering.reading import (ReaderConfig, ReaderJudge, ReaderScorer, ReaderUnavailable, ReadSentence,
                                   decide_reading)
from bot.answering.retrieval import Passage
from bot.answering.sentences import ScoredSentence
from bot.evaluation.calibrate import span_threshold
from bot.evaluation.metrics import auc, unanswerable_protocol
from bot.reader.runtime import Reading
from embeddings.index import ChunkRecord, Hit
from embeddings.keyword import KeywordIndex, fold_accents, question_terms

CONFIG = ReaderConfig(directory=None, threshold=0.4, read_candidates=3, span_threshold=0.6,  # type: ignore[arg-type]
                      rule_weight=0.0)
TEXT = "The talks open on Jan. 10. Russia wants results within a few weeks."
SENTENCES = [(0, 26), (27, len(TEXT))]


def passage(rank: int = 0) -> Passage:
    chunk = ChunkRecord(chunk_id=f"doc#{rank}", doc_id="doc", position=rank, start=0, end=len(TEXT),
                        text=TEXT, sentences=tuple(SENTENCES))
    return Passage(rank, Hit(rank, chunk, 0.5), 0.5, 0.5, 1.0, rank)


def read(index: int, score: float, span=None, span_score: float = 0.0) -> ReadSentence:
    a, b = SENTENCES[index]
    return ReadSentence(passage(), index, TEXT[a:b], 0.5, 0.5, score,
                        reading=Reading(score, span, span_score), rule_score=0.9)


# --- the judge --------------------------------------------------------------------------------

@pytest.mark.parametrize("score, kind", [(0.4, VerdictKind.READER), (0.95, VerdictKind.READER),
                                         (0.39, VerdictKind.READER_DECLINED), (0.0, VerdictKind.READER_DECLINED)])
def test_the_reader_answers_from_its_calibrated_threshold(score, kind):
    verdict = decide_reading(score, 0.3, 0.4)
    assert verdict.kind is kind and verdict.answer is (kind is VerdictKind.READER)
    assert verdict.signals["reader"] == score and verdict.signals["threshold"] == 0.4


def test_the_reader_judge_reads_the_best_sentences_reading():
    judge = ReaderJudge(CONFIG)
    q = Question("How soon does the Kremlin want an outcome?", "How soon does the Kremlin want an outcome?")
    answered = judge.judge(q, [passage()], read(1, 0.9, (24, 42), 0.8))
    assert answered.answer and answered.kind is VerdictKind.READER
    assert answered.signals["span"] == 0.8 and answered.signals["passage"] == 0.5
    # No name rule: a question naming something the text never mentions is judged on the score alone.
    declined = judge.judge(q, [passage()], read(1, 0.1))
    assert not declined.answer and declined.kind is VerdictKind.READER_DECLINED
    assert declined.nearest_is_relevant


def test_nothing_read_is_nothing_retrieved():
    judge = ReaderJudge(CONFIG)
    q = Question("When?", "When?")
    assert judge.judge(q, [], None).kind is VerdictKind.NOTHING_RETRIEVED
    unread = ScoredSentence(passage(), 0, TEXT[:26], 0.5, 0.5, 0.9)
    assert judge.judge(q, [passage()], unread).kind is VerdictKind.NOTHING_RETRIEVED


# --- the ranking ------------------------------------------------------------------------------

class _TableReader:
    """Scores each candidate by a fixed table (the ranking logic, not the model, is under test)."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores
        self.asked: list[tuple[str, list]] = []

    def read(self, question, candidates):
        self.asked.append((question, list(candidates)))
        return [Reading(self.scores[c.text], None, 0.0) for c in candidates]


def test_the_scorer_reorders_only_the_candidates_the_reader_read():
    texts = ["first", "second", "third", "fourth"]
    rule_ranked = [ScoredSentence(passage(), 0, t, 0.5, 0.5, 1.0 - i / 10) for i, t in enumerate(texts)]
    table = _TableReader({"first": 0.2, "second": 0.9, "third": 0.5})
    rules = SimpleNamespace(score=lambda q, v, p: rule_ranked)
    index = SimpleNamespace(document=lambda doc_id: SimpleNamespace(title="Talks"))
    scorer = ReaderScorer(index, rules, SimpleNamespace(config=CONFIG, get=lambda: table))
    question = Question("And when?", "When are the talks? And when?")
    ranked = scorer.score(question, np.zeros(3), [passage()])
    assert [s.text for s in ranked] == ["second", "third", "first", "fourth"]
    assert [s.score for s in ranked[:3]] == [0.9, 0.5, 0.2] and ranked[0].rule_score == pytest.approx(0.9)
    assert not isinstance(ranked[3], ReadSentence)
    asked, candidates = table.asked[0]
    assert asked == "When are the talks? And when?"  # a follow-up is read with its subject
    assert len(candidates) == CONFIG.read_candidates and candidates[0].title == "Talks"


def test_a_rule_weight_blends_the_rule_score_but_the_decision_stays_the_readers_best():
    from dataclasses import replace

    texts = ["first", "second"]
    rule_ranked = [ScoredSentence(passage(), 0, "first", 0.5, 0.5, 0.8),
                   ScoredSentence(passage(), 1, "second", 0.5, 0.5, 0.1)]
    table = _TableReader({"first": 0.5, "second": 0.6})
    config = replace(CONFIG, rule_weight=1.0, threshold=0.55)
    scorer = ReaderScorer(SimpleNamespace(document=lambda doc_id: SimpleNamespace(title="T")),
                          SimpleNamespace(score=lambda q, v, p: rule_ranked), SimpleNamespace(config=config, get=lambda: table))
    ranked = scorer.score(Question("q?", "q?"), np.zeros(3), [passage()])
    assert [s.text for s in ranked] == texts  # 0.5 + 0.8 beats 0.6 + 0.1
    assert ranked[0].best_reading == 0.6
    # The decision is on the best reader probability (0.6 >= 0.55), as the threshold was calibrated.
    assert ReaderJudge(config).judge(Question("q?", "q?"), [passage()], ranked[0]).answer


# --- composition: the span first, then the quote ------------------------------------------------

def _compose(reading_sentence: ReadSentence, threshold: float = 0.6) -> Answer:
    q = Question("How soon does Russia want results?", "How soon does Russia want results?")
    index = SimpleNamespace(document=lambda doc_id: SimpleNamespace(title="Talks", source="t.txt", url=None,
                                                                      page_at=lambda offset: None))
    chosen = [QuotedSentence(reading_sentence.passage, 0, TEXT[:26]),
              QuotedSentence(reading_sentence.passage, 1, TEXT[27:])]
    return compose_answer(index, q, reading_sentence, chosen, [reading_sentence.passage], 5,
                          reading=reading_sentence.reading, span_threshold=threshold)


def test_a_confident_span_leads_and_is_the_highlight():
    sentence = read(1, 0.9, (TEXT[27:].index("within"), TEXT[27:].index(".")), 0.8)
    answer = _compose(sentence)
    assert answer.text == TEXT
    assert answer.highlighted == "within a few weeks" and answer.lead == "within a few weeks"
    data = answer.to_json()
    assert data["highlight"] == "within a few weeks"
    assert data["reader"] == {"score": 0.9, "span_score": 0.8, "lead": "within a few weeks"}


def test_an_unsure_span_is_highlighted_but_does_not_lead():
    sentence = read(1, 0.9, (TEXT[27:].index("within"), TEXT[27:].index(".")), 0.3)
    answer = _compose(sentence)
    assert answer.highlighted == "within a few weeks" and answer.lead is None
    assert answer.to_json()["reader"]["lead"] is None


def test_the_rules_answer_has_no_reader_figures():
    answer = Answer("q", "text", False)
    assert answer.lead is None and answer.to_json()["reader"] is None
    declined = Answer("q", "none", True, reader=ReaderFigures(0.1, 0.9, True), highlight=(0, 4))
    assert declined.lead is None


# --- configuration ----------------------------------------------------------------------------

def test_reader_json_gives_threshold_candidates_and_span_threshold(tmp_path):
    (tmp_path / "reader.json").write_text(json.dumps({"threshold": 0.37, "read_candidates": 8}))
    config = ReaderConfig.load(tmp_path)
    assert (config.threshold, config.read_candidates) == (0.37, 8)
    (tmp_path / "reader.json").write_text(json.dumps({"threshold": 0.37, "span_threshold": 0.42}))
    assert ReaderConfig.load(tmp_path).span_threshold == 0.42


def test_a_missing_model_is_one_line_that_says_what_to_do(tmp_path):
    with pytest.raises(ReaderUnavailable) as caught:
        ReaderConfig.load(tmp_path / "nowhere")
    message = str(caught.value)
    assert "\n" not in message and "make train-reader" in message and 'reader = "off"' in message


# --- calibration and the eval figures ---------------------------------------------------------

def test_span_threshold_is_the_lowest_score_keeping_the_precision():
    points = [(0.9, 1), (0.8, 1), (0.7, 0), (0.6, 1), (0.5, 1), (0.4, 0), (0.3, 0)]
    # >= 0.5: 4 of 5 exact (0.8); >= 0.4: 4 of 6; >= 0.3: 4 of 7.
    assert span_threshold(points, precision=0.8) == 0.5
    assert span_threshold([(0.9, 0)], precision=0.8) == 1.0


def test_auc_and_the_unanswerable_protocol():
    assert auc([0.9, 0.8], [0.1, 0.2]) == 1.0 and auc([0.1], [0.9]) == 0.0 and auc([0.5], [0.5]) == 0.5
    assert auc([], [0.1]) is None

    def result(abstained, score):
        return SimpleNamespace(abstained=abstained, reader_score=score)

    out = unanswerable_protocol([result(False, 0.9), result(False, 0.8), result(True, 0.2), result(False, 0.7)],
                                [result(True, 0.1), result(False, 0.75)])
    assert out["answerable_answered"] == 0.75 and out["declined"] == 0.5
    assert out["balanced_accuracy"] == 0.625 and out["reader_auc"] == pytest.approx(0.75)  # 6 of 8 pairs


# --- accents ------------------------------------------------------------------------------------

def test_names_match_without_their_accents():
    assert fold_accents("Hervé Céloron, Genève") == "Herve Celoron, Geneve"
    assert question_terms("Who is Hervé?") == question_terms("Who is Herve?")
    keyword = KeywordIndex.build(["Hervé Morin met Céloron in Genève.", "Other text about the talks."])
    rows, _ = keyword.search("Where did Herve meet Celoron?", 2)
    assert list(rows) == [0]
    assert keyword.document_frequency("herv") == 1 and "celoron" in keyword.vocabulary()


# --- the front ends show the span first, then the quote --------------------------------------------

def test_slack_and_the_cli_lead_with_a_confident_span():
    import io

    from rich.console import Console

    from bot.cli import render_answer as render_cli
    from bot.slack.blocks import render_answer as render_slack

    answer = _compose(read(1, 0.9, (TEXT[27:].index("within"), TEXT[27:].index(".")), 0.8))
    message = render_slack(answer)
    texts = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert texts[0] == "*within a few weeks*"
    assert texts[1] == "> “The talks open on Jan. 10.”\n> “Russia wants results *within a few weeks*.”"
    assert message.text == "within a few weeks — “The talks open on Jan. 10.” “Russia wants results within a few weeks.”"
    console = Console(file=io.StringIO(), width=200)
    render_cli(answer, console)
    lines = console.file.getvalue().splitlines()
    assert lines == ["within a few weeks", "“The talks open on Jan. 10.”", "“Russia wants results within a few weeks.”",
                     "  — Talks"]
    unsure = _compose(read(1, 0.9, (TEXT[27:].index("within"), TEXT[27:].index(".")), 0.1))
    assert [b["text"]["text"] for b in render_slack(unsure).blocks if b["type"] == "section"][0].startswith("> “The talks")
