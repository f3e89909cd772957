"""`qabot ask`: the command's body, importable without typer, and its short path from the console
script (`bot.cli_main`), so a one-shot question loads only what answering needs.

Measured (bench `cold`): typer 0.29 imports pydantic for its parameter coercion, and the whole app
(every command, `docs`, rich's help formatting) costs about a fifth of a cold `qabot ask`; the
question path needs none of it. `bot.cli` calls the same `run_ask`, so both paths answer, print
and fail identically.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, TextIO

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from embeddings.errors import QabotError

from .settings import Settings, load_settings

if TYPE_CHECKING:
    from .answer_lines import Line

# Loggers of libraries that talk too much at INFO; shared with `bot.cli`.
NOISY_LOGGERS = ("sentence_transformers", "transformers", "httpx", "filelock", "bm25s", "faiss")
# pypdf logs a WARNING for each flaw it meets in a file ("EOF marker not found"): a PDF it cannot
# read is refused in one line anyway (embeddings/sources/pdf.py), so its notes wait for -v.
QUIET_LOGGERS = ("pypdf",)


class Failure(QabotError):
    """A one-line error of the command line (bad arguments, missing files) with its exit code
    (bot.cli_common re-exports it for the typer commands)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def setup_logging(verbose: bool, default: int = logging.WARNING) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else default,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for quiet in QUIET_LOGGERS:
        logging.getLogger(quiet).setLevel(logging.NOTSET if verbose else logging.ERROR)


def settings_with(config: Path | None, index: Path | None = None) -> Settings:
    """Code defaults, then `config` / $QABOT_CONFIG (or the checkout's file), then $QABOT_*, then `index`."""
    settings = load_settings(config)
    if index is not None:
        settings = settings.replace("paths", index=index)
    return settings


def questions_of(words: Sequence[str]) -> list[str]:
    """The question the words make, or with ["-"] one question a line of stdin."""
    if list(words) == ["-"]:
        questions = [line.strip() for line in sys.stdin if line.strip()]
        if not questions:
            raise Failure("no questions on stdin (one per line)", 2)
        return questions
    joined = " ".join(words).strip()
    if not joined:
        raise Failure("the question is empty", 2)
    return [joined]


def chosen_collections(names: Sequence[str], index) -> tuple[str, ...] | None:
    """`--collection` names checked against the index's collections (None when none is named);
    a name the index does not hold is refused in one line, rather than answering from nothing."""
    if not names:
        return None
    from embeddings.collections import check_names

    chosen = check_names(names)
    held = index.collection_sizes()
    unknown = [n for n in chosen if n not in held]
    if unknown:
        raise Failure(f"no collection {unknown[0]!r} in the index; it holds: {', '.join(held) or 'nothing'} "
                      "(qabot docs list)", 2)
    return chosen


def run_ask(words: Sequence[str], settings: Settings, as_json: bool, sources: bool = False,
            collections: Sequence[str] = ()) -> None:
    """Answer the question(s) and print them: one JSON object a line (the answer and its layout),
    or rendered for people (`sources`: the other passages found too); from the documents of
    `collections` alone when some are named."""
    questions = questions_of(words)
    from embeddings.encoders import start_loading

    from .plain_output import plain_stdout

    # Rich is imported only to print to a terminal or to stream a composed answer (bot.plain_output):
    # `plain` is standard output when lines are written to it without rich, else None.
    plain = plain_stdout() if not as_json and not settings.llm.enabled else None

    # The ONNX session is built on another core while this thread imports the answer code (and
    # the printing code) and loads the index: onnxruntime releases the GIL while it builds.
    loading = start_loading(settings.model.query_backend, settings.model.max_seq_length)
    try:
        from embeddings.encoders import get_encoder

        from .answering.answerer import Answerer, load_index
        from .answering.layout import layout_json

        if not as_json:  # the printing code is imported while the session builds too
            from .answer_lines import Line, answer_lines
            if plain is None:
                from . import cli_render  # noqa: F401 (rich)
        from .answering.span_scorer import span_model

        index = load_index(settings)  # before waiting for the encoder
        span_model()  # the lead's learned weights, read while the session builds too
        scope = chosen_collections(collections, index)
        answerer = Answerer(index, get_encoder(settings.model.query_backend, settings.model.max_seq_length),
                            settings)
    finally:
        loading.join()  # on an error too: never leave onnxruntime mid-build when the process exits
    if as_json:
        for q in questions:
            answer = answerer.ask(q, collections=scope)
            print(json.dumps({**answer.to_json(), **layout_json(answer)}, ensure_ascii=False), flush=True)
        return
    for q in questions:
        if len(questions) > 1:
            print_line(Line(f"Q: {q}", "bold"), plain)
        if plain is not None:  # what `ask_and_show` prints, line by line
            for line in answer_lines(answerer.ask(q, collections=scope), sources=sources):
                print_line(line, plain)
        else:
            from .cli_render import ask_and_show

            ask_and_show(answerer, q, sources=sources, collections=scope)
        if len(questions) > 1:
            print_line(Line(""), plain)


def print_line(line: Line, plain: TextIO | None) -> None:
    """One line to stdout: to `plain` (stdout, when it is no terminal) as it is when rich would
    print it unchanged (bot.plain_output), else by rich."""
    from .plain_output import prints_as_is, write_line

    if plain is not None and prints_as_is(line.text):
        write_line(line.text, plain)
        return
    from .cli_render import show_line

    show_line(line)


def error_line(message: str) -> None:
    """A user error as `bot.cli` prints it: one line on stderr."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]Error:[/red] {escape(message)}")


def guarded(fn, *args, **kwargs) -> int:
    """Call a command body; every `QabotError` becomes one line and an exit code (a `Failure`'s
    own, 1 for the rest, 130 for Ctrl-C, 1 for a closed output pipe, 0 on success), as
    `bot.cli_common.run` and click do."""
    try:
        fn(*args, **kwargs)
    except QabotError as exc:
        error_line(str(exc))
        return exc.code if isinstance(exc, Failure) else 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader left early (`qabot ask --json - < questions | head -1`): stop quietly with 1,
        # as click does for the typer commands. Later writes and the final flush go to /dev/null,
        # so Python prints no second error for the pipe when the process ends.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1
    return 0
