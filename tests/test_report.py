"""The gaps report's records (bot/report/): what each store keeps, retention by an injected clock,
no text at all with keep_questions = false (read from the raw store), votes, the gap groups on
known paraphrase sets with the real encoder, and `qabot report` on a generated store."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from bot.answering.answer import Answer, Citation, LlmFigures
from bot.report.groups import group_by_meaning
from bot.report.record import ANSWERED, DECLINED, LLM_FALLBACK, QuestionRecord
from bot.report.recorder import QuestionRecorder, open_store
from bot.report.store import SqliteReportStore
from bot.report.summary import build_report, parse_since

from .clock import Clock
from .conftest import ROOT
from .paraphrase_heldout import HELD_OUT_SETS, NEAR_MISSES

DAY = 86400.0


def citation(doc: str, n: int = 0) -> Citation:
    return Citation(f"Title of {doc}", f"/docs/{doc}.md", None, f"{doc}#{n}", "passage text", 0.5, "quote")


def answered(question: str, *docs: str, collections: tuple[str, ...] = ()) -> Answer:
    return Answer(question, "It is so.", False, tuple(citation(d, i) for i, d in enumerate(docs)),
                  collections=collections)


def declined(question: str) -> Answer:
    return Answer(question, "I couldn't find that.", True, (citation("nearest"),))


def fell_back(question: str) -> Answer:
    return Answer(question, "Quoted.", False, (citation("doc-a"),), llm=LlmFigures("m", "unavailable"))


@pytest.fixture(params=["sqlite", "redis"])
def report_settings(request, settings, tmp_path):
    """The default settings with the report's store on a private SQLite file, or on Redis."""
    settings = settings.replace("paths", state_db=tmp_path / "state.sqlite3")
    if request.param == "redis":
        settings = settings.replace("state", state_backend="redis",
                                    redis_url=request.getfixturevalue("redis_url"))
    return settings


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=384).astype(np.float32)
    return v / np.linalg.norm(v)


def recorder(settings, clock, **report) -> QuestionRecorder:
    settings = settings.replace("report", **report) if report else settings
    return QuestionRecorder(open_store(settings), settings.report, via="chat",
                            encode=lambda texts: np.stack([unit(len(t)) for t in texts]), clock=clock)


def raw_store(settings) -> str:
    """Everything the report's store holds, as text: the SQLite file's bytes (WAL included), or
    every Redis key and value."""
    if settings.state.state_backend == "sqlite":
        path = settings.paths.state_db
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*")).decode("latin-1")
    import redis

    client = redis.Redis.from_url(settings.state.redis_url, decode_responses=True)
    dump = []
    for key in client.scan_iter("*"):
        kind = client.type(key)
        value = (client.hgetall(key) if kind == "hash" else client.zrange(key, 0, -1, withscores=True)
                 if kind == "zset" else client.get(key) if kind == "string" else client.lrange(key, 0, -1))
        dump.append(f"{key} {value}")
    return "\n".join(dump)


def checkpoint(settings) -> None:
    """SQLite: copy the write-ahead log into the file and empty it (what SQLite does by itself every
    1,000 pages), so the raw bytes are the file's alone; a deleted row's bytes were overwritten
    (secure_delete). Redis keeps nothing to flush."""
    if settings.state.state_backend == "sqlite":
        with sqlite3.connect(settings.paths.state_db) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def test_outcomes_votes_collections_and_documents_are_recorded(report_settings):
    clock = Clock()
    rec = recorder(report_settings, clock)
    first = rec.record(answered("Who chairs the board?", "doc-a", "doc-a", "doc-b", collections=("hr",)))
    clock.now += 1
    rec.record(declined("What is the parking policy?"))
    clock.now += 1
    rec.record(fell_back("When do talks start?"), record_id="feedback-id-1")
    rec.vote(first, "up")
    rec.vote("feedback-id-1", "down")
    rec.vote("feedback-id-1", "down")
    rec.vote("no-such-id", "up")  # a vote on no record shows nowhere
    rec.vote("voted-first", "up")  # a click that beats its record to the store still counts
    clock.now += 1
    rec.record(declined("Is a vote counted before its record?"), record_id="voted-first")
    rows = {r.question: r for r in rec.store.read(0)}
    assert rows["Who chairs the board?"].outcome == ANSWERED
    assert rows["Who chairs the board?"].collections == ("hr",)
    assert rows["Who chairs the board?"].documents == ("doc-a", "doc-b")  # each cited document once
    assert (rows["Who chairs the board?"].up, rows["Who chairs the board?"].down) == (1, 0)
    assert rows["What is the parking policy?"].outcome == DECLINED
    assert rows["What is the parking policy?"].documents == ()  # a decline's nearest passage is no source
    assert rows["When do talks start?"].outcome == LLM_FALLBACK and rows["When do talks start?"].down == 2
    assert rows["When do talks start?"].id == "feedback-id-1"
    assert rows["Is a vote counted before its record?"].up == 1
    assert all(r.vector is not None and abs(np.linalg.norm(r.vector) - 1) < 1e-2 for r in rows.values())
    assert [r.question for r in rec.store.read(0)] == ["Is a vote counted before its record?", "When do talks start?",
                                                       "What is the parking policy?", "Who chairs the board?"]
    assert [r.question for r in rec.store.read(clock.now - 1)] == ["Is a vote counted before its record?",
                                                                   "When do talks start?"]  # newest first
    rec.close()


