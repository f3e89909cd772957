"""One chat completion from an OpenAI-compatible server (OpenAI, Azure, Ollama, vLLM, llama.cpp),
whole or streamed piece by piece, through the official `openai` client.

The client is imported on first use: `qabot ask` with ``[llm] enabled = false`` never pays for it.
Every failure — a timeout, a refused connection, a 5xx or a 429 once the client's retries are spent,
a reply without text — becomes one `LlmUnavailable` whose message names the kind of failure only:
no response body (which may echo the request) and never the API key.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from embeddings.errors import QabotError

from ..settings import LlmSettings

log = logging.getLogger(__name__)

# Sent as the key when the variable named by api_key_env is unset: the openai client refuses to
# start without one, and local servers (Ollama, llama.cpp, vLLM) ignore it.
NO_KEY = "unset"


class LlmUnavailable(QabotError):
    """The LLM gave no usable reply; the message says why in a few words (no secrets)."""


@dataclass(frozen=True)
class Completion:
    """The model's whole reply and what it cost."""

    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class LlmClient:
    """Chat completions with the configured server, model, timeouts and retries. Thread-safe (the
    openai client is); one per process is enough."""

    def __init__(self, cfg: LlmSettings, environ: Mapping[str, str] | None = None) -> None:
        self.cfg = cfg
        environ = os.environ if environ is None else environ
        self._key = environ.get(cfg.api_key_env) or ""
        if not self._key:
            log.info("LLM: %s is not set; sending no API key (fine for a local server)", cfg.api_key_env)
        self._client: Any = None
        self._lock = threading.Lock()

    def warm(self) -> None:
        """Import the client library and build the client now rather than on the first question."""
        self._openai()

    def _openai(self) -> Any:
        with self._lock:
            if self._client is None:
                import openai  # here, not at the top: ~0.6 s of imports only when the LLM is used

                self._client = openai.OpenAI(
                    base_url=self.cfg.base_url, api_key=self._key or NO_KEY, max_retries=self.cfg.max_retries,
                    timeout=openai.Timeout(self.cfg.request_timeout_s, connect=self.cfg.connect_timeout_s))
            return self._client

    def complete(self, messages: Sequence[dict[str, str]],
                 on_text: Callable[[str], None] | None = None) -> Completion:
        """The reply to `messages`; streamed (``stream: true``), each piece handed to `on_text` as it
        arrives, when `on_text` is given. Raises `LlmUnavailable`."""
        import openai

        client = self._openai()
        request = {"model": self.cfg.model, "messages": list(messages), "max_tokens": self.cfg.max_tokens,
                   "temperature": self.cfg.temperature}
        try:
            if on_text is None:
                return _whole(client.chat.completions.create(**request), self.cfg.model)
            stream = client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True})
            return _streamed(stream, self.cfg.model, on_text)
        except openai.APITimeoutError:
            raise LlmUnavailable(f"no reply within {self.cfg.request_timeout_s:g} s") from None
        except openai.APIConnectionError:
            raise LlmUnavailable("could not connect to the LLM server") from None
        except openai.RateLimitError:
            raise LlmUnavailable("rate limited (HTTP 429) after retries") from None
        except openai.APIStatusError as exc:
            raise LlmUnavailable(f"HTTP {exc.status_code} from the LLM server") from None
        except openai.OpenAIError as exc:
            raise LlmUnavailable(f"malformed reply ({type(exc).__name__})") from None
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
            raise LlmUnavailable(f"malformed reply ({type(exc).__name__})") from None


def _whole(response: Any, model: str) -> Completion:
    text = response.choices[0].message.content
    if not isinstance(text, str) or not text.strip():
        raise LlmUnavailable("malformed reply (no text)")
    usage = response.usage
    return Completion(text, response.model or model, usage.prompt_tokens if usage else None,
                      usage.completion_tokens if usage else None)


def _streamed(stream: Any, model: str, on_text: Callable[[str], None]) -> Completion:
    parts: list[str] = []
    usage = None
    for chunk in stream:
        model = getattr(chunk, "model", None) or model
        usage = chunk.usage or usage
        for choice in chunk.choices or ():
            piece = choice.delta.content if choice.delta else None
            if piece:
                parts.append(piece)
                on_text(piece)
    text = "".join(parts)
    if not text.strip():
        raise LlmUnavailable("malformed reply (no text)")
    return Completion(text, model, usage.prompt_tokens if usage else None,
                      usage.completion_tokens if usage else None)
