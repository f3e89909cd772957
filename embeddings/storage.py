"""Index directories: versioned, checksummed, switched atomically. Knows files, not their contents.

Layout of an index directory::

    CURRENT            name of the live version directory (replaced atomically)
    v000007/           one complete version: manifest.json plus the files the index writes
    .lock              held by a writer while it ingests (see ingest.py)

A save writes a whole new version directory, fsyncs it, then switches CURRENT with os.replace, so
a reader, or a process killed at any moment, sees either the old index or the new one, never a mix.
The manifest records what the index says about itself plus a SHA-256 of every file, so a truncated,
altered or incompatible index is refused with one line that says how to rebuild.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable

from .errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError

FORMAT_VERSION = 1
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
REBUILD_HINT = "rebuild it with: qabot ingest --rebuild PATH..."


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_tree(directory: Path) -> None:
    for root, _dirs, files in os.walk(directory):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                os.fsync(handle.fileno())
        _fsync_dir(Path(root))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_version(directory: Path) -> Path | None:
    """The live version directory, or None when no index has been saved here."""
    try:
        name = (directory / CURRENT).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise IndexCorruptError(f"{directory / CURRENT}: cannot read ({exc.strerror}); {REBUILD_HINT}") from None
    if not name or "/" in name or name.startswith("."):
        raise IndexCorruptError(f"{directory / CURRENT}: invalid content; {REBUILD_HINT}")
    return directory / name


def exists(directory: Path) -> bool:
    return current_version(directory) is not None


def write_version(directory: Path, write_files: Callable[[Path], None], manifest: dict) -> Path:
    """Have `write_files(staging)` fill a new version, checksum it, then make it the live one.

    `manifest` gets a "files" entry (path -> SHA-256) and is written last; the old versions are
    removed once CURRENT names the new one. Returns the new version directory.
    """
    import tempfile  # here: reading an index (every `qabot ask`) never needs it

    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=directory))
    try:
        write_files(staging)
        manifest = {**manifest, "files": {
            str(p.relative_to(staging)): sha256_file(p) for p in sorted(staging.rglob("*")) if p.is_file()}}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False), "utf-8")
        _fsync_tree(staging)
        version = _next_version(directory)
        os.rename(staging, directory / version)
        _fsync_dir(directory)
        pointer = directory / f".{CURRENT}.tmp"
        with pointer.open("w", encoding="utf-8") as handle:
            handle.write(version + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(pointer, directory / CURRENT)
        _fsync_dir(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _remove_old_versions(directory, keep=version)
    return directory / version


def _next_version(directory: Path) -> str:
    numbers = [int(p.name[1:]) for p in directory.glob("v[0-9]*") if p.name[1:].isdigit()]
    return f"v{max(numbers, default=0) + 1:06d}"


def _remove_old_versions(directory: Path, keep: str) -> None:
    for path in directory.iterdir():
        if path.is_dir() and path.name != keep and (path.name.startswith("v") or
                                                    path.name.startswith(".staging-")):
            shutil.rmtree(path, ignore_errors=True)


def open_version(directory: Path, model_name: str | None = None, verify: bool = True,
                 required: Iterable[str] = ()) -> tuple[Path, dict]:
    """(live version directory, manifest), refusing a missing, corrupt or incompatible index with
    one line that names the file and the fix.

    `model_name`, when given, must be the model the index was built with. With `verify`, every
    file is checked against its checksum and each of `required` must be listed in the manifest.
    """
    version = current_version(directory)
    if version is None:
        raise IndexNotFoundError(f"no index at {directory}; build one with: qabot ingest PATH...")
    manifest_path = version / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexCorruptError(f"{manifest_path}: missing; {REBUILD_HINT}") from None
    except (OSError, ValueError):
        raise IndexCorruptError(f"{manifest_path}: unreadable or not JSON; {REBUILD_HINT}") from None
    if not isinstance(manifest, dict):
        raise IndexCorruptError(f"{manifest_path}: not a manifest; {REBUILD_HINT}")
    fmt = manifest.get("format_version")
    if fmt != FORMAT_VERSION:
        newer = isinstance(fmt, int) and fmt > FORMAT_VERSION
        raise IndexMismatchError(
            f"{manifest_path}: index format {fmt} is {'newer than' if newer else 'not'} the "
            f"supported format {FORMAT_VERSION}; {'upgrade qabot or ' if newer else ''}{REBUILD_HINT}")
    if model_name is not None and manifest.get("model") != model_name:
        raise IndexMismatchError(
            f"{directory}: index was built with model {manifest.get('model')!r}, but qabot is "
            f"configured for {model_name!r}; {REBUILD_HINT}")
    if verify:
        files = manifest.get("files") or {}
        for name, expected in files.items():
            path = version / name
            if not path.is_file():
                raise IndexCorruptError(f"{path}: missing; {REBUILD_HINT}")
            if sha256_file(path) != expected:
                raise IndexCorruptError(f"{path}: checksum mismatch (truncated or altered); {REBUILD_HINT}")
        for name in required:
            if name not in files:
                raise IndexCorruptError(f"{version / name}: not listed in the manifest; {REBUILD_HINT}")
    return version, manifest