def test_retention_deletes_older_records_on_write(report_settings):
    clock = Clock()
    rec = recorder(report_settings, clock, retention_days=30.0)
    rec.record(declined("asked on day 0"), record_id="day-0")
    rec.vote("day-0", "down")
    clock.now += 10 * DAY
    rec.record(declined("asked on day 10"))
    clock.now += 25 * DAY  # day 35: the first is past 30 days, the second is not
    assert {r.question for r in rec.store.read(0)} == {"asked on day 0", "asked on day 10"}  # reading deletes nothing
    rec.record(answered("asked on day 35", "doc-a"))
    assert {r.question for r in rec.store.read(0)} == {"asked on day 10", "asked on day 35"}
    rec.close()
    checkpoint(report_settings)
    assert "asked on day 0" not in raw_store(report_settings)  # gone from the raw store too
    assert "day-0" not in raw_store(report_settings)  # and its vote
    assert "asked on day 10" in raw_store(report_settings)


def test_keep_questions_false_stores_no_text_anywhere(report_settings):
    clock = Clock()
    secret = "Is Zebulon Quartermaine getting the redundancy package?"
    rec = recorder(report_settings, clock, keep_questions=False)
    feedback_id = rec.record(declined(secret), record_id="fid-1")
    rec.record(answered(secret + " again", "doc-a"))
    rec.vote(feedback_id, "down")
    raw = raw_store(report_settings)
    assert "Zebulon" not in raw and "Quartermaine" not in raw and "redundancy" not in raw
    rows = rec.store.read(0)
    assert len(rows) == 2 and all(r.question is None and r.vector is None for r in rows)
    assert {r.outcome for r in rows} == {DECLINED, ANSWERED} and sum(r.down for r in rows) == 1  # counts stay
    report = build_report(rows, since=0, until=clock.now)
    assert report.totals.asked == 2 and report.gaps == 1 and report.gaps_without_text == 1 and not report.groups
    rec.close()


def test_turning_keep_questions_off_removes_the_texts_already_kept(report_settings):
    clock = Clock()
    rec = recorder(report_settings, clock)
    rec.record(declined("Where is the Ulaanbaatar office?"))
    rec.close()
    assert "Ulaanbaatar" in raw_store(report_settings)
    off = recorder(report_settings, clock, keep_questions=False)
    checkpoint(report_settings)
    assert "Ulaanbaatar" not in raw_store(report_settings)
    assert [r.outcome for r in off.store.read(0)] == [DECLINED]
    off.close()


def test_a_failing_store_never_costs_the_answer(tmp_path, caplog):
    store = SqliteReportStore(tmp_path / "state.sqlite3")
    store.close()  # every call now fails
    from bot.settings import ReportSettings

    rec = QuestionRecorder(store, ReportSettings(), via="slack", encode=None)
    assert rec.record(declined("What is the secret plan?")) is None
    rec.vote("x", "up")
    assert "secret plan" not in caplog.text and "could not record a question" in caplog.text


