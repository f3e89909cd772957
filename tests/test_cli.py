"""Every CLI command, run as a user runs it: the installed `qabot` console script in a new process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, SAMPLE, snapshot
from .qabot_env import qabot_environ

QABOT = str(Path(sys.executable).parent / "qabot")


def run(*args: str, index: Path | None = None, stdin: str | None = None, env: dict | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    environ = qabot_environ()
    if index is not None:
        environ["QABOT_INDEX"] = str(index)
    environ.update(env or {})
    return subprocess.run([QABOT, *args], input=stdin, capture_output=True, text=True, cwd=ROOT,
                          env=environ, timeout=timeout)


# The int8 ONNX encoder skips importing PyTorch (seconds per process); it is also the default
# ingest backend now, so this only pins it against a config that says otherwise.
FAST_INGEST = {"QABOT_INGEST_BACKEND": "onnx"}


@pytest.mark.slow
def test_ingest_reports_added_then_skipped(tmp_path):
    index = tmp_path / "index"
    first = run("ingest", str(SAMPLE), index=index, env=FAST_INGEST)
    assert first.returncode == 0, first.stderr
    assert "added" in first.stdout and "ryabkov-2022-01-06.txt" in first.stdout
    assert ": 1 document, 5 chunks (5 new)." in first.stdout  # not "1 documents"
    second = run("ingest", "--json", str(SAMPLE), index=index, env=FAST_INGEST)
    assert second.returncode == 0, second.stderr
    data = json.loads(second.stdout)
    assert data["added"] == [] and data["skipped"] == [str(SAMPLE)] and data["documents"] == 1


@pytest.mark.slow
def test_ingest_without_paths_takes_paths_sample(tmp_path):
    sample = tmp_path / "articles"
    sample.mkdir()
    (sample / "note.txt").write_text("The Geneva talks open on Jan. 10.\n", encoding="utf-8")
    env = {**FAST_INGEST, "QABOT_SAMPLE": str(sample)}
    first = run("ingest", "--if-empty", "--json", index=tmp_path / "index", env=env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["added"] == [str(sample / "note.txt")]
    again = run("ingest", "--if-empty", index=tmp_path / "index", env=env)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    missing = run("ingest", index=tmp_path / "index", env={"QABOT_SAMPLE": str(tmp_path / "none")})
    _one_line_error(missing, "no paths given, and paths.sample")


def test_make_run_ingests_the_configured_sample():
    """`make run` names no paths: what it indexes is `paths.sample`, so the setting is read."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "$(BIN)/qabot ingest --if-empty\n" in makefile


def test_ingest_index_option_and_if_empty(tmp_path, sample_index):
    result = run("ingest", "--if-empty", "--index", str(sample_index), str(SAMPLE))
    assert result.returncode == 0 and "nothing to do" in result.stdout


def test_ask_answers_with_sources(sample_index):
    result = run("ask", "What", "deadline", "did", "Ryabkov", "give?", index=sample_index)
    assert result.returncode == 0, result.stderr
    assert "within a few weeks" in result.stdout
    assert "  — Russian Diplomat Ryabkov" in result.stdout


def test_ask_json_shape(sample_index):
    result = run("ask", "--json", "When are the Geneva talks?", "--index", str(sample_index))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert set(data) >= {"question", "answer", "abstained", "citations", "timings_ms"}
    assert data["question"] == "When are the Geneva talks?"
    assert "Jan. 10" in data["answer"] and data["abstained"] is False
    citation = data["citations"][0]
    assert set(citation) >= {"document", "chunk_id", "text", "score"}
    assert isinstance(citation["score"], float)
    assert data["timings_ms"]["total_ms"] > 0


def test_ask_reads_questions_from_stdin(sample_index):
    stdin = "When are the Geneva talks?\n\nWhat is the capital of Australia?\nWhich newspaper interviewed him?\n"
    result = run("ask", "--json", "-", index=sample_index, stdin=stdin)
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["question"] for a in answers] == ["When are the Geneva talks?",
                                               "What is the capital of Australia?",
                                               "Which newspaper interviewed him?"]
    assert [a["abstained"] for a in answers] == [False, True, False]
    assert "Izvestia" in answers[2]["answer"]


