"""Replicas: two `qabot serve` processes sharing one data folder never answer the same message twice,
whatever order Slack's deliveries (the mention, its ``message`` twin, retries, edits) reach them in.
The state database decides: a claim is an INSERT, and the first process to commit it wins."""

from __future__ import annotations

import subprocess
import sys
import threading

from .conftest import ROOT
from .replicas import ServeProcess
from .slack_requests import event_body, mention_event, twin_of

QUESTIONS = ("What deadline did Ryabkov give?", "When are the talks in Geneva?")
MENTIONS = 10
PROCESSES_CLAIMING = 4
KEYS_CLAIMED = 300

CLAIMER = """
import random, sys
from pathlib import Path
from bot.slack.store import SqliteAnsweredStore, message_key
store = SqliteAnsweredStore(Path(sys.argv[1]), ttl_s=3600, max_rows=100000)
keys = list(range(int(sys.argv[2])))
random.Random(int(sys.argv[3])).shuffle(keys)
print(sum(store.claim(message_key("C1", f"1700000000.{k:06d}"), 1700000000 + k / 1e6) for k in keys))
"""


def test_processes_sharing_the_state_database_claim_each_key_exactly_once(tmp_path):
    path = tmp_path / "data" / "state.sqlite3"
    processes = [subprocess.Popen([sys.executable, "-c", CLAIMER, str(path), str(KEYS_CLAIMED), str(seed)], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for seed in range(PROCESSES_CLAIMING)]
    wins = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        wins.append(int(out.strip()))
    assert sum(wins) == KEYS_CLAIMED, wins


def test_two_serve_processes_sharing_a_data_folder_never_answer_a_message_twice(standin, sample_index, tmp_path):
    data = tmp_path / "data"
    replicas = [ServeProcess(standin, sample_index, data) for _ in range(2)]
    try:
        for replica in replicas:
            replica.wait_listening()
        mentions = [mention_event(QUESTIONS[i % 2], channel=f"C{i % 3}") for i in range(MENTIONS)]
        statuses: list[int] = []
        lock = threading.Lock()

        def deliver_to_both(body: dict, first: int, headers: dict[str, str] | None = None) -> None:
            """The same delivery to both replicas at once (the one listed first starts first)."""
            order = replicas[first:] + replicas[:first]
            threads = [threading.Thread(target=lambda r=r: _record(r.post(body, headers))) for r in order]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)

        def _record(status: int) -> None:
            with lock:
                statuses.append(status)

        for i, mention in enumerate(mentions):
            body = event_body(mention)
            deliver_to_both(body, i % 2)  # the mention, to both
            deliver_to_both(event_body(twin_of(mention)), (i + 1) % 2)  # its `message` twin
            deliver_to_both(body, i % 2, {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
        standin.wait_for("chat.postMessage", MENTIONS, timeout=120)
        for i, mention in enumerate(mentions):  # then every mention is edited
            edited = {**mention, "text": mention["text"] + " (edited)", "edited": {"user": mention["user"],
                                                                                  "ts": "1800000000.000000"}}
            deliver_to_both(event_body(edited), (i + 1) % 2)
    finally:
        outputs = [replica.stop() for replica in replicas]  # SIGTERM: answers in progress finish first
    assert statuses == [200] * (MENTIONS * 4 * 2)
    posts = standin.posts()
    answered = sorted((p.params["channel"], p.params["thread_ts"]) for p in posts)
    assert answered == sorted((m["channel"], m["ts"]) for m in mentions), "\n".join(outputs)
    assert len(standin.calls("reactions.add")) == MENTIONS
    for output in outputs:
        assert "qabot stopped" in output
