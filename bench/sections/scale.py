"""5. scale: 100k / 1M synthetic chunk vectors: index build, memory, search p50, recall@10."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import CONTEXTS, QUESTIONS, Sizes, load_jsonl, log, ms


def embed_scale_base(ctx: dict, sizes: Sizes) -> tuple[np.ndarray, np.ndarray]:
    """The real sentence and question vectors synthetic chunks are made of (embedded once a run:
    the scale and milvus sections share them)."""
    if "scale_base" not in ctx:
        ctx["scale_base"] = _embed_scale_base(ctx, sizes)
    return ctx["scale_base"]


def _embed_scale_base(ctx: dict, sizes: Sizes) -> tuple[np.ndarray, np.ndarray]:
    from bench.synthetic import split_sentences
    from embeddings.encoders import get_encoder

    settings = ctx["settings"]
    encoder = get_encoder(settings.model.query_backend, settings.model.max_seq_length)
    questions = [r["question"] for r in load_jsonl(QUESTIONS)]
    queries, extra = questions[:sizes.scale_queries], questions[sizes.scale_queries:]
    texts = split_sentences([r["text"] for r in load_jsonl(CONTEXTS)]) + extra
    if sizes.scale_base:
        texts = [texts[i] for i in np.random.default_rng(0).permutation(len(texts))[:sizes.scale_base]]
    return encoder.encode(texts), encoder.encode(queries)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    scores = np.concatenate([vectors[i:i + 131_072] @ queries.T for i in range(0, len(vectors), 131_072)])
    return np.argpartition(-scores, k, axis=0)[:k].T


def index_memory_child(path: Path) -> dict:
    """Memory of the saved index once loaded, measured in a new process (RSS growth and peak)."""
    code = (
        "import json, resource, sys, faiss\n"
        "def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096\n"
        "before, peak0 = rss(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "index = faiss.read_index(sys.argv[1])\n"
        "print(json.dumps({'rss_growth': rss() - before,\n"
        "                  'peak_growth': (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak0) * 1024}))\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def search_times(index, queries: np.ndarray, k: int = 10) -> tuple[list[float], np.ndarray]:
    """Each query searched alone, the way `Index.search_dense` does it."""
    from embeddings.vectors import search_one

    times, rows = [], []
    for q in queries:
        t = time.perf_counter()
        _, found = search_one(index, q, k)
        times.append(time.perf_counter() - t)
        rows.append(found)
    return times, np.vstack(rows)


def bench_scale(ctx: dict, sizes: Sizes) -> dict:
    import faiss

    from bench.synthetic import realism, synthetic_chunks
    from embeddings.vectors import FLAT, build_dense_index, choose_index_type, ivf_params

    started = time.perf_counter()
    base, queries = embed_scale_base(ctx, sizes)
    result = {"base_texts": len(base), "queries": len(queries), "embed_base_s": round(time.perf_counter() - started, 1),
              "sizes": {}}
    for n in sizes.scale:
        log(f"scale: {n:,} synthetic chunks")
        t = time.perf_counter()
        vectors = synthetic_chunks(base, n)
        gen_s = time.perf_counter() - t
        if "squad_chunk_vectors" in ctx and "realism" not in result:
            result["realism"] = realism(ctx["squad_chunk_vectors"], vectors)
        truth = exact_top(vectors, queries)
        kind = choose_index_type(n)
        params = ivf_params(n) if kind != FLAT else {}
        t = time.perf_counter()
        index = build_dense_index(vectors, kind, params)
        build_s = time.perf_counter() - t
        times, found = search_times(index, queries)
        recall = float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, truth)]))
        path = ctx["work"] / f"scale-{n}.faiss"
        faiss.write_index(index, str(path))
        memory = index_memory_child(path)
        size_bytes = path.stat().st_size
        path.unlink()
        del index
        flat = build_dense_index(vectors, FLAT)
        flat_times, _ = search_times(flat, queries[:sizes.flat_queries])
        del flat
        result["sizes"][str(n)] = {
            "index_type": kind, "params": params, "generate_s": round(gen_s, 1), "build_s": round(build_s, 1),
            "file_mb": round(size_bytes / 1e6, 1), "loaded_rss_mb": round(memory["rss_growth"] / 1e6, 1),
            "loaded_peak_mb": round(memory["peak_growth"] / 1e6, 1),
            "search": ms(times), "recall_at_10": round(recall, 4),
            "exact_flat": {**ms(flat_times), "memory_mb": round(n * vectors.shape[1] * 4 / 1e6, 1)},
        }
        del vectors, truth
    return result
