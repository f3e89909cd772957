"""7. collections: a search limited to one collection, inside the search, on a synthetic index.

The scale section's synthetic chunk vectors (100k; QUICK: 20k, with the store's IVF threshold
lowered so that the same IVF-SQ8 path runs, in seconds), each row given to a collection: "small" holds a random 5% of the rows, "large" 30%, the rest "other". Searched through
`Index.search_dense` as the answerer searches (IVF-SQ8 at these sizes), with and without the
collection, the same queries interleaved; and an index built from the small collection's vectors
alone (exact at that size) as the reference the filtered search should match. Truth is the exact
top-10 within the collection (float vectors). A random 5% is the hard case for an inverted file:
its rows are spread over every list.
"""

from __future__ import annotations

import time

import numpy as np

from bench.common import Sizes, log, ms

SHARES = {"small": 0.05, "large": 0.30}
SEED = 11
FULL_CHUNKS = 100_000
QUICK_CHUNKS = 20_000  # with flat_max lowered below it: IVF-SQ8, as at 100k


def _index(vectors: np.ndarray, owners: list[tuple[str, ...]], flat_max: int | None = None):
    from embeddings.chunk_record import ChunkRecord
    from embeddings.index import Index
    from embeddings.vectors import FLAT_MAX_CHUNKS, FaissStore

    store = FaissStore(vectors.shape[1], flat_max=flat_max or FLAT_MAX_CHUNKS)
    index = Index("synthetic", vectors.shape[1], chunk_words=120, sentence_overlap=1, store=store)
    records = [ChunkRecord(f"d{i}#0", f"d{i}", 0, 0, 1, ".", ((0, 1),), None, owned) for i, owned in enumerate(owners)]
    index.add_records(records, ["."] * len(records), vectors)
    return index


def _scores(found: list[np.ndarray], truth: np.ndarray) -> dict:
    """recall@10 against the exact top-10, and hit@10: the exact nearest row among the ten found."""
    recall = np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)])
    hit = np.mean([t[0] in set(f) for f, t in zip(found, truth)])
    return {"recall_at_10": round(float(recall), 4), "hit_at_10": round(float(hit), 4)}


def bench_collections(ctx: dict, sizes: Sizes) -> dict:
    from bench.sections.scale import embed_scale_base
    from bench.synthetic import synthetic_chunks

    base, queries = embed_scale_base(ctx, sizes)
    n = FULL_CHUNKS if FULL_CHUNKS in sizes.scale else QUICK_CHUNKS
    flat_max = None if n == FULL_CHUNKS else n // 4
    log(f"collections: {n:,} synthetic chunks, a {SHARES['small']:.0%} and a {SHARES['large']:.0%} collection")
    vectors = synthetic_chunks(base, n)
    draw = np.random.default_rng(SEED).random(n)
    owners = [("small",) if d < SHARES["small"] else ("large",) if d < SHARES["small"] + SHARES["large"]
              else ("other",) for d in draw]
    index = _index(vectors, owners, flat_max)
    result: dict = {"chunks": n, "queries": len(queries), "index_type": index.store.manifest()["index_type"],
                    "collections": {}}
    unfiltered: list[float] = []
    for name in SHARES:
        rows = np.flatnonzero([o == (name,) for o in owners])
        exact = vectors[rows] @ queries.T
        truth = rows[np.argsort(-exact, axis=0)[:10].T]
        t = time.perf_counter()
        index.search_dense(queries[0], 10, scope=index.scope([name]))  # builds what the scope keeps
        first_ms = (time.perf_counter() - t) * 1000
        times, found = [], []
        for q in queries:  # interleaved: both sides see the same machine load
            t = time.perf_counter()
            index.search_dense(q, 10)
            unfiltered.append(time.perf_counter() - t)
            t = time.perf_counter()
            hits = index.search_dense(q, 10, scope=index.scope([name]))
            times.append(time.perf_counter() - t)
            found.append(np.asarray([h.row for h in hits]))
        entry = {"rows": len(rows), "first_query_ms": round(first_ms, 2), "filtered": {**ms(times), **_scores(found, truth)},
                 "outside": int(sum(not set(f) <= set(rows) for f in found))}
        if name == "small":
            alone = _index(vectors[rows], [(name,)] * len(rows))
            alone_found = [rows[[h.row for h in alone.search_dense(q, 10)]] for q in queries]
            entry["alone"] = {"index_type": alone.store.manifest()["index_type"], **_scores(alone_found, truth)}
        result["collections"][name] = entry
    result["unfiltered"] = ms(unfiltered)
    small = result["collections"]["small"]
    small["hit_points_below_alone"] = round(100 * (small["alone"]["hit_at_10"] - small["filtered"]["hit_at_10"]), 2)
    small["p50_ratio"] = round(small["filtered"]["p50_ms"] / max(result["unfiltered"]["p50_ms"], 1e-6), 2)
    return result
