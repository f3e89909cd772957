"""The gap questions grouped by meaning: average-linkage clustering on cosine similarity.

Two questions share a group when, merging groups bottom-up, the mean similarity between their
groups stays at or above `SIMILARITY` (scipy's ``linkage(method="average")``, cut at distance
``1 - SIMILARITY``). Average linkage neither chains unrelated questions through a run of
neighbours (as single linkage does) nor splits a wide paraphrase set (as complete linkage does).

`SIMILARITY` was chosen on ``../shared/train`` by `bot.evaluation.tune_report`: questions of one
paragraph that share a gold answer ask for the same thing (paraphrases); the other questions of
the same article, on the same subject in the same words, are the hard negatives. 0.54 is the
lowest cut within one standard error of the best balanced accuracy (0.831 there, 0.833 at best:
82% of paraphrase pairs at or above it, 84% of the others below; docs/report.md, "How the groups
are made", says why the lowest).

Clustering is quadratic, so at most `MAX_CLUSTERED` questions are clustered at once, newest
first; older ones join the group whose centroid they are at least `SIMILARITY` close to, and
those left over are clustered in the next round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

SIMILARITY = 0.54
MAX_CLUSTERED = 3000
EXAMPLES = 3


@dataclass(frozen=True)
class Group:
    """Questions that ask for one missing thing: `members` index the questions given, newest first."""

    members: tuple[int, ...]
    central: int  # the member closest to the group's centroid: its name

    @property
    def size(self) -> int:
        return len(self.members)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _cluster(vectors: np.ndarray, similarity: float) -> list[list[int]]:
    """Average-linkage clusters of unit `vectors` (row indices)."""
    if len(vectors) == 1:
        return [[0]]
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    distances = np.clip(1.0 - vectors @ vectors.T, 0.0, 2.0).astype(np.float64)
    np.fill_diagonal(distances, 0.0)
    tree = linkage(squareform(distances, checks=False), method="average")
    labels = fcluster(tree, t=1.0 - similarity, criterion="distance")
    clusters: dict[int, list[int]] = {}
    for row, label in enumerate(labels):
        clusters.setdefault(int(label), []).append(row)
    return list(clusters.values())


def group_by_meaning(vectors: Sequence[np.ndarray] | np.ndarray, similarity: float = SIMILARITY,
                     max_clustered: int = MAX_CLUSTERED) -> list[Group]:
    """Groups of the questions whose `vectors` are given newest first, largest group first (then
    the one with the newest question)."""
    if len(vectors) == 0:
        return []
    unit = _unit(np.asarray(vectors, dtype=np.float32))
    pending = np.arange(len(unit))
    clusters: list[list[int]] = []
    while len(pending):
        batch, pending = pending[:max_clustered], pending[max_clustered:]
        found = [[int(batch[i]) for i in members] for members in _cluster(unit[batch], similarity)]
        clusters += found
        if len(pending):
            centroids = _unit(np.stack([unit[c].mean(axis=0) for c in clusters]))
            best = unit[pending] @ centroids.T
            nearest = best.argmax(axis=1)
            joins = best[np.arange(len(pending)), nearest] >= similarity
            for row, cluster in zip(pending[joins], nearest[joins]):
                clusters[int(cluster)].append(int(row))
            pending = pending[~joins]
    groups = []
    for members in clusters:
        ordered = sorted(members)
        centroid = unit[ordered].mean(axis=0)
        central = ordered[int(np.argmax(unit[ordered] @ centroid))]
        groups.append(Group(tuple(ordered), central))
    return sorted(groups, key=lambda g: (-g.size, g.members[0]))


def examples(questions: Sequence[str], group: Group, count: int = EXAMPLES) -> list[str]:
    """The group's `count` newest questions, each wording once."""
    seen: set[str] = set()
    shown: list[str] = []
    for member in group.members:
        key = " ".join(questions[member].casefold().split())
        if key not in seen:
            seen.add(key)
            shown.append(questions[member])
        if len(shown) == count:
            break
    return shown
