"""Build the reader's training data the way the product sees questions: the candidate sentences
qabot's own retrieval returns (hybrid dense + BM25 passages, their sentences ranked by the
sentence scorer), cached as JSON lines under build/reader/.

Three kinds of question, each with its top candidates:
- answerable (SQuAD v1.1): a candidate is positive when it lies in the question's own paragraph
  and holds a gold answer; the other candidates (other paragraphs, other articles) are the hard
  negatives the product must rank below it;
- unanswerable (SQuAD 2.0): every candidate is negative, the on-topic paragraph's too;
- out-of-index: index half of the articles and ask the other half's questions; every candidate
  is negative. The product must decline both of the last two.

Train and held-out articles get separate indexes (`bot.reader.split`), so no held-out text
reaches training. Run: ``python -m bot.reader.data`` (a few minutes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from bot.answering.answerer import Answerer, AnswerTrace
from bot.answering.sentences import SentenceVectors
from bot.evaluation.data import load_contexts
from bot.evaluation.runner import MemoEncoder, build_index
from bot.settings import Settings, load_settings
from embeddings.documents import normalize_text
from embeddings.encoders import get_encoder

from .features import before_sentence
from .split import CONTEXTS, QUESTIONS, read_jsonl, split_titles

log = logging.getLogger(__name__)

DEFAULT_OUTPUT = Path("build/reader/candidates.jsonl")
CANDIDATES_KEPT = 16  # candidates stored per question; the runtime reads the top 12 (see runtime)
TRACE_DEPTH = 10  # passages the trace ranks (the answer still uses top_k of them)
OUT_OF_INDEX_PER_HALF = 700  # out-of-index questions sampled per half-index (seeded)
DATA_SEED = 7


def _candidates(answerer: Answerer, question: str) -> list[dict]:
    trace = AnswerTrace(depth=TRACE_DEPTH)
    answerer.ask(question, trace=trace)
    out = []
    for rank, s in enumerate(trace.sentences[:CANDIDATES_KEPT]):
        chunk = s.passage.hit.chunk
        out.append({"text": s.text, "before": before_sentence(chunk.text, chunk.sentences, s.index),
                    "title": answerer.index.document(chunk.doc_id).title, "doc_id": chunk.doc_id,
                    "rank": rank, "scorer": round(s.score, 4)})
    return out


def _label(record: dict, candidates: list[dict], paragraph: str | None) -> None:
    """Mark each candidate: label 1 when it is in the gold paragraph and holds a gold answer
    (with the answer's char span), 0 otherwise; -1 (ignored) for a sentence that holds a gold
    string but comes from elsewhere: it may or may not answer, so it teaches nothing reliable."""
    answers = record["answers"]
    for c in candidates:
        c["label"], c["span"] = 0, None
        if not answers:
            continue
        found = [(c["text"].find(a), a) for a in answers if a and a in c["text"]]
        if not found:
            continue
        if paragraph is not None and c["text"] in paragraph and c["doc_id"] == f"eval:{record['title']}":
            at, answer = min(found)
            c["label"], c["span"] = 1, [at, at + len(answer)]
        else:
            c["label"] = -1


def _ask_all(answerer: Answerer, questions: Sequence[dict], kind: str, split: str,
             paragraphs: dict[str, str], handle, desc: str) -> None:
    for q in tqdm(questions, desc=desc, unit="q", file=sys.stderr, mininterval=2.0):
        record = {"id": q["id"], "question": q["question"], "title": q["title"], "kind": kind,
                  "split": split, "context_id": q["context_id"],
                  "answers": [normalize_text(a) for a in q["answers"]] if kind == "answerable" else []}
        candidates = _candidates(answerer, q["question"])
        _label(record, candidates, paragraphs.get(q["context_id"]) if kind == "answerable" else None)
        record["candidates"] = candidates
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def build(output: Path, settings: Settings, limit: int | None = None,
          articles: int | None = None) -> Path:
    """Write every question of the pool with its candidates to `output` (JSON lines);
    `limit` questions and `articles` articles per split make a quick check."""
    questions = read_jsonl(QUESTIONS)
    paragraphs = {c["context_id"]: normalize_text(c["text"]) for c in read_jsonl(CONTEXTS)}
    # The candidates are what the rule scorer ranks (the reader's input), never the reader's own.
    settings = dataclasses.replace(settings, answer=dataclasses.replace(settings.answer, reader="off"))
    train_titles, dev_titles = split_titles(questions)
    if articles:
        train_titles, dev_titles = train_titles[:articles], dev_titles[:articles]
    rng = random.Random(DATA_SEED)
    m = settings.model
    ingest_encoder = MemoEncoder(lambda: get_encoder(m.ingest_backend, m.max_seq_length), m.model_name)
    query_encoder = get_encoder(m.query_backend, m.max_seq_length)
    vectors = SentenceVectors(lambda texts: query_encoder.encode(texts))
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".partial")
    with (tempfile.TemporaryDirectory(prefix="qabot-reader-") as tmp,
          partial.open("w", encoding="utf-8") as out):

        def answerer_for(titles: Sequence[str], name: str) -> Answerer:
            log.info("indexing %d articles (%s)", len(titles), name)
            index = build_index(load_contexts(CONTEXTS, titles), settings, Path(tmp) / name, ingest_encoder)
            answerer = Answerer(index, query_encoder, settings, sentence_vectors=vectors)
            answerer.warm()
            return answerer

        for split, titles in (("train", train_titles), ("dev", dev_titles)):
            mine = [q for q in questions if q["title"] in set(titles)]
            if limit:
                mine = rng.sample(mine, min(limit, len(mine)))
            answerer = answerer_for(titles, f"{split}-all")
            for kind, chosen in (("answerable", [q for q in mine if not q["is_impossible"]]),
                                 ("unanswerable", [q for q in mine if q["is_impossible"]])):
                _ask_all(answerer, chosen, kind, split, paragraphs, out, f"{split} {kind}")
            halves = (titles[0::2], titles[1::2])
            for name, inside, outside in (("A", halves[0], halves[1]), ("B", halves[1], halves[0])):
                asked = [q for q in mine if q["title"] in set(outside) and not q["is_impossible"]]
                asked = rng.sample(asked, min(len(asked), limit or OUT_OF_INDEX_PER_HALF))
                _ask_all(answerer_for(inside, f"{split}-{name}"), asked, "out_of_index", split,
                         paragraphs, out, f"{split} out-of-index {name}")
    partial.replace(output)
    return output


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--limit", type=int, default=None, help="questions per split (a quick check)")
    parser.add_argument("--articles", type=int, default=None, help="articles per split (a quick check)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    path = build(args.output, load_settings(), args.limit, args.articles)
    log.info("wrote %s", path)


if __name__ == "__main__":
    main()
