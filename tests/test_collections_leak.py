"""Collections as a security boundary: nothing of a collection reaches a channel not mapped to it.

Three collections of distinct documents (two SQuAD articles of tests/fixtures/squad-mini, one
paragraph a document, and the bundled article, one paragraph a document), 100 questions each:
the SQuAD questions of its article, topped up with verbatim word windows of its own text (the
probe most likely to pull its passages into any search). Every question is asked from places
mapped to the *two other* collections — a channel @mention, a thread follow-up, the assistant
panel (a DM mapped like a channel), ``/ask`` — through the real bolt app over HTTP, and through
the CLI (``qabot ask --collection … -``), on FAISS and on Milvus (milvus-lite). No answer, cited
passage, Sources-button passage, suggested prompt or follow-up context may come from the asked
collection; and the questions about a collection, asked where it is mapped, are answered at
least as often as with no collections at all. Each index is built once per module.
"""

from __future__ import annotations

import io
import json
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .conftest import MINI_EVAL, SAMPLE, build_index
from .slack_requests import mention_event, message_event, start_http_bot
from .slack_standin import USER, SlackStandIn, new_ts

NAMES = ("kestrel", "osprey", "heron")  # also each document's title word: a leak shows in any text
ARTICLES = {"kestrel": "Jacksonville,_Florida", "osprey": "Construction"}
PER_COLLECTION = 100
WINDOW_WORDS = 9


@dataclass
class Corpus:
    root: Path
    documents: dict[str, list[Path]] = field(default_factory=dict)
    questions: dict[str, list[str]] = field(default_factory=dict)
    squad: dict[str, list[str]] = field(default_factory=dict)  # the answerable SQuAD questions