def test_ask_into_a_pipe_closed_early_stops_without_a_traceback(sample_index):
    """`qabot ask --json - < questions | head -1`: more answers than a pipe holds, the reader
    leaves after the first line; the command stops quietly with 1, as the typer commands do."""
    environ = qabot_environ(QABOT_INDEX=str(sample_index))
    process = subprocess.Popen([QABOT, "ask", "--json", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=ROOT, env=environ)
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    process.stdin.write("When are the Geneva talks?\n" * 60)
    process.stdin.close()
    assert json.loads(process.stdout.readline())["question"] == "When are the Geneva talks?"
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=300) == 1
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def test_chat_answers_follow_ups_and_quits(sample_index):
    stdin = "When are the Geneva talks?\nWhat is the capital of Australia?\nexit\nnot reached\n"
    result = run("chat", index=sample_index, stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert "1 document indexed" in result.stdout
    assert "Jan. 10" in result.stdout
    assert "I couldn't find that in the indexed articles." in result.stdout
    assert "not reached" not in result.stdout


def test_chat_and_ask_give_the_same_answer_and_v_shows_a_rewritten_follow_up(sample_index):
    asked = json.loads(run("ask", "--json", "Which newspaper interviewed him?", index=sample_index).stdout)
    stdin = ("When are the Geneva talks?\nWhat deadline did Ryabkov give?\nWhich newspaper interviewed him?\n"
             "What did Ryabkov say about the talks in Geneva?\nAnd when are they?\n")
    chat = run("-v", "chat", index=sample_index, stdin=stdin)
    assert chat.returncode == 0, chat.stderr
    assert "Izvestia" in asked["answer"] and "Izvestia" in chat.stdout and "Bloomberg" not in asked["answer"]
    # Only the follow-up that needed the conversation was rewritten, and -v says into what.
    searched = [line for line in chat.stderr.splitlines() if line.startswith("(searched as:")]
    assert searched == ["(searched as: What did Ryabkov say about the talks in Geneva? And when are they?)"]


def test_chat_follow_ups_lean_on_the_previous_turn(sample_index):
    stdin = ("When are the Geneva talks?\nWho will head the Russian delegation?\nWhat did he tell Bloomberg?\n"
             "Who will head the Russian delegation?\nWhen?\n")
    chat = run("chat", "-v", index=sample_index, stdin=stdin)
    assert chat.returncode == 0, chat.stderr
    searched = [line for line in chat.stderr.splitlines() if line.startswith("(searched as:")]
    # "What did he tell Bloomberg?" says what it asks and is answered as `qabot ask` answers it;
    # "When?" asks when Ryabkov, the answer just given, heads the delegation.
    assert searched == ["(searched as: Who will head the Russian delegation? Ryabkov When?)"]
    answers = chat.stdout.split("\n? ")[1:6]
    quotes = [next(line for line in a.splitlines() if line.startswith("“")) for a in answers]
    assert "told Bloomberg News" in quotes[2] and "delegation" not in quotes[2]
    assert answers[4].startswith("next week") and "at the talks next week" in quotes[4]


def test_chat_ends_on_eof(sample_index):
    result = run("chat", index=sample_index, stdin="When are the Geneva talks?\n")
    assert result.returncode == 0 and "Jan. 10" in result.stdout


def _one_line_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode != 0
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error:") and fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_ask_on_a_missing_index(tmp_path):
    _one_line_error(run("ask", "When?", index=tmp_path / "missing"), "no index at")


def test_ask_on_an_empty_index_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    _one_line_error(run("ask", "When?", index=tmp_path / "empty"), "qabot ingest")


def test_ask_with_an_empty_question(sample_index):
    _one_line_error(run("ask", "  ", index=sample_index), "question is empty")
    _one_line_error(run("ask", "-", index=sample_index, stdin="\n\n"), "no questions")


@pytest.mark.parametrize("name, content, fragment", [
    ("missing.txt", None, "no such file"),
    ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00", "binary file"),
    ("latin.txt", "Caf\u00e9 cr\u00e8me in Paris.".encode("latin-1"), "not UTF-8"),
    ("garbage.pdf", b"garbage", "not a readable PDF"),  # without pypdf's warnings about it
])
def test_ingest_of_bad_files_fails_in_one_line_and_changes_nothing(index_copy, tmp_path, name, content, fragment):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    before = snapshot(index_copy)
    _one_line_error(run("ingest", str(path), index=index_copy), fragment)
    assert snapshot(index_copy) == before


@pytest.mark.parametrize("rebuild", [False, True])
def test_a_folder_whose_every_file_is_refused_indexes_nothing(index_copy, tmp_path, rebuild):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "empty.txt").write_bytes(b"")
    (folder / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00")
    before = snapshot(index_copy)
    result = run("ingest", *(["--rebuild"] if rebuild else []), str(folder), index=index_copy)
    assert result.returncode == 1
    assert "refused" in result.stderr and "nothing indexed: 2 inputs refused" in result.stderr
    assert snapshot(index_copy) == before
    fresh = tmp_path / "fresh-index"
    assert run("ingest", "--json", str(folder), index=fresh).returncode == 1
    assert not fresh.exists()


def test_ingest_into_an_index_path_that_cannot_be_a_folder_fails_in_one_line(tmp_path):
    note = tmp_path / "note.txt"
    note.write_text("The Geneva talks open on Jan. 10.\n", encoding="utf-8")
    in_the_way = tmp_path / "index"
    in_the_way.write_text("not an index\n", encoding="utf-8")
    _one_line_error(run("ingest", str(note), index=in_the_way), f"cannot write the index at {in_the_way}")
    _one_line_error(run("ingest", str(note), index=in_the_way / "sub"), f"cannot write the index at {in_the_way / 'sub'}")
    assert in_the_way.read_text(encoding="utf-8") == "not an index\n"


def test_ingest_with_a_model_mismatch_says_how_to_rebuild(index_copy, tmp_path):
    """Refused when the index is opened, before any model is loaded or anything written."""
    note = tmp_path / "note.txt"
    note.write_text("A short note about the talks.", encoding="utf-8")
    before = snapshot(index_copy)
    result = run("ingest", str(note), index=index_copy, env={"QABOT_MODEL_NAME": "other-model"})
    _one_line_error(result, "--rebuild")
    assert snapshot(index_copy) == before


@pytest.mark.parametrize("env, fragment", [
    ({"QABOT_FUSION": "bogus"}, "setting fusion (QABOT_FUSION) must be one of score, rrf, milvus-rrf, milvus-weighted; got 'bogus'"),
    ({"QABOT_DENSE_WEIGHT": "7"}, "setting dense_weight (QABOT_DENSE_WEIGHT) must be between 0 and 1"),
    ({"QABOT_TOPK": "3"}, "unknown setting QABOT_TOPK (did you mean QABOT_TOP_K?)"),
    ({"QABOT_CONFIG": "/nowhere/qabot.toml"}, "config file not found: /nowhere/qabot.toml"),
])
def test_bad_settings_fail_in_one_line_before_any_work(sample_index, env, fragment):
    _one_line_error(run("ask", "When are the Geneva talks?", index=sample_index, env=env), fragment)


def test_config_option_paths_resolve_from_the_file(sample_index, tmp_path):
    config = tmp_path / "etc" / "qabot.toml"
    config.parent.mkdir()
    config.write_text(f'[paths]\nindex = "{os.path.relpath(sample_index, config.parent)}"\n', encoding="utf-8")
    result = run("--config", str(config), "ask", "--json", "When are the Geneva talks?")
    assert result.returncode == 0, result.stderr
    assert "Jan. 10" in json.loads(result.stdout)["answer"]


def test_eval_refuses_an_unknown_mode(tmp_path):
    _one_line_error(run("eval", "--contexts", "c", "--questions", "q", "--mode", "vector"),
                    "--mode must be one of hybrid, dense, keyword; got 'vector'")


def test_serve_without_tokens_explains(sample_index):
    _one_line_error(run("serve", index=sample_index), "SLACK_BOT_TOKEN")


def test_help_lists_every_command():
    result = run("--help")
    assert result.returncode == 0 and "--config" in result.stdout
    for command in ("ingest", "ask", "chat", "serve", "eval"):
        assert command in result.stdout


def test_version_is_the_installed_distributions():
    from importlib.metadata import version

    result = run("--version")
    assert result.returncode == 0 and result.stdout == f"qabot {version('qabot')}\n"


@pytest.mark.parametrize("command", [(), ("ingest",), ("ask",), ("chat",), ("serve",), ("eval",),
                                     ("docs",), ("docs", "list"), ("docs", "show"), ("docs", "remove"),
                                     ("report",)])
def test_help_shows_flags_as_flags_and_settings_by_their_section(command):
    """Plain help at 80 columns: a flag without a type, a value with its metavar, and "[slack]"
    as written (Rich markup would swallow it)."""
    from typer.testing import CliRunner

    from bot.cli import app

    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "80"})  # in-process: fast
    assert result.exit_code == 0, result.output
    shown = result.output
    assert "<bool>" not in shown and "<path>" not in shown and "--help" in shown
    assert all(len(line) <= 80 for line in shown.splitlines()), shown
    if command == ("serve",):
        assert "--port N" in shown and "[slack] port, 3000" in shown
    if command == ("ingest",):
        assert "paths.sample setting" in shown and "bundled" not in shown


