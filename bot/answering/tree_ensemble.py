"""A gradient-boosted tree ensemble, evaluated with numpy on the request path.

The learned judge is a scikit-learn `HistGradientBoostingClassifier` fitted at train time
(bot/evaluation/train_judge.py); the request path must not import scikit-learn (a 0.3 s import
for one prediction), so the fitted trees are written out as plain node arrays and evaluated here.

A tree sends a sample left when its feature is at most the node's threshold (right when above;
a missing value goes where training sent missing values), as scikit-learn's predictor does, and
the score is the sum of the reached leaves' values plus a baseline. Rather than walking 200 trees
node by node, every leaf is stored with the path that reaches it (each node on the way and the
side taken); a sample's split outcomes are computed for all nodes at once, and the one leaf per
tree whose path agrees with them everywhere is the reached one: a few vectorised operations
(about 75 µs for 200 trees of 15 leaves) instead of ~1,500 Python steps.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class TreeEnsemble:
    """Leaves with their paths: the sum of the reached leaves' values, plus `baseline`, is the
    ensemble's raw score (the log-odds, for a classifier)."""

    baseline: float
    split_feature: np.ndarray  # per split node: the feature's column
    split_value: np.ndarray  # per split node: go left when the feature is <= this
    split_missing_left: np.ndarray  # per split node: where a missing (NaN) value goes
    path_split: np.ndarray  # per path step: the split node's index
    path_left: np.ndarray  # per path step: the path goes left there
    path_start: np.ndarray  # per leaf: where its path steps begin (leaves in order of their paths)
    leaf_value: np.ndarray  # per leaf: its value

    @classmethod
    def from_trees(cls, baseline: float, trees: Sequence[Mapping[str, Sequence]]) -> "TreeEnsemble":
        """From node tables as scikit-learn's predictors hold them, one mapping per tree with
        equal-length lists "feature", "threshold", "left", "right" (child indexes within the tree,
        -1 at a leaf), "value" and "missing_left"; node 0 is the root. A tree with no split adds
        its one value to the baseline."""
        features: list[int] = []
        values: list[float] = []
        missing: list[bool] = []
        path_split: list[int] = []
        path_left: list[bool] = []
        path_start: list[int] = []
        leaf_value: list[float] = []
        for tree in trees:
            left, right = tree["left"], tree["right"]
            if left[0] < 0:
                baseline += float(tree["value"][0])
                continue
            first = len(features)
            splits = {n: first + i for i, n in enumerate(n for n in range(len(left)) if left[n] >= 0)}
            for n in splits:
                features.append(int(tree["feature"][n]))
                values.append(float(tree["threshold"][n]))
                missing.append(bool(tree["missing_left"][n]))
            stack: list[tuple[int, tuple[tuple[int, bool], ...]]] = [(0, ())]
            while stack:
                node, path = stack.pop()
                if left[node] < 0:
                    path_start.append(len(path_split))
                    path_split.extend(s for s, _ in path)
                    path_left.extend(side for _, side in path)
                    leaf_value.append(float(tree["value"][node]))
                    continue
                stack.append((right[node], path + ((splits[node], False),)))
                stack.append((left[node], path + ((splits[node], True),)))
        return cls(float(baseline), np.array(features, dtype=np.intp), np.array(values, dtype=np.float64),
                   np.array(missing, dtype=bool), np.array(path_split, dtype=np.intp),
                   np.array(path_left, dtype=bool), np.array(path_start, dtype=np.intp),
                   np.array(leaf_value, dtype=np.float64))

    def save(self, path: Path, credit: str) -> None:
        """The arrays as an .npz file, with `credit` (where the trees came from, how to rebuild
        them) as a text entry of its own: loading it takes a few milliseconds, where parsing the
        node tables from JSON and walking them took ~25 ms of every process's first answer."""
        arrays: dict[str, Any] = {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)}
        np.savez(path, credit=np.array(credit), **arrays)

    @classmethod
    def load(cls, path: Path) -> "TreeEnsemble":
        with np.load(path, allow_pickle=False) as saved:
            arrays = {f.name: saved[f.name] for f in fields(cls)}
        baseline = float(arrays.pop("baseline"))
        return cls(baseline, **arrays)

    @property
    def n_features(self) -> int:
        return int(self.split_feature.max()) + 1 if len(self.split_feature) else 0

    def score(self, x: np.ndarray) -> float:
        """The raw score of one sample (`x`: its features in column order)."""
        if not len(self.leaf_value):
            return self.baseline
        taken = x[self.split_feature]
        left = np.where(np.isnan(taken), self.split_missing_left, taken <= self.split_value)
        wrong = (left[self.path_split] != self.path_left).view(np.uint8)
        wrong_turns = np.add.reduceat(wrong, self.path_start, dtype=np.intp)
        return self.baseline + float(self.leaf_value[wrong_turns == 0].sum())
