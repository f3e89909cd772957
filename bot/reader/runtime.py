"""The reader at question time: the shipped int8 ONNX model on onnxruntime (no torch import).

    reader = Reader.load()                      # the packaged model, one session per process
    readings = reader.read(question, candidates)  # one Reading per Candidate, same order
    if reader.declines(readings): ...            # max score below the calibrated threshold
    reader.highlight(candidate, reading)        # the span text, when confident enough to lead

`Reading.score` is the probability that the sentence answers the question; `Reading.span` the
answer's char offsets inside the candidate's `text` (the highlight), with `span_score` its
probability. Thread-safe: onnxruntime sessions may be run from several threads at once.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .features import Batch, Candidate, encode, load_tokenizer, best_span

MODEL_DIR = Path(__file__).resolve().parent / "model"
MODEL_FILE = "reader-int8.onnx"
CONFIG_FILE = "reader.json"
# One question's candidates run as one batch; 2 intra-op threads are this machine's cores and
# halve latency against 1 (measured by bench in bot/reader/export.py).
INTRA_OP_THREADS = 2


@dataclass(frozen=True)
class Reading:
    score: float  # probability that the candidate sentence answers the question
    span: tuple[int, int] | None  # the answer's char offsets in Candidate.text
    span_score: float  # probability of that span (start x end), 0..1


def readings_from(batch: Batch, score: np.ndarray, start: np.ndarray, end: np.ndarray) -> list[Reading]:
    """Model outputs -> Readings (shared by the runtime and the training-time evaluation)."""
    probabilities = 1.0 / (1.0 + np.exp(-score.astype(np.float64)))
    out = []
    for row, p in enumerate(probabilities):
        span, span_p = best_span(start[row], end[row], batch.offsets[row], batch.first[row])
        out.append(Reading(float(p), span, span_p))
    return out


class Reader:
    """An int8 ONNX reader and its tokenizer, loaded once per directory per process."""

    _cache: dict[Path, "Reader"] = {}
    _lock = threading.Lock()

    def __init__(self, directory: Path) -> None:
        import onnxruntime as ort

        self.directory = Path(directory)
        config = json.loads((self.directory / CONFIG_FILE).read_text(encoding="utf-8"))
        self.threshold: float = float(config["threshold"])
        self.span_threshold: float = float(config.get("span_threshold", 1.0))
        self.context: bool = bool(config.get("context", True))
        self.config = config
        options = ort.SessionOptions()
        options.intra_op_num_threads = INTRA_OP_THREADS
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(self.directory / config.get("model", MODEL_FILE)),
                                             options, providers=["CPUExecutionProvider"])
        self._tokenizer = load_tokenizer(self.directory)

    @classmethod
    def load(cls, path: Path | None = None) -> "Reader":
        """The reader in `path` (default: the model shipped in this package), cached."""
        directory = Path(path or MODEL_DIR).resolve()
        with cls._lock:
            reader = cls._cache.get(directory)
            if reader is None:
                reader = cls._cache[directory] = cls(directory)
            return reader

    def read(self, question: str, candidates: Sequence[Candidate]) -> list[Reading]:
        """Score every candidate for `question` in one batch; same order as `candidates`."""
        if not candidates:
            return []
        batch = encode(self._tokenizer, question, candidates, context=self.context)
        score, start, end = self._session.run(None, batch.inputs())
        return readings_from(batch, score, start, end)

    def declines(self, readings: Sequence[Reading]) -> bool:
        """Decline when no candidate scores at least the calibrated threshold (see reader.json)."""
        return not readings or max(r.score for r in readings) < self.threshold

    def highlight(self, candidate: Candidate, reading: Reading) -> str | None:
        """The answer span's text when the reader is confident enough to show it first
        (span_score >= span_threshold of reader.json), else None."""
        if reading.span is None or reading.span_score < self.span_threshold:
            return None
        return candidate.text[reading.span[0]:reading.span[1]].strip() or None
