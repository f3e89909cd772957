"""3. cold: `qabot ask` as a new process vs `python -c "import sys"` and the ML imports alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from bench.common import BIN, ROOT, Sizes, pct
from bench.fixtures import ensure_article_index


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
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_")}
    env.update(HF_HUB_OFFLINE="1", QABOT_INDEX=str(index_dir))
    python = sys.executable
    commands = {
        "python": [python, "-c", "import sys"],
        "ml_imports": [python, "-c", "import numpy, onnxruntime, tokenizers, faiss, bm25s"],
        "qabot_ask": [str(BIN / "qabot"), "ask", "When are the Geneva talks?"],
    }
    if sizes.torch_import:
        commands["torch_import"] = [python, "-c", "import torch, sentence_transformers"]
    samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for name, cmd in commands.items():  # one untimed run each: disk cache warm, process cold
        wall, rss, code, out = run_child(cmd, env)
        if code != 0:
            raise RuntimeError(f"{name} failed ({code}): {out[-500:]}")
    for run in range(sizes.cold_runs):
        names = list(commands) if run % 2 == 0 else list(reversed(commands))  # alternate the order
        for name in names:
            wall, rss, code, out = run_child(commands[name], env)
            if code != 0:
                raise RuntimeError(f"{name} failed ({code}): {out[-500:]}")
            if name == "qabot_ask" and not out.strip():
                raise RuntimeError("qabot ask printed nothing")
            samples[name].append((wall, rss))
            if name == "qabot_ask":
                answer = out.strip().splitlines()[0][:200]
    result = {name: {"wall_s_p50": round(pct([w for w, _ in s], 50), 3),
                     "wall_s_max": round(max(w for w, _ in s), 3),
                     "peak_rss_mib": round(max(r for _, r in s), 1)} for name, s in samples.items()}
    ask, stack, base = (result[k]["wall_s_p50"] for k in ("qabot_ask", "ml_imports", "python"))
    result["ratio_vs_python"] = round(ask / base, 1)
    result["ratio_vs_ml_imports"] = round(ask / stack, 2)
    result["runs"] = sizes.cold_runs
    result["answer"] = answer  # the first printed line, to see that it answered
    return result
