"""Reader metrics on held-out TRAIN articles (never on ../shared/eval): top-sentence accuracy,
highlight EM/F1, how well the best score separates answerable from unanswerable and
out-of-index questions, and the decline threshold calibrated from them.

Works with any `read(question, candidates) -> list[Reading]` (the torch model while training,
the shipped int8 ONNX model for the final figures), so the figures describe what ships.
"""

from __future__ import annotations

import logging
import sys
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from bot.evaluation.metrics import contains_answer, exact_match, f1_score

from .features import Candidate

log = logging.getLogger(__name__)

READ_CANDIDATES = 8  # the runtime reads the scorer's top 8 sentences (latency, see features)
ANSWER_RATE = 0.97  # the threshold keeps this share of in-index answerable questions answered
# A highlight is shown first (before the quote) when its span_score reaches the threshold at which
# the highlighted answers' mean token F1 is this high (calibrated with the decline threshold).
HIGHLIGHT_F1 = 0.8


def candidates_of(record: dict, n: int = READ_CANDIDATES) -> list[Candidate]:
    return [Candidate(c["text"], c["before"], c["title"]) for c in record["candidates"][:n]]


def auc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """P(score of a random positive > score of a random negative), ties half (Mann-Whitney)."""
    if not positive or not negative:
        return float("nan")
    scores = np.concatenate([positive, negative])
    ranks = np.argsort(np.argsort(scores, kind="mergesort"), kind="mergesort").astype(np.float64) + 1
    # average ranks of ties
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n_pos = len(positive)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * len(negative)))


def run(read: Callable, records: Sequence[dict], desc: str = "dev") -> list[dict]:
    """Read every record's candidates; one row per question with what the metrics need."""
    rows = []
    for r in tqdm(records, desc=desc, unit="q", file=sys.stderr, mininterval=5.0):
        candidates = candidates_of(r)
        readings = read(r["question"], candidates) if candidates else []
        best = int(np.argmax([x.score for x in readings])) if readings else -1
        span_text = ""
        if best >= 0 and readings[best].span is not None:
            a, b = readings[best].span
            span_text = candidates[best].text[a:b]
        rows.append({
            "kind": r["kind"], "max_score": readings[best].score if best >= 0 else 0.0,
            "span_score": readings[best].span_score if best >= 0 else 0.0,
            "top": best >= 0 and contains_answer(candidates[best].text, r["answers"]),
            "scorer_top": bool(candidates) and contains_answer(candidates[0].text, r["answers"]),
            "reachable": any(contains_answer(c.text, r["answers"]) for c in candidates),
            "em": exact_match(span_text, r["answers"]) if span_text and r["answers"] else 0.0,
            "f1": f1_score(span_text, r["answers"]) if span_text and r["answers"] else 0.0,
        })
    return rows


def threshold_for(scores: Sequence[float], rate: float = ANSWER_RATE) -> float:
    """The largest threshold that still answers `rate` of these (answerable) questions."""
    return float(np.quantile(np.asarray(scores, dtype=np.float64), 1.0 - rate)) if scores else 0.5


def span_threshold(rows: Sequence[dict], target: float = HIGHLIGHT_F1) -> float:
    """The lowest span_score above which the top spans of answerable questions reach `target`
    mean F1 (1.0 when none does)."""
    scored = sorted(((r["span_score"], r["f1"]) for r in rows if r["kind"] == "answerable"), reverse=True)
    best, total = 1.0, 0.0
    for n, (score, f1) in enumerate(scored, 1):
        total += f1
        if total / n >= target:
            best = score
    return float(best)


def summarize(rows: Sequence[dict], threshold: float | None = None) -> dict:
    """Metrics of `rows`; `threshold` defaults to the one calibrated on these rows."""
    ans = [r for r in rows if r["kind"] == "answerable"]
    una = [r for r in rows if r["kind"] == "unanswerable"]
    ooi = [r for r in rows if r["kind"] == "out_of_index"]
    scores = {k: [r["max_score"] for r in rs] for k, rs in (("ans", ans), ("una", una), ("ooi", ooi))}
    t = threshold_for(scores["ans"]) if threshold is None else threshold

    def mean(xs):
        return float(np.mean(xs)) if len(xs) else float("nan")

    answered = mean([s >= t for s in scores["ans"]])
    una_declined = mean([s < t for s in scores["una"]])
    ooi_declined = mean([s < t for s in scores["ooi"]])
    out = {
        "answerable": len(ans), "unanswerable": len(una), "out_of_index": len(ooi),
        "gold_in_candidates": mean([r["reachable"] for r in ans]),
        "scorer_top_sentence_accuracy": mean([r["scorer_top"] for r in ans]),
        "top_sentence_accuracy": mean([r["top"] for r in ans]),
        "span_em": mean([r["em"] for r in ans]), "span_f1": mean([r["f1"] for r in ans]),
        "auc_answerable_vs_unanswerable": auc(scores["ans"], scores["una"]),
        "auc_answerable_vs_out_of_index": auc(scores["ans"], scores["ooi"]),
        "threshold": t, "answered": answered, "span_threshold": span_threshold(rows),
        "unanswerable_declined": una_declined, "out_of_index_declined": ooi_declined,
        "balanced_accuracy_unanswerable": (answered + una_declined) / 2,
        "balanced_accuracy_out_of_index": (answered + ooi_declined) / 2,
    }
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}
