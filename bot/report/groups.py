"""The gap questions grouped by meaning: average-linkage clustering on cosine similarity, in a
question space where what all questions share is taken out first.

Every all-MiniLM-L6-v2 question vector carries a large common part — being a question at all —
that makes unrelated questions look alike and leaves less of the cosine to what is asked. So,
before comparing, each stored (unit) vector has a fixed reference mean removed (the mean of a
large generic set of questions, estimated once: ../shared/train's 9,901 SQuAD questions), and is
scaled back to unit length (`QuestionSpace`, shipped as question_space.json). The reference is
fixed, not the report's own mean: a report of five questions, all on one gap, would otherwise be
centred on that gap and fall apart. The recorder keeps the raw vectors; the space is applied
here, when the report is made, so stores kept before it still group.

Two questions share a group when, merging groups bottom-up, the mean similarity between their
groups stays at or above the space's cut (scipy's ``linkage(method="average")``, cut at distance
``1 - similarity``). Average linkage neither chains unrelated questions through a run of
neighbours (as single linkage does) nor splits a wide paraphrase set (as complete linkage does).

The reference and the cut were chosen on ../shared/train by `bot.evaluation.tune_report`:
questions of one paragraph that share a gold answer ask for the same thing (paraphrases); the
other questions of the same article, on the same subject in the same words, are the hard
negatives. The cut is the lowest within one standard error of the best balanced accuracy
(docs/report.md, "How the groups are made", has the figures and says why the lowest).

Clustering is quadratic, so at most `MAX_CLUSTERED` questions are clustered at once, newest
first; older ones join the group whose centroid they are at least the cut close to, and those
left over are clustered in the next round.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

SPACE_FILE = Path(__file__).with_name("question_space.json")
MAX_CLUSTERED = 3000
EXAMPLES = 3


@dataclass(frozen=True)
class QuestionSpace:
    """Where gap questions are compared: unit vectors less a fixed reference `mean` and less their
    parts along `directions` (rows; none when the tuning kept none), back to unit length; and the
    average-linkage `similarity` cut that suits it."""

    mean: np.ndarray
    directions: np.ndarray
    similarity: float

    def apply(self, units: np.ndarray) -> np.ndarray:
        moved = units - self.mean
        if len(self.directions):
            moved = moved - (moved @ self.directions.T) @ self.directions
        return unit_vectors(moved)

    @classmethod
    def from_json(cls, raw: Mapping) -> "QuestionSpace":
        mean = np.asarray(raw["mean"], dtype=np.float32)
        directions = np.asarray(raw["directions"], dtype=np.float32).reshape(-1, len(mean))
        return cls(mean, directions, float(raw["similarity"]))


@lru_cache(maxsize=1)
def shipped_space() -> QuestionSpace:
    """The space `bot.evaluation.tune_report` chose and wrote to question_space.json."""
    return QuestionSpace.from_json(json.loads(SPACE_FILE.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Group:
    """Questions that ask for one missing thing: `members` index the questions given, newest first."""

    members: tuple[int, ...]
    central: int  # the member closest to the group's centroid: its name

    @property
    def size(self) -> int:
        return len(self.members)


def unit_vectors(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (a zero row stays zero)."""
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


def group_by_meaning(vectors: Sequence[np.ndarray] | np.ndarray, similarity: float | None = None,
                     max_clustered: int = MAX_CLUSTERED, space: QuestionSpace | None = None) -> list[Group]:
    """Groups of the questions whose raw `vectors` (as the recorder keeps them) are given newest
    first, largest group first (then the one with the newest question). `space` (the shipped one
    by default) is where they are compared, `similarity` the cut (the space's by default)."""
    if len(vectors) == 0:
        return []
    space = space or shipped_space()
    similarity = space.similarity if similarity is None else similarity
    unit = space.apply(unit_vectors(np.asarray(vectors, dtype=np.float32)))
    pending = np.arange(len(unit))
    clusters: list[list[int]] = []
    while len(pending):
        batch, pending = pending[:max_clustered], pending[max_clustered:]
        found = [[int(batch[i]) for i in members] for members in _cluster(unit[batch], similarity)]
        clusters += found
        if len(pending):
            centroids = unit_vectors(np.stack([unit[c].mean(axis=0) for c in clusters]))
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


def wording(question: str) -> str:
    """What tells two wordings of a question apart: case and spacing aside."""
    return " ".join(question.casefold().split())


def examples(questions: Sequence[str], group: Group, count: int = EXAMPLES) -> list[str]:
    """The group's `count` newest questions, each wording once."""
    seen: set[str] = set()
    shown: list[str] = []
    for member in group.members:
        key = wording(questions[member])
        if key not in seen:
            seen.add(key)
            shown.append(questions[member])
        if len(shown) == count:
            break
    return shown
