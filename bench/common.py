"""What every benchmark section shares: paths, sizes, the questions about the bundled article,
timing and percentile helpers, the machine description and the results writer."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings.jsonl import read_json_lines

ROOT = Path(__file__).resolve().parent.parent

EVAL = ROOT.parent / "shared" / "eval"
CONTEXTS = EVAL / "squad-dev10.contexts.jsonl"
QUESTIONS = EVAL / "squad-dev10.questions.jsonl"
ARTICLES = ROOT / "data" / "articles"
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent

# Questions about the bundled article (data/articles/ryabkov-2022-01-06.txt).
ARTICLE_QUESTIONS = [
    "When are the Geneva talks?",
    "What deadline did Ryabkov give?",
    "Which newspaper interviewed him?",
    "When did Moscow deliver the draft agreements?",
    "Who will head the Russian delegation?",
    "What did Putin say about the result?",
    "Which news agency reported Ryabkov's remarks?",
    "Does the success of the strategic stability dialogue depend on the guarantees?",
    "What did Ryabkov hope the tough U.S. stance was?",
    "What does Russia want to see within a few weeks?",
]


@dataclass(frozen=True)
class Sizes:
    ingest_titles: int | None  # SQuAD articles ingested (None: all 10)
    questions: int  # SQuAD questions for the warm-query run
    article_rounds: int  # passes over ARTICLE_QUESTIONS
    cold_runs: int  # runs of each command (after one untimed run)
    torch_import: bool  # also time `import torch, sentence_transformers` (what the query path avoids)
    slack_events: int
    scale: tuple[int, ...]  # synthetic index sizes
    scale_base: int | None  # real texts embedded for the synthetic vectors (None: all)
    scale_queries: int
    flat_queries: int  # queries timed on the exact index, for reference
    warm_up: bool  # time Answerer.warm() (every sentence embedded) on the SQuAD index
    langchain_rounds: int = 2  # rounds of qabot ingest vs LangChain's pipeline, alternating first side
    langchain_titles: int | None = None  # SQuAD articles in that comparison (None: all 10)


FULL = Sizes(None, 500, 20, 5, True, 200, (100_000, 1_000_000), None, 200, 50, True)
QUICK = Sizes(3, 100, 5, 2, False, 50, (60_000,), 500, 100, 20, False, 1, 1)


# --- timing -----------------------------------------------------------------------------------------

def pct(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


def ms(seconds_list) -> dict:
    return {"p50_ms": round(pct(seconds_list, 50) * 1e3, 2), "p95_ms": round(pct(seconds_list, 95) * 1e3, 2),
            "n": len(seconds_list)}


def load_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return list(read_json_lines(handle, str(path)))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- machine ----------------------------------------------------------------------------------------

def machine_info() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 ** 2, 1)
    except OSError:
        pass
    versions = {}
    for name in ("numpy", "faiss-cpu", "onnxruntime", "torch", "sentence-transformers", "bm25s", "tokenizers"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:
            versions[name] = None
    blas = []
    try:
        from threadpoolctl import threadpool_info

        blas = [{k: i.get(k) for k in ("internal_api", "architecture", "num_threads")} for i in threadpool_info()]
    except Exception:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem_gb, "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions, "blas": blas,
            "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")},
            "load_average_start": [round(x, 2) for x in os.getloadavg()]}


# --- results ----------------------------------------------------------------------------------------

def write_results(results: dict, markdown: str, out: Path, quick: bool) -> None:
    """bench-<time>.json, latest.json and latest.md (latest-quick.* for QUICK) in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    payload = json.dumps(results, indent=1, default=str)
    (out / f"bench-{stamp}{'-quick' if quick else ''}.json").write_text(payload)
    (out / ("latest-quick.json" if quick else "latest.json")).write_text(payload)
    (out / ("latest-quick.md" if quick else "latest.md")).write_text(markdown + "\n")
    log(f"wrote {out}/latest{'-quick' if quick else ''}.json and .md")
