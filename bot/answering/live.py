"""An `Answerer` that follows its index directory: a running `serve` or `chat` sees new documents
without a restart.

Every write of an index (ingest, `docs remove`) makes a complete new version and then switches
the `CURRENT` pointer atomically (embeddings/storage.py). A watcher thread reads that pointer
about once a second; when it names another version, the watcher loads it into a new `Answerer`
beside the one in use and then swaps one reference. A question takes the reference once when it
starts, so it is answered wholly from one version, old or new, never a mix; questions keep being
answered from the old version while the new one loads. The sentence-vector cache is shared, so
sentences of documents that did not change stay warm; the new ones are embedded in the
background after the swap (`warm`). A version that cannot be loaded (corrupt, another model) is
logged and the old one stays in use.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable, Sequence

from embeddings import storage
from embeddings.encoders import get_encoder
from embeddings.errors import QabotError
from embeddings.index import Index

from ..settings import Settings
from .answer import Answer
from .answerer import Answerer, load_index

log = logging.getLogger(__name__)

# Seconds between two reads of CURRENT (one small file): a new version is in use within about
# this plus its load time.
POLL_S = 1.0


class LiveAnswerer:
    """`ask` and `warm` like `Answerer`, on whichever version of the index is current."""

    def __init__(self, settings: Settings, index_dir: Path | None = None, *, poll_s: float = POLL_S,
                 warm_max_chunks: int = 0) -> None:
        """`warm_max_chunks`: a new version of at most this many chunks has its sentences embedded
        in the background once in use (0: never; `serve` passes its WARM_MAX_CHUNKS)."""
        self.settings = settings
        self.index_dir = Path(index_dir or settings.paths.index)
        self._poll_s = poll_s
        self._warm_max = warm_max_chunks
        self._version = storage.current_version(self.index_dir)
        self._current = self._load()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.swaps = 0  # versions taken into use since start (for logs and tests)

    def _load(self) -> Answerer:
        index = load_index(self.settings, self.index_dir)
        encoder = get_encoder(self.settings.model.query_backend, self.settings.model.max_seq_length)
        previous = getattr(self, "_current", None)
        return Answerer(index, encoder, self.settings,
                        previous._sentence_vectors if previous is not None else None)

    # --- what front ends use ------------------------------------------------------------------

    @property
    def answerer(self) -> Answerer:
        """The answerer of the version in use now."""
        return self._current

    @property
    def index(self) -> Index:
        return self._current.index

    @property
    def composer(self):
        """The LLM composer of the version in use ([llm] enabled), else None."""
        return self._current.composer

    def ask(self, question: str, history: Sequence[str] = (), **kwargs) -> Answer:
        return self._current.ask(question, history, **kwargs)  # one version for the whole question

    def ask_streaming(self, question: str, history: Sequence[str], on_text: Callable[[str], None],
                      **kwargs) -> Answer:
        """`Answerer.ask_streaming` on the version in use (Slack streams composed answers with it)."""
        return self._current.ask_streaming(question, history, on_text, **kwargs)

    def warm(self, *args, **kwargs) -> int:
        return self._current.warm(*args, **kwargs)

    # --- following the index ------------------------------------------------------------------

    def start(self) -> "LiveAnswerer":
        """Start watching the index directory (a daemon thread); returns self."""
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="index-watcher", daemon=True)
            self._watcher.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(self._poll_s):
            self.refresh()

    def refresh(self) -> bool:
        """Take the current version into use if it changed; True if it did. Called by the watcher."""
        try:
            version = storage.current_version(self.index_dir)
        except QabotError as exc:
            log.warning("index %s: %s; answering from the version already loaded", self.index_dir, exc)
            return False
        if version is None or version == self._version:
            return False
        try:
            fresh = self._load()
        except QabotError as exc:
            log.warning("new index version %s not taken into use: %s", version.name, exc)
            self._version = version  # not retried until the next write
            return False
        self.swaps += 1  # counted before the swap: whoever sees the new version sees it counted
        self._current, self._version = fresh, version
        log.info("index version %s in use: %d documents, %d chunks", version.name,
                 len(fresh.index.documents), len(fresh.index))
        if len(fresh.index) <= self._warm_max:  # only sentences not in the shared cache are embedded
            threading.Thread(target=fresh.warm, kwargs={"stop": self._stop}, name="warm-new-version",
                             daemon=True).start()
        return True
