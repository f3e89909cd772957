"""Shared fixtures: a real index of the bundled article, built once per test session with the
real model, and a real `Answerer` over it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "data" / "articles"
SAMPLE = SAMPLE_DIR / "ryabkov-2022-01-06.txt"
SHARED_EVAL = ROOT.parent / "shared" / "eval"


@pytest.fixture(scope="session")
def settings():
    from bot.settings import load_settings

    return load_settings(environ={})


def build_index(paths, index_dir: Path, settings, **kwargs):
    """Ingest with the configured (real) encoder; the same call `qabot ingest` makes."""
    from embeddings.encoders import get_encoder
    from embeddings.ingest import ingest

    m = settings.model
    return ingest(list(paths), index_dir, lambda: get_encoder(m.ingest_backend, m.max_seq_length),
                  chunk_words=settings.chunking.chunk_words,
                  sentence_overlap=settings.chunking.sentence_overlap,
                  model_name=m.model_name, batch_size=m.batch_size, **kwargs)


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory, settings) -> Path:
    index_dir = tmp_path_factory.mktemp("sample") / "index"
    build_index([SAMPLE], index_dir, settings)
    return index_dir


@pytest.fixture(scope="session")
def answerer(sample_index, settings):
    from bot.answerer import Answerer

    return Answerer.from_settings(settings, index_dir=sample_index)


@pytest.fixture
def index_copy(sample_index, tmp_path) -> Path:
    """A private copy of the sample index, for tests that write to it."""
    target = tmp_path / "index"
    shutil.copytree(sample_index, target)
    return target


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under a directory with its bytes, to prove an operation changed nothing."""
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file() and p.name != ".lock"}
