"""Run by the `cold` section as a new process: the steps of a cold `qabot ask`, each timed, then the
same process's warm answers. Prints one JSON object.

The steps are those `bot.cli_main` -> `bot.cli_ask.run_ask` takes, in its order: settings, the
encoder's load started on its own thread (`embeddings.encoders.start_loading`), then on this
thread the imports of the answer and printing code and the index load (checksums, chunk records,
FAISS, BM25 matrix, sentence vectors) while the ONNX session builds, the wait for the encoder
(what of its build the other steps did not hide), the first answer (with its own stages),
rendering. `encoder_build_ms` is the build's own time on its thread (onnxruntime import, session,
tokenizer), which overlaps the steps above. Then the article's questions are asked twice and the
second pass gives the warm p50, so first and warm answers come from one process.

    python bench/cold_phases.py INDEX_DIR QUESTION [QUESTION...]
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import time


def main(argv: list[str]) -> None:
    index_dir, questions = argv[0], argv[1:]
    marks = [("start", time.perf_counter())]

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter()))

    from pathlib import Path

    from bot.cli_ask import settings_with
    settings = settings_with(None, Path(index_dir))
    mark("settings")
    import embeddings.encoders as encoders

    build: dict[str, float] = {}
    builder = encoders._cached

    def timed(*args):  # the build on the loading thread, timed there
        started = time.perf_counter()
        try:
            return builder(*args)
        finally:
            build.setdefault("ms", (time.perf_counter() - started) * 1000)

    encoders._cached = timed  # type: ignore[assignment]
    loading = encoders.start_loading(settings.model.query_backend, settings.model.max_seq_length)
    mark("numpy_and_start")
    from rich.console import Console

    from bot.answering.answerer import Answerer, load_index
    from bot.cli_render import render_answer
    mark("imports")
    index = load_index(settings)
    mark("index_load")
    encoder = encoders.get_encoder(settings.model.query_backend, settings.model.max_seq_length)
    loading.join()
    answerer = Answerer(index, encoder, settings)
    mark("encoder_wait")
    first = answerer.ask(questions[0])
    mark("first_answer")
    render_answer(first, Console(file=io.StringIO(), force_terminal=False, highlight=False, soft_wrap=True))
    mark("render")
    phases = {name: round((t - marks[i][1]) * 1000, 2) for i, (name, t) in enumerate(marks[1:])}
    for q in questions:
        answerer.ask(q)
    warm = [answerer.ask(q).timings_ms for q in questions]
    print(json.dumps({"phases_ms": phases, "encoder_build_ms": round(build.get("ms", 0.0), 2),
                      "first_answer": first.timings_ms,
                      "warm_p50_ms": {k: statistics.median(w[k] for w in warm) for k in warm[0]}}))


if __name__ == "__main__":
    main(sys.argv[1:])
