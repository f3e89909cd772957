"""Choose the lead and typed-decline numbers on ../shared/train (never on ../shared/eval).

Builds an index of the training paragraphs (as `qabot eval` does), asks every answerable and
unanswerable training question once with typing off to record what the steps found, then replays
the typing, lead and evidence steps (the production functions, with the numbers under test) over
those records for each setting of a small grid, printing for each: answerable answered,
unanswerable declined, lead rate / exact match / F1, mean words shown and "shown text contains
a gold answer".

    .venv/bin/python -m bot.evaluation.tune_lead [--train ../shared/train] [--limit N]
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from embeddings.documents import Document
from embeddings.encoders import get_encoder

from ..answering import answer_type, compose, layout, lead, span_scorer
from ..answering.answerer import Answerer, AnswerTrace
from ..answering.compose import choose_sentences, compose_answer
from ..answering.layout import answer_layout
from ..answering.question import Question
from ..settings import load_settings
from .metrics import contains_answer, exact_match, f1_score
from .runner import MemoEncoder, build_index


@dataclass
class Record:
    question: str
    answers: list[str]
    base_answer: bool  # the judge answered, before typing
    trace: AnswerTrace


def train_documents(train: Path) -> list[Document]:
    by_title: dict[str, list[str]] = {}
    with (train / "squad-pool.contexts.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            raw = json.loads(line)
            by_title.setdefault(raw["title"], []).append(raw["text"])
    return [Document(f"train:{t}", t.replace("_", " "), "\n\n".join(p), f"train/{t}") for t, p in by_title.items()]


def train_answerer(train: Path, work: Path) -> Answerer:
    settings = load_settings(environ={})
    m = settings.model
    encoder = MemoEncoder(lambda: get_encoder(m.ingest_backend, m.max_seq_length), m.model_name)
    index = build_index(train_documents(train), settings, work, encoder)
    # Not warmed: sentences are embedded as questions reach them (the same answers, less work).
    return Answerer(index, get_encoder(m.query_backend, m.max_seq_length), settings)


def records(answerer: Answerer, train: Path, limit: int | None) -> Iterator[Record]:
    answerer.typed_answers = False  # record what the steps find before typing
    with (train / "squad-pool.questions.jsonl").open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    for row in rows[:limit] if limit else rows:
        trace = AnswerTrace()
        answer = answerer.ask(row["question"], trace=trace)
        yield Record(row["question"], row["answers"], not answer.abstained, trace)


def load_records(answerer: Answerer, train: Path, limit: int | None, work: Path) -> list[Record]:
    """The records of `records`, kept in `work` once asked (the asking is the slow part)."""
    saved = work / f"records-{limit or 'all'}.pickle"
    if saved.exists():
        recs: list[Record] = pickle.loads(saved.read_bytes())
        return recs
    recs = list(records(answerer, train, limit))
    saved.write_bytes(pickle.dumps(recs))
    return recs


def replay(answerer: Answerer, rec: Record, max_sentences: int) -> tuple[bool, str | None, str]:
    """(answered, lead, shown text) with the module numbers as currently set."""
    if not rec.base_answer or rec.trace.best is None:
        return False, None, ""
    ranked = rec.trace.sentences
    q = Question(rec.question, rec.question)
    choice = answerer._typed(q, ranked)
    best = choice.best
    if choice.untyped is not None or best is None:
        return False, None, ""
    chosen = choose_sentences(best, ranked, max_sentences, has_lead=choice.lead is not None)
    answer = compose_answer(answerer.index, q, best, chosen, rec.trace.passages[:5], 5, lead=choice.lead)
    return True, answer.lead, answer_layout(answer).shown_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=Path, default=Path("../shared/train"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--work", type=Path, default=None, help="keep the training index here")
    parser.add_argument("--stage", choices=("typing", "evidence"), default="typing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qabot-tune-") as tmp:
        work = args.work or Path(tmp)
        answerer = train_answerer(args.train, work / "index")
        recs = load_records(answerer, args.train, args.limit, work)
    answerer.typed_answers = True
    for setting in grid(args.stage):
        print(json.dumps({**setting, **score(answerer, recs, setting)}), flush=True)


def grid(stage: str) -> list[dict]:
    """The settings tried: the typing numbers first, then the evidence length with the chosen
    typing numbers (module defaults)."""
    if stage == "evidence":
        return [{"lead_evidence_words": n} for n in (1000, 30, 25, 20, 15, 12)]
    keys = ("label_share", "lead_share", "typed_share", "window", "ratio", "label_weight")
    values = ((0.1, 0.15, 0.2), (0.3, 0.4, 0.5), (0.5, 0.6, 0.7, 0.8), (1, 3), (0.8, 0.9), (0.5,))
    return [dict(zip(keys, v)) for v in itertools.product(*values) if v[1] <= v[2]]


model_loader = span_scorer.span_model


def score(answerer: Answerer, recs: list[Record], setting: dict) -> dict:
    """Replay every record with `setting`'s numbers in place of the modules' own."""
    saved = (answer_type.MIN_LABEL_SHARE, answer_type.MIN_LEAD_SHARE, answer_type.MIN_TYPED_SHARE,
             lead.TYPED_WINDOW, lead.TYPED_SCORE_RATIO, lead.LABEL_WEIGHT, layout.EVIDENCE_WORDS,
             compose.PRONOUN_BRINGS_PREVIOUS, layout.LEAD_EVIDENCE_WORDS, span_scorer.span_model())
    layout.LEAD_EVIDENCE_WORDS = setting.get("lead_evidence_words", saved[8])
    if setting.get("threshold") is not None:
        model = span_scorer.SpanModel(saved[9].weights, saved[9].calibration, setting["threshold"])
        span_scorer.span_model = lambda: model  # type: ignore[assignment]
    compose.PRONOUN_BRINGS_PREVIOUS = setting.get("pronoun", saved[7])
    answer_type.MIN_LABEL_SHARE = setting.get("label_share", saved[0])
    answer_type.MIN_LEAD_SHARE = setting.get("lead_share", saved[1])
    answer_type.MIN_TYPED_SHARE = setting.get("typed_share", saved[2])
    lead.TYPED_WINDOW = setting.get("window", saved[3])
    lead.TYPED_SCORE_RATIO = setting.get("ratio", saved[4])
    lead.LABEL_WEIGHT = setting.get("label_weight", saved[5])
    layout.EVIDENCE_WORDS = setting.get("evidence_words", saved[6])
    max_sentences = setting.get("max_sentences", answerer.settings.answer.max_sentences)
    try:
        answerable = [r for r in recs if r.answers]
        impossible = [r for r in recs if not r.answers]
        out = [(r, *replay(answerer, r, max_sentences)) for r in answerable]
        answered = [o for o in out if o[1]]
        leads = [o for o in answered if o[2]]
        declined = sum(not replay(answerer, r, 1)[0] for r in impossible)
        return {
            "answered": round(len(answered) / max(len(answerable), 1), 4),
            "declined": round(declined / max(len(impossible), 1), 4),
            "lead_rate": round(len(leads) / max(len(answered), 1), 4),
            "lead_em": round(sum((exact_match(o[2] or "", o[0].answers) for o in leads), 0.0) / max(len(leads), 1), 4),
            "lead_f1": round(sum((f1_score(o[2] or "", o[0].answers) for o in leads), 0.0) / max(len(leads), 1), 4),
            "shown_words": round(sum(len(o[3].split()) for o in answered) / max(len(answered), 1), 2),
            "shown_accuracy": round(sum(contains_answer(o[3], o[0].answers) for o in answered)
                                    / max(len(answerable), 1), 4),
        }
    finally:
        (answer_type.MIN_LABEL_SHARE, answer_type.MIN_LEAD_SHARE, answer_type.MIN_TYPED_SHARE,
         lead.TYPED_WINDOW, lead.TYPED_SCORE_RATIO, lead.LABEL_WEIGHT, layout.EVIDENCE_WORDS,
         compose.PRONOUN_BRINGS_PREVIOUS, layout.LEAD_EVIDENCE_WORDS) = saved[:9]
        span_scorer.span_model = model_loader


if __name__ == "__main__":
    main()
