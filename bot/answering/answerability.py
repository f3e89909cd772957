"""Can the documents answer this question? The features of the learned judge, and its weights.

SQuAD 2.0's unanswerable questions were written against a paragraph to look answerable: they
reuse its words but change one entity, negate, or ask about a property it never states. What
gives them away is a telling question word that the evidence lacks, so besides the rules'
similarities (`Signals`) the features measure which of the question's keywords, names and
numbers the best sentence, its passage and the retrieved passages are missing, weighted by how
rare each word is in the index, and what the typing step found: whether the question is typed
(its answer is an entity of a known type often enough), whether its best sentences hold no entity
of that type (`choose_lead`'s verdict, lead.py, a feature here rather than a veto), and whether
the sentence, its passage and the retrieved passages hold one (entities stored at ingest).

A gradient-boosted tree ensemble over these features (200 trees of at most 15 leaves), trained on
../shared/train by `python -m bot.evaluation.train_judge`, gives the probability that the best
sentence answers. Trees rather than one weighted sum because the features matter together: a
missing question word tells more when every other word is there, a margin more when the passage
is close. The threshold and a credit line are answerability.json, the trees answerability.npz; the request
path computes the features from what the read step already has and evaluates the trees with
numpy (tree_ensemble.py): no scikit-learn.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from embeddings.keyword import IDF_SMOOTHING, question_terms, stems, tokenize

from . import irregular
from .answer_type import answer_type
from .lead import find_lead, sentence_entities
from .question import Question, key_terms
from .retrieval import Passage
from .sentences import ScoredSentence, SentenceVectors
from .tree_ensemble import TreeEnsemble

if TYPE_CHECKING:
    from embeddings.index import Index

MODEL_FILE = Path(__file__).with_name("answerability.json")
_NEGATION = re.compile(r"\b(?:not|never|no|none|nor|n't|cannot|without|neither|nothing)\b|n't\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d[\d,.]*")

# The features, in the order of the weights in answerability.json.
FEATURES = (
    "passage", "sentence", "keyword", "cover", "known", "short_missing", "typed",
    "score", "score_margin", "fused", "fused_margin", "keyword_norm", "passage_rank",
    "miss_max", "miss_count", "miss_passage", "miss_passage_max", "miss_retrieved",
    "names_missing", "names_missing_passage", "numbers_missing",
    "negation", "negation_unmatched", "terms", "type_share", "type_entity", "lead", "sentence_words",
    "typed_question", "typed_none", "type_passage", "type_retrieved",
)


@dataclass(frozen=True)
class Evidence:
    """What the features are measured on: the question, the passages, the ranked sentences and
    the one the answer would quote; `untyped`: the typing step found no entity of a typed
    question's type in its best sentences (lead.py, `LeadChoice.untyped`)."""

    question: Question
    passages: Sequence[Passage]
    ranked: Sequence[ScoredSentence]
    best: ScoredSentence
    untyped: bool = False


def _missing(weights: Mapping[str, float], present: frozenset[str] | set[str]) -> tuple[float, float, int]:
    """(weighted share, largest weight, count) of the `weights`' terms absent from `present`."""
    gone = [w for t, w in weights.items() if t not in present]
    total = sum(weights.values())
    return (sum(gone) / total if total else 0.0), max(gone, default=0.0), len(gone)


