"""1. ingest: SQuAD contexts through `ingest()` vs the same texts through the encoder alone."""

from __future__ import annotations

import time

from bench.common import Sizes
from bench.fixtures import write_squad_documents


class ShadowEncoder:
    """The pipeline's encoder, with the raw limit measured beside each call.

    Every `encode` the pipeline makes is also run once more, untouched by the pipeline, on the same
    texts with the same batch size: that is the raw limit, measured call by call in the same run
    (before the real call on odd calls, after it on even ones, so neither side gets the warmer
    caches). The shadow time is subtracted from the pipeline's wall time, so the pipeline figure is
    what `ingest()` costs alone. Interleaving per document keeps a burst of load from another
    process on one side only: run one after the other, the two sides differed by up to 40% here.
    """

    def __init__(self, encoder) -> None:
        self._encoder = encoder
        self.model_name, self.dimension, self.backend = encoder.model_name, encoder.dimension, encoder.backend
        self.calls = 0
        self.inside = [0.0, 0.0]  # wall, CPU seconds inside the pipeline's own encode calls
        self.shadow = [0.0, 0.0]  # wall, CPU seconds of the raw (shadow) encodes
        self.texts: list[str] = []

    def _timed(self, texts, batch_size, into):
        wall, cpu = time.perf_counter(), time.process_time()
        vectors = self._encoder.encode(texts, batch_size=batch_size)
        into[0] += time.perf_counter() - wall
        into[1] += time.process_time() - cpu
        return vectors

    def encode(self, texts, batch_size: int = 32):
        self.calls += 1
        self.texts += list(texts)
        if self.calls % 2:
            self._timed(texts, batch_size, self.shadow)
        vectors = self._timed(texts, batch_size, self.inside)
        if not self.calls % 2:
            self._timed(texts, batch_size, self.shadow)
        return vectors


def bench_ingest(ctx: dict, sizes: Sizes) -> dict:
    from embeddings.encoders import get_encoder
    from embeddings.index import Index, vector_texts
    from embeddings.ingest import IngestOptions, ingest

    settings = ctx["settings"]
    started = time.perf_counter()
    encoder = get_encoder(settings.model.ingest_backend, settings.model.max_seq_length)
    load_s = time.perf_counter() - started
    paths = write_squad_documents(ctx["work"] / "squad", sizes.ingest_titles)
    index_dir = ctx["work"] / "squad-index"
    # Warm the model up on real chunk lengths (allocator, kernels) before anything is timed.
    encoder.encode([paths[0].read_text(encoding="utf-8")[:800]] * settings.model.batch_size)
    shadow = ShadowEncoder(encoder)
    t, cpu = time.perf_counter(), time.process_time()
    result = ingest(paths, index_dir, IngestOptions.from_settings(settings), encoder_factory=lambda: shadow,
                    rebuild=True)
    pipeline = time.perf_counter() - t - shadow.shadow[0]
    pipeline_cpu = time.process_time() - cpu - shadow.shadow[1]
    raw, raw_cpu = shadow.shadow

    index = Index.load(index_dir)
    stored = vector_texts(index)
    assert sorted(stored) == sorted(shadow.texts), "the encoder saw other texts than the index's chunks"
    chunks = result.chunks_total
    ner = bench_ner(paths, pipeline_cpu)
    ctx["squad_index"] = index_dir
    ctx["squad_chunk_vectors"] = index.vectors(range(len(index)))
    return {
        "documents": len(paths), "chunks": chunks, "backend": encoder.backend, "model_load_s": round(load_s, 2),
        "encode_calls": shadow.calls,
        "pipeline_s": round(pipeline, 2), "pipeline_chunks_per_s": round(chunks / pipeline, 2),
        "raw_s": round(raw, 2), "raw_chunks_per_s": round(chunks / raw, 2),
        "ratio": round(raw / pipeline, 3),
        # Cross-checks: the same ratio in CPU time of this process, and the share of the pipeline's
        # time spent inside its own encode calls (1 - share = chunking, BM25, saving, ...).
        "ratio_cpu": round(raw_cpu / pipeline_cpu, 3),
        "encode_share_in_pipeline": round(shadow.inside[0] / pipeline, 3),
        "overhead_s": round(pipeline - shadow.inside[0], 2),
        "pipeline_cpu_s": round(pipeline_cpu, 2),
        "ner": ner,
    }


def bench_ner(paths, pipeline_cpu: float) -> dict:
    """The entity tagging `ingest()` ran, timed alone on the same paragraphs (the model is loaded
    already: `ingest()` loaded it), and its share of the pipeline's CPU time."""
    from embeddings.documents import load_document
    from embeddings.entities import tag_paragraphs

    texts = [load_document(p, max_bytes=1 << 30).text for p in paths]
    cpu = time.process_time()
    for text in texts:
        tag_paragraphs(text)
    cpu = time.process_time() - cpu
    words = sum(len(t.split()) for t in texts)
    return {"paragraphs": sum(len([p for p in t.split("\n") if p.strip()]) for t in texts), "words": words,
            "cpu_s": round(cpu, 2), "words_per_cpu_s": round(words / cpu), "share_of_pipeline_cpu": round(cpu / pipeline_cpu, 3)}
