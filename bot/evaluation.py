"""`qabot eval`: measure retrieval, answers, highlights and abstention on a question set.

Data format (the SQuAD subset in ``../shared/eval``; SQuAD v1.1, Rajpurkar et al. 2016, passages
from Wikipedia, CC BY-SA 4.0):

- contexts: JSON lines ``{"context_id", "title", "text"}``; every title becomes one document whose
  paragraphs are its contexts, in file order;
- questions: JSON lines ``{"id", "question", "answers": [str, ...], ...}``.

The index is built in a throw-away directory with the configured ingest encoder, saved and loaded
back exactly as ``qabot ingest`` and ``qabot ask`` do, and every question goes through the same
`Answerer` the CLI and Slack use.
"""

from __future__ import annotations

import json
import re
import string
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from embeddings.documents import Document, normalize_text
from embeddings.encoders import DIMENSION, MODEL_NAME, get_encoder
from embeddings.errors import QabotError
from embeddings.index import Index

from .answerer import Answerer, AnswerTrace
from .selection import SentenceVectors
from .settings import Settings


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    answers: tuple[str, ...]
    title: str | None = None


class EvalDataError(ValueError):
    """The contexts or questions file is missing or malformed."""


def _read_jsonl(path: Path) -> Iterable[dict]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise EvalDataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise EvalDataError(f"{path}:{number}: not a JSON object") from None
            if not isinstance(record, dict):
                raise EvalDataError(f"{path}:{number}: not a JSON object")
            yield record


def load_contexts(path: Path, titles: Iterable[str] | None = None) -> list[Document]:
    """One `Document` per title (optionally only `titles`), its paragraphs in file order."""
    wanted = set(titles) if titles is not None else None
    paragraphs: dict[str, list[str]] = {}
    for number, record in enumerate(_read_jsonl(path), 1):
        title, text = record.get("title"), record.get("text")
        if not isinstance(title, str) or not isinstance(text, str):
            raise EvalDataError(f"{path}:{number}: needs string 'title' and 'text'")
        if wanted is None or title in wanted:
            cleaned = normalize_text(text)
            if cleaned:
                paragraphs.setdefault(title, []).append(cleaned)
    if not paragraphs:
        raise EvalDataError(f"{path}: no contexts")
    return [Document(doc_id=f"eval:{title}", title=display_title(title), text="\n\n".join(parts),
                     source=f"{path.name}#{title}") for title, parts in paragraphs.items()]


def display_title(title: str) -> str:
    """A SQuAD title as a document title: "Sky_(United_Kingdom)" -> "Sky (United Kingdom)"."""
    return title.replace("_", " ").strip()


def load_questions(path: Path, limit: int | None = None) -> list[EvalQuestion]:
    out = []
    for number, record in enumerate(_read_jsonl(path), 1):
        question, answers = record.get("question"), record.get("answers")
        if not isinstance(question, str) or not isinstance(answers, list) or not answers:
            raise EvalDataError(f"{path}:{number}: needs 'question' and a non-empty 'answers' list")
        out.append(EvalQuestion(str(record.get("id", number)), question,
                                tuple(normalize_text(str(a)) for a in answers), record.get("title")))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise EvalDataError(f"{path}: no questions")
    return out


# --- SQuAD's answer normalisation, exact match and token F1 ------------------------------------

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


# --- building the throw-away index -------------------------------------------------------------

class MemoEncoder:
    """The ingest encoder, loaded on first use (a reused `--work-dir` index needs none), remembering
    every vector it made, so the cross-split indexes (subsets of the same documents, hence the same
    chunks) reuse the full index's embeddings."""

    def __init__(self, factory, model_name: str = MODEL_NAME, dimension: int = DIMENSION) -> None:
        self._factory = factory
        self._encoder = None
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
    c = settings.chunking
    index = None
    if Index.exists(directory):
        try:
            index = Index.load(directory, model_name=settings.model.model_name)
        except QabotError:
            index = None
        if index is not None and (index.chunk_words != c.chunk_words
                                  or index.sentence_overlap != c.sentence_overlap
                                  or set(index.documents) != {d.doc_id for d in documents}):
            index = None
    if index is None:
        index = Index(settings.model.model_name, encoder.dimension, c.chunk_words, c.sentence_overlap)
    report = index.add(documents, encoder, batch_size=settings.model.batch_size)
    if report.changed or not Index.exists(directory):
        index.save(directory)
    return Index.load(directory, model_name=settings.model.model_name)


