"""6. milvus: the Milvus store (milvus-lite, in-process) beside FAISS on the same synthetic chunks,
in the same run: ingest rate, single-query search p50/p95 (interleaved query by query), and
recall@10 against exact search; and the bot's RAM a chunk after `Index.load` on each backend (the
same synthetic chunks as full records: FAISS holds texts, bm25s matrix and vectors, Milvus a key
and a document number a row plus its memory-mapped term table)."""

from __future__ import annotations

import gc
import mmap
import sys
import time
from pathlib import Path
from types import BuiltinFunctionType, FunctionType, ModuleType

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


CHUNKS_A_DOCUMENT = 100  # synthetic documents for the RAM measurement (their count matters little)
RAM_QUESTIONS = 50  # keyword + dense searches run on each loaded index before the second reading


def synthetic_index(store, vectors: np.ndarray, texts: list[str]):
    """An `Index` on `store` holding the bench's chunks as full records (documents of
    CHUNKS_A_DOCUMENT chunks, three sentences a chunk), vectors given, nothing embedded."""
    from embeddings.index import ChunkRecord, DocumentInfo, Index

    index = Index("bench-synthetic", vectors.shape[1], 120, 1, store=store)
    records = []
    for i, text in enumerate(texts):
        doc, third = f"doc{i // CHUNKS_A_DOCUMENT}", len(text) // 3
        records.append(ChunkRecord(f"{doc}#{i % CHUNKS_A_DOCUMENT}", doc, i % CHUNKS_A_DOCUMENT, 0, len(text), text,
                                   ((0, third), (third, 2 * third), (2 * third, len(text)))))
    for d in range(0, len(texts), CHUNKS_A_DOCUMENT):
        doc = f"doc{d // CHUNKS_A_DOCUMENT}"
        index.documents[doc] = DocumentInfo(doc, f"Document {doc}", f"/bench/{doc}.txt", None, doc,
                                            min(CHUNKS_A_DOCUMENT, len(texts) - d))
    index.add_records(records, [Index.embedding_text(f"Document {r.doc_id}", r.text) for r in records], vectors)
    return index


def milvus_side(vectors: np.ndarray, texts: list[str], work, index_type: str) -> tuple[object, float]:
    """Ingest the chunks into a Milvus-backed index (entities with their records), timed to the
    flush; then save the index (its term table) untimed, for the RAM measurement."""
    from embeddings.milvus import MilvusConfig, MilvusStore

    config = MilvusConfig(str(work / f"bench-milvus-{index_type.lower()}.db"), f"bench_{index_type.lower()}", index_type)
    t = time.perf_counter()
    store = MilvusStore(config, work, vectors.shape[1])
    index = synthetic_index(store, vectors, texts)
    store.client.flush(config.collection)
    seconds = time.perf_counter() - t
    index.save(work / f"bench-index-milvus-{index_type.lower()}")
    return store, seconds


def _disk_bytes(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (0 when absent)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def held_bytes(root: object) -> int:
    """Bytes of every Python object reachable from `root` (numpy arrays with the data they own;
    a memory-mapped array owns none), each counted once. Not followed: classes, modules,
    functions, and the Milvus client (one connection a process, its size does not grow with the
    index); milvus-lite's own segments, which a deployment keeps in the Milvus server and
    milvus-lite keeps in this process, are reachable only through that client."""
    seen: set[int] = set()
    buffers: set[int] = set()  # arrays whose data is counted
    stack, total = [root], 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (type, ModuleType, FunctionType, BuiltinFunctionType)) \
                or type(obj).__name__ == "MilvusClient":
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):  # a view shows only its header: count the buffer's owner once
            owner = obj
            while isinstance(owner.base, np.ndarray):
                owner = owner.base
            total += sys.getsizeof(obj) - (obj.nbytes if obj.flags.owndata else 0)
            mapped = isinstance(owner, np.memmap) or isinstance(owner.base, mmap.mmap)
            if id(owner) not in buffers and owner.flags.owndata and not mapped:
                buffers.add(id(owner))
                total += owner.nbytes
            continue
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def ram_after_load(directory: Path, queries: np.ndarray, questions: list[str]) -> dict:
    """Python objects an `Index` holds once `Index.load` returns (chunk records, bm25s arrays,
    key and document maps, caches), again after RAM_QUESTIONS searches, plus the FAISS
    vectors' native bytes (not Python objects), and the version folder's keyword files on disk."""
    from embeddings.index import BM25_DIR, Index
    from embeddings.storage import current_version
    from embeddings.term_stats import DIRECTORY

    index = Index.load(directory)
    loaded = held_bytes(index)
    for q, text in zip(queries[:RAM_QUESTIONS], questions):
        index.search(10, text=text, vector=q)
        for term in index.keyword.query_tokens(text):
            index.keyword.idf(term)
    used = held_bytes(index)
    native = getattr(index.store, "_faiss", None)
    native_bytes = int(native.code_size * native.ntotal) if native is not None and hasattr(native, "code_size") \
        else 0
    version = current_version(directory)
    n = len(index)
    return {"python_bytes_a_chunk_after_load": round(loaded / n, 1),
            "python_bytes_a_chunk_after_searches": round(used / n, 1),
            "native_vector_bytes_a_chunk": round(native_bytes / n, 1),
            "keyword_files_on_disk_bytes": _disk_bytes(version / BM25_DIR) + _disk_bytes(version / DIRECTORY),
            "chunk_files_on_disk_bytes": _disk_bytes(version / "chunks.jsonl")}


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
    result = {"chunks": n, "queries": len(queries), "sides": {}, "ram": {}}
    for name, (_, seconds) in sides.items():
        recall = float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found[name], truth)]))
        result["sides"][name] = {"ingest_s": round(seconds, 1), "ingest_chunks_per_s": round(n / seconds),
                                 "search": ms(times[name]), "recall_at_10": round(recall, 4)}
    log(f"milvus: bot RAM after load, {n:,} chunks, FAISS and milvus-lite side by side")
    faiss_dir = ctx["work"] / "bench-index-faiss"
    synthetic_index(None, vectors, texts).save(faiss_dir)
    questions = [" ".join(t.split()[:8]) + "?" for t in texts[:RAM_QUESTIONS]]
    milvus_dir = ctx["work"] / f"bench-index-milvus-{(QUICK_INDEX_TYPES if quick else FULL_INDEX_TYPES)[-1].lower()}"
    for name, directory in (("faiss", faiss_dir), ("milvus-lite", milvus_dir)):
        result["ram"][name] = ram_after_load(directory, queries, questions)
    return result
