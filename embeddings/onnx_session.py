"""The ONNX session of the int8 MiniLM model, built from a cached optimised copy when there is one.

Why: the packaged model stores its weights as int8 with DequantizeLinear nodes, and onnxruntime
folds them back to float32 (and fuses the graph) every time a session is built: about 150 ms of
CPU, the largest single step of a cold `qabot ask`. The first session of a machine saves the
optimised graph with its float32 weights in a separate file (`WEIGHTS`, about 90 MB); later
sessions load that with onnxruntime's optimisations off, which takes about 40 ms
(bench/README.md, "ONNX session"). The copy is the "extended" level of optimisation (the last
level that is not specific to the CPU it ran on) with each layer's attention and GELU then fused
into one operator each (onnx_fusion.py: a question's encoding 15-25% faster on two threads),
checked against the unfused graph on a probe before it is used. Its vectors differ from
the packaged model's by about 1e-7; every session built here runs the same copy, so a vector
stored at ingest and a question's are computed alike.

The cache lives in ``$XDG_CACHE_HOME/qabot/onnx/`` (``~/.cache`` when that is unset), one folder
per model file, onnxruntime version and `RECIPE`, written to a temporary folder and renamed into
place whole, so a reader never sees half a copy and two writers cannot mix theirs. When the
folder cannot be written, the copy is made in a scratch folder and dropped after loading; when
that fails too (or the fusion does), the session runs the unfused graph. Each load marks its copy
used; writing a new copy removes the copies beside it that no install has loaded for `STALE_S`
and the staging folders a crashed writer left (`prune_stale`).
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

# onnxruntime 1.29 and later record telemetry on Linux too: a device id and a queue of events in
# ~/.cache/Microsoft/DeveloperTools, uploaded to Microsoft when the machine is online. qabot
# promises no network calls beyond Slack and the pages it is told to ingest (SECURITY.md), so it
# opts out, as onnxruntime documents, before onnxruntime is first imported (the choice is latched
# then; every import of it in qabot comes after this module's). ORT_DISABLE_TELEMETRY=0 opts back in.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

MODEL = "model.onnx"  # the optimised graph, small: its weights are in WEIGHTS
WEIGHTS = "weights.bin"
FUSED = "fused.onnx"  # the rewritten graph, until it has passed the probe
COMPLETE = "complete.json"  # written last: the sizes a usable copy has
RECIPE = "extended+fused-attention-gelu"  # part of the cache key: a copy made otherwise is not reused
AGREEMENT = 1e-4  # largest difference a fused copy may show on the probe (it shows about 1e-7)
PROVIDERS = ["CPUExecutionProvider"]
STALE_S = 30 * 24 * 3600  # a copy no install has loaded for this long is removed when another is written
STAGING_STALE_S = 24 * 3600  # a staging folder this old is a crashed writer's (writing takes about 1 s)


def cache_root() -> Path:
    """Where optimised models are kept: ``$XDG_CACHE_HOME/qabot/onnx``, else ``~/.cache/qabot/onnx``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qabot" / "onnx"


def cache_folder(model: Path, runtime_version: str) -> Path:
    """The cache folder of `model` under this onnxruntime version: a new install of either (another
    size or modification time) gets a folder of its own."""
    stat = model.stat()
    key = f"{model.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{runtime_version}|{RECIPE}"
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
            session = onnxruntime.InferenceSession(str(folder / MODEL), options, providers=PROVIDERS)
        except Exception as exc:  # any failure to load the copy: rebuild it from the model
            log.info("cannot load the cached optimised model in %s (%s); building it again", folder,
                     type(exc).__name__)
        else:
            _mark_used(folder)
            return session
    if folder is not None and folder.exists():  # a broken copy (published ones are complete)
        shutil.rmtree(folder, ignore_errors=True)
    staging = _staging(folder) if folder is not None else None
    scratch = staging is None
    if scratch:
        staging = _staging(None)
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    if staging is None:
        return onnxruntime.InferenceSession(str(model), options, providers=PROVIDERS)
    options.optimized_model_filepath = str(staging / MODEL)
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name", WEIGHTS)
    options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    unfused = onnxruntime.InferenceSession(str(model), options, providers=PROVIDERS)
    options.optimized_model_filepath = ""
    session = _fused_copy(staging, unfused, options) or unfused
    if scratch or folder is None:
        shutil.rmtree(staging, ignore_errors=True)  # loaded: its files may go
    elif _publish(staging, folder):
        import time  # here: only the first session of a version publishes

        prune_stale(folder.parent, folder, time.time())
    return session


