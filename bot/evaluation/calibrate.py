"""Calibrate how the reader is used, on held-out TRAIN articles: the rule weight in its ranking
(`RULE_WEIGHT`: the best top-sentence accuracy) and when its highlight is shown first (the span
probability from which the spans are an exact gold answer at least `SPAN_PRECISION` of the time).

Reads the held-out ("dev") answerable questions of the reader's training data (built by
``python -m bot.reader.data`` from ``../shared/train``; the articles of `bot.reader.split`), never
``../shared/eval``, with the shipped model, exactly as the product does (the scorer's top
`read_candidates` sentences, the best-scored one answered when it reaches the threshold). Prints
the numbers to put in reader.json (``rule_weight``, ``span_threshold``) or in
`bot.answering.reading` (`RULE_WEIGHT`, `SPAN_THRESHOLD`).

    python -m bot.evaluation.calibrate [--candidates build/reader/candidates.jsonl] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Sequence

from ..answering.focus import find_focus
from ..answering.reading import RULE_WEIGHTS, SPAN_PRECISION, ReaderConfig
from .metrics import contains_answer, exact_match, f1_score

log = logging.getLogger(__name__)

DEFAULT_CANDIDATES = Path("build/reader/candidates.jsonl")


def span_threshold(points: Sequence[tuple[float, float]], precision: float = SPAN_PRECISION) -> float:
    """The lowest span probability t such that the spans scoring >= t have a mean exact match of
    at least `precision` (`points` = (span probability, exact match 0/1)); 1.0 when none does."""
    best = 1.0
    hits = 0.0
    for n, (score, em) in enumerate(sorted(points, key=lambda p: -p[0]), 1):
        hits += em
        if hits / n >= precision:
            best = score
    return best


def read_all(records: Sequence[dict], config: ReaderConfig) -> list[tuple[dict, list, list]]:
    """(record, candidates, readings) for every record, read as `ReaderScorer` reads."""
    from bot.reader.features import Candidate
    from bot.reader.runtime import Reader

    reader = Reader.load(config.directory)
    out = []
    for record in records:
        candidates = [Candidate(c["text"], c.get("before", ""), c.get("title", ""))
                      for c in record["candidates"][: config.read_candidates]]
        if candidates:
            out.append((record, candidates, reader.read(record["question"], candidates)))
    return out


def ranked_best(record: dict, readings: Sequence, weight: float) -> int:
    """The candidate `ReaderScorer` puts first with this rule weight."""
    return max(range(len(readings)),
               key=lambda i: (readings[i].score + weight * record["candidates"][i]["scorer"], -i))


def rule_weight_accuracy(read: Sequence[tuple[dict, list, list]]) -> dict[float, float]:
    """Top-sentence accuracy (the first-ranked sentence holds a gold answer) per rule weight."""
    return {w: round(sum(contains_answer(c[ranked_best(r, rd, w)].text, r["answers"]) for r, c, rd in read)
                     / max(len(read), 1), 4) for w in RULE_WEIGHTS}


def held_out_points(read: Sequence[tuple[dict, list, list]], config: ReaderConfig, weight: float) -> list[dict]:
    """For every held-out answerable question the reader answers: the first-ranked sentence's
    span score, the span and whether it matches a gold answer (and the rules' span)."""
    rows = []
    for record, candidates, readings in read:
        best = ranked_best(record, readings, weight)
        reading = readings[best]
        if max(r.score for r in readings) < config.threshold or reading.span is None:
            continue
        a, b = reading.span
        text = candidates[best].text
        span = text[a:b].strip(" ,;:")
        focus = find_focus(record["question"], text)  # what the rules would highlight instead
        rule = text[focus[0]:focus[1]] if focus else ""
        rows.append({"span_score": reading.span_score, "span": span,
                     "em": exact_match(span, record["answers"]), "f1": f1_score(span, record["answers"]),
                     "rule_em": exact_match(rule, record["answers"]) if rule else 0.0, "rule_found": bool(rule)})
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=Path, default=DEFAULT_CANDIDATES)
    parser.add_argument("--model", type=Path, default=None, help="reader model directory (default: the shipped one)")
    parser.add_argument("--limit", type=int, default=None,
                        help="at most this many questions, spread evenly over the held-out articles")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = ReaderConfig.load(args.model)
    with args.candidates.open(encoding="utf-8") as handle:
        records = [r for r in map(json.loads, handle)
                   if r.get("split") == "dev" and r.get("kind") == "answerable" and r.get("answers")]
    if args.limit and len(records) > args.limit:
        step = len(records) / args.limit
        records = [records[int(i * step)] for i in range(args.limit)]
    read = read_all(records, config)
    accuracy = rule_weight_accuracy(read)
    weight = max(accuracy, key=lambda w: (accuracy[w], -w))
    rows = held_out_points(read, config, weight)
    threshold = span_threshold([(r["span_score"], r["em"]) for r in rows])
    shown = [r for r in rows if r["span_score"] >= threshold]
    print(json.dumps({
        "rule_weight": weight, "top_sentence_accuracy_by_rule_weight": accuracy,
        "span_threshold": round(threshold, 4), "precision_target": SPAN_PRECISION,
        "held_out_questions": len(records), "answered": len(rows),
        "shown_first": len(shown),
        "shown_first_em": round(sum(r["em"] for r in shown) / max(len(shown), 1), 4),
        "shown_first_f1": round(sum(r["f1"] for r in shown) / max(len(shown), 1), 4),
        "all_answered_em": round(sum(r["em"] for r in rows) / max(len(rows), 1), 4),
        # Below the threshold: is the reader's unsure span still better than the rules' span?
        "below_reader_em": round(sum(r["em"] for r in rows if r not in shown) / max(len(rows) - len(shown), 1), 4),
        "below_rules_em": round(sum(r["rule_em"] for r in rows if r not in shown) / max(len(rows) - len(shown), 1), 4),
        # ... where the rules do find a span of the question's type:
        "below_typed": sum(1 for r in rows if r not in shown and r["rule_found"]),
        "below_typed_reader_em": round(sum(r["em"] for r in rows if r not in shown and r["rule_found"])
                                       / max(sum(1 for r in rows if r not in shown and r["rule_found"]), 1), 4),
        "below_typed_rules_em": round(sum(r["rule_em"] for r in rows if r not in shown and r["rule_found"])
                                      / max(sum(1 for r in rows if r not in shown and r["rule_found"]), 1), 4),
    }, indent=2))


if __name__ == "__main__":
    main()