def features(index: Index, vectors: SentenceVectors, signals: Mapping[str, float],
             evidence: Evidence) -> dict[str, float]:
    """Every feature of FEATURES for `evidence.best` answering `evidence.question` (the judged
    text: a follow-up with its subject); `signals` are the judge's (`Signals.as_dict()`). Idf weights are divided by the largest idf the index can
    give, so the numbers mean the same in a small index and a large one."""
    q, best, passages, ranked = evidence.question, evidence.best, evidence.passages, evidence.ranked
    text = q.judged_text
    keyword = index.keyword
    top_idf = math.log(1 + max(keyword.size, 1) / IDF_SMOOTHING) or 1.0
    terms = set(question_terms(text))
    known = {t: irregular.idf(keyword, t) / top_idf for t in terms if irregular.document_frequency(keyword, t)}
    sentence_tokens, chunk_tokens = vectors.tokens([best.text, best.passage.hit.chunk.text])
    retrieved: set[str] = set()
    for tokens in vectors.tokens([p.hit.chunk.text for p in passages]):
        retrieved |= tokens
    miss_share, miss_max, miss_count = _missing(known, sentence_tokens)
    passage_share, passage_max, _ = _missing(known, chunk_tokens)
    retrieved_share, _, _ = _missing(known, retrieved)
    names = set(tokenize([" ".join(key_terms(text))])[0]) if key_terms(text) else set()
    numbers = set(_NUMBER.findall(text))
    sentence_stems = stems(best.text)
    negated = bool(_NEGATION.search(text))
    kind = answer_type(text)
    entities = sentence_entities(best) or ()
    labels = kind.labels if kind is not None else frozenset()
    lead = find_lead(text, kind, best.text, entities) if kind is not None and labels else None
    typed = kind is not None and kind.typed
    others = [s.score for s in ranked if s is not best]
    fused = [p.fused for p in passages]
    return {
        **{name: value for name, value in signals.items() if name in FEATURES},
        "score": best.score,
        "score_margin": best.score - max(others, default=0.0),
        "fused": fused[0] if fused else 0.0,
        "fused_margin": fused[0] - fused[1] if len(fused) > 1 else (fused[0] if fused else 0.0),
        "keyword_norm": best.passage.keyword_norm,
        "passage_rank": float(best.passage.rank),
        "miss_max": miss_max, "miss_count": float(miss_count),
        "miss_passage": passage_share, "miss_passage_max": passage_max,
        "miss_retrieved": retrieved_share,
        "names_missing": _share_missing(names, sentence_tokens),
        "names_missing_passage": _share_missing(names, chunk_tokens),
        "numbers_missing": float(sum(1 for n in numbers if n not in best.text)),
        "negation": float(negated),
        "negation_unmatched": float(negated and not _NEGATION.search(best.text)),
        "terms": math.log1p(len(terms)),
        "type_share": kind.share if kind is not None else 0.0,
        "type_entity": float(_holds(entities, labels)),
        "lead": float(lead is not None),
        "sentence_words": math.log1p(len(sentence_stems)),
        "typed_question": float(typed),
        "typed_none": float(typed and evidence.untyped),
        "type_passage": float(_holds(best.passage.hit.chunk.entities, labels)),
        "type_retrieved": sum(_holds(p.hit.chunk.entities, labels) for p in passages) / len(passages)
        if passages else 0.0,
    }


def _holds(entities: Sequence[tuple[int, int, str]] | None, labels: frozenset[str]) -> bool:
    """Whether `entities` (a sentence's or passage's, stored at ingest; None: none stored) hold
    one of `labels`."""
    return bool(labels) and entities is not None and any(label in labels for _, _, label in entities)


def _share_missing(names: set[str], present: frozenset[str]) -> float:
    return sum(1 for n in names if n not in present) / len(names) if names else 0.0


@dataclass(frozen=True)
class AnswerabilityModel:
    """P(the best sentence answers) from a tree ensemble over FEATURES (`names`, in its columns)."""

    names: tuple[str, ...]
    trees: TreeEnsemble
    threshold: float  # answer at or above this probability (chosen on ../shared/train)

    def probability(self, values: Mapping[str, float]) -> float:
        z = self.trees.score(np.array([values[n] for n in self.names], dtype=np.float64))
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    @classmethod
    def from_json(cls, raw: Mapping, trees: TreeEnsemble) -> "AnswerabilityModel":
        """The model `raw` (answerability.json: its features and threshold) describes."""
        names = tuple(raw["features"])
        unknown = set(names) - set(FEATURES)
        if unknown:
            raise ValueError(f"answerability model: unknown features {sorted(unknown)}")
        if trees.n_features > len(names):
            raise ValueError(f"answerability model: a tree reads column {trees.n_features - 1} of {len(names)}")
        return cls(names, trees, float(raw["threshold"]))


@lru_cache(maxsize=4)
def load_model(path: Path = MODEL_FILE) -> AnswerabilityModel:
    """The shipped weights (read once a process)."""
    return AnswerabilityModel.from_json(json.loads(path.read_text(encoding="utf-8")),
                                        TreeEnsemble.load(path.with_suffix(".npz")))
