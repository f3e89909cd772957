"""The `qabot` console script: `qabot ask` on a short path, every other command through the typer app.

A one-shot question is the command people time. The typer app (`bot.cli`) imports typer, which
imports pydantic, and rich's help machinery, and declares every command; `ask` needs none of that.
So plain `ask` command lines are recognised here and run by the same body (`bot.cli_ask`), and
anything else, including `--help`, an unknown option, a missing value or no question, goes to the
typer app unchanged, which answers, explains or refuses it exactly as before.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence


@dataclass
class AskLine:
    """A recognised `[-v] [--config FILE] ask [--index DIR] [--collection NAME]... [--json]
    [--sources|-v] WORDS...` line. `-v` before `ask` logs more; after it, it shows the other
    passages (as `--sources`)."""

    verbose: bool = False
    config: Path | None = None
    index: Path | None = None
    as_json: bool = False
    sources: bool = False
    words: list[str] = field(default_factory=list)
    collections: list[str] = field(default_factory=list)


def _take_value(args: Sequence[str], i: int, name: str) -> tuple[str, int] | None:
    """The value of option `name` at args[i] ("--name=value" or "--name value"), and the next index."""
    arg = args[i]
    if arg.startswith(name + "="):
        return arg[len(name) + 1:], i + 1
    if arg == name and i + 1 < len(args):
        return args[i + 1], i + 2
    return None


def parse_ask(args: Sequence[str]) -> AskLine | None:
    """The `ask` command line in `args` (argv without the program), or None for anything else."""
    line = AskLine()
    i = 0
    while i < len(args) and args[i] != "ask":  # options before the command
        if args[i] in ("-v", "--verbose"):
            line.verbose, i = True, i + 1
            continue
        taken = _take_value(args, i, "--config")
        if taken is None or not taken[0]:
            return None
        line.config, i = Path(taken[0]), taken[1]
    if i == len(args):
        return None
    i += 1
    only_words = False
    while i < len(args):
        arg = args[i]
        if only_words or arg == "-" or not arg.startswith("-"):
            line.words.append(arg)
            i += 1
        elif arg == "--":
            only_words, i = True, i + 1
        elif arg == "--json":
            line.as_json, i = True, i + 1
        elif arg in ("--sources", "--verbose", "-v"):
            line.sources, i = True, i + 1
        elif arg.startswith("--collection"):
            taken = _take_value(args, i, "--collection")
            if taken is None or not taken[0]:
                return None
            line.collections.append(taken[0])
            i = taken[1]
        else:
            taken = _take_value(args, i, "--index")
            if taken is None or not taken[0]:
                return None
            line.index, i = Path(taken[0]), taken[1]
    if not line.words:
        return None
    if line.config is None and "QABOT_CONFIG" in os.environ:
        if not os.environ["QABOT_CONFIG"]:
            return None
        line.config = Path(os.environ["QABOT_CONFIG"])
    return line


def main() -> None:
    """Run the command line in `sys.argv`; ends with `SystemExit` (its code) like any typer command."""
    line = parse_ask(sys.argv[1:])
    if line is None:
        from .cli import app

        app()
        return
    sys.exit(_ask(line))


def script() -> None:
    """The `qabot` console script: `main`, except that a plain `ask` leaves the process at once.

    Why: after the answer is printed, interpreter teardown (freeing the ONNX session, the index
    and every module one by one) took about 60 ms of a 0.5 s cold `qabot ask` (bench `cold`).
    The command writes nothing but its output, which is flushed here first. Other commands
    (ingest writes an index, serve stops threads) end the usual way.
    """
    line = parse_ask(sys.argv[1:])
    if line is None:
        from .cli import app

        app()
        return
    code = _ask(line)
    try:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe or stream: nothing more can be written anyway
        code = code or 1
    os._exit(code)


def _ask(line: AskLine) -> int:
    """Answer a recognised `ask` line; the exit code."""
    from .cli_ask import guarded, run_ask, settings_with, setup_logging

    setup_logging(line.verbose)
    return guarded(lambda: run_ask(line.words, settings_with(line.config, line.index), line.as_json,
                                   line.sources, line.collections))


if __name__ == "__main__":  # pragma: no cover
    main()
