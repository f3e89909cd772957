#!/usr/bin/env python
"""qabot performance benchmark: every figure against its raw limit, measured in the same run.

    make bench            # full run (about 5 minutes on 2 cores)
    make bench QUICK=1    # small sizes, every code path (about 1 minute); CI runs this

Sections (see bench/README.md for what each measures and why):
  ingest  SQuAD contexts through `ingest()` vs the same chunk texts through the encoder alone; and
          the NER it runs (spaCy en_core_web_sm), timed alone on the same paragraphs
  langchain  `ingest()` of the ten SQuAD articles vs LangChain's usual pipeline (1000/200 splitter +
          FAISS, same model), side by side: CPU-seconds and wall time (needs the bench extra)
  query   Answerer.ask over SQuAD questions vs question encoding + dense + BM25 search alone;
          and the whole answer on the bundled article
  cold    `qabot ask` as a new process vs `python -c "import sys"` and the ML imports alone
  slack   signed Events API request -> chat.postMessage, against the Slack Web API stand-in
  scale   100k / 1M synthetic chunk vectors: index build, memory, search p50, recall@10
  milvus  milvus-lite beside FAISS on 100k synthetic chunks: ingest rate, search p50/p95, recall@10
  report  `qabot report` on 10,000 recorded questions (a new process); what recording costs an answer
  collections  a 5% collection of the 100k synthetic chunks: filtered search vs unfiltered and vs an
          index of that collection alone (hit@10, recall@10, p50)

Prints a table, writes bench/results/bench-<time>.json, latest.json and latest.md. Exits 1 if a
section fails to run (not when a target is missed: absolute times on a shared machine wander).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import CONTEXTS, EVAL, FULL, QUICK, RESULTS, log, machine_info, write_results  # noqa: E402 (after the sys.path line above)
from bench.report import table, verdicts  # noqa: E402 (after the sys.path line above)
from bench.sections.cold import bench_cold  # noqa: E402 (after the sys.path line above)
from bench.sections.collections import bench_collections  # noqa: E402 (after the sys.path line above)
from bench.sections.ingest import bench_ingest  # noqa: E402 (after the sys.path line above)
from bench.sections.langchain import bench_langchain  # noqa: E402 (after the sys.path line above)
from bench.sections.query import bench_query  # noqa: E402 (after the sys.path line above)
from bench.sections.milvus import bench_milvus  # noqa: E402 (after the sys.path line above)
from bench.sections.scale import bench_scale  # noqa: E402 (after the sys.path line above)
from bench.sections.report import bench_report  # noqa: E402 (after the sys.path line above)
from bench.sections.slack import bench_slack  # noqa: E402 (after the sys.path line above)

SECTIONS = {"ingest": bench_ingest, "langchain": bench_langchain, "query": bench_query,
            "cold": bench_cold, "slack": bench_slack, "scale": bench_scale, "milvus": bench_milvus,
            "report": bench_report, "collections": bench_collections}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI): under 2 minutes")
    parser.add_argument("--only", default="", help=f"comma-separated sections ({', '.join(SECTIONS)})")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory (default bench/results)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    if not CONTEXTS.exists():
        parser.error(f"evaluation data not found at {EVAL}")

    from bot.settings import load_settings

    started = time.perf_counter()
    results: dict = {"quick": args.quick, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "machine": machine_info(), "sizes": sizes.__dict__, "errors": {}}
    work = Path(tempfile.mkdtemp(prefix="qabot-bench-"))
    ctx = {"settings": load_settings(environ={}), "work": work}
    try:
        for name in chosen:
            log(f"{name} ...")
            t = time.perf_counter()
            try:
                results[name] = SECTIONS[name](ctx, sizes)
            except Exception:
                results["errors"][name] = traceback.format_exc()
                log(f"{name} FAILED:\n{results['errors'][name]}")
            log(f"{name} done in {time.perf_counter() - t:.0f} s")
            results.setdefault("section_s", {})[name] = round(time.perf_counter() - t, 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    results["total_s"] = round(time.perf_counter() - started, 1)
    results["verdicts"] = verdicts(results)
    markdown = table(results)
    print(markdown)
    write_results(results, markdown, args.out, args.quick)
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
