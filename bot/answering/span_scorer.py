"""The learned span scorer: which candidate span of the evidence sentence is the answer, and how
sure it is.

Two small models, both learned by `python -m bot.evaluation.learn_spans` on ../shared/train and
shipped as weights in span_weights.json (derived from SQuAD, CC BY-SA 4.0; Rajpurkar et al.,
2016, 2018; the passages are Wikipedia text):

1. a ranker: a conditional logistic regression (a softmax over the sentence's candidates) over
   the candidates' features (spans.py) picks the likeliest span;
2. a calibration: a logistic regression of "that span is a gold answer" on how sure the ranker
   is (its softmax probability and margin) and how well the sentence matched the question,
   fitted on articles the ranker was not fitted on. The span leads when this probability
   reaches the threshold chosen there (the lowest keeping the leads' exact match at its target).

One JSON file and dot products: nothing else is loaded.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from .answer_type import AnswerType
from .span_table import Span, SpanTables
from .spans import Candidate

WEIGHTS_FILE = Path(__file__).with_name("span_weights.json")
MAX_MARGIN = 10.0  # a lone candidate's margin over the runner-up


@dataclass(frozen=True)
class SentenceFacts:
    """What the calibration knows of the sentence beside the ranker's scores."""

    score: float  # its selection score (sentences.py)
    type_share: float  # how often the question's key is answered by an entity of an expected label
    expected: tuple[bool, ...]  # per candidate: an entity of an expected label


def confidence_signals(z: Sequence[float], k: int, facts: SentenceFacts) -> tuple[float, ...]:
    """The calibration's inputs for candidate `k` of ranker scores `z`: a bias, the log of its
    softmax probability, its margin over the runner-up, the sentence's score, the type share,
    and whether it is an entity of an expected label."""
    top = z[k]
    total = sum(math.exp(v - top) for v in z)
    runner_up = max((v for i, v in enumerate(z) if i != k), default=top - MAX_MARGIN)
    return (1.0, -math.log(total), min(top - runner_up, MAX_MARGIN), facts.score, facts.type_share,
            float(facts.expected[k]))


def calibrated(calibration: Sequence[float], signals: Sequence[float]) -> float:
    """The probability that the ranker's top span is a gold answer."""
    z = sum(w * v for w, v in zip(calibration, signals))
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


@dataclass(frozen=True)
class SpanModel:
    """The learned weights, and the probability a span needs to lead."""

    weights: dict[str, float]
    calibration: tuple[float, ...]
    threshold: float
    # The weights of the sentences' question-independent features, looked up once a sentence.
    tables: SpanTables = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tables", SpanTables(self.weights))

    def score(self, candidate: Candidate) -> float:
        """The ranker's score of one candidate (higher: likelier the answer)."""
        get = self.weights.get
        return sum([get(name, 0.0) * value for name, value in candidate.features])


@lru_cache(maxsize=1)
def span_model() -> SpanModel:
    """The shipped model (read once a process)."""
    raw = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    return SpanModel(dict(raw["weights"]), tuple(raw["calibration"]), float(raw["threshold"]))


def best_span(question: str, kind: AnswerType | None, sentence: str,
              entities: Sequence[tuple[int, int, str]], score: float, context: str = "",
              model: SpanModel | None = None) -> tuple[Span, float] | None:
    """The likeliest answer span of `sentence` and the probability that it is the answer (None:
    no candidate). `score` is the sentence's selection score. The candidates and their ranker
    scores are those of `spans.candidates` and `SpanModel.score`, from the model's sentence
    tables (span_table.py)."""
    model = model or span_model()
    found, z = model.tables.scores(question, kind, sentence, entities, context)
    if not found:
        return None
    k = max(range(len(found)), key=lambda i: (z[i], -found[i].start))
    labels = kind.labels if kind is not None else frozenset()
    facts = SentenceFacts(score, kind.share if kind is not None else 0.0,
                          tuple(c.label in labels for c in found))
    return found[k], calibrated(model.calibration, confidence_signals(z, k, facts))
