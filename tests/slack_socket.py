"""Slack's side of Socket Mode in tests: a real websocket server on 127.0.0.1 that says
``hello``, sends event envelopes and records the ``envelope_id`` acknowledgements."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from typing import Any

from .slack_standin import APP_ID

class SocketModeServer:
    """Slack's end of Socket Mode on ws://127.0.0.1: hello, envelopes out, acks in."""

    def __init__(self) -> None:
        from websockets.sync.server import serve

        self._outgoing: queue.Queue = queue.Queue()
        self.acks: list[dict] = []
        self.received: list[str] = []
        self._cond = threading.Condition()
        self.connections = 0
        self._server = serve(self._handle, "127.0.0.1", 0, compression=None)
        self._thread = threading.Thread(target=self._server.serve_forever, name="socket-mode-standin", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        port = self._server.socket.getsockname()[1]
        return f"ws://127.0.0.1:{port}/link/?ticket=standin-ticket"

    def close(self) -> None:
        self._server.shutdown()

    def _handle(self, websocket: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        with self._cond:
            self.connections += 1
            self._cond.notify_all()
        try:
            websocket.send(json.dumps({"type": "hello", "num_connections": 1,
                                       "debug_info": {"host": "standin", "approximate_connection_time": 3600},
                                       "connection_info": {"app_id": APP_ID}}))
            while True:
                try:
                    while True:
                        websocket.send(json.dumps(self._outgoing.get_nowait()))
                except queue.Empty:
                    pass
                try:
                    raw = websocket.recv(timeout=0.02)
                except TimeoutError:
                    continue
                with self._cond:
                    self.received.append(raw if isinstance(raw, str) else raw.decode("utf-8"))
                    try:
                        message = json.loads(self.received[-1])
                    except ValueError:
                        message = None
                    if isinstance(message, dict) and message.get("envelope_id"):
                        self.acks.append(message)
                    self._cond.notify_all()
        except ConnectionClosed:
            return

    def wait_connected(self, timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.connections > 0, timeout):
                raise AssertionError("the bot never opened the Socket Mode websocket")

    def send(self, envelope_type: str, payload: dict, *, envelope_id: str | None = None,
             retry_attempt: int = 0, retry_reason: str = "", accepts_response_payload: bool | None = None) -> str:
        envelope_id = envelope_id or str(uuid.uuid4())
        envelope = {"envelope_id": envelope_id, "type": envelope_type, "payload": payload,
                    "accepts_response_payload": (envelope_type != "events_api")
                    if accepts_response_payload is None else accepts_response_payload}
        if envelope_type == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        self._outgoing.put(envelope)
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 10.0) -> dict:
        with self._cond:
            found = self._cond.wait_for(
                lambda: next((a for a in self.acks if a["envelope_id"] == envelope_id), None), timeout)
        if not found:
            raise AssertionError(f"no ack for envelope {envelope_id}")
        return found