def test_the_answerers_question_vector_is_kept_not_embedded_again(tmp_path):
    from dataclasses import replace

    from bot.settings import ReportSettings

    asked: list[str] = []

    def encode(texts):
        asked.extend(texts)
        return np.stack([unit(1) for _ in texts])

    rec = QuestionRecorder(SqliteReportStore(tmp_path / "state.sqlite3"), ReportSettings(), via="chat", encode=encode)
    rec.record(replace(declined("Where is the parking?"), question_vector=unit(7) * 3.0))
    rec.record(declined("Who signs expense reports?"))  # an answer without the vector: embedded here
    kept = {r.question: r.vector for r in rec.store.read(0)}
    assert asked == ["Who signs expense reports?"]
    assert np.allclose(kept["Where is the parking?"], unit(7), atol=1e-3)  # stored unit length (float16)
    assert np.allclose(kept["Who signs expense reports?"], unit(1), atol=1e-3)
    rec.close()


def test_since_is_a_duration():
    assert parse_since("7d") == 7 * DAY and parse_since("24h") == DAY and parse_since("2w") == 14 * DAY
    for bad in ("", "7", "d", "-1d", "7 days", "0h"):
        with pytest.raises(ValueError, match="--since must be a duration"):
            parse_since(bad)


# Known gaps, each asked five ways, as people would type them into Slack; no two sets ask for
# the same thing. Written for this test: none comes from ../shared (the grouping was tuned there).
PARAPHRASE_SETS = [
    ["How do I reset my VPN password?", "I forgot my VPN password, how can I change it?",
     "What's the process to reset the password for the VPN?", "vpn password reset steps?",
     "Can someone tell me how to get a new VPN password?"],
    ["How many vacation days do new employees get?", "What is the annual leave allowance for new hires?",
     "How much paid time off do I get in my first year?", "new joiner holiday entitlement?",
     "How many days of annual leave does a new starter have?"],
    ["Is there parking at the Berlin office?", "Can I park my car at the Berlin office?",
     "Does the Berlin office have a car park for staff?", "where do I park when visiting the Berlin office",
     "Are there parking spaces for employees in Berlin?"],
    ["Who approves expense reports over 5,000 euros?", "Which manager signs off on expenses above €5k?",
     "Who has to approve an expense claim bigger than 5000 EUR?", "approval for expenses over 5000 euros?",
     "Whose approval do I need for a large expense report over five thousand euros?"],
    ["When is the next company all-hands meeting?", "What date is the next all hands?",
     "When's the next town hall for the whole company?", "next all-hands meeting date?",
     "When will the next all-company meeting take place?"],
    ["Does the health insurance cover dental care?", "Is dental treatment included in our health plan?",
     "Are dentist visits covered by the company health insurance?", "dental coverage in the medical plan?",
     "Will my health insurance pay for the dentist?"],
    # Same subjects as two sets above, another thing asked: they must stay apart from those.
    ["What are the opening hours of the Berlin office?", "When does the Berlin office open in the morning?",
     "berlin office hours?", "Until what time is the Berlin office open?",
     "What time can I get into the Berlin office?"],
    ["Which VPN client should I install on Linux?", "How do I set up the VPN on Ubuntu?",
     "Is there a VPN app for Linux laptops?", "vpn client for linux?",
     "How can I connect to the VPN from a Linux machine?"],
]
# Where the shipped grouping still fails a set, marked with the reason (similarities in its
# question space) rather than the set rewritten until it passes: model limits the report inherits,
# each a synonym or abbreviation all-MiniLM-L6-v2 does not know (docs/report.md).
MODEL_LIMITS = {1: "all-MiniLM-L6-v2 scores vacation / annual leave / PTO / holiday entitlement 0.2-0.5 apart"}
HELD_OUT_LIMITS = {
    11: "'air conditioning' / 'aircon' and 'heating' / 'too hot' / 'temperature' wordings 0.27-0.49 apart",
    12: "'on call' / 'on-call rota' and 'has the pager' / 'page for an incident' wordings 0.12-0.56 apart",
    16: "'NDA' and 'non-disclosure' / 'confidentiality agreement' wordings 0.18-0.38 apart",
}


def group_sets(sets: list[list[str]]) -> dict[int, int]:
    """Question number (in the order of `sets`) → its group, the sets asked interleaved."""
    from embeddings.encoders import get_encoder

    questions = [q for s in sets for q in s]
    order = np.random.default_rng(7).permutation(len(questions))
    groups = group_by_meaning(get_encoder("onnx", 256).encode([questions[i] for i in order]))
    return {int(order[m]): g for g, group in enumerate(groups) for m in group.members}


@pytest.fixture(scope="module")
def paraphrase_groups() -> dict[int, int]:
    return group_sets(PARAPHRASE_SETS)


