"""Export the trained reader to ONNX, quantize it to int8, check int8 against fp32, calibrate the
decline threshold on the held-out TRAIN articles and write bot/reader/model/ (model, tokenizer,
reader.json with the threshold and the held-out metrics).

Run: ``python -m bot.reader.export`` (after `bot.reader.train`; see `make train-reader`).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import statistics
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from . import evaluate
from .data import DEFAULT_OUTPUT as CANDIDATES
from .features import Candidate
from .model import INPUT_NAMES, ReaderModel, base_model_path
from .runtime import CONFIG_FILE, MODEL_DIR, MODEL_FILE, Reader
from .split import SPLIT_SEED, split_titles, read_jsonl, QUESTIONS
from .train import DEFAULT_CHECKPOINT, SEED, load_records

log = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
OPSET = 17
# Per-channel int8 weights: closer to fp32 than per-tensor on this model (reader.json int8_vs_fp32).
PER_CHANNEL = True
LATENCY_RUNS = 40  # repeated reads of one question's candidates for the latency figure
AGREEMENT_QUESTIONS = 150  # held-out questions compared between fp32 and int8
# Held-out questions read for the final metrics and the threshold (seeded sample of the 3,296:
# reading all takes ~25 min on this shared machine; 1,500 keep ~640 answerable for calibration).
METRIC_QUESTIONS = 1500


def export_onnx(checkpoint: Path, path: Path) -> dict:
    """The fp32 ONNX graph of the checkpoint (dynamic batch and length); returns its metadata."""
    import torch

    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = ReaderModel(layers=saved.get("layers"))
    model.load_state_dict(saved["state"])
    model.eval()
    dummy = torch.ones((2, 16), dtype=torch.int64)
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUT_NAMES}
    axes.update({"score": {0: "batch"}, "start_logits": {0: "batch", 1: "tokens"},
                 "end_logits": {0: "batch", 1: "tokens"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (dummy, dummy, torch.zeros_like(dummy)), str(path),
                      input_names=list(INPUT_NAMES), output_names=["score", "start_logits", "end_logits"],
                      dynamic_axes=axes,
                      opset_version=OPSET, dynamo=False)
    return {"context": saved["context"], "layers": saved.get("layers"), "train_metrics": saved["metrics"]}


def quantize(source: Path, target: Path) -> None:
    """Dynamic int8 quantization of the weights (activations quantized at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=PER_CHANNEL)


def write_directory(directory: Path, model_file: Path, context: bool) -> None:
    """Model + tokenizer files + a provisional reader.json (threshold filled in by calibrate)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_file, directory / MODEL_FILE)
    for name in TOKENIZER_FILES:
        shutil.copyfile(base_model_path() / name, directory / name)
    (directory / CONFIG_FILE).write_text(json.dumps({"model": MODEL_FILE, "threshold": 0.5,
                                                     "context": context}, indent=2) + "\n")


def agreement(fp32: Reader, int8: Reader, records: Sequence[dict]) -> dict:
    """How far int8 drifts from fp32: score differences, same top candidate, same span."""
    diffs, same_top, same_span = [], [], []
    for r in records:
        candidates = evaluate.candidates_of(r)
        if not candidates:
            continue
        a, b = fp32.read(r["question"], candidates), int8.read(r["question"], candidates)
        diffs += [abs(x.score - y.score) for x, y in zip(a, b)]
        ta, tb = int(np.argmax([x.score for x in a])), int(np.argmax([x.score for x in b]))
        same_top.append(ta == tb)
        same_span.append(ta == tb and a[ta].span == b[tb].span)
    return {"questions": len(same_top), "mean_abs_score_diff": round(float(np.mean(diffs)), 4),
            "max_abs_score_diff": round(float(np.max(diffs)), 4),
            "same_top_candidate": round(float(np.mean(same_top)), 4),
            "same_top_span": round(float(np.mean(same_span)), 4)}


def latency(reader: Reader, record: dict, n: int) -> dict:
    """Median and p95 ms to read `n` candidates of one question (one batch)."""
    candidates = evaluate.candidates_of(record, n)
    reader.read(record["question"], candidates)
    times = []
    for _ in range(LATENCY_RUNS):
        started = time.perf_counter()
        reader.read(record["question"], candidates)
        times.append((time.perf_counter() - started) * 1000)
    return {"candidates": len(candidates), "ms_p50": round(statistics.median(times), 2),
            "ms_p95": round(float(np.percentile(times, 95)), 2)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--candidates", type=Path, default=CANDIDATES)
    parser.add_argument("--work", type=Path, default=Path("build/reader/export"))
    parser.add_argument("--output", type=Path, default=MODEL_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    fp32_file, int8_file = args.work / "reader-fp32.onnx", args.work / "reader-int8.onnx"
    meta = export_onnx(args.checkpoint, fp32_file)
    quantize(fp32_file, int8_file)
    fp32_dir = args.work / "fp32"
    write_directory(fp32_dir, fp32_file, meta["context"])
    write_directory(args.output, int8_file, meta["context"])
    fp32, int8 = Reader(fp32_dir), Reader(args.output)

    dev = [r for r in load_records(args.candidates) if r["split"] == "dev"]
    check = agreement(fp32, int8, dev[:: max(1, len(dev) // AGREEMENT_QUESTIONS)])
    log.info("int8 vs fp32: %s", json.dumps(check))
    sample = random.Random(SEED).sample(dev, min(METRIC_QUESTIONS, len(dev)))
    rows = evaluate.run(int8.read, sample, desc="held-out (int8)")
    metrics = evaluate.summarize(rows)
    log.info("held-out metrics (int8): %s", json.dumps(metrics))
    answerable = next(r for r in dev if r["kind"] == "answerable" and len(r["candidates"]) >= 16)
    speed = {n: latency(int8, answerable, n) for n in (4, 8, 12)}
    log.info("latency: %s", json.dumps(speed))
    _, dev_titles = split_titles(read_jsonl(QUESTIONS))
    config = {
        "model": MODEL_FILE, "threshold": metrics["threshold"], "context": meta["context"],
        "span_threshold": metrics["span_threshold"],
        "layers": meta["layers"],
        "read_candidates": evaluate.READ_CANDIDATES,
        "decline_rule": "decline when the highest score of the top read_candidates sentences "
                        "(ranked by the sentence scorer) is below threshold",
        "calibrated_on": {
            "what": f"held-out TRAIN articles of ../shared/train (never ../shared/eval): threshold = "
                    f"the score that keeps {evaluate.ANSWER_RATE:.0%} of their in-index answerable "
                    f"questions answered, int8 model, {len(sample)} held-out questions (seeded sample)",
            "articles": dev_titles, "split_seed": SPLIT_SEED, "train_seed": SEED},
        "heldout_metrics": metrics, "int8_vs_fp32": check, "latency_ms": speed,
        "size_mb": round(int8_file.stat().st_size / 2**20, 1),
    }
    (args.output / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    Reader._cache.clear()
    log.info("wrote %s (%s MB)", args.output, config["size_mb"])


if __name__ == "__main__":
    main()
