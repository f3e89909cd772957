"""Steps 3 and 4 with the trained reader (issue 10): a model that reads the question with each
candidate sentence re-ranks them (`ReaderScorer`) and decides answer or decline (`ReaderJudge`).

Retrieval stays hybrid and the rule-based `WeightedSentenceScorer` still ranks every sentence of
the top passages; the reader then reads the first `read_candidates` of them (with their
document's title and the sentence before as context, as it was trained) and puts them in its own
order. Its best score against the threshold calibrated on held-out TRAIN articles (shipped in
reader.json) is the whole decision: no similarity floors, keyword shares or unknown-name veto.

The ONNX session is loaded on first use (so `qabot chat` and `serve` start fast) and once per
process (`Reader.load` caches it); onnxruntime and tokenizers only, never torch.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from embeddings.errors import QabotError
from embeddings.index import Index

from .judge import Verdict, VerdictKind
from .question import Question
from .retrieval import Passage
from .sentences import ScoredSentence, SentenceScorer

if TYPE_CHECKING:  # the runtime (onnxruntime) is imported on first use only
    from bot.reader.runtime import Reader, Reading

# Sentences the reader reads when reader.json does not say: the number its threshold was
# calibrated with (the best score of the scorer's top 12; bot/reader/evaluate.py READ_CANDIDATES).
# The threshold is only valid for the number it was calibrated with, so reader.json wins.
READ_CANDIDATES = 12
# The highlighted span is shown first ("*within a few weeks*", then the quote) when its
# probability reaches this, unless reader.json ships its own `span_threshold`. Calibrated on the
# held-out TRAIN articles of bot/reader/split.py (never ../shared/eval) by
# `python -m bot.evaluation.calibrate`: the lowest span probability at which the spans shown
# first are an exact match of the gold answer at least SPAN_PRECISION of the time.
SPAN_THRESHOLD = 0.5
SPAN_PRECISION = 0.8
# The read sentences are ranked by reader probability + RULE_WEIGHT x the rule scorer's score,
# unless reader.json ships `rule_weight`. Chosen on the held-out TRAIN articles (never
# ../shared/eval) with `python -m bot.evaluation.calibrate --limit 600` and the shipped model
# (02:13): top-sentence accuracy 0.718 for the reader alone, 0.737 for the rules alone, and
# 0.777 / 0.792 / 0.798 / 0.803 / 0.803 / 0.802 at weights 0.5 / 1 / 2 / 3 / 4 / 6: the best, 3.
RULE_WEIGHT = 3.0
RULE_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0)


class ReaderUnavailable(QabotError):
    """The reader is switched on but its model files are missing."""


@dataclass(frozen=True)
class ReadSentence(ScoredSentence):
    """A candidate sentence as the reader judged it. `score` is what the read sentences are ranked
    by (the reader's probability that it answers, plus `rule_weight` x `rule_score`, the rule
    scorer's score it was ranked by before); `best_reading` is the highest reader probability of
    all the sentences read: whether the retrieved text answers at all (what the threshold in
    reader.json was calibrated on)."""

    reading: "Reading | None" = None
    rule_score: float = 0.0
    best_reading: float = 0.0


@dataclass(frozen=True)
class ReaderConfig:
    """What reader.json says about how the model is used: its decline threshold, how many
    candidates that threshold was calibrated for, and when a span is confident enough to lead."""

    directory: Path
    threshold: float
    read_candidates: int
    span_threshold: float
    rule_weight: float = RULE_WEIGHT

    @classmethod
    def load(cls, directory: Path | None = None) -> "ReaderConfig":
        from bot.reader.runtime import CONFIG_FILE, MODEL_DIR

        directory = Path(directory or MODEL_DIR)
        path = directory / CONFIG_FILE
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ReaderUnavailable(
                f"reader model not found at {path}; run `make train-reader`, or set "
                "[answer] reader = \"off\" (QABOT_READER=off) to answer with the rules") from None
        except ValueError:
            raise ReaderUnavailable(f"{path} is not valid JSON; reinstall qabot or run `make train-reader`") from None
        return cls(directory, float(config["threshold"]),
                   int(config.get("read_candidates", READ_CANDIDATES)),
                   float(config.get("span_threshold", SPAN_THRESHOLD)),
                   float(config.get("rule_weight", RULE_WEIGHT)))


class LazyReader:
    """The ONNX reader, loaded on the first question (once per process, thread-safe)."""

    def __init__(self, config: ReaderConfig) -> None:
        self.config = config
        self._reader: "Reader | None" = None
        self._lock = threading.Lock()

    def get(self) -> "Reader":
        if self._reader is None:
            with self._lock:
                if self._reader is None:
                    from bot.reader.runtime import Reader

                    self._reader = Reader.load(self.config.directory)
        return self._reader


def candidate_of(index: Index, sentence: ScoredSentence):
    """The reader's input for a sentence: the text, the sentence before it in the same
    paragraph, and its document's title (exactly what it was trained on)."""
    from bot.reader.features import Candidate, before_sentence

    chunk = sentence.passage.hit.chunk
    return Candidate(sentence.text, before_sentence(chunk.text, chunk.sentences, sentence.index),
                     index.document(chunk.doc_id).title)


class ReaderScorer:
    """The read step with the model: the rule scorer's best `read_candidates` sentences,
    re-ordered by the reader's score (the rest follow, unread, in the rule order)."""

    def __init__(self, index: Index, rules: SentenceScorer, reader: LazyReader) -> None:
        self.index = index
        self.rules = rules
        self.reader = reader

    def score(self, question: Question, vector: np.ndarray,
              passages: Sequence[Passage]) -> list[ScoredSentence]:
        ranked = self.rules.score(question, vector, passages)
        top = ranked[: self.reader.config.read_candidates]
        if not top:
            return ranked
        # A follow-up ("and when are they?") is read with the subject it leans on.
        readings = self.reader.get().read(question.judged_text, [candidate_of(self.index, s) for s in top])
        weight = self.reader.config.rule_weight
        best = max(r.score for r in readings)
        read = [ReadSentence(s.passage, s.index, s.text, s.dense, s.keyword, r.score + weight * s.score,
                             reading=r, rule_score=s.score, best_reading=best)
                for s, r in zip(top, readings)]
        # Ties keep the rule order (a stable sort).
        read.sort(key=lambda s: -s.score)
        return [*read, *ranked[len(top):]]


def reading_of(sentence: ScoredSentence | None) -> "Reading | None":
    """The reader's reading of a sentence, when the reader read it."""
    return sentence.reading if isinstance(sentence, ReadSentence) else None


class ReaderJudge:
    """The judge step with the model: answer when the reader's best score reaches the threshold
    calibrated on held-out train articles (reader.json), else decline."""

    def __init__(self, config: ReaderConfig) -> None:
        self.config = config

    def judge(self, question: Question, passages: Sequence[Passage],
              best: ScoredSentence | None) -> Verdict:
        reading = reading_of(best)
        if best is None or reading is None:
            return Verdict(VerdictKind.NOTHING_RETRIEVED, "nothing retrieved",
                           {"reader": 0.0, "threshold": self.config.threshold})
        # Whether the retrieved text answers at all: the best probability of every sentence read
        # (the best-ranked sentence may rank first with a rule weight, see RULE_WEIGHT).
        score = max(reading.score, best.best_reading) if isinstance(best, ReadSentence) else reading.score
        return decide_reading(score, reading.span_score, self.config.threshold,
                              passage=max((p.dense for p in passages), default=0.0), sentence=best.dense)


def decide_reading(score: float, span_score: float, threshold: float, *, passage: float = 0.0,
                   sentence: float = 0.0) -> Verdict:
    """Answer or decline from the reader's best score (kept apart from `ReaderJudge` so it can be
    tested on synthetic numbers)."""
    evidence = {"reader": score, "span": span_score, "threshold": threshold, "passage": passage,
                "sentence": sentence}
    if score >= threshold:
        return Verdict(VerdictKind.READER, f"reader score {score:.3f} >= {threshold:.3f}", evidence)
    return Verdict(VerdictKind.READER_DECLINED, f"reader score {score:.3f} < {threshold:.3f}", evidence)


def reader_steps(index: Index, rules: SentenceScorer) -> tuple[ReaderScorer, ReaderJudge]:
    """The reader's read and judge steps over the shipped model (loaded on first use)."""
    config = ReaderConfig.load()
    return ReaderScorer(index, rules, LazyReader(config)), ReaderJudge(config)
