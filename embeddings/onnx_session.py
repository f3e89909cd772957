"""The ONNX session of the int8 MiniLM model, built from a cached optimised copy when there is one.

Why: the packaged model stores its weights as int8 with DequantizeLinear nodes, and onnxruntime
folds them back to float32 (and fuses the graph) every time a session is built: about 150 ms of
CPU, the largest single step of a cold `qabot ask`. The first session of a machine saves the
optimised graph with its float32 weights in a separate file (`WEIGHTS`, about 90 MB); later
sessions load that with onnxruntime's optimisations off, which takes about 40 ms
(bench/README.md, "ONNX session"). The vectors are bit-for-bit those of the packaged model built
as before: the cached graph is the "extended" level of optimisation (the last level that is not
specific to the CPU it ran on), and the "all" level adds nothing to this model.

The cache lives in ``$XDG_CACHE_HOME/qabot/onnx/`` (``~/.cache`` when that is unset), one folder
per model file and onnxruntime version, written to a temporary folder and renamed into place
whole, so a reader never sees half a copy and two writers cannot mix theirs. When the folder
cannot be written or read, the session is built from the packaged model as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from onnxruntime import InferenceSession, SessionOptions

log = logging.getLogger(__name__)

MODEL = "model.onnx"  # the optimised graph, small: its weights are in WEIGHTS
WEIGHTS = "weights.bin"
COMPLETE = "complete.json"  # written last: the sizes a usable copy has
PROVIDERS = ["CPUExecutionProvider"]


def cache_root() -> Path:
    """Where optimised models are kept: ``$XDG_CACHE_HOME/qabot/onnx``, else ``~/.cache/qabot/onnx``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qabot" / "onnx"


def cache_folder(model: Path, runtime_version: str) -> Path:
    """The cache folder of `model` under this onnxruntime version: a new install of either (another
    size or modification time) gets a folder of its own."""
    stat = model.stat()
    key = f"{model.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{runtime_version}"
    return cache_root() / f"{model.stem}-{hashlib.blake2b(key.encode(), digest_size=8).hexdigest()}"


def _usable(folder: Path) -> bool:
    """Whether `folder` holds a complete copy (its weights file as long as when it was written)."""
    try:
        expected = json.loads((folder / COMPLETE).read_text(encoding="utf-8"))
        return (folder / WEIGHTS).stat().st_size == expected["weights_bytes"] and (folder / MODEL).is_file()
    except (OSError, ValueError, KeyError, TypeError):
        return False


def build_session(model: Path, options: "SessionOptions") -> "InferenceSession":
    """A session of `model` with `options` (threads, logging; their optimisation level is set here),
    from the cached optimised copy if there is a usable one, else from `model`, saving the copy."""
    import onnxruntime

    try:
        folder: Path | None = cache_folder(model, onnxruntime.__version__)
    except OSError:
        folder = None
    if folder is not None and _usable(folder):
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            return onnxruntime.InferenceSession(str(folder / MODEL), options, providers=PROVIDERS)
        except Exception as exc:  # any failure to load the copy: rebuild it from the model
            log.info("cannot load the cached optimised model in %s (%s); building it again", folder,
                     type(exc).__name__)
    if folder is not None and folder.exists():  # a broken copy (published ones are complete)
        shutil.rmtree(folder, ignore_errors=True)
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    staging = _staging(folder)
    if staging is not None:
        options.optimized_model_filepath = str(staging / MODEL)
        options.add_session_config_entry("session.optimized_model_external_initializers_file_name", WEIGHTS)
        options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    session = onnxruntime.InferenceSession(str(model), options, providers=PROVIDERS)
    if staging is not None and folder is not None:
        _publish(staging, folder)
    return session


def _staging(folder: Path | None) -> Path | None:
    """A new temporary folder beside `folder` to write the copy into, or None if none can be made."""
    if folder is None:
        return None
    import tempfile  # here: a session from the cached copy (every cold `qabot ask`) never needs it

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    except OSError as exc:
        log.debug("no cache for the optimised model (%s): sessions build from the packaged model", exc)
        return None


def _publish(staging: Path, folder: Path) -> None:
    """Mark the copy in `staging` complete and rename it to `folder`; drop it if another process
    published one first or the copy is not there."""
    try:
        weights = (staging / WEIGHTS).stat().st_size
        (staging / COMPLETE).write_text(json.dumps({"weights_bytes": weights}), encoding="utf-8")
        os.rename(staging, folder)
        log.info("optimised model cached in %s (%.0f MB): later sessions start faster", folder, weights / 2**20)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
