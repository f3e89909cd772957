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
    lead: str | None = None  # the lead shown first (an entity of the question's type), if any
    # What a reader sees by default (the lead and the evidence lines, as `answer_layout` gives
    # them): its length in words, and whether it contains a gold answer.
    shown_words: int = 0
    shown_correct: bool = False
    # `qabot eval --llm`: what became of the LLM's reply ("composed", "declined", "ungrounded",
    # "unavailable"; None when it was not asked), and whether a passage it cited holds a gold answer.
    llm_outcome: str | None = None
    cited_has_answer: bool = False
    tokens: int = 0  # prompt + completion tokens the LLM reported
    gold: tuple[str, ...] = ()  # the gold answers (for the lead's exact match / F1)


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
        "shown_words_mean": _mean([r.shown_words for r in answered]),
        "shown_accuracy": _mean([r.shown_correct for r in results]),
        "shown_accuracy_answered": _mean([r.shown_correct for r in answered]),
        **lead_figures(results),
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


def lead_figures(results: Sequence[QuestionResult]) -> dict[str, float]:
    """How often an answered question gets a lead, and how often that lead is a gold answer
    (SQuAD exact match / token F1 of the lead itself)."""
    answered = [r for r in results if not r.abstained]
    leads = [r for r in answered if r.lead]
    return {
        "lead_rate": _mean([bool(r.lead) for r in answered]),
        "lead_em": _mean([exact_match(r.lead or "", [g for g in r.gold]) for r in leads]),
        "lead_f1": _mean([f1_score(r.lead or "", [g for g in r.gold]) for r in leads]),
    }


def unanswerable_protocol(answerable: Sequence[QuestionResult], unanswerable: Sequence[QuestionResult]) -> dict:
    """SQuAD 2.0: declined share of the unanswerable questions, answered share of the answerable
    ones (same index) and their mean (balanced accuracy)."""
    answered = _mean([not r.abstained for r in answerable])
    declined = _mean([r.abstained for r in unanswerable])
    out: dict[str, float | None] = {
        "questions": len(unanswerable),
        "declined": round(declined, 4),
        "answerable_answered": round(answered, 4),
        "balanced_accuracy": round((answered + declined) / 2, 4),
    }
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
