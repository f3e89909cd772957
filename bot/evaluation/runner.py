"""`qabot eval`: index the contexts, ask every question, measure.

The index is built in a throw-away directory with the configured ingest encoder, saved and loaded
back exactly as ``qabot ingest`` and ``qabot ask`` do, and every question goes through the same
`Answerer` the CLI and Slack use.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from embeddings.documents import Document
from embeddings.encoders import DIMENSION, MODEL_NAME, Encoder, get_encoder
from embeddings.index import Index
from embeddings.ingest import IngestOptions, ingest_documents

from ..answering.answerer import Answerer, AnswerTrace
from ..answering.layout import answer_layout
from ..answering.sentences import SentenceVectors
from ..settings import Settings
from .data import EvalQuestion, load_contexts, load_questions
from .metrics import (HIT_KS, QuestionResult, abstain_protocol, contains_answer, exact_match, f1_score,
                      llm_figures, summarize, unanswerable_protocol)


class MemoEncoder:
    """The ingest encoder, loaded on first use (a reused `--work-dir` index needs none), remembering
    every vector it made, so the cross-split indexes (subsets of the same documents, hence the same
    chunks) reuse the full index's embeddings."""

    def __init__(self, factory, model_name: str = MODEL_NAME, dimension: int = DIMENSION) -> None:
        self._factory = factory
        self._encoder: Encoder | None = None
        self.model_name = model_name
        self.dimension = dimension
        self._memo: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing:
            # Similar lengths together: far less padding, so far faster on a CPU.
            if self._encoder is None:
                self._encoder = self._factory()
            order = sorted(missing, key=len)
            for text, vector in zip(order, self._encoder.encode(order, batch_size=batch_size)):
                self._memo[text] = vector
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.vstack([self._memo[t] for t in texts]).astype(np.float32)


def build_index(documents: Sequence[Document], settings: Settings, directory: Path, encoder) -> Index:
    """Index `documents` into `directory` the way `qabot ingest` does, and load it back.

    A directory that already holds exactly these documents (same content hashes, same chunking)
    is reused as it is, like a repeated `qabot ingest`.
    """
    ingest_documents(documents, directory, IngestOptions.from_settings(settings),
                     encoder_factory=lambda: encoder, exact=True)
    return Index.load(directory, model_name=settings.model.model_name)


def ask_all(answerer: Answerer, questions: Sequence[EvalQuestion], *, desc: str = "questions",
            progress: bool = True) -> list[QuestionResult]:
    """Ask every question through `answerer`, with a progress bar on stderr."""
    from tqdm import tqdm

    results = []
    for q in tqdm(questions, desc=desc, unit="q", file=sys.stderr, disable=not progress,
                  dynamic_ncols=True, mininterval=0.5):
        trace = AnswerTrace(depth=max(HIT_KS))
        started = time.perf_counter()
        answer = answerer.ask(q.question, trace=trace)
        latency = (time.perf_counter() - started) * 1000
        texts = [p.hit.chunk.text for p in trace.passages]
        hits = tuple(any(contains_answer(t, q.answers) for t in texts[:k]) for k in HIT_KS)
        span = answer.highlighted if not answer.abstained else None
        shown = answer_layout(answer).shown_text if not answer.abstained else ""
        results.append(QuestionResult(
            id=q.id, title=q.title, abstained=answer.abstained, hits=hits,
            correct=not answer.abstained and contains_answer(answer.text, q.answers),
            top_sentence=trace.best is not None and contains_answer(trace.best.text, q.answers),
            words=0 if answer.abstained else len(answer.text.split()),
            highlight=span,
            em=exact_match(span, q.answers) if span else 0.0,
            f1=f1_score(span, q.answers) if span else 0.0,
            latency_ms=latency, lead=answer.lead, gold=tuple(q.answers),
            shown_words=len(shown.split()), shown_correct=bool(shown) and contains_answer(shown, q.answers),
            llm_outcome=answer.llm.outcome if answer.llm else None,
            cited_has_answer=answer.composed and any(contains_answer(c.text, q.answers) for c in answer.citations),
            tokens=((answer.llm.prompt_tokens or 0) + (answer.llm.completion_tokens or 0)) if answer.llm else 0))
    return results


