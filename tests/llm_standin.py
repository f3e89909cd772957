"""A stand-in for an OpenAI-compatible LLM server in tests: ``/v1/chat/completions`` on 127.0.0.1,
whole (JSON) or streamed (``stream: true``: server-sent events in chunked HTTP/1.1, ``data:
{chunk}`` ... ``data: [DONE]``, a usage chunk when ``stream_options.include_usage``), as OpenAI's
API answers. qabot's real `openai` client talks to it over real HTTP.

Replies are scripted (`LlmStandIn.script`). A reply template may name sources by what they say:
``{src:within a few weeks}`` becomes the number of the source in the request whose text holds that
phrase, so a scripted "good" answer cites whatever number qabot gave the right passage — the test
checks that qabot numbered, parsed and verified it, not that the stand-in guessed.

Modes: ``reply`` (the template, cited or not — "good", "uncited", "hallucinated quote" are
templates), ``injection`` (obeys a source that says "reply PWNED", else the template), ``slow``
(waits `delay` seconds before answering), ``status`` (HTTP `status`, e.g. 500 or 429 with
``retry-after-ms``; `times` then the template), ``malformed`` (200 with no choices), ``drop``
(streams `keep` pieces, then the connection breaks). Every request is recorded (`calls`).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

API_KEY = "sk-qabotTEST-llm-0123456789abcdefSECRET"
MODEL = "standin-7b-instruct"
GOOD = ('Ryabkov gave no firm deadline: Russia wants to see results "within a few weeks" '
        '[{src:within a few weeks}], and Putin said "the result is needed immediately" '
        '[{src:needed immediately}].')
_SOURCE = re.compile(r'<source-(\w+) id="(\d+)"[^>]*>\n(.*?)\n</source-\1>', re.DOTALL)
_PLACEHOLDER = re.compile(r"\{src:([^}]+)\}")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a connection the client dropped (its timeout) or a scripted drop: expected here


@dataclass
class Request:
    """One request as the server received it."""

    path: str
    body: dict
    authorization: str | None
    at: float = field(default_factory=time.monotonic)

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    def user_text(self) -> str:
        return "\n".join(m.get("content", "") for m in self.body.get("messages", []) if m.get("role") == "user")

    def sources(self) -> dict[int, str]:
        """Source number -> text, parsed from the prompt's delimiters."""
        return {int(n): text for _, n, text in _SOURCE.findall(self.user_text())}


@dataclass
class Script:
    mode: str = "reply"
    reply: str = GOOD
    status: int = 500
    times: int = 1_000_000  # how many requests get `status` before the template is answered
    delay: float = 0.0  # seconds before answering (slow) or between streamed pieces
    keep: int = 3  # pieces streamed before a drop
    # Question words -> the template for a question holding them (else `reply`): one script for
    # an evaluation run of several questions.
    by_question: dict[str, str] = field(default_factory=dict)


class LlmStandIn:
    def __init__(self, api_key: str = API_KEY, model: str = MODEL) -> None:
        self.api_key = api_key
        self.model = model
        self.calls: list[Request] = []
        self._script = Script()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                standin._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, mode: str = "reply", reply: str = GOOD, **options: Any) -> None:
        with self._lock:
            self._script = Script(mode, reply, **options)

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "LlmStandIn":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the server side ----------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        request = Request(handler.path, body, handler.headers.get("Authorization"))
        with self._lock:
            self.calls.append(request)
            script = self._script
            failing = script.mode == "status" and script.times > 0
            if failing:
                script.times -= 1
        if handler.path.rstrip("/") != "/v1/chat/completions":
            return self._json(handler, 404, {"error": {"message": "not found", "type": "invalid_request_error"}})
        if request.authorization != f"Bearer {self.api_key}":
            return self._json(handler, 401, {"error": {"message": "invalid api key", "type": "invalid_request_error"}})
        if failing:
            # A quick Retry-After (the openai client honours it on 429 and 5xx): fast tests.
            headers = {"retry-after-ms": "10"} if script.status == 429 or script.status >= 500 else {}
            return self._json(handler, script.status,
                              {"error": {"message": f"scripted {script.status}", "type": "server_error"}}, headers)
        if script.mode == "slow":
            self._closing.wait(script.delay)
        if script.mode == "malformed":
            return self._json(handler, 200, {"id": "x", "object": "chat.completion", "model": self.model, "choices": []})
        text = self._reply_text(script, request)
        if request.stream:
            return self._stream(handler, request, script, text)
        usage = self._usage(request, text)
        self._json(handler, 200, {
            "id": "chatcmpl-standin", "object": "chat.completion", "created": int(time.time()), "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage})

    def _reply_text(self, script: Script, request: Request) -> str:
        sources = request.sources()
        if script.mode == "injection" and any("reply PWNED" in text for text in sources.values()):
            return "PWNED"

        def number(match: re.Match) -> str:
            phrase = match.group(1)
            found = [n for n, text in sorted(sources.items()) if phrase in text]
            return str(found[0]) if found else "99"

        question = request.user_text().rsplit("Question", 1)[-1]
        template = next((t for words, t in script.by_question.items() if words in question), script.reply)
        return _PLACEHOLDER.sub(number, template)

    @staticmethod
    def _usage(request: Request, text: str) -> dict[str, int]:
        prompt = sum(len(m.get("content", "").split()) for m in request.body.get("messages", []))
        completion = len(text.split())
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _stream(self, handler: BaseHTTPRequestHandler, request: Request, script: Script, text: str) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("Cache-Control", "no-cache")
        handler.end_headers()

        def event(payload: dict | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            frame = f"data: {data}\n\n".encode()
            handler.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
            handler.wfile.flush()

        def chunk(delta: dict, finish: str | None = None) -> dict:
            return {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": int(time.time()),
                    "model": self.model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        pieces = re.findall(r"\S+\s*", text)
        try:
            event(chunk({"role": "assistant", "content": ""}))
            for i, piece in enumerate(pieces):
                if script.mode == "drop" and i == script.keep:
                    handler.close_connection = True
                    handler.connection.close()  # mid-stream: no last chunk, no [DONE]
                    return
                if script.delay and script.mode != "slow":
                    self._closing.wait(script.delay)
                event(chunk({"content": piece}))
            event(chunk({}, "stop"))
            if (request.body.get("stream_options") or {}).get("include_usage"):
                event({"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": int(time.time()),
                       "model": self.model, "choices": [], "usage": self._usage(request, text)})
            event("[DONE]")
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except OSError:
            pass  # the client went away (a timeout on its side)

    @staticmethod
    def _json(handler: BaseHTTPRequestHandler, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        try:
            handler.wfile.write(data)
        except OSError:
            pass


# --- fixtures (conftest imports them for every test module) -------------------------------------

KEY_ENV = "STANDIN_LLM_KEY"  # not QABOT_*: load_settings refuses unknown QABOT_ variables


@pytest.fixture
def llm_standin(monkeypatch):
    """A fresh LLM stand-in per test, its API key in $STANDIN_LLM_KEY."""
    monkeypatch.setenv(KEY_ENV, API_KEY)
    with LlmStandIn() as server:
        yield server


def llm_on(settings: Any, standin: LlmStandIn, **changes: Any) -> Any:
    """`settings` with [llm] pointed at the stand-in (quick timeouts and retries for tests)."""
    options = {"enabled": True, "base_url": standin.url, "model": standin.model, "api_key_env": KEY_ENV,
               "request_timeout_s": 5.0, "connect_timeout_s": 2.0, "max_retries": 1}
    options.update(changes)
    return settings.replace("llm", **options)
