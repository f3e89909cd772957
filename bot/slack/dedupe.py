"""A bounded, expiring, process-local set of keys: a short-lived cache, never the record of what
was answered (that is `store.AnsweredStore`, durable and shared by every replica).

The Slack app uses it for threads it read with ``conversations.replies`` and found without the
bot, so a busy thread is not re-read for every message in it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Hashable

from cachetools import TTLCache

log = logging.getLogger(__name__)


class SeenKeys:
    """Thread-safe set of keys that forgets a key `ttl_s` seconds after it was first claimed.

    At most `max_entries` keys are kept; past that the oldest are forgotten early (and a warning
    is logged once), so memory stays bounded whatever the traffic. The expiry and the bound are
    cachetools' `TTLCache` (a claim never renews a key: a repeat only reads it).
    """

    def __init__(self, ttl_s: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.ttl_s = float(ttl_s)
        self.max_entries = int(max_entries)
        self._keys: TTLCache[Hashable, bool] = TTLCache(self.max_entries, self.ttl_s, timer=clock)
        self._lock = threading.Lock()
        self._warned_full = False

    def claim(self, key: Hashable) -> bool:
        """True the first time `key` is claimed (within the TTL), False for every repeat."""
        with self._lock:
            if key in self._keys:
                return False
            self._keys.expire()
            if len(self._keys) >= self.max_entries and not self._warned_full:
                self._warned_full = True
                log.warning("de-duplication memory is full (%d keys): forgetting the oldest early; "
                            "raise dedupe_max_entries if this happens often", self.max_entries)
            self._keys[key] = True  # evicts the oldest key when full
            return True

    def seen(self, key: Hashable) -> bool:
        """Whether `key` has been claimed and not yet forgotten (does not claim it)."""
        with self._lock:
            return key in self._keys

    def __len__(self) -> int:
        with self._lock:
            self._keys.expire()
            return len(self._keys)
