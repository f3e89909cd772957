"""Choose the gap groups' question space and similarity cut on ../shared/train; write them to
bot/report/question_space.json (`bot.report.groups.QuestionSpace`).

Paraphrase sets: within one training paragraph, questions that share a gold answer span ask for
the same thing; questions are joined when any of their answers match (normalised as SQuAD does).
The other answerable questions of the same article — same subject, same names, another thing
asked — are the hard negatives a gaps report must keep apart.

A cut is judged on pairs: how well it tells a paraphrase pair from a same-article pair asking
something else, both kinds weighted alike (balanced accuracy: SQuAD holds a thousand same-article
pairs per paraphrase pair, a gap stream nothing like it). The curve is flat near its top, so the
rule is the one-standard-error rule: the lowest cut whose balanced accuracy is within one
standard error of the best (the error of the paraphrase share; the other share, from a million
pairs, adds nothing). Lowest, because the two mistakes do not cost the same in a gaps report: a
gap split in two shows smaller than it is and sinks in the ranking, while two questions on one
subject merged show in the group's examples.

The spaces compared: raw cosine; the reference mean of all questions removed; and that with the
top 1-3 principal directions of the questions removed too ("all-but-the-top", Mu & Viswanath,
2018). Each is judged by article-wise cross-validation (four folds of articles: reference and cut
fitted on three, measured on the fourth), so a space that only fits these articles' topics does
not win. Measured: the pairs' balanced accuracy at the cut, and what the acceptance rule asks of
the groups: the share of paraphrase sets *grouped* — at least 80% of the set in one group that is
mostly (over half) its own — in one report per fold holding every held-out article's paraphrase
sets and as many same-article distractors, interleaved. The space with the most sets grouped is
chosen (balanced accuracy alone cannot see a cut that merges whole groups) and refitted on every
article; a last table shows its cuts.

    .venv/bin/python -m bot.evaluation.tune_report [--train ../shared/train] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from embeddings.encoders import get_encoder

from ..report.groups import SPACE_FILE, QuestionSpace, group_by_meaning, unit_vectors
from ..settings import load_settings
from .metrics import normalize_answer

TOGETHER = 0.8  # of a set in one group
PURE = 0.5  # of that group from the set
FOLDS = 4
CUTS = np.round(np.arange(0.20, 0.805, 0.01), 2)
CREDIT = ("Estimated from the 9,901 questions of ../shared/train: SQuAD v1.1 and 2.0 (Rajpurkar et "
          "al., 2016, 2018; CC BY-SA 4.0) about Wikipedia articles (CC BY-SA 4.0). "
          "Rebuild: python -m bot.evaluation.tune_report")


def paraphrase_sets(questions: list[dict]) -> dict[str, list[tuple[int, int]]]:
    """Article → its answerable questions as (index in `questions`, set label); questions sharing
    an answer in one paragraph share the label."""
    by_article: dict[str, list[tuple[int, int]]] = {}
    label_of: dict[tuple[str, str], int] = {}
    for index, q in enumerate(questions):
        if q.get("is_impossible") or not q.get("answers"):
            continue
        keys = [(q["context_id"], normalize_answer(a)) for a in q["answers"]]
        label = next((label_of[k] for k in keys if k in label_of), len(label_of))
        for k in keys:
            label_of.setdefault(k, label)
        by_article.setdefault(q["title"], []).append((index, label))
    return by_article


def episode(items: list[tuple[int, int]], seed: int) -> tuple[list[int], list[int]]:
    """An article's paraphrase sets and as many distractors: (question indices, their set labels,
    -1 for a distractor), shuffled."""
    sizes: dict[int, int] = {}
    for _, label in items:
        sizes[label] = sizes.get(label, 0) + 1
    members = [i for i, (_, label) in enumerate(items) if sizes[label] >= 2]
    rng = np.random.default_rng(seed)
    others = [i for i, (_, label) in enumerate(items) if sizes[label] == 1]
    chosen = members + [int(i) for i in rng.permutation(others)[:len(members)]]
    rows = [chosen[i] for i in rng.permutation(len(chosen))]
    return [items[r][0] for r in rows], [items[r][1] if sizes[items[r][1]] >= 2 else -1 for r in rows]


def set_scores(labels: list[int], groups: list[list[int]]) -> tuple[int, int, int, int]:
    """(sets, grouped, kept together, not swamped) for one clustered episode."""
    group_of = {m: g for g, members in enumerate(groups) for m in members}
    sets = sorted({label for label in labels if label >= 0})
    grouped = together = pure = 0
    for label in sets:
        placed = [group_of[i] for i, x in enumerate(labels) if x == label]
        main = max(set(placed), key=placed.count)
        is_together = placed.count(main) / len(placed) >= TOGETHER
        is_pure = placed.count(main) / len(groups[main]) > PURE
        together, pure, grouped = together + is_together, pure + is_pure, grouped + (is_together and is_pure)
    return len(sets), grouped, together, pure


def fit_space(unit: np.ndarray, directions: int | None, similarity: float = 0.0) -> QuestionSpace:
    """The reference space of these questions: their mean and top `directions` principal
    directions removed (None: raw cosine, nothing removed)."""
    if directions is None:
        return QuestionSpace(np.zeros(unit.shape[1], np.float32), np.zeros((0, unit.shape[1]), np.float32), similarity)
    mean = unit.mean(axis=0)
    top = np.linalg.svd(unit - mean, full_matrices=False)[2][:directions] if directions else np.zeros((0, len(mean)))
    return QuestionSpace(mean.astype(np.float32), top.astype(np.float32), similarity)


def pair_similarities(unit: np.ndarray, articles: dict[str, list[tuple[int, int]]], titles: list[str],
                      space: QuestionSpace) -> tuple[np.ndarray, np.ndarray]:
    """(paraphrase pairs', other same-article pairs') similarities in `space`."""
    same, other = [], []
    for title in titles:
        rows, labels = np.array([i for i, _ in articles[title]]), np.array([x for _, x in articles[title]])
        moved = space.apply(unit[rows])
        upper = np.triu_indices(len(rows), 1)
        sims, equal = (moved @ moved.T)[upper], labels[upper[0]] == labels[upper[1]]
        same.append(sims[equal])
        other.append(sims[~equal])
    return np.concatenate(same), np.concatenate(other)


def balanced(paraphrase: np.ndarray, negative: np.ndarray, cut: float) -> float:
    return float(((paraphrase >= cut).mean() + (negative < cut).mean()) / 2)


def choose_cut(paraphrase: np.ndarray, negative: np.ndarray) -> tuple[float, float, float]:
    """(the lowest cut within one standard error of the best balanced accuracy, the best, the error)."""
    scores = [balanced(paraphrase, negative, float(cut)) for cut in CUTS]
    best = int(np.argmax(scores))
    kept = float((paraphrase >= CUTS[best]).mean())
    error = 0.5 * float(np.sqrt(kept * (1 - kept) / len(paraphrase)))
    chosen = min(float(cut) for cut, score in zip(CUTS, scores) if score >= scores[best] - error)
    return chosen, scores[best], error


def grouped_share(unit: np.ndarray, episodes: dict[str, tuple[list[int], list[int]]], titles: list[str],
                  space: QuestionSpace, cut: float) -> np.ndarray:
    """(sets, grouped, together, not swamped) over the episodes of `titles`."""
    totals = np.zeros(4, dtype=int)
    for title in titles:
        rows, labels = episodes[title]
        groups = [list(g.members) for g in group_by_meaning(unit[rows], similarity=cut, space=space)]
        totals += np.array(set_scores(labels, groups))
    return totals


def mixed(episodes: dict[str, tuple[list[int], list[int]]], titles: list[str], seed: int) -> dict[str, tuple[list[int], list[int]]]:
    """One report over several subjects: the episodes of `titles` together, interleaved (set
    labels are unique across articles)."""
    rows = [r for t in titles for r in episodes[t][0]]
    labels = [x for t in titles for x in episodes[t][1]]
    order = np.random.default_rng(seed).permutation(len(rows))
    return {"mixed": ([rows[i] for i in order], [labels[i] for i in order])}


def cross_validate(unit: np.ndarray, articles: dict[str, list[tuple[int, int]]], title_of: np.ndarray,
                   episodes: dict[str, tuple[list[int], list[int]]], directions: int | None) -> tuple[list[float], ...]:
    """Per fold: (cut chosen on the other folds, held-out balanced accuracy, held-out grouped share
    per article, and in one report of all held-out articles)."""
    names = sorted(articles)
    cuts, scores, grouped, grouped_mixed = [], [], [], []
    for fold in range(FOLDS):
        held_out = names[fold::FOLDS]
        fitted_on = [t for t in names if t not in held_out]
        space = fit_space(unit[np.isin(title_of, fitted_on)], directions)
        cut = choose_cut(*pair_similarities(unit, articles, fitted_on, space))[0]
        totals = grouped_share(unit, episodes, held_out, space, cut)
        cuts.append(cut)
        scores.append(balanced(*pair_similarities(unit, articles, held_out, space), cut))
        grouped.append(totals[1] / totals[0])
        totals = grouped_share(unit, mixed(episodes, held_out, fold), ["mixed"], space, cut)
        grouped_mixed.append(totals[1] / totals[0])
    return cuts, scores, grouped, grouped_mixed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=Path("../shared/train"))
    parser.add_argument("--dry-run", action="store_true", help="print the tables, write nothing")
    args = parser.parse_args()
    lines = (args.train / "squad-pool.questions.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line) for line in lines if line.strip()]
    articles = paraphrase_sets(questions)
    title_of = np.array([q["title"] for q in questions])
    settings = load_settings()
    encoder = get_encoder(settings.model.query_backend, settings.model.max_seq_length)
    unit = unit_vectors(encoder.encode([q["question"] for q in questions]))
    episodes = {title: episode(items, seed) for seed, (title, items) in enumerate(sorted(articles.items()))}
    paraphrase, negative = pair_similarities(unit, articles, sorted(articles), fit_space(unit, None))
    print(f"{len(questions)} questions, {len(articles)} articles: {len(paraphrase)} paraphrase pairs, "
          f"{len(negative)} same-article other pairs; {FOLDS} folds of articles")
    print("space                      cuts chosen (per fold)    held-out balanced (± s.e.)  sets grouped: per article, in one report")
    candidates: dict[str, int | None] = {"raw cosine": None, "reference mean": 0,
                                         **{f"mean + top {d} direction{'s' * (d > 1)}": d for d in (1, 2, 3)}}
    results = {}
    for name, directions in candidates.items():
        cuts, scores, grouped, grouped_mixed = cross_validate(unit, articles, title_of, episodes, directions)
        results[name] = float(np.mean(grouped_mixed))
        print(f"{name:26s} {' '.join(f'{c:.2f}' for c in cuts):26s} {np.mean(scores):8.3f} ± "
              f"{np.std(scores, ddof=1) / np.sqrt(FOLDS):.3f}        {np.mean(grouped):8.3f}  {np.mean(grouped_mixed):8.3f}"
              f"  ({' '.join(f'{g:.3f}' for g in grouped_mixed)})")
    winner = max(results, key=lambda name: results[name])
    space = fit_space(unit, candidates[winner])
    paraphrase, negative = pair_similarities(unit, articles, sorted(articles), space)
    cut, top, error = choose_cut(paraphrase, negative)
    print(f"\n{winner}, refitted on all {len(articles)} articles:")
    print("similarity  paraphrases kept  others apart  balanced  |  sets grouped  together  not swamped")
    for shown in np.round(np.arange(cut - 0.10, cut + 0.105, 0.02), 2):
        sets, grouped_sets, together, pure = grouped_share(unit, episodes, sorted(articles), space, float(shown))
        kept, apart = float((paraphrase >= shown).mean()), float((negative < shown).mean())
        print(f"{shown:10.2f}  {kept:16.3f}  {apart:12.3f}  {(kept + apart) / 2:8.3f}  |  {grouped_sets / sets:12.3f}  "
              f"{together / sets:8.3f}  {pure / sets:11.3f}")
    print(f"best balanced accuracy {top:.3f} ± {error:.4f} (one standard error); chosen: {winner}, "
          f"similarity {cut:.2f}, the lowest cut within it")
    if not args.dry_run:
        SPACE_FILE.write_text(json.dumps({
            "credit": CREDIT, "space": winner, "similarity": cut,
            "mean": [round(float(x), 6) for x in space.mean],
            "directions": [[round(float(x), 6) for x in row] for row in space.directions]}, indent=1) + "\n",
            encoding="utf-8")
        print(f"wrote {SPACE_FILE}")


if __name__ == "__main__":
    main()