@pytest.fixture(scope="module")
def held_out_groups() -> dict[int, int]:
    return group_sets(HELD_OUT_SETS)


def main_group(groups: dict[int, int], sets: list[list[str]], set_number: int) -> tuple[int, float]:
    """The group holding most of the set, and the share of the set it holds."""
    start = sum(len(s) for s in sets[:set_number])
    placed = [groups[start + i] for i in range(len(sets[set_number]))]
    best = max(set(placed), key=placed.count)
    return best, placed.count(best) / len(placed)


def known_limits(count: int, limits: dict[int, str]) -> list:
    return [pytest.param(i, marks=pytest.mark.xfail(strict=True, reason=limits[i])) if i in limits else i
            for i in range(count)]


@pytest.mark.slow
@pytest.mark.parametrize("set_number", known_limits(len(PARAPHRASE_SETS), MODEL_LIMITS))
def test_groups_put_paraphrases_of_one_gap_together(paraphrase_groups, set_number):
    """The acceptance rule: ≥ 80% of each set in one group."""
    _, share = main_group(paraphrase_groups, PARAPHRASE_SETS, set_number)
    assert share >= 0.8, (PARAPHRASE_SETS[set_number], share)


@pytest.mark.slow
@pytest.mark.parametrize("set_number", known_limits(len(HELD_OUT_SETS), HELD_OUT_LIMITS))
def test_groups_put_held_out_paraphrases_together(held_out_groups, set_number):
    """The same rule on the held-out batch (tests/paraphrase_heldout.py), written before the
    grouping's space was chosen and never used to choose it."""
    _, share = main_group(held_out_groups, HELD_OUT_SETS, set_number)
    assert share >= 0.8, (HELD_OUT_SETS[set_number], share)


# Berlin parking and Berlin office hours share "the Berlin office": 0.58 apart on average in the
# question space, above its cut (0.49) and above some sets' own wordings (docs/report.md).
MERGED = "shares 'the Berlin office' with another set: 0.58 apart on average, over the cut of 0.49"


@pytest.mark.slow
@pytest.mark.parametrize("set_number", known_limits(len(PARAPHRASE_SETS), {2: MERGED, 6: MERGED}))
def test_groups_keep_different_gaps_apart(paraphrase_groups, set_number):
    """The group holding most of a set holds most of no other set."""
    group, _ = main_group(paraphrase_groups, PARAPHRASE_SETS, set_number)
    others = [main_group(paraphrase_groups, PARAPHRASE_SETS, k)[0] for k in range(len(PARAPHRASE_SETS)) if k != set_number]
    assert group not in others


@pytest.mark.slow
@pytest.mark.parametrize("pair", NEAR_MISSES)
def test_groups_keep_held_out_near_misses_apart(held_out_groups, pair):
    """Two held-out sets on one subject asking different things: their main groups differ."""
    first, second = (main_group(held_out_groups, HELD_OUT_SETS, k)[0] for k in pair)
    assert first != second, [HELD_OUT_SETS[k][0] for k in pair]


@pytest.mark.slow
def test_a_small_report_of_one_gap_stays_one_group():
    """The space's reference is fixed, not the report's own mean: a report holding only the five
    wordings of one gap is not centred on that gap and split by what is left. Every set the batch
    tests pass, asked alone, keeps the same ≥ 80% in one group."""
    from embeddings.encoders import get_encoder

    encoder = get_encoder("onnx", 256)
    for sets, limits in ((PARAPHRASE_SETS, MODEL_LIMITS), (HELD_OUT_SETS, HELD_OUT_LIMITS)):
        for number, asked in enumerate(sets):
            if number not in limits:
                largest = group_by_meaning(encoder.encode(asked))[0]
                assert largest.size >= 0.8 * len(asked), asked


def generated_store(settings, count: int, now: float) -> None:
    """`count` records over the last 30 days: a third declined, some voted, texts from a few
    templates with varying subjects, random unit vectors near their template's."""
    rng = np.random.default_rng(3)
    store = open_store(settings)
    templates = [unit(s) for s in range(40)]
    for i in range(count):
        t = int(rng.integers(40))
        vector = templates[t] + rng.normal(scale=0.02, size=384).astype(np.float32)
        outcome = [ANSWERED, DECLINED, LLM_FALLBACK][int(rng.choice(3, p=[0.6, 0.33, 0.07]))]
        asked = now - float(rng.uniform(0, 30 * DAY))
        store.add(QuestionRecord(f"id{i}", asked, "slack", outcome, ("hr",) if t % 2 else ("legal",),
                                 () if outcome == DECLINED else (f"doc-{t % 7}",), f"question {i} about topic {t}?",
                                 vector / np.linalg.norm(vector)), delete_before=0)
        for vote in [v for v in ("up", "down") if rng.integers(2)]:
            store.vote(f"id{i}", vote, asked)
    store.close()


