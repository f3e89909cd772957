"""Synthetic chunk vectors for the scale benchmark, built from real sentence embeddings.

Embedding a million texts with MiniLM on 2 cores would take hours, so the scale benchmark embeds a
few thousand real sentences (the SQuAD paragraphs split into sentences, and SQuAD questions) and
makes each synthetic "chunk" the way a real chunk's embedding arises: from several sentences on
one topic. A chunk vector is

    normalise( sum_i w_i * e_i  +  sigma * noise )

where e_1 is a random base sentence, e_2..e_m (m = 1..5) are drawn from its 32 nearest base
sentences (same topic, like the sentences of one passage), the weights w_i are uniform in
[0.5, 1.5], and the noise is a small Gaussian (sigma = 0.1 of a unit vector's length) that makes
every vector distinct. Queries are real question embeddings that are not part of the base.

`realism()` compares the synthetic cloud with real chunk embeddings (the SQuAD chunks that the
ingest benchmark embeds) on two statistics that drive approximate-search difficulty: the cosine
to the nearest neighbour and the mean cosine between random pairs.
"""

from __future__ import annotations

import re

import numpy as np

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def split_sentences(paragraphs: list[str], min_words: int = 4) -> list[str]:
    """A cheap regex sentence split: good enough to get varied real sentences to embed."""
    out = []
    for paragraph in paragraphs:
        for sentence in _SENTENCE_END.split(paragraph):
            sentence = sentence.strip()
            if len(sentence.split()) >= min_words:
                out.append(sentence)
    return list(dict.fromkeys(out))


def neighbours(base: np.ndarray, k: int = 32) -> np.ndarray:
    """Row indices of each base vector's `k` nearest other base vectors (cosine)."""
    sims = base @ base.T
    np.fill_diagonal(sims, -np.inf)
    k = min(k, len(base) - 1)
    return np.argpartition(-sims, k, axis=1)[:, :k]


def synthetic_chunks(base: np.ndarray, n: int, seed: int = 0, sigma: float = 0.1,
                     max_members: int = 6, block: int = 100_000) -> np.ndarray:
    """`n` distinct, normalised float32 vectors mixed from topic-coherent groups of base vectors."""
    rng = np.random.default_rng(seed)
    near = neighbours(base)
    dim = base.shape[1]
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, block):
        size = min(block, n - start)
        anchors = rng.integers(0, len(base), size)
        members = rng.integers(1, max_members + 1, size)  # sentences besides the anchor: 1..max-1
        vectors = base[anchors] * rng.uniform(0.5, 1.5, (size, 1)).astype(np.float32)
        for slot in range(max_members - 1):
            picks = near[anchors, rng.integers(0, near.shape[1], size)]
            weight = rng.uniform(0.5, 1.5, (size, 1)).astype(np.float32) * (members > slot + 1)[:, None]
            vectors += base[picks] * weight
        noise = rng.standard_normal((size, dim), dtype=np.float32)
        vectors += sigma * np.sqrt(members)[:, None].astype(np.float32) * noise / np.sqrt(dim)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        out[start:start + size] = vectors
    return out


def realism(real: np.ndarray, synthetic: np.ndarray, seed: int = 0, sample: int = 1000) -> dict:
    """Nearest-neighbour and random-pair cosine statistics of real vs synthetic chunk vectors.

    Both are computed within an equally sized sample of each set, so density is comparable.
    """
    rng = np.random.default_rng(seed)
    size = min(sample, len(real), len(synthetic))

    def stats(vectors: np.ndarray) -> dict:
        pick = vectors[rng.choice(len(vectors), size, replace=False)]
        sims = pick @ pick.T
        pairs = sims[np.triu_indices(size, 1)]
        np.fill_diagonal(sims, -np.inf)
        nearest = sims.max(axis=1)
        return {"nn_cosine_p50": round(float(np.median(nearest)), 3),
                "pair_cosine_mean": round(float(pairs.mean()), 3),
                "pair_cosine_p99": round(float(np.quantile(pairs, 0.99)), 3)}

    return {"sample": size, "real_chunks": stats(real), "synthetic": stats(synthetic)}
