"""`qabot serve` replicas as real processes, for the replica tests (SQLite on one host, Redis
across hosts): start in HTTP mode on a free port, post signed Slack deliveries, stop or kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Mapping

from .conftest import ROOT
from .slack_requests import http_post, signature_headers
from .slack_standin import BOT_TOKEN, SIGNING_SECRET, wait_until


class ServeProcess:
    """`qabot serve` in HTTP mode, as a separate process, on the given data folder."""

    def __init__(self, standin, index: Path, data: Path, extra_env: Mapping[str, str] | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "QABOT_"))}
        env.update(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=standin.api_url,
                   QABOT_INDEX=str(index), QABOT_STATE_DB=str(data / "state.sqlite3"),
                   QABOT_FEEDBACK_LOG=str(data / "feedback.jsonl"), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
        env.update(extra_env or {})
        command = [sys.executable, "-m", "bot.cli", "serve", "--port", "0", "--host", "127.0.0.1"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()
        self.url = ""

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_listening(self) -> None:
        line = wait_until(lambda: next((ln for ln in self.lines if "listening for Slack on" in ln), None)
                          or self.process.poll() is not None, timeout=90, message="qabot serve to listen")
        assert isinstance(line, str), "".join(self.lines)
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        self.url = f"http://127.0.0.1:{port}/slack/events"

    def post(self, body: dict, headers: dict[str, str] | None = None, timeout: float = 15.0) -> int:
        data = json.dumps(body)
        status, _, _ = http_post(self.url, data, {"Content-Type": "application/json", **signature_headers(data),
                                                  **(headers or {})}, timeout=timeout)
        return status

    def kill(self) -> None:
        """SIGKILL: no shutdown, answers in progress are lost with the process."""
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._reader.join(5)
        return "".join(self.lines)
