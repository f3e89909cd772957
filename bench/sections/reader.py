"""2b. reader: the trained reader (int8 ONNX) on each question's candidate sentences vs the query
encoder alone on the question, side by side; whole answer with the reader on vs off."""

from __future__ import annotations

import time

import numpy as np

from bench.common import ARTICLE_QUESTIONS, QUESTIONS, Sizes, load_jsonl, ms, pct
from bench.fixtures import ensure_article_index, ensure_squad_index


def reader_pass(answerer, questions: list[str]) -> dict:
    """The reader on each question's candidates (what `ReaderScorer` reads) and the query encoder
    on the question alone, alternating question by question so both see the same machine load."""
    from bot.answering.question import Question
    from bot.answering.reading import candidate_of
    from bot.answering.retrieval import retrieve

    scorer = answerer.scorer
    reader = scorer.reader.get()
    n = scorer.reader.config.read_candidates
    r = answerer.settings.retrieval
    prepared = []
    for question in questions:  # candidates built first: retrieval and rule scoring are not timed here
        vector = answerer.encoder.encode([question])[0]
        passages = retrieve(answerer.index, question, vector, top_k=r.top_k, candidates=r.candidates,
                            fusion=answerer.fusion)
        ranked = scorer.rules.score(Question(question, question), vector, passages)[:n]
        prepared.append((question, [candidate_of(answerer.index, s) for s in ranked]))
    read_s, encode_s, pairs = [], [], 0
    for question, candidates in prepared:
        t = time.perf_counter()
        answerer.encoder.encode([question])
        encode_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        reader.read(question, candidates)
        read_s.append(time.perf_counter() - t)
        pairs += len(candidates)
    return {"questions": len(prepared), "pairs": pairs, "pairs_per_question": round(pairs / max(len(prepared), 1), 1),
            "pairs_per_s": round(pairs / sum(read_s), 1), "reader": ms(read_s), "encoder": ms(encode_s),
            "ratio_p50": round(pct(read_s, 50) / pct(encode_s, 50), 2)}


def bench_reader(ctx: dict, sizes: Sizes) -> dict:
    from bot.answering.answerer import Answerer
    from bot.answering.reading import ReaderScorer

    settings = ctx["settings"]
    article = Answerer.from_settings(settings.replace("answer", reader="onnx"), index_dir=ensure_article_index(ctx))
    if not isinstance(article.scorer, ReaderScorer):
        raise RuntimeError("the reader is not in use")
    article.warm()
    questions = ARTICLE_QUESTIONS * sizes.article_rounds
    result = {"read_candidates": article.scorer.reader.config.read_candidates,
              "article": reader_pass(article, questions)}
    rules = Answerer.from_settings(settings.replace("answer", reader="off"), index_dir=ensure_article_index(ctx))
    rules.warm()
    on, off = [], []
    for question in questions:  # whole answers, reader on and off alternating
        t = time.perf_counter()
        article.ask(question)
        on.append(time.perf_counter() - t)
        t = time.perf_counter()
        rules.ask(question)
        off.append(time.perf_counter() - t)
    result["article_answer"] = {"reader_on": ms(on), "reader_off": ms(off),
                                "ratio_p50": round(pct(on, 50) / pct(off, 50), 2)}
    squad = Answerer.from_settings(settings.replace("answer", reader="onnx"), index_dir=ensure_squad_index(ctx, sizes))
    rows = load_jsonl(QUESTIONS)
    titles = {c.title for c in squad.index.documents.values()}
    rows = [row for row in rows if row["title"].replace("_", " ") in titles] or rows
    picked = [rows[i]["question"] for i in np.random.default_rng(1).permutation(len(rows))[:sizes.questions // 5]]
    result["squad"] = reader_pass(squad, picked)
    return result
