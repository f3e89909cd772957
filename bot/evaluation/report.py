"""The human-readable table `qabot eval` prints."""

from __future__ import annotations

_LABELS = [
    ("questions", "questions", "{:d}"),
    ("hit@1", "retrieval hit@1", "{:.3f}"),
    ("hit@5", "retrieval hit@5", "{:.3f}"),
    ("hit@10", "retrieval hit@10", "{:.3f}"),
    ("answer_accuracy", "answer accuracy (answer contains a gold answer)", "{:.3f}"),
    ("answer_accuracy_answered", "answer accuracy, answered questions only", "{:.3f}"),
    ("top_sentence_accuracy", "top-sentence accuracy", "{:.3f}"),
    ("answer_words_mean", "answer length, mean words", "{:.1f}"),
    ("shown_words_mean", "words shown (lead + evidence), mean", "{:.1f}"),
    ("shown_accuracy", "shown text contains a gold answer", "{:.3f}"),
    ("shown_accuracy_answered", "shown text contains a gold answer, answered only", "{:.3f}"),
    ("lead_rate", "answered questions with a lead", "{:.3f}"),
    ("lead_em", "lead exact match (answers with a lead)", "{:.3f}"),
    ("lead_f1", "lead token F1 (answers with a lead)", "{:.3f}"),
    ("highlight_rate", "questions with a highlighted span", "{:.3f}"),
    ("span_em", "highlight exact match (highlighted answers)", "{:.3f}"),
    ("span_f1", "highlight token F1 (highlighted answers)", "{:.3f}"),
    ("span_em_all", "highlight exact match (all questions)", "{:.3f}"),
    ("span_f1_all", "highlight token F1 (all questions)", "{:.3f}"),
    ("abstention_rate", "abstention rate", "{:.3f}"),
    ("latency_ms_p50", "latency p50 (ms)", "{:.1f}"),
    ("latency_ms_p95", "latency p95 (ms)", "{:.1f}"),
]


def format_report(report: dict) -> str:
    """The human-readable table `qabot eval` prints."""
    s = report["settings"]
    lines = [f"qabot eval: {report['documents']} documents, mode {s['mode']}"
             f"{' (' + s['fusion'] + ' fusion)' if s['mode'] == 'hybrid' else ''}, top_k {s['top_k']}, "
             + (f"entities {s['entities']}" if s.get("entities") else "no entities (rules' highlights)"),
             ""]
    width = max(len(label) for _, label, _ in _LABELS)
    for key, label, fmt in _LABELS:
        lines.append(f"  {label:<{width}}  {fmt.format(report['metrics'][key])}")
    llm = report.get("llm")
    if llm:
        lines += ["", f"composed answers (LLM {llm['model']}, {llm['asked']} asked):",
                  f"  composed {llm['composed']}, declined {llm['declined']}, ungrounded {llm['ungrounded']}, "
                  f"unavailable {llm['unavailable']}",
                  f"  citation validity (replies that passed the check)  {llm['citation_validity']:.3f}",
                  f"  composed answer accuracy                           {llm['composed_accuracy']:.3f}",
                  f"  composed answers citing a passage with the answer  {llm['cited_passage_has_answer']:.3f}",
                  f"  tokens per question, mean                          {llm['tokens_mean']:.1f}"]
    una = report.get("unanswerable")
    if una:
        lines += ["", f"unanswerable questions (SQuAD 2.0, same index, n={una['questions']}):",
                  f"  declined             {una['declined']:.3f}",
                  f"  answerable answered  {una['answerable_answered']:.3f}",
                  f"  balanced accuracy    {una['balanced_accuracy']:.3f}"]
    check = report.get("abstain_check")
    if check:
        lines += ["", "abstention check (index half the articles, ask every question):"]
        for name in "AB":
            c = check[name]
            lines.append(f"  split {name} ({', '.join(check['split'][name])}):")
            lines.append(f"    in-index answered      {c['in_index_answered']:.3f}  "
                         f"(n={c['in_index_questions']}, correct {c['in_index_correct']:.3f})")
            lines.append(f"    out-of-index declined  {c['out_of_index_declined']:.3f}  "
                         f"(n={c['out_of_index_questions']})")
        o = check["overall"]
        lines.append(f"  both splits: in-index answered {o['in_index_answered']:.3f}, "
                     f"out-of-index declined {o['out_of_index_declined']:.3f}")
    lines += ["", f"({report['elapsed_s']:.0f} s)"]
    return "\n".join(lines)
