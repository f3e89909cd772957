"""The seeded split of the training pool by article (title), shared by data building,
training and calibration.

Questions of one article share names and phrasing, so the split is by article, never by
question. ``../shared/eval`` is never touched here: it is validation only.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

# The shared training pool (28 SQuAD articles, see ../shared/train/README.md), next to the checkout.
TRAIN_DIR = Path(os.environ.get("QABOT_TRAIN_DIR")
                 or Path(__file__).resolve().parents[3] / "shared" / "train")
CONTEXTS = TRAIN_DIR / "squad-pool.contexts.jsonl"
QUESTIONS = TRAIN_DIR / "squad-pool.questions.jsonl"

SPLIT_SEED = 20261129  # the one seed of the split; changing it changes the held-out articles
DEV_WITH_UNANSWERABLE = 4  # held-out articles that SQuAD 2.0 covers (they bring unanswerables)
DEV_WITHOUT_UNANSWERABLE = 2  # held-out articles without SQuAD 2.0 questions


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def split_titles(questions: list[dict]) -> tuple[list[str], list[str]]:
    """(train titles, held-out dev titles): 6 dev articles, 4 of them with unanswerable
    questions, chosen by a seeded shuffle of the sorted titles. Deterministic."""
    titles = sorted({q["title"] for q in questions})
    with_unanswerable = sorted({q["title"] for q in questions if q.get("is_impossible")})
    without = [t for t in titles if t not in with_unanswerable]
    rng = random.Random(SPLIT_SEED)
    rng.shuffle(with_unanswerable)
    rng.shuffle(without)
    dev = set(with_unanswerable[:DEV_WITH_UNANSWERABLE] + without[:DEV_WITHOUT_UNANSWERABLE])
    return [t for t in titles if t not in dev], sorted(dev)
