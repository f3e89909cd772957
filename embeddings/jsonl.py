"""JSON Lines, read one way everywhere: evaluation data, the feedback log, the benchmark's files.

Blank lines are skipped. A line that is not a JSON object is an error in data a person prepared
(`strict`: the evaluation sets), and is skipped in an append-only log, whose last line a crash
may have torn (the feedback log).
"""

from __future__ import annotations

import json
from typing import Iterable, Iterator

from .errors import QabotError


class JsonLinesError(QabotError, ValueError):
    """A line of a JSON Lines file is not a JSON object; the message names the file and line."""


def read_json_lines(lines: Iterable[str], source: str, *, strict: bool = True) -> Iterator[dict]:
    """The JSON objects of `lines` (from `source`, named in errors), in order."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            yield record
        elif strict:
            raise JsonLinesError(f"{source}:{number}: not a JSON object")
