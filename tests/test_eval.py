"""`qabot eval` on the small SQuAD set the tests ship (tests/fixtures/squad-mini: SQuAD / Wikipedia,
CC BY-SA 4.0), run as a user runs it, plus the metric definitions it relies on and `make eval`'s
check of its folder."""

from __future__ import annotations

import json
import subprocess

import pytest

from bot.answering.spans import MAX_WORDS
from bot.evaluation.data import EvalDataError, load_contexts, load_questions
from bot.evaluation.metrics import contains_answer, exact_match, f1_score, normalize_answer
from bot.evaluation.runner import split_titles
from embeddings.entities import ENTITY_MODEL

from .conftest import MINI_EVAL, ROOT
from .test_cli import run

CONTEXTS = MINI_EVAL / "squad-mini.contexts.jsonl"
QUESTIONS = MINI_EVAL / "squad-mini.questions.jsonl"
UNANSWERABLE = MINI_EVAL / "squad-mini.unanswerable.jsonl"
# The set's two articles, in file order: a real two-document index in a few seconds.
SLICE_TITLES = ("Construction", "Jacksonville,_Florida")
METRICS = {"questions", "hit@1", "hit@5", "hit@10", "answer_accuracy", "answer_accuracy_answered",
           "top_sentence_accuracy", "answer_words_mean", "highlight_rate", "span_em", "span_f1",
           "span_em_all", "span_f1_all", "abstention_rate", "latency_ms_p50", "latency_ms_p95",
           "shown_words_mean", "shown_accuracy", "shown_accuracy_answered", "lead_rate", "lead_em", "lead_f1"}


@pytest.fixture(scope="module")
def eval_slice(tmp_path_factory):
    """The contexts of both articles and their questions, alternating between the two."""
    directory = tmp_path_factory.mktemp("eval-slice")
    by_title: dict[str, list[str]] = {t: [] for t in SLICE_TITLES}
    for line in QUESTIONS.read_text(encoding="utf-8").splitlines():
        by_title[json.loads(line)["title"]].append(line)
    questions = [q for pair in zip(*by_title.values(), strict=False) for q in pair]
    (directory / "contexts.jsonl").write_bytes(CONTEXTS.read_bytes())
    (directory / "questions.jsonl").write_text("\n".join(questions) + "\n", encoding="utf-8")
    (directory / "unanswerable.jsonl").write_bytes(UNANSWERABLE.read_bytes())
    return directory


@pytest.mark.slow  # three real-model indexes and 120 questions: about 20 s
def test_eval_json_has_every_metric_and_the_abstention_protocol(eval_slice):
    work = eval_slice / "work"
    result = run("eval", "--contexts", str(eval_slice / "contexts.jsonl"),
                 "--questions", str(eval_slice / "questions.jsonl"), "--limit", "40",
                 "--abstain-check", "--json", "--work-dir", str(work))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    metrics = report["metrics"]
    assert set(metrics) == METRICS
    assert metrics["questions"] == 40
    for key in METRICS - {"questions", "answer_words_mean", "shown_words_mean", "latency_ms_p50", "latency_ms_p95"}:
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["hit@1"] <= metrics["hit@5"] <= metrics["hit@10"]
    # Two short, distinct articles: retrieval should almost never miss.
    assert metrics["hit@10"] >= 0.9
    assert metrics["answer_accuracy"] >= 0.5
    assert 0 < metrics["latency_ms_p50"] <= metrics["latency_ms_p95"]
    assert report["documents"] == 2 and report["settings"]["mode"] == "hybrid"
    assert report["settings"]["entities"] == ENTITY_MODEL
    # What is shown is the lead and at most one quoted sentence (cut around the lead when long): no
    # longer than the quoted answer but for the lead's few words (at most MAX_WORDS for a phrase;
    # with leads for more answers, 40 questions of short sentences can tip the bare comparison).
    assert 0 < metrics["shown_words_mean"] <= metrics["answer_words_mean"] + MAX_WORDS * metrics["lead_rate"]
    assert metrics["shown_accuracy"] <= metrics["answer_accuracy"] and metrics["lead_rate"] > 0
    check = report["abstain_check"]
    assert check["split"] == {"A": [SLICE_TITLES[0]], "B": [SLICE_TITLES[1]]}
    for name in ("A", "B"):
        assert check[name]["in_index_questions"] == 20 and check[name]["out_of_index_questions"] == 20
        assert check[name]["in_index_answered"] >= 0.75
        assert check[name]["out_of_index_declined"] >= 0.75
    assert set(check["overall"]) == {"in_index_answered", "out_of_index_declined"}
    assert "split A" in result.stderr  # progress bars on stderr