# Packages a FAISS `qabot ask` must not import: the typer app (and the pydantic typer imports),
# bm25s and scipy (keyword search reads the saved matrix), the LLM, Slack and Milvus paths, and
# ingest's sentence splitter (pysbd) and web extraction, and torch; rich (nothing is printed to a
# terminal: tests/test_plain_output.py), tempfile (for writing an index or the model's cached
# copy, not reading them) and difflib (for suggesting a mistyped setting).
NOT_ON_THE_ASK_PATH = ("typer", "click", "pydantic", "bm25s", "scipy", "openai", "slack_bolt", "slack_sdk",
                       "pymilvus", "pysbd", "trafilatura", "torch", "tqdm", "bot.answering.llm", "matplotlib",
                       "bot.report", "rich", "tempfile", "difflib")


def test_a_cold_ask_imports_only_the_question_path(sample_index):
    """The console script's `ask` line, run as `qabot ask` runs it, answers without these imports;
    `--help` still goes to the typer app."""
    code = ("import sys; sys.argv = ['qabot', 'ask', '--json', 'When are the Geneva talks?']\n"
            "from bot.cli_main import main\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            f"loaded = sorted(m for m in {NOT_ON_THE_ASK_PATH!r} if m in sys.modules)\n"
            "print('LOADED', loaded)")
    environ = qabot_environ(QABOT_INDEX=str(sample_index))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=environ,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    answer, loaded = result.stdout.strip().splitlines()
    assert "Jan. 10" in json.loads(answer)["answer"]
    assert loaded == "LOADED []"
    helped = run("ask", "--help")
    assert helped.returncode == 0 and "--index" in helped.stdout and "--json" in helped.stdout
