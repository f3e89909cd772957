"""The report: a verdict per target and the markdown table."""

from __future__ import annotations

from bench.sections.milvus import RAM_QUESTIONS

TARGETS = {  # key: (description, comparison, threshold)
    "ingest_ratio": ("ingest >= 0.9 x raw encoding", ">=", 0.9),
    "langchain_speedup_cpu": ("ingest >= 2 x faster than LangChain's pipeline (CPU time)", ">=", 2.0),
    "langchain_answer_speedup": ("warm answer p50 >= 2 x faster than LangChain's FAISS retriever", ">=", 2.0),
    "query_ratio_p50": ("warm query p50 <= 1.5 x raw", "<=", 1.5),
    "article_answer_p50_ms": ("whole answer p50 <= 40 ms (bundled article)", "<=", 40.0),
    "cold_ask_s": ("cold `qabot ask` <= 0.5 s (bundled article)", "<=", 0.5),
    "cold_ask_squad_s": ("cold `qabot ask` <= 0.6 s (SQuAD index)", "<=", 0.6),
    "first_answer_ratio": ("first answer of a process <= 3 x its warm p50", "<=", 3.0),
    "slack_p50_ms": ("Slack event -> chat.postMessage p50 < 50 ms", "<", 50.0),
    "scale_1m_memory_gb": ("1M chunks: index memory < 1 GB", "<", 1.0),
    "scale_1m_search_p50_ms": ("1M chunks: search p50 < 5 ms", "<", 5.0),
    "scale_1m_recall10": ("1M chunks: recall@10 >= 0.95", ">=", 0.95),
    "report_10k_s": ("`qabot report` on 10,000 recorded questions < 5 s", "<", 5.0),
    "collection_hit_points": ("5% collection: hit@10 within 1 point of its own index", "<=", 1.0),
    "collection_p50_ratio": ("5% collection: filtered search p50 <= 2 x unfiltered", "<=", 2.0),
}


def verdicts(results: dict) -> dict:
    got = {}
    ingest, query, cold = results.get("ingest"), results.get("query"), results.get("cold")
    slack, scale = results.get("slack"), results.get("scale")
    if isinstance(ingest, dict) and "ratio" in ingest:
        got["ingest_ratio"] = ingest["ratio"]
    lc = results.get("langchain")
    if isinstance(lc, dict) and "speedup_cpu" in lc:
        got["langchain_speedup_cpu"] = lc["speedup_cpu"]
        if "answers" in lc:
            got["langchain_answer_speedup"] = lc["answers"]["speedup_p50"]
    if isinstance(query, dict) and "warm_pass" in query:
        got["query_ratio_p50"] = query["warm_pass"]["ratio_p50"]
        got["article_answer_p50_ms"] = query["article"]["p50_ms"]
    if isinstance(cold, dict) and "qabot_ask" in cold:
        got["cold_ask_s"] = cold["qabot_ask"]["wall_s_p50"]
        if "qabot_ask_squad" in cold:
            got["cold_ask_squad_s"] = cold["qabot_ask_squad"]["wall_s_p50"]
        if "first_answer" in cold:
            got["first_answer_ratio"] = cold["first_answer"]["ratio"]
    if isinstance(slack, dict) and "p50_ms" in slack:
        got["slack_p50_ms"] = slack["p50_ms"]
    if isinstance(scale, dict) and "1000000" in scale.get("sizes", {}):
        big = scale["sizes"]["1000000"]
        got["scale_1m_memory_gb"] = round(big["loaded_rss_mb"] / 1000, 3)
        got["scale_1m_search_p50_ms"] = big["search"]["p50_ms"]
        got["scale_1m_recall10"] = big["recall_at_10"]
    report = results.get("report")
    if isinstance(report, dict) and "wall_s_p50" in report:
        got["report_10k_s"] = report["wall_s_p50"]
    co = results.get("collections")
    if isinstance(co, dict) and "collections" in co:
        got["collection_hit_points"] = co["collections"]["small"]["hit_points_below_alone"]
        got["collection_p50_ratio"] = co["collections"]["small"]["p50_ratio"]
    out = {}
    for key, (text, op, limit) in TARGETS.items():
        if key not in got:
            continue
        value = got[key]
        met = {">=": value >= limit, "<=": value <= limit, "<": value < limit}[op]
        out[key] = {"target": text, "value": value, "met": bool(met)}
    return out


