"""Learn the span scorer's weights and lead threshold on ../shared/train (never on ../shared/eval).

Every answerable training question is asked once (as bot/evaluation/tune_lead.py does: the same
index, the same records); the sentence the answer would quote is cut into candidate spans
(bot/answering/spans.py), each labelled by SQuAD exact match with a gold answer. A conditional
logistic regression (a softmax over each sentence's candidates, L2, L-BFGS) ranks them. The
calibration and threshold come from cross-fitting by article: the ranker fitted on half the
articles scores the other half; a logistic regression of "the top span is a gold answer" on its
confidence signals is fitted to those held-out predictions, and the threshold is the lowest
calibrated probability at which the held-out leads keep an exact match of at least TARGET_EM.
The final ranker is fitted on every article and written with the calibration and threshold to
bot/answering/span_weights.json.

    .venv/bin/python -m bot.evaluation.learn_spans [--train ../shared/train] [--work DIR]
"""

from __future__ import annotations

import argparse
from collections import Counter
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import optimize, sparse

from ..answering.answer_type import answer_type
from ..answering.lead import quoted_sentence, sentence_entities
from ..answering.span_scorer import WEIGHTS_FILE, SentenceFacts, calibrated, confidence_signals
from ..answering.spans import candidates
from .metrics import exact_match, f1_score
from .tune_lead import Record, load_records, train_answerer

# The exact match the leads must keep on held-out training articles: issue 18's 0.60 (the folds
# are articles the weights were not fitted on, as new articles are).
TARGET_EM = 0.60
L2 = 1.0  # the penalty on the squared weights (5.0 gave the same held-out curve within 0.5 point)
FOLDS = 2
MIN_COUNT = 5  # a feature is learned when at least this many training sentences have it
MIN_WEIGHT = 0.01  # smaller weights are not shipped (they move no ranking measurably)


@dataclass
class Example:
    """One answered question: its candidates' features and labels, and the gold answers."""

    title: str
    rows: list[list[tuple[str, float]]]
    labels: list[float]
    texts: list[str]
    answers: list[str]
    sentence: SentenceFacts


def examples(recs: list[Record], titles: list[str]) -> list[Example]:
    """The candidates of the sentence each answered question's answer quotes."""
    out = []
    for rec, title in zip(recs, titles):
        if not rec.answers or not rec.base_answer or rec.trace.best is None:
            continue
        kind = answer_type(rec.question)
        best, untyped = quoted_sentence(rec.question, kind, rec.trace.sentences)
        if untyped is not None or best is None:
            continue
        found = candidates(rec.question, kind, best.text, sentence_entities(best) or ())
        texts = [best.text[c.start:c.end] for c in found]
        out.append(Example(title, [list(c.features) for c in found],
                           [exact_match(t, rec.answers) for t in texts], texts, rec.answers,
                           SentenceFacts(best.score, kind.share if kind is not None else 0.0,
                                         tuple(c.label in (kind.labels if kind else ()) for c in found))))
    return out


def design(rows: list[list[tuple[str, float]]], vocab: dict[str, int]) -> sparse.csr_matrix:
    data, cols, ptr = [], [], [0]
    for row in rows:
        for name, value in row:
            k = vocab.get(name)
            if k is not None and value:
                cols.append(k)
                data.append(value)
        ptr.append(len(cols))
    return sparse.csr_matrix((data, cols, ptr), shape=(len(rows), len(vocab)))


def fit(train: list[Example]) -> dict[str, float]:
    """Ranker weights over every feature seen in `train`: a conditional logistic regression
    (softmax over each sentence's candidates; the likelihood of its gold candidates), fitted on
    the sentences holding at least one gold candidate."""
    groups = [e for e in train if any(e.labels)]
    rows = [r for e in groups for r in e.rows]
    seen = Counter(n for e in groups for n in {n for r in e.rows for n, _ in r})
    vocab = {name: i for i, name in enumerate(sorted(n for n, c in seen.items() if c >= MIN_COUNT))}
    x = design(rows, vocab)
    y = np.array([lab for e in groups for lab in e.labels], dtype=bool)
    starts = np.cumsum([0] + [len(e.rows) for e in groups])[:-1]
    group_of = np.repeat(np.arange(len(groups)), [len(e.rows) for e in groups])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w
        top = np.maximum.reduceat(z, starts)
        ez = np.exp(z - top[group_of])
        total = np.add.reduceat(ez, starts)
        gold = np.add.reduceat(np.where(y, ez, 0.0), starts)
        nll = float(np.sum(np.log(total) - np.log(gold)))
        grad_z = ez / total[group_of] - np.where(y, ez, 0.0) / gold[group_of]
        return nll + 0.5 * L2 * float(w @ w), x.T @ grad_z + L2 * w

    w = optimize.minimize(loss, np.zeros(len(vocab)), jac=True, method="L-BFGS-B",
                          options={"maxiter": 300}).x
    return {name: float(w[i]) for name, i in vocab.items()}


