"""The metrics of `qabot eval`: SQuAD's answer normalisation, exact match and token F1, and the
summary of one run's per-question results."""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

HIT_KS = (1, 5, 10)


@dataclass
class QuestionResult:
    id: str
    title: str | None
    abstained: bool
    hits: tuple[bool, ...]  # retrieval hit at each of HIT_KS
    correct: bool  # answer text contains a gold answer
    top_sentence: bool  # the best sentence contains a gold answer
    words: int
    highlight: str | None
    em: float
    f1: float
    latency_ms: float
    reader_score: float | None = None  # the reader's best score (None when the rules answered)
    lead: str | None = None  # the span shown first, when the reader was confident about it
    # `qabot eval --llm`: what became of the LLM's reply ("composed", "declined", "ungrounded",
    # "unavailable"; None when it was not asked), and whether a passage it cited holds a gold answer.
    llm_outcome: str | None = None
    cited_has_answer: bool = False
    tokens: int = 0  # prompt + completion tokens the LLM reported


_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (the official SQuAD v1.1 script)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: Sequence[str]) -> float:
    return float(any(normalize_answer(prediction) == normalize_answer(g) for g in gold))


def f1_score(prediction: str, gold: Sequence[str]) -> float:
    best = 0.0
    predicted = normalize_answer(prediction).split()
    for answer in gold:
        truth = normalize_answer(answer).split()
        common = Counter(predicted) & Counter(truth)
        same = sum(common.values())
        if same == 0:
            continue
        precision, recall = same / len(predicted), same / len(truth)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains_answer(text: str, gold: Sequence[str]) -> bool:
    """A gold answer string occurs in `text` (both cleaned as documents are)."""
    return any(g and g in text for g in gold)


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else 0.0


def summarize(results: Sequence[QuestionResult]) -> dict:
    """The metrics of one run, rounded for printing (see `format_metrics`)."""
    n = len(results)
    answered = [r for r in results if not r.abstained]
    highlighted = [r for r in answered if r.highlight]
    latencies = [r.latency_ms for r in results]
    out: dict[str, float] = {"questions": n}
    for i, k in enumerate(HIT_KS):
        out[f"hit@{k}"] = _mean([r.hits[i] for r in results])
    out.update({
        "answer_accuracy": _mean([r.correct for r in results]),
        "answer_accuracy_answered": _mean([r.correct for r in answered]),
        "top_sentence_accuracy": _mean([r.top_sentence for r in results]),
        "answer_words_mean": _mean([r.words for r in answered]),
        "highlight_rate": _mean([bool(r.highlight) for r in results]),
        "span_em": _mean([r.em for r in highlighted]),
        "span_f1": _mean([r.f1 for r in highlighted]),
        "span_em_all": _mean([r.em for r in results]),
        "span_f1_all": _mean([r.f1 for r in results]),
        "abstention_rate": _mean([r.abstained for r in results]),
        "latency_ms_p50": _percentile(latencies, 50),
        "latency_ms_p95": _percentile(latencies, 95),
    })
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def auc(positive: Sequence[float], negative: Sequence[float]) -> float | None:
    """P(a random positive scores above a random negative), ties counting half (Mann-Whitney):
    how well a score separates the two, whatever threshold is used. None without both kinds."""
    if not positive or not negative:
        return None
    pos = np.sort(np.asarray(positive, dtype=np.float64))
    neg = np.asarray(negative, dtype=np.float64)
    below = np.searchsorted(pos, neg, side="left")
    above = np.searchsorted(pos, neg, side="right")
    wins = (len(pos) - above).sum() + 0.5 * (above - below).sum()
    return round(float(wins / (len(pos) * len(neg))), 4)


def reader_figures(results: Sequence[QuestionResult]) -> dict:
    """What the reader did on answerable questions: how often it was confident enough to show
    the span first, and how often that span was exactly a gold answer."""
    read = [r for r in results if r.reader_score is not None]
    answered = [r for r in read if not r.abstained]
    leads = [r for r in answered if r.lead]
    return {
        "read_questions": len(read),
        "lead_rate": round(_mean([bool(r.lead) for r in answered]), 4),
        "lead_em": round(_mean([r.em for r in leads]), 4),
        "lead_f1": round(_mean([r.f1 for r in leads]), 4),
        "score_p50_answerable": round(_percentile([r.reader_score for r in read if r.reader_score is not None], 50), 4),
    }


def unanswerable_protocol(answerable: Sequence[QuestionResult], unanswerable: Sequence[QuestionResult]) -> dict:
    """SQuAD 2.0: declined share of the unanswerable questions, answered share of the answerable
    ones (same index), their mean (balanced accuracy) and, with the reader, its score's AUC."""
    answered = _mean([not r.abstained for r in answerable])
    declined = _mean([r.abstained for r in unanswerable])
    out: dict[str, float | None] = {
        "questions": len(unanswerable),
        "declined": round(declined, 4),
        "answerable_answered": round(answered, 4),
        "balanced_accuracy": round((answered + declined) / 2, 4),
    }
    scores_pos = [r.reader_score for r in answerable if r.reader_score is not None]
    scores_neg = [r.reader_score for r in unanswerable if r.reader_score is not None]
    if scores_pos and scores_neg:
        out["reader_auc"] = auc(scores_pos, scores_neg)
    return out


def abstain_protocol(results: Sequence[QuestionResult], indexed: set[str]) -> dict:
    inside = [r for r in results if r.title in indexed]
    outside = [r for r in results if r.title not in indexed]
    return {
        "in_index_questions": len(inside),
        "in_index_answered": round(_mean([not r.abstained for r in inside]), 4),
        "in_index_correct": round(_mean([r.correct for r in inside]), 4),
        "out_of_index_questions": len(outside),
        "out_of_index_declined": round(_mean([r.abstained for r in outside]), 4),
    }


def llm_figures(results: Sequence[QuestionResult]) -> dict:
    """A composed run (`qabot eval --llm`): how the LLM's replies fared, and how good the composed
    answers and their citations are. `citation_validity` is the share of the LLM's answers (not
    its declines) whose every citation and quote checked out against the sources, so they were
    shown; `cited_passage_has_answer` the share of shown composed answers citing a passage that
    holds a gold answer."""
    asked = [r for r in results if r.llm_outcome is not None]
    counts = Counter(r.llm_outcome for r in asked)
    composed = [r for r in asked if r.llm_outcome == "composed"]
    replies = counts["composed"] + counts["ungrounded"]
    return {
        "asked": len(asked),
        **{outcome: counts[outcome] for outcome in ("composed", "declined", "ungrounded", "unavailable")},
        "citation_validity": round(counts["composed"] / replies, 4) if replies else 0.0,
        "composed_accuracy": round(_mean([float(r.correct) for r in composed]), 4),
        "cited_passage_has_answer": round(_mean([float(r.cited_has_answer) for r in composed]), 4),
        "tokens_mean": round(_mean([float(r.tokens) for r in asked]), 1),
    }
