"""Collections: named sets of documents, so that one index answers each audience from its own.

A document belongs to one or more collections (``qabot ingest --collection hr``; ``default`` when
none is named), recorded with the document (documents.json) and on each of its chunks
(`ChunkRecord.collections`, and a scalar field on Milvus). A search names the collections it may
read, and the filter is applied inside the search, so a narrow collection still gets its full
top-k: FAISS through an id selector over the collection's rows (`RowFilter`), BM25 by scoring only
those rows, Milvus by a server-side filter expression (`milvus_filter`). An index saved before
collections existed reads as all ``default``.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .errors import QabotError

DEFAULT = "default"
# Lower-case letters, digits, "-", "_" and ".": safe in a Milvus filter expression, a Slack
# option value and a shell, and one spelling per name.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


class CollectionNameError(QabotError, ValueError):
    """A collection name that is not one (empty, upper case, spaces, too long)."""


def check_names(names: Iterable[str]) -> tuple[str, ...]:
    """`names` checked, without repeats, sorted; a bad one is refused in one line."""
    checked = set()
    for name in names:
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise CollectionNameError(f"collection name {name!r} is not valid: use 1-64 lower-case letters, "
                                      "digits, '-', '_' or '.', starting with a letter or digit")
        checked.add(name)
    return tuple(sorted(checked))


def stored_names(raw: Iterable[str] | None) -> tuple[str, ...]:
    """The collections read from a stored record (documents.json, a chunk's JSON): absent or empty
    in an index saved before collections existed, which therefore reads as all `DEFAULT`."""
    if not raw:
        return (DEFAULT,)
    return tuple(str(name) for name in raw)


def milvus_filter(names: Sequence[str]) -> str:
    """Milvus's boolean expression for rows in any of `names` (checked names: no quoting issue);
    for no names, one no row matches (keys are never negative)."""
    if not names:
        return "pk < 0"
    return f"array_contains_any(collections, {json.dumps(list(check_names(names)))})"


@dataclass(frozen=True, eq=False)
class Scope:
    """What one search may read: the collections' `names`, and for a store that filters by row
    (FAISS, BM25) their sorted `rows`; `generation` changes whenever those rows do, so a store
    may cache what it builds from them (a bitmap, a small exact index) under `key`."""

    names: tuple[str, ...]
    rows: np.ndarray | None = None
    generation: int = 0

    @property
    def key(self) -> tuple[int, tuple[str, ...]]:
        return (self.generation, self.names)


class RowFilter:
    """The rows of each collection, sorted, computed once from the chunk records in memory and
    dropped whenever the rows change (`Index.add_records`)."""

    def __init__(self) -> None:
        self._rows: dict[str, np.ndarray] | None = None
        self.generation = 0
        self._lock = threading.Lock()  # built once, whichever answer thread asks first

    def reset(self) -> None:
        self._rows = None
        self.generation += 1

    def rows(self, per_row: Iterable[Sequence[str]], names: Sequence[str]) -> np.ndarray:
        """The sorted rows belonging to any of `names`; `per_row` yields each row's collections
        (read only when the table is first built)."""
        with self._lock:
            if self._rows is None:
                table: dict[str, list[int]] = {}
                for row, owned in enumerate(per_row):
                    for name in owned:
                        table.setdefault(name, []).append(row)
                self._rows = {name: np.asarray(rows, dtype=np.int64) for name, rows in table.items()}
            built = self._rows
        parts = [built[n] for n in set(names) if n in built]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return parts[0] if len(parts) == 1 else np.unique(np.concatenate(parts))