def fit_calibration(points: list[tuple[tuple[float, ...], float]]) -> list[float]:
    """The weights of a logistic regression of "the top span is a gold answer" on its
    confidence signals (span_scorer.confidence_signals), from held-out predictions."""
    x = np.array([p for p, _ in points])
    y = np.array([lab for _, lab in points])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w
        p = 1.0 / (1.0 + np.exp(-z))
        return float(np.sum(np.logaddexp(0.0, z) - y * z)) + 0.5 * float(w[1:] @ w[1:]), \
            x.T @ (p - y) + np.concatenate([[0.0], w[1:]])

    return [float(v) for v in optimize.minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B").x]


def predict(weights: dict[str, float], e: Example) -> tuple[tuple[float, ...], str | None]:
    """The best candidate's confidence signals and text ((), None without candidates)."""
    if not e.rows:
        return (), None
    z = [sum(weights.get(n, 0.0) * v for n, v in r) for r in e.rows]
    k = int(np.argmax(z))
    return confidence_signals(z, k, e.sentence), e.texts[k]


def curve(scored: list[tuple[float, str | None, Example]]) -> list[dict]:
    """Lead rate / exact match / F1 at each threshold (leads with probability >= it)."""
    out = []
    for t in np.arange(0.05, 0.95, 0.025):
        leads = [(text, e) for p, text, e in scored if text is not None and p >= t]
        em = sum(exact_match(text, e.answers) for text, e in leads) / max(len(leads), 1)
        f1 = sum(f1_score(text, e.answers) for text, e in leads) / max(len(leads), 1)
        out.append({"threshold": round(float(t), 3), "lead_rate": round(len(leads) / max(len(scored), 1), 4),
                    "em": round(em, 4), "f1": round(f1, 4)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=Path, default=Path("../shared/train"))
    parser.add_argument("--work", type=Path, default=None, help="keep the training index and records here")
    parser.add_argument("--out", type=Path, default=WEIGHTS_FILE)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qabot-spans-") as tmp:
        work = args.work or Path(tmp)
        answerer = train_answerer(args.train, work / "index")
        recs = load_records(answerer, args.train, None, work)
    with (args.train / "squad-pool.questions.jsonl").open(encoding="utf-8") as handle:
        titles = [json.loads(line)["title"] for line in handle]
    data = examples(recs, titles)
    articles = sorted({e.title for e in data})
    held_out: list[tuple[tuple[float, ...], str | None, Example]] = []
    for fold in range(FOLDS):
        held = {a for i, a in enumerate(articles) if i % FOLDS == fold}
        weights = fit([e for e in data if e.title not in held])
        held_out += [(*predict(weights, e), e) for e in data if e.title in held]
    calibration = fit_calibration([(signals, exact_match(text, e.answers))
                                   for signals, text, e in held_out if text is not None])
    scored = [(calibrated(calibration, signals) if text is not None else 0.0, text, e)
              for signals, text, e in held_out]
    points = curve(scored)
    for point in points:
        print(json.dumps(point))
    reachable = sum(any(e.labels) for e in data) / max(len(data), 1)
    threshold = min((p["threshold"] for p in points if p["em"] >= TARGET_EM and p["lead_rate"] > 0), default=0.95)
    weights = fit(data)
    kept = {n: round(w, 3) for n, w in sorted(weights.items()) if abs(w) >= MIN_WEIGHT}
    args.out.write_text(json.dumps({
        "credit": "Learned from SQuAD v1.1/2.0 questions (Rajpurkar et al., 2016, 2018; CC BY-SA 4.0) "
                  "over Wikipedia text, ../shared/train only, by bot/evaluation/learn_spans.py",
        "threshold": threshold, "target_em": TARGET_EM, "calibration": [round(c, 4) for c in calibration],
        "trained_on": {"questions": len(data), "articles": len(articles), "gold_among_candidates": round(reachable, 4)},
        "weights": kept}, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(json.dumps({"threshold": threshold, "features": len(kept), "questions": len(data),
                      "gold_among_candidates": round(reachable, 4)}))


if __name__ == "__main__":
    main()