def _fused_copy(staging: Path, unfused: "InferenceSession",
                options: "SessionOptions") -> "InferenceSession | None":
    """A session of the copy in `staging` rewritten with fused attention and GELU, if the rewrite
    applies and agrees with `unfused` on a probe; the rewritten graph then replaces the one in
    `staging` (the weights it adds are appended to the weights file, where the unfused graph does
    not see them). None when it does not apply."""
    import onnxruntime

    try:
        import onnx

        from .onnx_fusion import NotFused, fuse
    except ImportError as exc:
        log.info("onnx is not installed (%s): the encoder runs unfused", exc)
        return None
    rewritten = staging / FUSED
    try:
        model = fuse(onnx.load(str(staging / MODEL), load_external_data=False), staging, WEIGHTS)
        rewritten.write_bytes(model.SerializeToString())
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        fused = onnxruntime.InferenceSession(str(rewritten), options, providers=PROVIDERS)
        gap = _probe_gap(fused, unfused)
        if gap > AGREEMENT:
            raise NotFused(f"it differs from the model by {gap:.2g} on a probe")
        os.replace(rewritten, staging / MODEL)
        return fused
    except (NotFused, OSError, ValueError) as exc:
        log.warning("the encoder runs unfused: %s", exc)
        rewritten.unlink(missing_ok=True)
        return None


def _probe_gap(one: "InferenceSession", other: "InferenceSession") -> float:
    """The largest difference between two sessions' outputs on a padded batch of two texts."""
    import numpy as np

    ids = np.array([[101, 2043, 2024, 1996, 11768, 7566, 1029, 102],
                    [101, 7566, 1012, 102, 0, 0, 0, 0]], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64),
             "token_type_ids": np.zeros_like(ids)}
    names = [i.name for i in one.get_inputs()]
    mine = one.run(None, {name: feeds[name] for name in names})[0]
    theirs = other.run(None, {name: feeds[name] for name in names})[0]
    real = feeds["attention_mask"].astype(bool)
    return float(np.abs(mine[real] - theirs[real]).max())


def _staging(folder: Path | None) -> Path | None:
    """A new temporary folder beside `folder` to write the copy into (in the system's temporary
    folder when `folder` is None), or None if none can be made."""
    import tempfile  # here: a session from the cached copy (every cold `qabot ask`) never needs it

    try:
        if folder is None:
            return Path(tempfile.mkdtemp(prefix="qabot-onnx-"))
        folder.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    except OSError as exc:
        log.debug("no folder for the optimised model (%s)", exc)
        return None


def _publish(staging: Path, folder: Path) -> bool:
    """Mark the copy in `staging` complete and rename it to `folder`; drop it if another process
    published one first or the copy is not there. Whether it was published."""
    try:
        weights = (staging / WEIGHTS).stat().st_size
        (staging / COMPLETE).write_text(json.dumps({"weights_bytes": weights}), encoding="utf-8")
        os.rename(staging, folder)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        return False
    log.info("optimised model cached in %s (%.0f MB): later sessions start faster", folder, weights / 2**20)
    return True


def _mark_used(folder: Path) -> None:
    """Set the modification time of the copy's `COMPLETE` file to now: `prune_stale` judges a copy
    by it, so the copy of an install still in use stays. A cache this process may not write (read
    only, another user's) just keeps its times."""
    try:
        os.utime(folder / COMPLETE)
    except OSError:
        pass


def prune_stale(root: Path, keep: Path, now: float) -> int:
    """Remove the folders under `root` that this module made and nobody needs any more, except
    `keep`: copies no install has loaded for `STALE_S` (by their `COMPLETE` file, which each load
    touches; by the folder itself when that is missing) and staging folders older than
    `STAGING_STALE_S`. Returns how many folders went.

    Why age and not "every copy but mine": installs of different versions (two venvs of one user)
    share this cache, each loading its own copy; removing the others' would make each rebuild its
    copy (about 1 s and 96 MB written) on every start. A month unused means no install wants it.
    Names this module does not make are never touched: users may keep other things here."""
    try:
        candidates = [Path(entry.path) for entry in os.scandir(root)
                      if entry.is_dir(follow_symlinks=False) and Path(entry.path) != keep]
    except OSError:
        return 0
    removed, freed = 0, 0
    for folder in candidates:
        if _expired(folder, now):
            size = _size(folder)
            shutil.rmtree(folder, ignore_errors=True)
            if not os.path.lexists(folder):
                removed, freed = removed + 1, freed + size
    if removed:
        log.info("removed %d stale optimised model folder(s) from %s (%.0f MB freed)", removed, root,
                 freed / 2**20)
    return removed


def _expired(folder: Path, now: float) -> bool:
    """Whether `folder` is a copy (named by `cache_folder`) last used more than `STALE_S` ago or a
    staging folder (named by `_staging`) older than `STAGING_STALE_S`; False for any other name."""
    import re  # here: only a publishing session prunes

    name = folder.name
    try:
        if re.fullmatch(r"[^.].*-[0-9a-f]{16}", name):
            try:
                used = (folder / COMPLETE).stat().st_mtime
            except FileNotFoundError:  # a copy never completed: its folder's age
                used = folder.stat().st_mtime
            return now - used > STALE_S
        if re.fullmatch(r"\..+-[0-9a-f]{16}\.[a-z0-9_]+", name):
            return now - folder.stat().st_mtime > STAGING_STALE_S
    except OSError:
        pass
    return False


def _size(folder: Path) -> int:
    """The bytes of the files under `folder` (those that can be read)."""
    total = 0
    for base, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(base, name)).st_size
            except OSError:
                pass
    return total
