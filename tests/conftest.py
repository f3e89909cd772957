"""Shared fixtures: a real index of the bundled article, built once per test session with the
real model, and a real `Answerer` over it; and, for fast unit tests, a tiny deterministic encoder.

Tests come in two tiers. `make test-fast` (``pytest -m "not slow"``) runs the unit tier in under
a minute: synthetic signals, hits and sentences, the fake encoder, FAISS and BM25 in memory.
`make test` runs the whole suite, as CI does, adding the integration tier (``slow``): the real
model and spaCy's NER at ingest, the Slack app over real HTTP and websockets, `qabot` processes, kill
trials, a new venv. A test joins the integration tier by asking for one of the
`INTEGRATION_FIXTURES` below (marked here, so no test can forget it) or by its own
``@pytest.mark.slow``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# The Slack Web API stand-in's fixtures (`standin`, `slack_settings`, `make_bot`), for every test
# module: pytest finds fixtures imported into conftest, so no module has to import them itself.
from .slack_requests import make_bot, slack_settings  # noqa: F401 (a fixture: pytest finds it here)
from .slack_standin import standin  # noqa: F401 (a fixture: pytest finds it here)
# The LLM stand-in (an OpenAI-compatible server on 127.0.0.1; milliseconds, so not integration).
from .llm_standin import llm_standin  # noqa: F401 (a fixture: pytest finds it here)
# A real redis-server on a free port, for the shared-state tests (`redis_server`, `redis_url`).
from .redis_server import own_redis, redis_server, redis_url  # noqa: F401 (a fixture: pytest finds it here)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "data" / "articles"
SAMPLE = SAMPLE_DIR / "ryabkov-2022-01-06.txt"
SHARED_EVAL = ROOT.parent / "shared" / "eval"
# A small evaluation set in the same format, shipped with the tests (its README: what and whence).
MINI_EVAL = ROOT / "tests" / "fixtures" / "squad-mini"


@pytest.fixture(scope="session")
def settings():
    from bot.settings import load_settings

    return load_settings(environ={})


def build_index(paths, index_dir: Path, settings, **kwargs):
    """Ingest with the configured (real) encoder; the same call `qabot ingest` makes."""
    from embeddings.ingest import IngestOptions, ingest

    return ingest(list(paths), index_dir, IngestOptions.from_settings(settings), **kwargs)


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory, settings) -> Path:
    index_dir = tmp_path_factory.mktemp("sample") / "index"
    build_index([SAMPLE], index_dir, settings)
    return index_dir


@pytest.fixture(scope="session")
def answerer(sample_index, settings):
    from bot.answering.answerer import Answerer

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


# --- a fake encoder for unit tests ----------------------------------------------------------

FAKE_DIMENSION = 384  # the real model's, so fake vectors fit every index and store unchanged
_WORD = re.compile(r"\w+")


class HashEncoder:
    """A deterministic stand-in for all-MiniLM-L6-v2 in unit tests: no model, no import cost.

    Each lower-cased word is hashed to one of 384 dimensions with a sign, the counts are summed and
    the vector L2-normalised, so texts that share words have a positive cosine and identical texts
    a cosine of 1. It knows nothing of meaning: tests that judge answer quality use the real model.
    """

    model_name = "fake-hash-384"
    dimension = FAKE_DIMENSION
    backend = "fake"

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                digest = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                vectors[row, digest % self.dimension] += 1.0 if digest >> 63 else -1.0
            norm = float(np.linalg.norm(vectors[row]))
            if norm == 0.0:  # no words: a fixed unit vector, so every row stays normalised
                vectors[row, 0], norm = 1.0, 1.0
            vectors[row] /= norm
        return vectors


@pytest.fixture(scope="session")
def fake_encoder() -> HashEncoder:
    return HashEncoder()


# Fixtures that bring in the real model or a real server: a test that asks for one is in the
# integration tier (`slow`) whatever its own marks say.
INTEGRATION_FIXTURES = frozenset({"sample_index", "answerer", "index_copy", "standin", "make_bot",
                                  "slack_settings"})


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