@pytest.mark.slow
def test_eval_table_reuses_the_work_dir_and_takes_a_mode(eval_slice):
    work = eval_slice / "work"
    result = run("eval", "--contexts", str(eval_slice / "contexts.jsonl"),
                 "--questions", str(eval_slice / "questions.jsonl"), "--limit", "10",
                 "--unanswerable", str(eval_slice / "unanswerable.jsonl"),
                 "--mode", "keyword", "--work-dir", str(work))
    assert result.returncode == 0, result.stderr
    for label in ("retrieval hit@1", "retrieval hit@5", "retrieval hit@10", "answer accuracy",
                  "top-sentence accuracy", "answer length, mean words", "highlight exact match",
                  "highlight token F1", "abstention rate", "latency p50", "latency p95",
                  "words shown (lead + evidence), mean", "shown text contains a gold answer",
                  "answered questions with a lead", "lead exact match", "lead token F1",
                  "unanswerable questions (SQuAD 2.0, same index, n=10)",
                  "declined", "answerable answered", "balanced accuracy"):
        assert label in result.stdout, label
    assert "mode keyword" in result.stdout and f"entities {ENTITY_MODEL}" in result.stdout
    assert "unanswerable" in result.stderr  # its progress bar
    assert "questions" in result.stderr  # the progress bar


def test_eval_rejects_bad_input(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    missing = run("eval", "--contexts", str(tmp_path / "none.jsonl"), "--questions", str(bad))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    garbled = run("eval", "--contexts", str(bad), "--questions", str(bad))
    assert garbled.returncode == 2 and "not a JSON object" in garbled.stderr
    mode = run("eval", "--contexts", str(bad), "--questions", str(bad), "--mode", "magic")
    assert mode.returncode == 2 and "--mode" in mode.stderr
    answered = tmp_path / "answered.jsonl"
    answered.write_text('{"id": "1", "question": "When?", "answers": ["1973"]}\n', encoding="utf-8")
    with pytest.raises(EvalDataError, match="empty 'answers' list"):
        load_questions(answered, unanswerable=True)
    impossible = tmp_path / "impossible.jsonl"
    impossible.write_text('{"id": "2", "question": "Why?", "answers": [], "is_impossible": true}\n',
                          encoding="utf-8")
    assert load_questions(impossible, unanswerable=True)[0].answers == ()


# --- the metric definitions -------------------------------------------------------------------

def test_squad_normalisation_exact_match_and_f1():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert exact_match("the Eiffel tower", ["Eiffel Tower"]) == 1.0
    assert exact_match("Eiffel", ["Eiffel Tower"]) == 0.0
    assert f1_score("Eiffel", ["Eiffel Tower"]) == pytest.approx(2 / 3)
    assert f1_score("in Paris", ["Lyon", "Paris"]) == pytest.approx(2 / 3)
    assert f1_score("nothing", ["Paris"]) == 0.0
    assert contains_answer("Both buildings were completed in June 1979.", ["June 1979", "1979"])
    assert not contains_answer("Completed in June.", ["1979"])


def test_split_is_deterministic_and_alternates():
    titles = [f"t{i}" for i in range(10)]
    a, b = split_titles(titles)
    assert a == ["t0", "t2", "t4", "t6", "t8"] and b == ["t1", "t3", "t5", "t7", "t9"]
    assert split_titles(titles) == (a, b)


def test_contexts_become_one_document_per_title_in_order():
    lines = [json.loads(line) for line in CONTEXTS.read_text(encoding="utf-8").splitlines()]
    title = lines[0]["title"]
    paragraphs_in_file = [c["text"] for c in lines if c["title"] == title]
    documents = load_contexts(CONTEXTS, titles=[title])
    assert len(documents) == 1
    doc = documents[0]
    assert doc.title == title.replace("_", " ")
    paragraphs = doc.text.split("\n\n")  # cleaned (quotes straightened), in file order
    assert len(paragraphs) == len(paragraphs_in_file)
    assert [p[:25] for p in paragraphs] == [p[:25] for p in paragraphs_in_file]
    assert len(load_contexts(CONTEXTS)) == len(SLICE_TITLES)
    questions = load_questions(QUESTIONS, limit=3)
    first = json.loads(QUESTIONS.read_text(encoding="utf-8").splitlines()[0])
    assert len(questions) == 3 and questions[0].answers[0] == first["answers"][0]
    context = next(c["text"] for c in lines if c["context_id"] == first["context_id"])
    assert all(answer in context for answer in questions[0].answers)


# --- make eval ---------------------------------------------------------------------------------

def _make_eval(eval_dir: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-n", "eval", f"EVAL_DIR={eval_dir}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_make_eval_names_a_missing_or_wrong_folder_in_one_line(tmp_path):
    missing = _make_eval(str(tmp_path / "none"))
    assert missing.returncode != 0 and missing.stderr.count("\n") == 1, missing.stderr
    assert f"no folder {tmp_path / 'none'}; pass EVAL_DIR=DIR" in missing.stderr
    empty = _make_eval(str(tmp_path))
    assert empty.returncode != 0 and empty.stderr.count("\n") == 1, empty.stderr
    assert "must hold one *.contexts.jsonl and one *.questions.jsonl (found 0 and 0)" in empty.stderr


def test_make_eval_runs_qabot_eval_on_the_folder_given():
    planned = _make_eval("tests/fixtures/squad-mini")  # -n: the command make would run
    assert planned.returncode == 0, planned.stderr
    command = planned.stdout.replace("\\\n", " ").split()
    assert command[command.index("--contexts") + 1] == "tests/fixtures/squad-mini/squad-mini.contexts.jsonl"
    assert command[command.index("--questions") + 1] == "tests/fixtures/squad-mini/squad-mini.questions.jsonl"