# --- running the questions ---------------------------------------------------------------------

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
        results.append(QuestionResult(
            id=q.id, title=q.title, abstained=answer.abstained, hits=hits,
            correct=not answer.abstained and contains_answer(answer.text, q.answers),
            top_sentence=trace.best is not None and contains_answer(trace.best.text, q.answers),
            words=0 if answer.abstained else len(answer.text.split()),
            highlight=span,
            em=exact_match(span, q.answers) if span else 0.0,
            f1=f1_score(span, q.answers) if span else 0.0,
            latency_ms=latency))
    return results


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
    out = {"questions": n}
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


def split_titles(titles: Sequence[str]) -> tuple[list[str], list[str]]:
    """The cross-split protocol's two halves: titles in file order, alternately to A and B.

    On the shared set, A = 1973_oil_crisis, American_Broadcasting_Company, Scottish_Parliament,
    Economic_inequality, Amazon_rainforest; B = the other five. Deterministic, no randomness.
    """
    return list(titles[0::2]), list(titles[1::2])


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


def run_eval(contexts: Path, questions_file: Path, settings: Settings, *, limit: int | None = None,
             abstain_check: bool = False, work_dir: Path | None = None, progress: bool = True) -> dict:
    """Everything `qabot eval` prints, as one dict: {"settings", "metrics", "abstain_check"?}.

    The index lives in `work_dir` when given (kept, and reused while the contexts are unchanged),
    else in a temporary directory removed afterwards.
    """
    questions = load_questions(questions_file, limit)
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
        results = ask_all(answerer_for(documents, "all"), questions, progress=progress)
        report = {
            "contexts": str(contexts), "questions_file": str(questions_file),
            "documents": len(documents),
            "settings": {"mode": settings.retrieval.mode, "fusion": settings.retrieval.fusion,
                         "top_k": settings.retrieval.top_k, "query_backend": m.query_backend,
                         "ingest_backend": m.ingest_backend},
            "metrics": summarize(results),
        }
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


_LABELS = [
    ("questions", "questions", "{:d}"),
    ("hit@1", "retrieval hit@1", "{:.3f}"),
    ("hit@5", "retrieval hit@5", "{:.3f}"),
    ("hit@10", "retrieval hit@10", "{:.3f}"),
    ("answer_accuracy", "answer accuracy (answer contains a gold answer)", "{:.3f}"),
    ("answer_accuracy_answered", "answer accuracy, answered questions only", "{:.3f}"),
    ("top_sentence_accuracy", "top-sentence accuracy", "{:.3f}"),
    ("answer_words_mean", "answer length, mean words", "{:.1f}"),
    ("highlight_rate", "questions with a highlighted span", "{:.3f}"),
    ("span_em", "highlight exact match (highlighted answers)", "{:.3f}"),
    ("span_f1", "highlight token F1 (highlighted answers)", "{:.3f}"),
    ("span_em_all", "highlight exact match (all questions)", "{:.3f}"),
    ("span_f1_all", "highlight token F1 (all questions)", "{:.3f}"),
    ("abstention_rate", "abstention rate", "{:.3f}"),
    ("latency_ms_p50", "latency p50 (ms)", "{:.1f}"),
    ("latency_ms_p95", "latency p95 (ms)", "{:.1f}"),
]


def format_report(report: dict) -> str:
    """The human-readable table `qabot eval` prints."""
    s = report["settings"]
    lines = [f"qabot eval: {report['documents']} documents, mode {s['mode']}"
             f"{' (' + s['fusion'] + ' fusion)' if s['mode'] == 'hybrid' else ''}, top_k {s['top_k']}",
             ""]
    width = max(len(label) for _, label, _ in _LABELS)
    for key, label, fmt in _LABELS:
        lines.append(f"  {label:<{width}}  {fmt.format(report['metrics'][key])}")
    check = report.get("abstain_check")
    if check:
        lines += ["", "abstention check (index 5 of the articles, ask every question):"]
        for name in "AB":
            c = check[name]
            lines.append(f"  split {name} ({', '.join(check['split'][name])}):")
            lines.append(f"    in-index answered      {c['in_index_answered']:.3f}  "
                         f"(n={c['in_index_questions']}, correct {c['in_index_correct']:.3f})")
            lines.append(f"    out-of-index declined  {c['out_of_index_declined']:.3f}  "
                         f"(n={c['out_of_index_questions']})")
        o = check["overall"]
        lines.append(f"  both splits: in-index answered {o['in_index_answered']:.3f}, "
                     f"out-of-index declined {o['out_of_index_declined']:.3f}")
    lines += ["", f"({report['elapsed_s']:.0f} s)"]
    return "\n".join(lines)
