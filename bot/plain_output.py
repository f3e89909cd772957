"""Printing lines to standard output exactly as rich would when that output is not a terminal,
without importing rich.

Why: importing rich (`rich.console` and what it pulls in) took about 22 ms of a cold `qabot ask`
of ~0.5 s on the 2-core test host, and when the output is a pipe or a file rich prints a line's
text unstyled, then a newline, and flushes (checked against rich by tests/test_plain_output.py),
so for those lines the console script writes them itself (bot.cli_ask). Two things rich changes
even then, so a line holding them goes through rich instead: it drops the control characters
BEL, BS, VT, FF and CR (rich.control.strip_control_codes) and expands tabs to 8 columns.
"""

from __future__ import annotations

import builtins
import os
import sys
from typing import Mapping, TextIO

# What rich removes from, or rewrites in, a line of text (rich.control._CONTROL_STRIP_TRANSLATE, and tab).
_REWRITTEN = frozenset("\a\b\t\v\f\r")


def plain_stdout(environ: Mapping[str, str] | None = None) -> TextIO | None:
    """`sys.stdout` when rich's console would treat it as no terminal (so write lines there
    unstyled), else None (a terminal, a forced one, a notebook, or no stdout: let rich print).

    The rules of `rich.console.Console.is_terminal` for a console made without `force_terminal`,
    in its order: TTY_COMPATIBLE=0/1, then FORCE_COLOR (set and not empty: a terminal), then the
    stream's own `isatty()` (an error from it: no terminal).
    """
    environ = os.environ if environ is None else environ
    stream = sys.stdout
    if stream is None or hasattr(stream, "rich_proxied_file") or hasattr(builtins, "get_ipython") or \
            getattr(sys.stdin, "__module__", "").startswith("idlelib"):
        return None  # no stream, rich's own, a notebook or IDLE: rich decides (no command line has these)
    compatible = environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return stream if compatible == "0" else None
    if environ.get("FORCE_COLOR") is not None:
        return None if environ["FORCE_COLOR"] != "" else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return None if isatty is not None and isatty() else stream
    except ValueError:
        return stream


def prints_as_is(text: str) -> bool:
    """Whether rich would print `text` unchanged to a stream that is not a terminal."""
    return _REWRITTEN.isdisjoint(text)


def write_line(text: str, stream: TextIO) -> None:
    """`text` and a newline, flushed at once, as rich's `Console.print` writes a line."""
    try:
        stream.write(text + "\n")
    except UnicodeEncodeError as error:  # rich adds the same hint
        error.reason = f"{error.reason}\n*** You may need to add PYTHONIOENCODING=utf-8 to your environment ***"
        raise
    stream.flush()
