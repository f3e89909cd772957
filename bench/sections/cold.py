"""3. cold: `qabot ask` as a new process vs `python -c "import sys"` and the ML imports alone, on the
bundled article and on the SQuAD index, and the first ask of a machine (no optimised model cached);
the phases of a cold ask and the first answer of a process against its warm answers
(bench/cold_phases.py, run as a new process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from bench.common import ARTICLE_QUESTIONS, BIN, ROOT, Sizes, pct
from bench.fixtures import ensure_article_index, ensure_squad_index


# Runs argv[2:] as a grandchild and writes its wall time and peak RSS to argv[1]. The extra level
# matters: Linux carries a process's memory high-water mark across fork and exec, so a child forked
# straight from this benchmark (torch loaded, ~1 GB) would report the benchmark's own memory.
_LAUNCHER = """
import json, os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as handle:
    json.dump({"wall": time.perf_counter() - started, "maxrss_kb": usage.ru_maxrss,
               "code": os.waitstatus_to_exitcode(status)}, handle)
"""


def run_child(cmd: list[str], env: dict) -> tuple[float, float, int, str]:
    """(wall seconds, peak RSS MiB, exit code, stdout) of `cmd` run as a new process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(suffix=".json") as report:
        subprocess.run([sys.executable, "-c", _LAUNCHER, report.name, *cmd], stdout=out, stderr=err, env=env,
                       cwd=ROOT, check=True)
        measured = json.loads(Path(report.name).read_text())
        out.seek(0)
        err.seek(0)
        text = out.read().decode("utf-8", "replace")
        if measured["code"] != 0:
            text += err.read().decode("utf-8", "replace")
    return measured["wall"], measured["maxrss_kb"] / 1024, measured["code"], text


def bench_cold(ctx: dict, sizes: Sizes) -> dict:
    index_dir = ensure_article_index(ctx)
    squad_dir = ensure_squad_index(ctx, sizes)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_")}
    env.update(HF_HUB_OFFLINE="1", QABOT_INDEX=str(index_dir))
    python = sys.executable
    commands = {
        "python": [python, "-c", "import sys"],
        # What the question path imports (bm25s and scipy are not in it any more: keyword.py).
        "ml_imports": [python, "-c", "import numpy, onnxruntime, tokenizers, faiss"],
        "qabot_ask": [str(BIN / "qabot"), "ask", "When are the Geneva talks?"],
        "qabot_ask_squad": [str(BIN / "qabot"), "ask", "--index", str(squad_dir), "When did the 1973 oil crisis begin?"],
        "phases": [python, str(ROOT / "bench" / "cold_phases.py"), str(index_dir), *ARTICLE_QUESTIONS],
        # The first `qabot ask` of a machine: no optimised model cached yet (embeddings/onnx_session.py),
        # so it builds the session from the packaged model and saves the copy (a new cache each run).
        "qabot_ask_uncached": [str(BIN / "qabot"), "ask", "When are the Geneva talks?"],
    }
    if sizes.torch_import:
        commands["torch_import"] = [python, "-c", "import torch, sentence_transformers"]
    samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
    phase_runs: list[dict] = []
    for name, cmd in commands.items():  # one untimed run each: disk cache warm, process cold
        wall, rss, code, out = _run(name, cmd, env)
        if code != 0:
            raise RuntimeError(f"{name} failed ({code}): {out[-500:]}")
    for run in range(sizes.cold_runs):
        names = list(commands) if run % 2 == 0 else list(reversed(commands))  # alternate the order
        for name in names:
            wall, rss, code, out = _run(name, commands[name], env)
            if code != 0:
                raise RuntimeError(f"{name} failed ({code}): {out[-500:]}")
            if name == "qabot_ask" and not out.strip():
                raise RuntimeError("qabot ask printed nothing")
            samples[name].append((wall, rss))
            if name == "qabot_ask":
                answer = out.strip().splitlines()[0][:200]
            if name == "phases":
                phase_runs.append(json.loads(out))
    result = {name: {"wall_s_p50": round(pct([w for w, _ in s], 50), 3),
                     "wall_s_max": round(max(w for w, _ in s), 3),
                     "peak_rss_mib": round(max(r for _, r in s), 1)} for name, s in samples.items()}
    ask, stack, base = (result[k]["wall_s_p50"] for k in ("qabot_ask", "ml_imports", "python"))
    result["ratio_vs_python"] = round(ask / base, 1)
    result["ratio_vs_ml_imports"] = round(ask / stack, 2)
    result["runs"] = sizes.cold_runs
    result["answer"] = answer  # the first printed line, to see that it answered
    result.update(_phases(phase_runs, result["python"]["wall_s_p50"]))
    return result


def _run(name: str, cmd: list[str], env: dict) -> tuple[float, float, int, str]:
    """`run_child`; the uncached ask gets a new, empty model cache folder each time."""
    if name != "qabot_ask_uncached":
        return run_child(cmd, env)
    with tempfile.TemporaryDirectory(prefix="qabot-bench-cache-") as cache:
        return run_child(cmd, {**env, "XDG_CACHE_HOME": cache})


def _phases(runs: list[dict], python_s: float) -> dict:
    """Median of each phase over the runs, its share of a cold ask (interpreter start included),
    and the first answer of a process against the same process's warm p50."""
    names = list(runs[0]["phases_ms"])
    phases = {"python_start": round(python_s * 1000, 1),
              **{n: round(pct([r["phases_ms"][n] for r in runs], 50), 1) for n in names}}
    total = sum(phases.values())
    first = pct([r["first_answer"]["total_ms"] for r in runs], 50)
    warm = pct([r["warm_p50_ms"]["total_ms"] for r in runs], 50)
    return {"phases_ms": phases, "phase_share": {n: round(v / total, 3) for n, v in phases.items()},
            # the encoder's build on its own thread, which the phases from settings to encoder_wait overlap
            "encoder_build_ms": round(pct([r["encoder_build_ms"] for r in runs], 50), 1),
            "first_answer": {"first_ms": round(first, 2), "warm_p50_ms": round(warm, 2),
                             "ratio": round(first / warm, 2),
                             "first_stages_ms": {k: round(pct([r["first_answer"][k] for r in runs], 50), 2)
                                                 for k in runs[0]["first_answer"]},
                             "warm_stages_ms": {k: round(pct([r["warm_p50_ms"][k] for r in runs], 50), 2)
                                                for k in runs[0]["warm_p50_ms"]}}}
