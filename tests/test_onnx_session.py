"""The ONNX session's cached optimised model (embeddings/onnx_session.py): written once, loaded
after, the same vectors bit for bit, and never in the way when it is missing, broken or unwritable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from embeddings.encoders import OnnxEncoder
from embeddings.onnx_session import COMPLETE, WEIGHTS, cache_root

TEXTS = ["When are the Geneva talks?",
         "Geneva talks\nRussia and the United States will hold talks in Geneva on Jan. 10, Ryabkov said.",
         "Izvestia."]


def _loaded_from(encoder: OnnxEncoder) -> Path:
    return Path(encoder._session._model_path)


def test_the_first_session_caches_the_optimised_model_and_later_ones_load_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = OnnxEncoder(256)
    folders = list(cache_root().iterdir())
    assert len(folders) == 1 and not folders[0].name.startswith(".")  # published whole, no staging left
    assert json.loads((folders[0] / COMPLETE).read_text())["weights_bytes"] == (folders[0] / WEIGHTS).stat().st_size
    assert _loaded_from(first).name == "model.onnx" and cache_root() not in _loaded_from(first).parents
    second = OnnxEncoder(256)
    assert _loaded_from(second).parent == folders[0]
    assert np.array_equal(first.encode(TEXTS), second.encode(TEXTS))


def test_a_truncated_copy_is_rebuilt_and_answers_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    reference = OnnxEncoder(256).encode(TEXTS)
    folder = next(cache_root().iterdir())
    with open(folder / WEIGHTS, "r+b") as handle:
        handle.truncate(1000)
    rebuilt = OnnxEncoder(256)
    assert cache_root() not in _loaded_from(rebuilt).parents  # built from the packaged model again
    assert (folder / WEIGHTS).stat().st_size > 1000  # and the copy written anew
    assert np.array_equal(rebuilt.encode(TEXTS), reference)


def test_an_unwritable_cache_builds_from_the_packaged_model(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    encoder = OnnxEncoder(256)
    assert cache_root() not in _loaded_from(encoder).parents
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert np.array_equal(encoder.encode(TEXTS), OnnxEncoder(256).encode(TEXTS))
