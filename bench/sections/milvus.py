"""6. milvus: the Milvus store (milvus-lite, in-process) beside FAISS on the same synthetic chunks,
in the same run: ingest rate, single-query search p50/p95 (interleaved query by query), and
recall@10 against exact search."""

from __future__ import annotations

import time

import numpy as np

from bench.common import log, ms

# Chunks indexed: 100k in the full run (the size), 2,000 in QUICK (CI: every code path).
FULL_CHUNKS = 100_000
QUICK_CHUNKS = 2_000
WORDS_A_TEXT = 60  # words of a chunk's BM25 text (drawn from the real sentences)
# Milvus index types: at 100k the graph index meant for large collections (milvus-lite ingests
# about 500 chunks/s, so each type costs minutes there); QUICK also runs the exact FLAT.
FULL_INDEX_TYPES = ("HNSW",)
QUICK_INDEX_TYPES = ("FLAT", "HNSW")


def chunk_texts(sentences: list[str], n: int, seed: int = 7) -> list[str]:
    """`n` texts of real words, so Milvus's BM25 function indexes something like chunks."""
    words = " ".join(sentences).split()
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, max(1, len(words) - WORDS_A_TEXT), n)
    return [" ".join(words[s:s + WORDS_A_TEXT]) for s in starts]


def faiss_side(vectors: np.ndarray, texts: list[str]) -> tuple[object, float]:
    """What a FAISS ingest builds for these chunks: the dense index of the type qabot picks, and
    the bm25s keyword index."""
    from embeddings.keyword import KeywordIndex
    from embeddings.vectors import FLAT, build_dense_index, choose_index_type, ivf_params

    kind = choose_index_type(len(vectors))
    t = time.perf_counter()
    index = build_dense_index(vectors, kind, ivf_params(len(vectors)) if kind != FLAT else {})
    KeywordIndex.build(texts)
    return (index, kind), time.perf_counter() - t


def milvus_side(vectors: np.ndarray, texts: list[str], work, index_type: str) -> tuple[object, float]:
    from embeddings.milvus import MilvusConfig, MilvusStore

    config = MilvusConfig(str(work / f"bench-milvus-{index_type.lower()}.db"), f"bench_{index_type.lower()}", index_type)
    t = time.perf_counter()
    store = MilvusStore(config, work, vectors.shape[1])
    store.add_chunks(vectors, [f"c{i}" for i in range(len(vectors))], texts)
    store.client.flush(config.collection)
    return store, time.perf_counter() - t


def bench_milvus(ctx: dict, sizes) -> dict:
    from bench.sections.scale import embed_scale_base, exact_top
    from bench.synthetic import split_sentences, synthetic_chunks
    from bench.common import CONTEXTS, load_jsonl
    from embeddings.vectors import search_one

    quick = sizes.scale[0] < FULL_CHUNKS
    n = QUICK_CHUNKS if quick else FULL_CHUNKS
    base, queries = embed_scale_base(ctx, sizes)
    vectors = synthetic_chunks(base, n)
    texts = chunk_texts(split_sentences([r["text"] for r in load_jsonl(CONTEXTS)]), n)
    truth = exact_top(vectors, queries)
    log(f"milvus: {n:,} chunks, FAISS")
    (faiss_index, kind), faiss_s = faiss_side(vectors, texts)
    sides = {f"faiss {kind}": (lambda q: search_one(faiss_index, q, 10)[1], faiss_s)}
    for index_type in QUICK_INDEX_TYPES if quick else FULL_INDEX_TYPES:
        log(f"milvus: {n:,} chunks, milvus-lite {index_type}")
        store, seconds = milvus_side(vectors, texts, ctx["work"], index_type)
        sides[f"milvus-lite {index_type}"] = (lambda q, s=store: s.search(q, 10)[1], seconds)
    times: dict[str, list[float]] = {name: [] for name in sides}
    found: dict[str, list[np.ndarray]] = {name: [] for name in sides}
    for i, q in enumerate(queries):  # interleaved, the order rotating query by query
        names = list(sides)
        for name in names[i % len(names):] + names[:i % len(names)]:
            t = time.perf_counter()
            rows = sides[name][0](q)
            times[name].append(time.perf_counter() - t)
            found[name].append(rows)
    result = {"chunks": n, "queries": len(queries), "sides": {}}
    for name, (_, seconds) in sides.items():
        recall = float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found[name], truth)]))
        result["sides"][name] = {"ingest_s": round(seconds, 1), "ingest_chunks_per_s": round(n / seconds),
                                 "search": ms(times[name]), "recall_at_10": round(recall, 4)}
    return result
