"""Live reload: a running answerer (what `qabot serve` and `qabot chat` use) follows its index.

Real model, real index, real `ingest` and `docs remove` writing new versions while questions are
asked from other threads; and a real `qabot chat` process that is never restarted.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.answering.live import LiveAnswerer
from embeddings.ingest import remove_documents

from .conftest import ROOT, build_index
from .test_cli import QABOT
from .qabot_env import qabot_environ

PORT = "Port report\n\nThe port of Odesa reopened on May 2 after repairs to berth 4.\n"
PORT_QUESTION = "When did the port of Odesa reopen?"
ARTICLE_QUESTIONS = ["When are the Geneva talks?", "Which newspaper interviewed him?",
                     "Who will head the Russian delegation?", "What deadline did Ryabkov give?"]


def _cites(answer, name: str) -> bool:
    return not answer.abstained and any(c.source.endswith(name) for c in answer.citations)


def _wait_until(predicate, timeout: float) -> float | None:
    """Seconds until `predicate()` held, or None after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    return None


@pytest.mark.slow
def test_a_document_added_while_answering_is_used_within_5_s_and_every_question_is_answered(
        index_copy, settings, tmp_path):
    (tmp_path / "port.txt").write_text(PORT)
    live = LiveAnswerer(settings, index_dir=index_copy, poll_s=0.25, warm_max_chunks=5000).start()
    try:
        assert not _cites(live.ask(PORT_QUESTION), "port.txt")
        versions_seen: set[int] = set()
        errors: list[BaseException] = []
        answers = []
        under_way = threading.Event()

        def ask(i: int) -> None:
            under_way.set()
            try:
                answerer = live.answerer  # what ask() uses: one version for the whole question
                versions_seen.add(len(answerer.index.documents))
                answers.append(answerer.ask(ARTICLE_QUESTIONS[i % len(ARTICLE_QUESTIONS)]))
            except BaseException as exc:
                errors.append(exc)

        with ThreadPoolExecutor(4) as pool:
            asked = [pool.submit(ask, i) for i in range(100)]
            assert under_way.wait(30)  # questions are under way
            build_index([tmp_path / "port.txt"], index_copy, settings)
            finished = time.monotonic()
            took = _wait_until(lambda: _cites(live.ask(PORT_QUESTION), "port.txt"), timeout=5)
            for future in asked:
                future.result(timeout=120)
        assert took is not None, "the new document was not used within 5 s of the ingest"
        print(f"new version answered from {time.monotonic() - finished:.2f} s after the ingest, "
              f"{took:.2f} s of polling; versions seen by the 100 questions: {sorted(versions_seen)}")
        assert not errors and len(answers) == 100
        assert all(not a.abstained and a.citations for a in answers)  # each one answered, with sources
        assert live.swaps == 1 and "May 2" in live.ask(PORT_QUESTION).text

        removed = remove_documents(index_copy, [str((tmp_path / "port.txt").resolve())], lock_timeout=10)
        assert [d.source for d in removed] == [str(tmp_path / "port.txt")]
        assert _wait_until(lambda: not _cites(live.ask(PORT_QUESTION), "port.txt"), timeout=5) is not None
        assert live.swaps == 2
    finally:
        live.stop()


@pytest.mark.slow
def test_a_version_that_cannot_be_loaded_is_skipped_and_answers_go_on(index_copy, settings):
    live = LiveAnswerer(settings, index_dir=index_copy, poll_s=60)
    before = live.ask(ARTICLE_QUESTIONS[0]).text
    version = (index_copy / "CURRENT").read_text().strip()
    broken = index_copy / "v-broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    (index_copy / "CURRENT").write_text("v-broken")
    assert live.refresh() is False  # logged, old version kept
    assert live.ask(ARTICLE_QUESTIONS[0]).text == before and live.swaps == 0
    (index_copy / "CURRENT").write_text(version)


@pytest.mark.slow
def test_qabot_chat_answers_from_a_document_ingested_while_it_runs(index_copy, tmp_path):
    """A real `qabot chat` process, never restarted: asked before and after `qabot ingest`."""
    (tmp_path / "port.txt").write_text(PORT)
    environ = qabot_environ(QABOT_INDEX=str(index_copy), PYTHONUNBUFFERED="1")
    chat = subprocess.Popen([QABOT, "chat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT, env=environ)
    shown = bytearray()

    def read() -> None:
        while block := os.read(chat.stdout.fileno(), 4096):
            shown.extend(block)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def prompts() -> int:  # "? " is chat's prompt: one more each time an answer is done
        return bytes(shown).count(b"\n? ") + bytes(shown).startswith(b"? ")

    try:
        assert _wait_until(lambda: prompts() >= 1, timeout=120) is not None, bytes(shown)
        chat.stdin.write((PORT_QUESTION + "\n").encode())
        chat.stdin.flush()
        assert _wait_until(lambda: prompts() >= 2, timeout=60) is not None, bytes(shown)
        before = bytes(shown).decode()
        ingest = subprocess.run([QABOT, "ingest", str(tmp_path / "port.txt")], capture_output=True, text=True,
                                cwd=ROOT, env=environ, timeout=300)
        assert ingest.returncode == 0, ingest.stderr
        ingested = time.monotonic()

        def answered_from_port() -> bool:
            chat.stdin.write((PORT_QUESTION + "\n").encode())
            chat.stdin.flush()
            count = prompts()
            _wait_until(lambda: prompts() > count, timeout=30)
            return "May 2" in bytes(shown).decode()[len(before):]

        took = _wait_until(answered_from_port, timeout=5)
        chat.stdin.write(b"exit\n")
        chat.stdin.flush()
        chat.wait(timeout=60)
    finally:
        if chat.poll() is None:
            chat.kill()
    reader.join(timeout=5)
    assert "May 2" not in before, before
    assert took is not None, f"not answered from the new document within 5 s: {bytes(shown).decode()}"
    print(f"answered from the new document {time.monotonic() - ingested:.1f} s after the ingest")
    assert chat.returncode == 0
