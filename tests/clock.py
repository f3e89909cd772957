"""A clock the tests move by hand, for stores and memories that take a `clock` (TTL tests)."""

from __future__ import annotations


class Clock:
    """Returns `now` until a test changes it."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