def _windows(paragraphs: list[str], count: int) -> list[str]:
    """`count` word windows of the paragraphs' text, evenly spread, each ending in "?"."""
    words = " ".join(paragraphs).split()
    starts = range(0, max(1, len(words) - WINDOW_WORDS), max(1, (len(words) - WINDOW_WORDS) // max(count, 1)))
    return [" ".join(words[s:s + WINDOW_WORDS]).rstrip(".,;") + "?" for s in starts][:count]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Corpus:
    root = tmp_path_factory.mktemp("leak")
    found = Corpus(root)
    contexts = [json.loads(line) for line in (MINI_EVAL / "squad-mini.contexts.jsonl").read_text().splitlines()]
    questions = [json.loads(line) for line in (MINI_EVAL / "squad-mini.questions.jsonl").read_text().splitlines()]
    paragraphs = {name: [c["text"] for c in contexts if c["title"] == title] for name, title in ARTICLES.items()}
    paragraphs["heron"] = [p for p in SAMPLE.read_text(encoding="utf-8").split("\n\n") if len(p.split()) > 12]
    for name in NAMES:
        folder = root / name
        folder.mkdir()
        found.documents[name] = []
        for i, text in enumerate(paragraphs[name]):
            path = folder / f"{name}-{i:02d}.md"
            path.write_text(f"# {name.capitalize()} file {i}\n\n{text}\n", encoding="utf-8")
            found.documents[name].append(path)
        asked = [q["question"] for q in questions if q["title"] == ARTICLES.get(name)][:PER_COLLECTION]
        found.squad[name] = asked
        found.questions[name] = asked + _windows(paragraphs[name], PER_COLLECTION - len(asked))
        assert len(found.questions[name]) == PER_COLLECTION
    return found


def _build(corpus: Corpus, index_dir: Path, settings: Any) -> Path:
    for name in NAMES:
        build_index(corpus.documents[name], index_dir, settings, collections=[name])
    return index_dir


@pytest.fixture(scope="module", params=["faiss", pytest.param("milvus", marks=pytest.mark.slow)])
def built(request, corpus, settings, tmp_path_factory):
    """(settings, index directory, Answerer) on the backend of the parameter."""
    from bot.answering.answerer import Answerer

    if request.param == "milvus":
        settings = settings.replace("store", store_backend="milvus", collection="leak_test")
    index_dir = _build(corpus, tmp_path_factory.mktemp(request.param) / "index", settings)
    return settings, index_dir, Answerer.from_settings(settings, index_dir=index_dir)


def others(name: str) -> tuple[str, ...]:
    return tuple(sorted(n for n in NAMES if n != name))


class Recorder:
    """The real Answerer, recording every answer and the collections it was asked with."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.index = real.index
        self.answers: list[tuple[str, Any, Any]] = []
        self._lock = threading.Lock()

    def ask(self, question: str, history: Any = (), **kwargs: Any) -> Any:
        answer = self.real.ask(question, history, **kwargs)
        with self._lock:
            self.answers.append((question, kwargs.get("collections"), answer))
        return answer


def collections_of(index: Any, chunk_id: str) -> set[str]:
    short = chunk_id.partition("#")[0]
    return {name for info in index.documents.values() if info.short_id == short for name in info.collections}


def assert_from(index: Any, answer: Any, allowed: tuple[str, ...]) -> None:
    """Every passage of `answer` (cited, or nearest for a decline) is of the `allowed` collections,
    and so is every quoted sentence of its text."""
    for citation in answer.citations:
        owned = collections_of(index, citation.chunk_id)
        assert owned and owned <= set(allowed), f"{citation.chunk_id} of {owned} reached {allowed}"
    for start, end, i in answer.sentence_spans:
        assert answer.text[start:end].strip() in answer.citations[i].text


def _leaked_words(text: str, name: str) -> bool:
    return re.search(rf"\b{name}\b", text, re.IGNORECASE) is not None


def _sources_ids(blocks: list[dict]) -> list[str]:
    ids: list[str] = []
    for block in blocks:
        for element in block.get("elements") or []:
            if isinstance(element, dict) and element.get("action_id") == "qabot_sources":
                ids += json.loads(element["value"])["c"]
    return ids


def test_no_collection_reaches_a_channel_not_mapped_to_it(built, corpus, slack_settings, tmp_path):
    settings, index_dir, real = built
    mapping = {f"{kind}0NOT{name.upper()}": others(name) for name in NAMES for kind in ("C", "D")}
    bot_settings = slack_settings.replace("slack", channel_collections=mapping, default_collections=(),
                                          dm_collections=())
    recorder = Recorder(real)
    index = real.index
    with SlackStandIn() as standin:
        bot = start_http_bot(standin, bot_settings, recorder)
        try:
            expected_posts = 0
            threads: dict[str, list[tuple[str, str]]] = {}
            for name in NAMES:
                channel, dm = f"C0NOT{name.upper()}", f"D0NOT{name.upper()}"
                qs = corpus.questions[name]
                mentions, follow_ups, panel, slash = qs[0:25], qs[25:50], qs[50:75], qs[75:100]
                for q in mentions:
                    bot.send_event(mention_event(q, channel=channel))
                threads[name] = []
                for q in follow_ups[:13]:
                    event = mention_event(q, channel=channel)
                    threads[name].append((channel, event["ts"]))
                    bot.send_event(event)
                panel_ts = new_ts()
                bot.send_event({"type": "assistant_thread_started", "event_ts": new_ts(), "assistant_thread": {
                    "user_id": USER, "channel_id": dm, "thread_ts": panel_ts,
                    "context": {"channel_id": channel, "team_id": "T0TEST", "enterprise_id": None}}})
                for q in panel:
                    bot.send_event(message_event(q, channel=dm, channel_type="im", thread_ts=panel_ts))
                for i, q in enumerate(slash):
                    bot.send_command(q, standin.response_url(f"{name}-{i}"), channel=channel)
                expected_posts += 25 + 13 + 1 + 25
            standin.wait_for("chat.postMessage", expected_posts - 3 * 25, timeout=120)
            # Follow-ups in the threads the bot answered in: no mention, the thread's question as context.
            for name in NAMES:
                for (channel, ts), q in zip(threads[name], corpus.questions[name][38:50]):
                    bot.send_event(message_event(q, channel=channel, thread_ts=ts))
            standin.wait_for("chat.postMessage", expected_posts - 3 * 25 + 3 * 12, timeout=120)
            standin.wait_for("response_url", 3 * 25, timeout=120)
            bot.wait_idle(60)

            # Every answer the Answerer gave was asked with, and made from, the other collections only.
            assert len(recorder.answers) == 3 * PER_COLLECTION
            asked_in = {q: name for name in NAMES for q in corpus.questions[name]}
            for question, scope, answer in recorder.answers:
                allowed = others(asked_in[question])
                assert scope == allowed
                assert answer.collections == allowed
                assert_from(index, answer, allowed)
            # What Slack shows: no title, source or passage of the asked collection, in any reply.
            for call in standin.calls("chat.postMessage") + standin.calls("response_url"):
                where = call.params.get("channel") or call.path  # a /ask reply: its response_url names it
                name = next(n for n in NAMES if n.upper() in where or f"/{n}-" in where)
                text = call.text_and_blocks()
                assert not _leaked_words(text, name), f"{name} leaked into {where}: {text[:300]}"
                for chunk_id in _sources_ids(call.blocks()):
                    assert collections_of(index, chunk_id) <= set(others(name))
            # The panel's suggested prompts name only documents of the DM's collections.
            for call in standin.calls("assistant.threads.setSuggestedPrompts"):
                name = call.params["channel_id"].removeprefix("D0NOT").lower()
                assert not _leaked_words(json.dumps(call.params.get("prompts")), name)
            # A forged Sources click carrying another collection's passages shows none of them.
            kestrel_ids = [info.short_id + "#0" for info in index.documents.values() if "kestrel" in info.collections]
            bot.send_action({"type": "block_actions", "user": {"id": USER, "team_id": "T0TEST"}, "trigger_id": "1.2.3",
                             "team": {"id": "T0TEST"}, "channel": {"id": "C0NOTKESTREL"},
                             "container": {"type": "message", "channel_id": "C0NOTKESTREL", "message_ts": new_ts()},
                             "actions": [{"type": "button", "action_id": "qabot_sources",
                                          "value": json.dumps({"c": kestrel_ids[:5]}), "action_ts": "1"}]})
            standin.wait_for("views.open", timeout=30)
            assert not _leaked_words(json.dumps(standin.modals[-1]), "kestrel")
        finally:
            bot.close()


def _cli_answers(settings: Any, index_dir: Path, questions: list[str], collections: tuple[str, ...],
                 monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> list[dict]:
    """`qabot ask --index DIR --collection A --collection B --json -`, its questions on stdin."""
    from bot import cli_main

    config = index_dir.parent / "leak.toml"
    config.write_text(f'[store]\nstore_backend = "{settings.store.store_backend}"\n'
                      f'collection = "{settings.store.collection}"\n', encoding="utf-8")
    argv = ["qabot", "--config", str(config), "ask", "--index", str(index_dir), "--json"]
    argv += [arg for name in collections for arg in ("--collection", name)] + ["-"]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(questions) + "\n"))
    with pytest.raises(SystemExit) as exited:
        cli_main.main()
    out = capsys.readouterr().out
    assert exited.value.code == 0
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_the_cli_answers_from_the_named_collections_only(built, corpus, monkeypatch, capsys):
    settings, index_dir, real = built
    for name in NAMES:
        allowed = others(name)
        answers = _cli_answers(settings, index_dir, corpus.questions[name], allowed, monkeypatch, capsys)
        assert len(answers) == PER_COLLECTION
        for answer in answers:
            for citation in answer["citations"]:
                assert collections_of(real.index, citation["chunk_id"]) <= set(allowed)
            assert not _leaked_words(json.dumps(answer["citations"]), name)


def test_questions_are_answered_where_their_collection_is_mapped(built, corpus):
    """Limiting a search to the asked collection answers at least as many of its questions as
    searching everything does (its own top-k is never crowded out), from it alone."""
    _, _, answerer = built
    for name in ARTICLES:
        asked = corpus.squad[name][:50]
        scoped = [answerer.ask(q, collections=(name,)) for q in asked]
        unscoped = [answerer.ask(q) for q in asked]
        for answer in scoped:
            assert_from(answerer.index, answer, (name,))
        answered, before = sum(not a.abstained for a in scoped), sum(not a.abstained for a in unscoped)
        assert answered >= before and answered >= len(scoped) // 2, (name, answered, before)
