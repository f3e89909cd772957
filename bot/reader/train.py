"""Train the reader on the cached candidates (`bot.reader.data`), seeded, with progress output.

Each epoch samples, per question, the pairs that teach the product's decisions:
- answerable: every positive among the top READ_CANDIDATES, the HARD_NEGATIVES best-ranked
  negatives (what the sentence scorer wrongly puts near the top) and RANDOM_NEGATIVES others;
- unanswerable and out-of-index: the best-ranked candidates (the ones that would be quoted).
Loss: binary cross-entropy on the score head + cross-entropy on the span start/end (positives
only, over the sentence's tokens). Early stopping / model choice on the held-out articles.

Run: ``python -m bot.reader.train`` (defaults = the shipped model; see `make train-reader`).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from . import evaluate
from .data import DEFAULT_OUTPUT as CANDIDATES
from .features import Candidate, encode, load_tokenizer, span_tokens
from .model import ReaderModel, base_model_path

log = logging.getLogger(__name__)

SEED = 13
HARD_NEGATIVES = 3  # answerable: top-ranked negatives per question
RANDOM_NEGATIVES = 1  # answerable: one more negative from the rest of the top READ_CANDIDATES
DECLINE_NEGATIVES = 2  # unanswerable / out-of-index: their top candidates
BATCH_SIZE = 32
LEARNING_RATE = 1e-4  # encoder; 5e-5 learnt the ranking too slowly for a CPU budget (held-out runs)
HEAD_LEARNING_RATE = 1e-3  # the new heads start from nothing: a short CPU run needs them faster
WARMUP = 0.06
SPAN_WEIGHT = 0.3  # span loss relative to the score loss (0.5 slowed the ranking in short runs)
# The first share of the steps sees answerable questions only: with the "none" questions mixed in
# from the start the model first learns to score everything low and ranks no better than chance
# after hundreds of steps; ranking first, then calibrating against "none", learns both.
ANSWERABLE_FIRST = 0.45
LISTWISE = True  # listwise (per question + "none") loss; False: per-pair BCE (design comparison)
THREADS = 2  # this machine has 2 cores
# Frozen embeddings (12M of the 22M weights stay as the base model learnt them) make a step
# ~2x cheaper here (measured: ~5 -> ~15 pairs/s on one busy core). bf16 autocast gave the same
# held-out accuracy as fp32 in a 40-step check; the CPU has AVX512-BF16.
FREEZE_EMBEDDINGS = True
AUTOCAST = torch.bfloat16
EPOCHS = 1.8  # in all-kinds-epoch units (~1,100 steps each); ~35 min here with 3 layers
LAYERS = 3  # transformer layers kept of MiniLM's 6 (the design comparison picks this)
DEV_QUESTIONS = 400  # held-out questions read at each evaluation (seeded sample; all take ~15 min)
EVAL_EVERY = 500  # steps between held-out evaluations (the best one is kept)
DEFAULT_CHECKPOINT = Path("build/reader/reader.pt")


def load_records(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def sample_groups(records: Sequence[dict], rng: random.Random) -> list[list[tuple[str, dict]]]:
    """Per question, its (question, candidate record) pairs for one epoch (see the module
    docstring), questions in random order."""
    groups = []
    n = evaluate.READ_CANDIDATES
    for r in records:
        top = r["candidates"][:n]
        if r["kind"] == "answerable":
            positives = [c for c in top if c["label"] == 1]
            negatives = [c for c in top if c["label"] == 0]
            chosen = positives + negatives[:HARD_NEGATIVES]
            rest = negatives[HARD_NEGATIVES:]
            chosen += rng.sample(rest, min(RANDOM_NEGATIVES, len(rest)))
        else:
            chosen = top[:DECLINE_NEGATIVES]
        if chosen:
            groups.append([(r["question"], c) for c in chosen])
    rng.shuffle(groups)
    return groups


def sample_pairs(records: Sequence[dict], rng: random.Random) -> list[tuple[str, dict]]:
    """The pairs of `sample_groups`, flat."""
    return [pair for group in sample_groups(records, rng) for pair in group]


def make_batch(tokenizer, pairs: Sequence[tuple[str, dict]], context: bool) -> dict[str, torch.Tensor]:
    """Tensors for a mixed batch (one row per pair, each question encoded with its candidate)."""
    parts = [encode(tokenizer, q, [Candidate(c["text"], c["before"], c["title"])], context=context)
             for q, c in pairs]
    width = max(p.input_ids.shape[1] for p in parts)

    def stack(name: str, dtype) -> torch.Tensor:
        out = np.zeros((len(parts), width), dtype=dtype)
        for i, p in enumerate(parts):
            row = getattr(p, name)[0]
            out[i, :len(row)] = row
        return torch.from_numpy(out)

    starts, ends = [], []
    for p, (_, c) in zip(parts, pairs):
        tokens = span_tokens(p.offsets[0], *c["span"]) if c["label"] == 1 and c["span"] else None
        starts.append(p.first[0] + tokens[0] if tokens else -100)
        ends.append(p.first[0] + tokens[1] if tokens else -100)
    return {"input_ids": stack("input_ids", np.int64), "attention_mask": stack("attention_mask", np.int64),
            "token_type_ids": stack("token_type_ids", np.int64),
            "sentence_mask": stack("sentence_mask", bool),
            "labels": torch.tensor([float(c["label"] == 1) for _, c in pairs]),
            "starts": torch.tensor(starts), "ends": torch.tensor(ends),
            "question": torch.tensor(question_ids(pairs))}


def question_ids(pairs: Sequence[tuple[str, dict]]) -> list[int]:
    """0, 0, 0, 1, 1, ...: which question each (consecutive) pair belongs to."""
    ids, previous = [], None
    for question, _ in pairs:
        if question != previous:
            ids.append((ids[-1] + 1) if ids else 0)
        else:
            ids.append(ids[-1])
        previous = question
    return ids


def batches(groups: Sequence[list], rng: random.Random) -> list[list]:
    """Batches of whole questions (the listwise loss compares a question's candidates) of about
    BATCH_SIZE pairs, questions of similar length together (less padding), in random order."""
    ordered = sorted(groups, key=lambda g: max(len(q) + len(c["text"]) + len(c["before"]) for q, c in g))
    out, current = [], []
    for group in ordered:
        if current and len(current) + len(group) > BATCH_SIZE:
            out.append(current)
            current = []
        current += group
    if current:
        out.append(current)
    rng.shuffle(out)
    return out


def loss_of(model: ReaderModel, batch: dict[str, torch.Tensor], listwise: bool = LISTWISE) -> torch.Tensor:
    with torch.autocast("cpu", dtype=AUTOCAST):
        outputs = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    score, start, end = (x.float() for x in outputs)
    if listwise:
        # Per question: softmax over its candidates and a "none of these" logit fixed at 0; the
        # target is its positives (summed), or "none" for unanswerable / out-of-index questions.
        # sigmoid(score) is then P(this sentence rather than none), the runtime's Reading.score.
        losses = []
        for q in batch["question"].unique():
            rows = batch["question"] == q
            logits = torch.cat([score.new_zeros(1), score[rows]])
            positive = torch.cat([score.new_ones(1) * (batch["labels"][rows].sum() == 0),
                                  batch["labels"][rows]]).bool()
            losses.append(torch.logsumexp(logits, 0) - torch.logsumexp(logits[positive], 0))
        loss = torch.stack(losses).mean()
    else:
        loss = torch.nn.functional.binary_cross_entropy_with_logits(score, batch["labels"])
    if (batch["starts"] >= 0).any():
        masked = ~batch["sentence_mask"]
        start = start.masked_fill(masked, -1e4)
        end = end.masked_fill(masked, -1e4)
        span = (torch.nn.functional.cross_entropy(start, batch["starts"], ignore_index=-100)
                + torch.nn.functional.cross_entropy(end, batch["ends"], ignore_index=-100)) / 2
        loss = loss + SPAN_WEIGHT * span
    return loss


def torch_reader(model: ReaderModel, tokenizer, context: bool):
    """`read(question, candidates)` on the torch model, for held-out metrics while training."""
    from .runtime import readings_from

    def read(question: str, candidates: Sequence[Candidate]):
        batch = encode(tokenizer, question, candidates, context=context)
        with torch.inference_mode(), torch.autocast("cpu", dtype=AUTOCAST):
            outputs = model(*(torch.from_numpy(x) for x in batch.inputs().values()))
        score, start, end = (x.float().numpy() for x in outputs)
        return readings_from(batch, score, start, end)

    return read


def train(records: Sequence[dict], *, epochs: float, context: bool, output: Path,
          max_questions: int | None = None, dev_questions: int | None = None,
          seed: int = SEED, threads: int = THREADS,
          layers: int = LAYERS, eval_every: int | None = None, listwise: bool = LISTWISE) -> dict:
    """Fine-tune, evaluate on the held-out articles after each epoch (and every `eval_every`
    steps), keep the best checkpoint
    (by top-sentence accuracy + unanswerable AUC + out-of-index AUC); returns its metrics."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = random.Random(seed)
    tokenizer = load_tokenizer(base_model_path())
    train_records = [r for r in records if r["split"] == "train"]
    dev_records = [r for r in records if r["split"] == "dev"]
    if max_questions:
        train_records = rng.sample(train_records, min(max_questions, len(train_records)))
    if dev_questions:
        dev_records = random.Random(seed).sample(dev_records, min(dev_questions, len(dev_records)))
    model = ReaderModel(layers=layers)
    if FREEZE_EMBEDDINGS:
        model.encoder.embeddings.requires_grad_(False)
    heads = list(model.score.parameters()) + list(model.span.parameters())
    body = [p for p in model.encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": body, "lr": LEARNING_RATE},
                                   {"params": heads, "lr": HEAD_LEARNING_RATE}], weight_decay=0.01)
    per_epoch = len(batches(sample_groups(train_records, random.Random(seed)), random.Random(seed)))
    total = max(1, int(per_epoch * epochs))
    warmup = int(WARMUP * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / max(warmup, 1), max(0.0, (total - s) / max(total - warmup, 1))))
    log.info("training on %d questions (%d steps of %d), held-out %d questions, context=%s, "
             "layers=%d", len(train_records), total, BATCH_SIZE, len(dev_records), context, layers)
    best, best_key, step, started = {}, -math.inf, 0, time.perf_counter()
    epoch = 0
    first_steps = int(ANSWERABLE_FIRST * total)
    answerable = [r for r in train_records if r["kind"] == "answerable"]
    while step < total:
        epoch += 1
        model.train()
        phase_one = step < first_steps
        groups = batches(sample_groups(answerable if phase_one else train_records, rng), rng)
        groups = groups[: (first_steps if phase_one else total) - step]
        bar = tqdm(groups, desc=f"epoch {epoch}{' (answerable only)' if phase_one else ''}", unit="batch",
                   file=sys.stderr, mininterval=10.0)
        running = 0.0
        for i, group in enumerate(bar, 1):
            loss = loss_of(model, make_batch(tokenizer, group, context), listwise)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            running += loss.item()
            if i % 20 == 0:
                bar.set_postfix(loss=f"{running / 20:.3f}")
                running = 0.0
            if (eval_every and step % eval_every == 0) or step == total or i == len(groups):
                model.eval()
                read = torch_reader(model, tokenizer, context)
                metrics = evaluate.summarize(evaluate.run(read, dev_records))
                metrics.update(epoch=epoch, steps=step, train_seconds=round(time.perf_counter() - started))
                log.info("held-out after %d steps: %s", step, json.dumps(metrics))
                key = (metrics["top_sentence_accuracy"] + metrics["auc_answerable_vs_unanswerable"]
                       + metrics["auc_answerable_vs_out_of_index"])
                if key > best_key:
                    best_key, best = key, metrics
                    output.parent.mkdir(parents=True, exist_ok=True)
                    torch.save({"state": model.state_dict(), "context": context, "layers": layers,
                                "listwise": listwise, "metrics": metrics}, output)
                model.train()
    return best


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=Path, default=CANDIDATES)
    parser.add_argument("--output", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--epochs", type=float, default=EPOCHS)
    parser.add_argument("--no-context", action="store_true", help="sentence-only input (design B)")
    parser.add_argument("--max-questions", type=int, default=None, help="train on a seeded subset")
    parser.add_argument("--dev-questions", type=int, default=DEV_QUESTIONS,
                        help="evaluate on a seeded subset")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--pairwise", action="store_true", help="per-pair BCE instead of listwise")
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--layers", type=int, default=LAYERS, help="transformer layers kept (of 6)")
    parser.add_argument("--eval-every", type=int, default=EVAL_EVERY, help="also evaluate/save every N steps")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    metrics = train(load_records(args.candidates), epochs=args.epochs, context=not args.no_context,
                    output=args.output, max_questions=args.max_questions,
                    dev_questions=args.dev_questions, seed=args.seed,
                    threads=args.threads, layers=args.layers,
                    eval_every=args.eval_every, listwise=not args.pairwise)
    args.output.with_suffix(".metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log.info("best held-out metrics: %s", json.dumps(metrics))


if __name__ == "__main__":
    main()
