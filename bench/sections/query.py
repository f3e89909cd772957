"""2. query: Answerer.ask over SQuAD questions vs question encoding + dense + BM25 search alone;
and the whole answer on the bundled article."""

from __future__ import annotations

import time

import numpy as np

from bench.common import ARTICLE_QUESTIONS, QUESTIONS, Sizes, load_jsonl, ms, pct
from bench.fixtures import ensure_article_index, ensure_squad_index


def raw_query(answerer, question: str) -> None:
    """The raw limit of one query: encode the question, then the dense and BM25 searches."""
    r = answerer.settings.retrieval
    vector = answerer.encoder.encode([question])[0]
    answerer.index.search_dense(vector, r.candidates)
    answerer.index.search_keyword(question, r.candidates)


def interleaved(answerer, questions: list[str]) -> tuple[list[float], list[float], list]:
    """(raw seconds, answer seconds, answers), raw and whole answer alternating question by question."""
    raw, full, answers = [], [], []
    for question in questions:
        t = time.perf_counter()
        raw_query(answerer, question)
        raw.append(time.perf_counter() - t)
        t = time.perf_counter()
        answers.append(answerer.ask(question))
        full.append(time.perf_counter() - t)
    return raw, full, answers


def stage_p50(answers) -> dict:
    keys = sorted({k for a in answers for k in a.timings_ms})
    return {k: round(pct([a.timings_ms[k] for a in answers if k in a.timings_ms], 50), 2) for k in keys}


def bench_query(ctx: dict, sizes: Sizes) -> dict:
    from bot.answering.answerer import Answerer

    settings = ctx["settings"]
    squad = Answerer.from_settings(settings, index_dir=ensure_squad_index(ctx, sizes))
    rows = load_jsonl(QUESTIONS)
    titles = {c.title for c in squad.index.documents.values()}
    rows = [r for r in rows if r["title"].replace("_", " ") in titles] or rows
    rng = np.random.default_rng(0)
    picked = [rows[i]["question"] for i in rng.permutation(len(rows))]
    questions, warmup = picked[:sizes.questions], picked[sizes.questions:sizes.questions + 10]
    for q in warmup or questions[:5]:
        squad.ask(q)
    raw1, full1, answers1 = interleaved(squad, questions)  # first sight: sentence vectors computed as needed
    raw2, full2, answers2 = interleaved(squad, questions)  # again: sentence vectors cached
    result = {
        "index_chunks": len(squad.index), "questions": len(questions),
        "raw": ms(raw1 + raw2),
        "first_pass": {**ms(full1), "ratio_p50": round(pct(full1, 50) / pct(raw1, 50), 2),
                       "ratio_p95": round(pct(full1, 95) / pct(raw1, 95), 2), "stages_p50_ms": stage_p50(answers1)},
        "warm_pass": {**ms(full2), "ratio_p50": round(pct(full2, 50) / pct(raw2, 50), 2),
                      "ratio_p95": round(pct(full2, 95) / pct(raw2, 95), 2), "stages_p50_ms": stage_p50(answers2)},
    }

    if sizes.warm_up and hasattr(squad, "warm"):
        # What `qabot serve` does in the background once connected: embed every sentence up front,
        # after which every question is answered as in the warm pass.
        fresh = Answerer.from_settings(settings, index_dir=ensure_squad_index(ctx, sizes))
        t = time.perf_counter()
        sentences = fresh.warm()
        result["serve_warm_up"] = {"sentences": sentences, "seconds": round(time.perf_counter() - t, 1)}

    article = Answerer.from_settings(settings, index_dir=ensure_article_index(ctx))
    for q in ARTICLE_QUESTIONS:
        article.ask(q)
    raw_a, full_a, answers_a = interleaved(article, ARTICLE_QUESTIONS * sizes.article_rounds)
    result["article"] = {**ms(full_a), "raw": ms(raw_a), "ratio_p50": round(pct(full_a, 50) / pct(raw_a, 50), 2),
                         "stages_p50_ms": stage_p50(answers_a),
                         "answered": sum(not a.abstained for a in answers_a[:len(ARTICLE_QUESTIONS)])}
    ctx["article_answerer"] = article
    return result