def table(results: dict) -> str:
    """The results as a markdown table (also printed)."""
    m = results["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GiB, Python {m['python']}, "
             f"load average {m['load_average_start']} at start, {m.get('load_average_end')} at end; "
             f"{'QUICK' if results['quick'] else 'full'} run, {results['total_s']:.0f} s.",
             "",
             "| measure | qabot | raw limit / reference | ratio | target | met |",
             "|---|---|---|---|---|---|"]
    v = results["verdicts"]

    def mark(key):
        return ("yes" if v[key]["met"] else "**no**") if key in v else "–"

    def row(*cells):
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")

    i = results.get("ingest")
    if isinstance(i, dict) and "ratio" in i:
        row(f"ingest, {i['chunks']} SQuAD chunks ({i['backend']})", f"{i['pipeline_chunks_per_s']} chunks/s",
            f"{i['raw_chunks_per_s']} chunks/s encoder alone", f"{i['ratio']} (CPU time: {i['ratio_cpu']}; "
            f"encoder share of the pipeline: {i['encode_share_in_pipeline']})", "≥ 0.9", mark("ingest_ratio"))
        if "ner" in i:
            n = i["ner"]
            row(f"NER at ingest (en_core_web_sm, its NER component), {n['paragraphs']} paragraphs / {n['words']} words",
                f"{n['cpu_s']} CPU-s ({n['words_per_cpu_s']} words/CPU-s)",
                f"pipeline {i['pipeline_cpu_s']} CPU-s", f"{n['share_of_pipeline_cpu']} of the pipeline's CPU",
                "", "")
    lc = results.get("langchain")
    if isinstance(lc, dict) and "speedup_cpu" in lc:
        a, b = lc["qabot"], lc["langchain"]
        row(f"ingest of {lc['documents']} SQuAD articles vs LangChain (1000/200 + FAISS), {lc['rounds']} "
            f"rounds, qabot {a['chunks']} chunks / {a['tokens']} tokens ({lc['backend']}), LangChain "
            f"{b['chunks']} / {b['tokens']}", f"{a['cpu_s']} CPU-s, {a['wall_s']} s wall",
            f"{b['cpu_s']} CPU-s, {b['wall_s']} s wall", f"{lc['speedup_cpu']}× faster in CPU time, "
            f"{lc['speedup_wall']}× in wall time", "≥ 2× (CPU)", mark("langchain_speedup_cpu"))
        if "answers" in lc:
            w = lc["answers"]
            cpu = w.get("cpu_ms", {})
            row(f"warm answer p50 / p95, {w['questions']} SQuAD questions in blocks of {w.get('block', 1)}: "
                "qabot's whole answer vs LangChain's FAISS retriever (top 4 chunks, no answer)",
                f"{w['qabot']['p50_ms']} / {w['qabot']['p95_ms']} ms ({cpu.get('qabot', '?')} CPU-ms an answer)",
                f"{w['langchain_retriever']['p50_ms']} / {w['langchain_retriever']['p95_ms']} ms "
                f"({cpu.get('langchain', '?')} CPU-ms)",
                f"{w['speedup_p50']}× faster (p50)", "≥ 2×", mark("langchain_answer_speedup"))
    elif isinstance(lc, dict) and "skipped" in lc:
        row("ingest vs LangChain", lc["skipped"], "", "", "", "")
    q = results.get("query")
    if isinstance(q, dict) and "warm_pass" in q:
        for label, key in (("first pass", "first_pass"), ("warm pass", "warm_pass")):
            p = q[key]
            row(f"query p50 / p95, {q['questions']} SQuAD questions, {label}",
                f"{p['p50_ms']} / {p['p95_ms']} ms", f"{q['raw']['p50_ms']} / {q['raw']['p95_ms']} ms "
                "encode + dense + BM25", f"{p['ratio_p50']} / {p['ratio_p95']}",
                "≤ 1.5 (p50)" if key == "warm_pass" else "", mark("query_ratio_p50") if key == "warm_pass" else "")
        if "serve_warm_up" in q:
            w = q["serve_warm_up"]
            row("`Answerer.warm()` (what `serve` runs in the background)",
                f"{w['seconds']} s for {w['sentences']} sentences", "", "", "", "")
        a = q["article"]
        row("whole answer p50 / p95, bundled article", f"{a['p50_ms']} / {a['p95_ms']} ms",
            f"{a['raw']['p50_ms']} / {a['raw']['p95_ms']} ms", a["ratio_p50"], "≤ 40 ms", mark("article_answer_p50_ms"))
    c = results.get("cold")
    if isinstance(c, dict) and "qabot_ask" in c:
        ref = f"python {c['python']['wall_s_p50']} s; ML imports {c['ml_imports']['wall_s_p50']} s"
        if "torch_import" in c:
            ref += f"; torch import {c['torch_import']['wall_s_p50']} s"
        row("cold `qabot ask` (new process), bundled article", f"{c['qabot_ask']['wall_s_p50']} s, peak RSS "
            f"{c['qabot_ask']['peak_rss_mib']} MiB", ref, f"{c['ratio_vs_python']}× python, {c['ratio_vs_ml_imports']}× ML imports",
            "≤ 0.5 s", mark("cold_ask_s"))
        if "qabot_ask_squad" in c:
            sq = c["qabot_ask_squad"]
            row("cold `qabot ask`, SQuAD index (the ingest section's articles)", f"{sq['wall_s_p50']} s, peak RSS "
                f"{sq['peak_rss_mib']} MiB", "", "", "≤ 0.6 s", mark("cold_ask_squad_s"))
        if "qabot_ask_uncached" in c:
            row("first cold `qabot ask` of a machine (no optimised model cached; builds and saves it)",
                f"{c['qabot_ask_uncached']['wall_s_p50']} s", "", "", "", "")
        if "phases_ms" in c:
            row("cold `qabot ask` phases, median ms (share)", ", ".join(
                f"{n} {v} ({c['phase_share'][n]:.0%})" for n, v in c["phases_ms"].items()),
                f"encoder build on its own thread {c.get('encoder_build_ms', '?')} ms (overlaps the phases "
                "from numpy_and_start to encoder_wait)", "", "", "")
            f = c["first_answer"]
            row("first answer of a process vs its warm p50 (bundled article)", f"{f['first_ms']} ms "
                f"(stages {f['first_stages_ms']})", f"{f['warm_p50_ms']} ms warm (stages {f['warm_stages_ms']})",
                f"{f['ratio']}×", "≤ 3×", mark("first_answer_ratio"))
    s = results.get("slack")
    if isinstance(s, dict) and "p50_ms" in s:
        row(f"Slack event → chat.postMessage, {s['events']} events", f"{s['p50_ms']} / {s['p95_ms']} ms",
            f"HTTP ack {s['ack']['p50_ms']} ms", "", "< 50 ms p50", mark("slack_p50_ms"))
    sc = results.get("scale")
    if isinstance(sc, dict) and "sizes" in sc:
        for n, r in sc["sizes"].items():
            big = n == "1000000"
            row(f"{int(n):,} chunks: {r['index_type']} {r['params'] or ''}",
                f"search p50 {r['search']['p50_ms']} ms, recall@10 {r['recall_at_10']}, "
                f"{r['loaded_rss_mb']} MB loaded, build {r['build_s']} s",
                f"exact flat: {r['exact_flat']['p50_ms']} ms, {r['exact_flat']['memory_mb']} MB", "",
                "< 5 ms, ≥ 0.95, < 1 GB" if big else "",
                " / ".join(mark(k) for k in ("scale_1m_search_p50_ms", "scale_1m_recall10", "scale_1m_memory_gb"))
                if big else "")
    mv = results.get("milvus")
    if isinstance(mv, dict) and "sides" in mv:
        faiss_name = next(name for name in mv["sides"] if name.startswith("faiss"))
        for name, r in mv["sides"].items():
            ref = mv["sides"][faiss_name]
            row(f"{mv['chunks']:,} chunks: {name}", f"ingest {r['ingest_chunks_per_s']:,} chunks/s, search "
                f"{r['search']['p50_ms']} / {r['search']['p95_ms']} ms, recall@10 {r['recall_at_10']}",
                "" if name == faiss_name else f"FAISS: {ref['ingest_chunks_per_s']:,} chunks/s, "
                f"{ref['search']['p50_ms']} ms", "" if name == faiss_name else
                f"{round(r['search']['p50_ms'] / max(ref['search']['p50_ms'], 1e-3), 1)}× search", "", "")
        ram = mv.get("ram") or {}
        if "faiss" in ram and "milvus-lite" in ram:
            f, m = ram["faiss"], ram["milvus-lite"]

            def held(r: dict) -> float:
                return r["python_bytes_a_chunk_after_searches"] + r["native_vector_bytes_a_chunk"]

            row(f"{mv['chunks']:,} chunks: bot RAM a chunk after load (+{RAM_QUESTIONS} searches)",
                f"milvus-lite {m['python_bytes_a_chunk_after_load']} B ({held(m)} B), keyword files "
                f"{m['keyword_files_on_disk_bytes'] / 2**20:.1f} MB (memory-mapped)",
                f"FAISS {f['python_bytes_a_chunk_after_load']} B + vectors {f['native_vector_bytes_a_chunk']} B "
                f"({held(f)} B), bm25s {f['keyword_files_on_disk_bytes'] / 2**20:.1f} MB",
                f"{round(held(f) / max(held(m), 1e-3), 1)}× less on Milvus", "", "")
    r = results.get("report")
    if isinstance(r, dict) and "wall_s_p50" in r:
        row(f"`qabot report --json`, {r['records']:,} recorded questions ({r['gaps']:,} gaps → {r['groups']} groups)",
            f"{r['wall_s_p50']} s p50, CPU {r.get('cpu_s_p50')} s (`--html`: {r['html_s']} s)", f"embedding the gaps at report time instead: "
            f"+{r['embed_gaps_at_report_s']} s", "", "< 5 s", mark("report_10k_s"))
        row("recording one question (embedding it once, SQLite write)", f"{r['record_ms_p50']} / "
            f"{r['record_ms_p95']} ms p50 / p95", "after the reply is posted", "", "", "")
    co = results.get("collections")
    if isinstance(co, dict) and "collections" in co:
        for name, c in co["collections"].items():
            f = c["filtered"]
            alone = c.get("alone")
            row(f"{co['chunks']:,} chunks ({co['index_type']}): collection {name}, {c['rows']:,} rows",
                f"filtered p50 {f['p50_ms']} ms, hit@10 {f['hit_at_10']}, recall@10 {f['recall_at_10']}, "
                f"{c['outside']} results outside",
                f"unfiltered p50 {co['unfiltered']['p50_ms']} ms" + (
                    f"; alone ({alone['index_type']}): hit@10 {alone['hit_at_10']}, recall@10 {alone['recall_at_10']}"
                    if alone else ""),
                f"{c['p50_ratio']}× p50, {c['hit_points_below_alone']} points" if alone else "",
                "≤ 2×, ≤ 1 point" if alone else "",
                " / ".join(mark(k) for k in ("collection_p50_ratio", "collection_hit_points")) if alone else "")
    for name, error in results.get("errors", {}).items():
        row(f"{name}: FAILED", error.splitlines()[-1][:120], "", "", "", "")
    return "\n".join(lines)