def split_titles(titles: Sequence[str]) -> tuple[list[str], list[str]]:
    """The cross-split protocol's two halves: titles in file order, alternately to A and B.

    On the shared set, A = 1973_oil_crisis, American_Broadcasting_Company, Scottish_Parliament,
    Economic_inequality, Amazon_rainforest; B = the other five. Deterministic, no randomness.
    """
    return list(titles[0::2]), list(titles[1::2])


def run_eval(contexts: Path, questions_file: Path, settings: Settings, *, limit: int | None = None,
             abstain_check: bool = False, unanswerable: Path | None = None, work_dir: Path | None = None,
             progress: bool = True) -> dict:
    """Everything `qabot eval` prints, as one dict: {"settings", "metrics",
    "unanswerable"?, "abstain_check"?}.

    `unanswerable` (SQuAD 2.0 questions about the same articles) are asked of the same index as
    the answerable ones: a good assistant declines them and still answers the others.

    The index lives in `work_dir` when given (kept, and reused while the contexts are unchanged),
    else in a temporary directory removed afterwards.
    """
    questions = load_questions(questions_file, limit)
    impossible = load_questions(unanswerable, limit, unanswerable=True) if unanswerable else []
    documents = load_contexts(contexts)
    m = settings.model
    ingest_encoder = MemoEncoder(lambda: get_encoder(m.ingest_backend, m.max_seq_length), m.model_name)
    query_encoder = get_encoder(m.query_backend, m.max_seq_length)
    # One sentence-vector cache for every index built here: the sentences are the same.
    sentence_vectors = SentenceVectors(lambda texts: query_encoder.encode(texts))
    with tempfile.TemporaryDirectory(prefix="qabot-eval-") as tmp:
        base = Path(work_dir) if work_dir is not None else Path(tmp)

        def answerer_for(docs: Sequence[Document], name: str) -> Answerer:
            if progress:
                print(f"indexing {len(docs)} documents ({name}) ...", file=sys.stderr, flush=True)
            index = build_index(docs, settings, base / name, ingest_encoder)
            answerer = Answerer(index, query_encoder, settings, sentence_vectors=sentence_vectors)
            answerer.warm()
            return answerer

        started = time.perf_counter()
        everything = answerer_for(documents, "all")
        results = ask_all(everything, questions, progress=progress)
        report = {
            "contexts": str(contexts), "questions_file": str(questions_file),
            "documents": len(documents),
            "settings": {"mode": settings.retrieval.mode, "fusion": settings.retrieval.fusion,
                         "top_k": settings.retrieval.top_k, "query_backend": m.query_backend,
                         "ingest_backend": m.ingest_backend, "entities": everything.index.entities},
            "metrics": summarize(results),
        }
        if settings.llm.enabled:
            report["llm"] = {"model": settings.llm.model, "base_url": settings.llm.base_url, **llm_figures(results)}
        if impossible:
            declined = ask_all(everything, impossible, desc="unanswerable", progress=progress)
            report["unanswerable"] = {"file": str(unanswerable),
                                      **unanswerable_protocol(results, declined)}
        if abstain_check:
            titles = [d.doc_id.split(":", 1)[1] for d in documents]
            halves = split_titles(titles)
            check: dict = {"split": {"A": halves[0], "B": halves[1]}}
            for name, half in zip("AB", halves):
                wanted = {f"eval:{t}" for t in half}
                docs = [d for d in documents if d.doc_id in wanted]
                res = ask_all(answerer_for(docs, f"split-{name}"), questions,
                              desc=f"split {name}", progress=progress)
                check[name] = abstain_protocol(res, set(half))
            both = [check[n] for n in "AB"]
            inside = sum(c["in_index_questions"] for c in both)
            outside = sum(c["out_of_index_questions"] for c in both)
            check["overall"] = {
                "in_index_answered": round(sum(c["in_index_answered"] * c["in_index_questions"]
                                               for c in both) / max(inside, 1), 4),
                "out_of_index_declined": round(sum(c["out_of_index_declined"] * c["out_of_index_questions"]
                                                   for c in both) / max(outside, 1), 4),
            }
            report["abstain_check"] = check
        report["elapsed_s"] = round(time.perf_counter() - started, 1)
    return report
