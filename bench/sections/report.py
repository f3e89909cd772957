"""8. report: `qabot report` (a new process, as a user runs it) on 10,000 recorded questions, and
what recording costs an answer.

The store is generated: 10,000 records over 30 days, a third declined, votes at random, questions
from ../shared/train (or numbered stand-ins without it; 2,000 distinct, 500 in QUICK, repeated)
with their real vectors, so the gap groups are made from real question vectors. Measured: `qabot
report --since 30d --json` wall time (p50 of 3, after one untimed run), `--html` once; and the
alternative it rules out, embedding the kept questions at report time (the encoder's time per
question, measured on the distinct ones, times the gap questions), beside the cost paid instead
at record time (one `QuestionRecorder.record`, embedding one question, p50).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

from bench.common import BIN, ROOT, Sizes, log, pct

RECORDS = 10_000
TRAIN_QUESTIONS = ROOT.parent / "shared" / "train" / "squad-pool.questions.jsonl"
DAY = 86400.0


def _questions(count: int) -> list[str]:
    texts = []
    if TRAIN_QUESTIONS.exists():
        for line in TRAIN_QUESTIONS.read_text(encoding="utf-8").splitlines():
            texts.append(json.loads(line)["question"])
    texts = texts or [f"What does section {i} of the handbook say about leave?" for i in range(2000)]
    return [texts[i % len(texts)] for i in range(count)]


def _generate(settings, count: int, distinct: int, encode, now: float) -> float:
    """Fill the report's store; returns the seconds the encoder took a question (in batches)."""
    from bot.report.record import ANSWERED, DECLINED, LLM_FALLBACK, QuestionRecord
    from bot.report.recorder import open_store

    rng = np.random.default_rng(5)
    texts = _questions(distinct)
    started = time.perf_counter()
    vectors = encode(texts)
    per_question_s = (time.perf_counter() - started) / distinct
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    store = open_store(settings)
    for i in range(count):
        text = texts[i % distinct]
        outcome = [ANSWERED, DECLINED, LLM_FALLBACK][int(rng.choice(3, p=[0.6, 0.33, 0.07]))]
        asked = now - float(rng.uniform(0, 30 * DAY))
        store.add(QuestionRecord(f"b{i}", asked, "slack", outcome, (), () if outcome == DECLINED else (f"doc-{i % 50}",),
                                 text, vectors[i % distinct]), delete_before=0)
        for vote in [v for v in ("up", "down") if rng.integers(2)]:
            store.vote(f"b{i}", vote, asked)
    store.close()
    return per_question_s


def _children_cpu_s() -> float:
    """CPU seconds (user + system) of the finished child processes so far: the process's own work,
    whatever the load (a busy machine stretches the wall time, not this)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_report(ctx: dict, sizes: Sizes) -> dict:
    from bot.answering.answer import Answer
    from bot.report.recorder import QuestionRecorder, open_store, query_encoder

    settings = ctx["settings"].replace("paths", state_db=ctx["work"] / "report" / "state.sqlite3",
                                       index=ctx["work"] / "report" / "no-index")
    encode = query_encoder(settings)
    encode(["warm up"])
    per_question_s = _generate(settings, RECORDS, 500 if sizes.questions <= 100 else 2000, encode, time.time())
    gaps = sum(r.is_gap for r in open_store(settings).read(0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_")}
    env.update(HF_HUB_OFFLINE="1", QABOT_STATE_DB=str(settings.paths.state_db), QABOT_INDEX=str(settings.paths.index))
    command = [str(BIN / "qabot"), "report", "--since", "30d", "--json"]
    walls, cpus = [], []
    for run in range(4):
        started, used = time.perf_counter(), _children_cpu_s()
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
        if run:
            walls.append(time.perf_counter() - started)
            cpus.append(_children_cpu_s() - used)
    report = json.loads(done.stdout)
    html = ctx["work"] / "report" / "report.html"
    started = time.perf_counter()
    subprocess.run(command[:-1] + ["--html", str(html)], env=env, cwd=ROOT, capture_output=True, check=True)
    html_s = time.perf_counter() - started

    recorder = QuestionRecorder.from_settings(settings.replace("paths", state_db=ctx["work"] / "report" / "r.sqlite3"),
                                              via="bench")
    record_ms = []
    for text in _questions(200)[:100]:
        started = time.perf_counter()
        recorder.record(Answer(text, "x", True))
        record_ms.append((time.perf_counter() - started) * 1000)
    recorder.close()
    log(f"report: {RECORDS} records, {gaps} gaps, {len(report['groups'])} groups, "
        f"p50 {statistics.median(walls):.2f} s")
    return {"records": RECORDS, "gaps": gaps, "groups": len(report["groups"]),
            "wall_s_p50": round(statistics.median(walls), 2), "wall_s": [round(w, 2) for w in walls],
            "cpu_s_p50": round(statistics.median(cpus), 2),
            "html_s": round(html_s, 2), "html_kb": round(Path(html).stat().st_size / 1024),
            "record_ms_p50": round(pct(record_ms, 50), 1), "record_ms_p95": round(pct(record_ms, 95), 1),
            "embed_ms_a_question": round(per_question_s * 1000, 2),
            "embed_gaps_at_report_s": round(per_question_s * gaps, 2),
            "load_average": [round(x, 2) for x in os.getloadavg()]}