@pytest.mark.slow
def test_report_command_on_a_generated_store(settings, tmp_path):
    settings = settings.replace("paths", state_db=tmp_path / "state.sqlite3")
    generated_store(settings, 10_000, time.time())
    env = {"QABOT_STATE_DB": str(settings.paths.state_db), "QABOT_INDEX": str(tmp_path / "no-index"),
           "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "bot.cli_main", "report", "--since", "30d", "--json"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["totals"]["asked"] == 10_000
    stored = open_store(settings).read(0)
    assert report["gaps"] == sum(r.is_gap for r in stored) and report["totals"]["declined"] == sum(
        r.outcome == DECLINED for r in stored)
    assert 35 <= len(report["groups"]) <= 45  # the 40 topics, as generated
    assert all(len(g["examples"]) == 3 for g in report["groups"][:10])
    assert sum(b["asked"] for b in report["timeline"]) == 10_000
    assert report["never_cited"] is None  # no index to read
    only_hr = subprocess.run([sys.executable, "-m", "bot.cli_main", "report", "--since", "30d", "--json",
                              "--collection", "hr"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert only_hr.returncode == 0, only_hr.stderr
    hr = json.loads(only_hr.stdout)
    assert 0 < hr["totals"]["asked"] < 10_000 and hr["collections"] == ["hr"]


def test_report_command_prints_json_html_and_refuses_a_bad_window_or_page_path_in_one_line(settings, tmp_path, sample_index):
    from typer.testing import CliRunner

    from bot.cli import app

    state_db = tmp_path / "state.sqlite3"
    rec = recorder(settings.replace("paths", state_db=state_db), Clock(time.time()))
    rec.record(declined("Where is the cafeteria?"))
    first = rec.record(answered("What deadline did Ryabkov give?", "ryabkov-2022-01-06.txt~abc123"))
    rec.vote(first, "up")
    rec.close()
    env = {"QABOT_STATE_DB": str(state_db), "QABOT_INDEX": str(sample_index)}
    runner = CliRunner()
    shown = runner.invoke(app, ["report", "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert report["totals"]["asked"] == 2 and report["totals"]["up"] == 1 and report["gaps"] == 1
    assert report["groups"][0]["examples"] == ["Where is the cafeteria?"]
    assert [d["id"] for d in report["most_cited"]] == ["ryabkov-2022-01-06.txt~abc123"]
    assert len(report["never_cited"]) == 1  # the sample index's one document, cited under another id here
    page = tmp_path / "out" / "report.html"
    printed = runner.invoke(app, ["report", "--since", "24h", "--html", str(page)], env=env)
    assert printed.exit_code == 0, printed.output
    assert "2 asked · 50% answered" in printed.output
    assert printed.output.count("Where is the cafeteria?") == 1  # the group's name, not again as its example
    assert page.read_text(encoding="utf-8").count("data:image/png;base64,") == 4
    before = state_db.read_bytes()
    bad = runner.invoke(app, ["report", "--since", "last week"], env=env)
    assert bad.exit_code != 0 and bad.output.strip().count("\n") == 0
    assert "--since must be a duration such as 30m, 24h, 7d or 2w" in bad.output
    into_a_folder = runner.invoke(app, ["report", "--html", str(tmp_path)], env=env)
    assert into_a_folder.exit_code == 1 and into_a_folder.output.strip().count("\n") == 0
    assert f"Error: cannot write the report to {tmp_path}" in into_a_folder.output
    assert isinstance(into_a_folder.exception, SystemExit), into_a_folder.exception  # not an OSError
    typo = tmp_path / "typo" / "state.sqlite3"  # a state_db never written: said so, and not created
    missing = runner.invoke(app, ["report"], env={**env, "QABOT_STATE_DB": str(typo)})
    assert missing.exit_code == 1 and missing.output.strip().count("\n") == 0
    assert f"Error: no state database at {typo}: nothing was recorded there" in missing.output
    assert not typo.parent.exists()
    assert state_db.read_bytes() == before
