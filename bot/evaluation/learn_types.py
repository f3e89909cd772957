"""Learn the answer-type table (bot/answering/answer_types.json) from ../shared/train.

For every answerable training question, the gold answer is found in its paragraph and matched
to the entity en_core_web_sm finds there (same words, or most of them); its label, or NONE when
no entity matches, is counted under each of the question's keys (answer_type.type_keys).
Keys seen fewer than MIN_SUPPORT times are dropped: the run-time lookup falls back to a less
specific key. Never run on ../shared/eval.

    .venv/bin/python -m bot.evaluation.learn_types [--train ../shared/train]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

from embeddings.entities import ENTITY_MODEL, tag_texts

from ..answering.answer_type import NONE, TABLE_FILE, type_keys
from .metrics import f1_score, normalize_answer

# A key needs this many training questions to enter the table (fewer: its shares are noise).
MIN_SUPPORT = 8
# An entity matches a gold answer whose token F1 with it reaches this (SQuAD's spans often add or
# drop a word: "the European Commission" / "European Commission" are equal once normalised).
MATCH_F1 = 0.6
CREDIT = ("Learned from SQuAD v1.1/2.0 development questions (Rajpurkar et al., 2016, 2018; "
          "CC BY-SA 4.0; passages from Wikipedia) with entity labels by en_core_web_sm "
          "(Explosion, MIT). Built by `python -m bot.evaluation.learn_types`.")


def gold_label(text: str, entities: list[tuple[int, int, str]], gold: str) -> str:
    """The label of the entity that is the gold answer (at its first occurrence), or NONE."""
    at = text.find(gold)
    if at < 0:
        return NONE
    end = at + len(gold)
    best, label = 0.0, NONE
    for a, b, name in entities:
        if b <= at or a >= end:
            continue
        score = 1.0 if normalize_answer(text[a:b]) == normalize_answer(gold) else f1_score(text[a:b], [gold])
        if score > best:
            best, label = score, name
    return label if best >= MATCH_F1 else NONE


def learn(train: Path) -> dict:
    contexts = {}
    with (train / "squad-pool.contexts.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            raw = json.loads(line)
            contexts[raw["context_id"]] = raw["text"]
    ids = list(contexts)
    entities = dict(zip(ids, tag_texts([contexts[i] for i in ids])))
    counts: dict[str, Counter] = defaultdict(Counter)
    with (train / "squad-pool.questions.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            q = json.loads(line)
            if q.get("is_impossible") or not q["answers"]:
                continue
            text = contexts[q["context_id"]]
            label = gold_label(text, entities[q["context_id"]], q["answers"][0])
            for key in type_keys(q["question"]):
                counts[key][label] += 1
    keys = {}
    for key, counter in sorted(counts.items()):
        total = sum(counter.values())
        if total >= MIN_SUPPORT:
            keys[key] = {"n": total, "shares": {label: round(n / total, 3) for label, n in counter.most_common()
                                                if n / total >= 0.05}}
    return {"credit": CREDIT, "entities": ENTITY_MODEL, "min_support": MIN_SUPPORT, "keys": keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=Path, default=Path("../shared/train"))
    parser.add_argument("--out", type=Path, default=TABLE_FILE)
    args = parser.parse_args()
    table = learn(args.train)
    args.out.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(table['keys'])} keys -> {args.out}")


if __name__ == "__main__":
    main()
