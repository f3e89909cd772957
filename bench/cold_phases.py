"""Run by the `cold` section as a new process: the steps of a cold `qabot ask`, each timed, then the
same process's warm answers. Prints one JSON object.

The steps are those `bot.cli_main` -> `bot.cli_ask.run_ask` takes, in its order: imports, settings,
index load (checksums, chunk records, FAISS, BM25 matrix, sentence vectors), encoder session, the
first answer (with its own stages), rendering. Then the article's questions are asked twice and
the second pass gives the warm p50, so first and warm answers come from one process.

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

    from rich.console import Console

    from bot.answering.answerer import Answerer, load_index
    from bot.cli_ask import settings_with
    from bot.cli_render import render_answer
    from embeddings.encoders import get_encoder
    mark("imports")
    settings = settings_with(None, Path(index_dir))
    mark("settings")
    index = load_index(settings)
    mark("index_load")
    encoder = get_encoder(settings.model.query_backend, settings.model.max_seq_length)
    answerer = Answerer(index, encoder, settings)
    mark("encoder_session")
    first = answerer.ask(questions[0])
    mark("first_answer")
    render_answer(first, Console(file=io.StringIO(), force_terminal=False, highlight=False, soft_wrap=True))
    mark("render")
    phases = {name: round((t - marks[i][1]) * 1000, 2) for i, (name, t) in enumerate(marks[1:])}
    for q in questions:
        answerer.ask(q)
    warm = [answerer.ask(q).timings_ms for q in questions]
    print(json.dumps({"phases_ms": phases, "first_answer": first.timings_ms,
                      "warm_p50_ms": {k: statistics.median(w[k] for w in warm) for k in warm[0]}}))


if __name__ == "__main__":
    main(sys.argv[1:])
