"""Choose the gap groups' similarity cut (`bot.report.groups.SIMILARITY`) on ../shared/train.

Paraphrase sets: within one training paragraph, questions that share a gold answer span ask for
the same thing; questions are joined when any of their answers match (normalised as SQuAD does).
The other answerable questions of the same article — same subject, same names, another thing
asked — are the hard negatives a gaps report must keep apart.

The cut is chosen on pairs: how well it tells a paraphrase pair from a same-article pair asking
something else, both kinds weighted alike (balanced accuracy: SQuAD holds a thousand same-article
pairs per paraphrase pair, a gap stream nothing like it). The curve is flat near its top, so the
rule is the one-standard-error rule: the lowest cut whose balanced accuracy is within one
standard error of the best (the error of the paraphrase share, from ~1,000 pairs; the other
share, from a million, adds nothing). Lowest, because the two mistakes do not cost the same in a
gaps report: a gap split in two shows smaller than it is and sinks in the ranking, while two
questions on one subject merged show in the group's examples. A second table shows what
the clustering then does, one episode per article built as the acceptance test is (its
paraphrase sets and as many same-article distractors, interleaved): a set is *grouped* when at
least 80% of it falls in one group that is mostly (over half) its own.

    .venv/bin/python -m bot.evaluation.tune_report [--train ../shared/train]
"""

from __future__ import annotations

import argparse
import json
from itertools import combinations
from pathlib import Path

import numpy as np

from embeddings.encoders import get_encoder

from ..report.groups import group_by_meaning
from ..settings import load_settings
from .metrics import normalize_answer


def paraphrase_sets(questions: list[dict]) -> dict[str, list[tuple[str, int]]]:
    """Article → its answerable questions with a set label (questions sharing an answer in one
    paragraph share the label)."""
    by_article: dict[str, list[tuple[str, int]]] = {}
    label_of: dict[tuple[str, str], int] = {}
    for q in questions:
        if q.get("is_impossible") or not q.get("answers"):
            continue
        keys = [(q["context_id"], normalize_answer(a)) for a in q["answers"]]
        label = next((label_of[k] for k in keys if k in label_of), len(label_of))
        for k in keys:
            label_of.setdefault(k, label)
        by_article.setdefault(q["title"], []).append((q["question"], label))
    return by_article


TOGETHER = 0.8  # of a set in one group
PURE = 0.5  # of that group from the set


def episode(items: list[tuple[str, int]], seed: int) -> tuple[list[int], list[int]]:
    """An article's paraphrase sets and as many distractors: (row indices, their set labels, -1
    for a distractor), shuffled."""
    sizes: dict[int, int] = {}
    for _, label in items:
        sizes[label] = sizes.get(label, 0) + 1
    members = [i for i, (_, label) in enumerate(items) if sizes[label] >= 2]
    rng = np.random.default_rng(seed)
    others = [i for i, (_, label) in enumerate(items) if sizes[label] == 1]
    chosen = members + [int(i) for i in rng.permutation(others)[:len(members)]]
    rows = [chosen[i] for i in rng.permutation(len(chosen))]
    return rows, [items[r][1] if sizes[items[r][1]] >= 2 else -1 for r in rows]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=Path("../shared/train"))
    args = parser.parse_args()
    lines = (args.train / "squad-pool.questions.jsonl").read_text(encoding="utf-8").splitlines()
    articles = paraphrase_sets([json.loads(line) for line in lines if line.strip()])
    settings = load_settings()
    encoder = get_encoder(settings.model.query_backend, settings.model.max_seq_length)
    unit = {title: _unit(encoder.encode([q for q, _ in items])) for title, items in articles.items()}
    same: list[float] = []
    other: list[float] = []
    for title, items in articles.items():
        sims = unit[title] @ unit[title].T
        for i, j in combinations(range(len(items)), 2):
            (same if items[i][1] == items[j][1] else other).append(sims[i, j])
    paraphrase, negative = np.array(same), np.array(other)
    print(f"{len(articles)} articles: {len(paraphrase)} paraphrase pairs, {len(negative)} same-article other pairs")
    cuts = np.round(np.arange(0.40, 0.905, 0.02), 2)
    episodes = {title: episode(items, seed) for seed, (title, items) in enumerate(sorted(articles.items()))}
    print("similarity  paraphrases kept  others apart  balanced  |  sets grouped  together  not swamped")
    table = []
    for cut in cuts:
        kept, apart = float((paraphrase >= cut).mean()), float((negative < cut).mean())
        totals = np.zeros(4, dtype=int)
        for title, (rows, labels) in episodes.items():
            groups = [list(g.members) for g in group_by_meaning(unit[title][rows], similarity=float(cut))]
            totals += np.array(set_scores(labels, groups))
        sets, grouped, together, pure = totals
        table.append((float(cut), (kept + apart) / 2, kept))
        print(f"{cut:10.2f}  {kept:16.3f}  {apart:12.3f}  {(kept + apart) / 2:8.3f}  |  {grouped / sets:12.3f}  "
              f"{together / sets:8.3f}  {pure / sets:11.3f}")
    _, top, kept_at_top = max(table, key=lambda r: r[1])
    error = 0.5 * float(np.sqrt(kept_at_top * (1 - kept_at_top) / len(paraphrase)))
    chosen = min(cut for cut, balanced, _ in table if balanced >= top - error)
    print(f"best balanced accuracy {top:.3f} ± {error:.4f} (one standard error); "
          f"chosen: SIMILARITY = {chosen:.2f}, the lowest cut within it")


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


if __name__ == "__main__":
    main()
