"""The one answer path: a `SlackQuestion` from any listener in, an answer (or an apology) posted out.

The answer goes through a `streaming.ReplySink`: posted whole by default, streamed into the
thread when the listener offers a stream and the answerer produces its text piece by piece.

Questions are not logged at INFO or above (see SECURITY.md): failures log the exception and where
the question came from (channel and thread ids); the question text goes to DEBUG only.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any, Callable

from ..answering.answer import Answer
from .blocks import Message, render_answer, render_apology
from .client import api_error
from .question import SlackQuestion
from .state import BotState
from .streaming import PostedReply, ReplySink, StreamsAnswers
from .workers import AnswerTimeout, call_within

log = logging.getLogger(__name__)


def answer_and_post(state: BotState, question: SlackQuestion, *, sink: ReplySink | None = None,
                    only_if_found: bool = False) -> Answer | None:
    """Answer `question` within the time limit and post it; on any failure post an apology instead,
    and log why. Returns the answer posted, or None.

    `sink` is where the answer goes (default: posted whole with ``question.post``). With
    `only_if_found` nothing at all is posted unless an answer is found — no decline, no apology —
    for messages that may not have been meant for the bot (`intent.Kind.REQUEST`); such replies
    are never streamed, since a stream would show the text before the verdict.
    """
    started = time.perf_counter()
    where = question.where
    if sink is None or only_if_found:
        sink = PostedReply(question.post)
    log.debug("answering in %s: %r", where, question.text)
    try:
        answer = call_within(state.answers, state.timeout_s, _ask(state, sink, question.collections),
                             question.text, question.history)
    except AnswerTimeout:
        log.error("answering in %s timed out after %.1f s", where, state.timeout_s)
        if not only_if_found:
            _fail(sink, render_apology(timeout_s=state.timeout_s), where)
        return None
    except Exception as exc:
        log.error("answering in %s failed: %s", where, api_error(exc), exc_info=True)
        if not only_if_found:
            _fail(sink, render_apology(), where)
        return None
    if only_if_found and answer.abstained:
        log.info("no answer found in %s: staying silent (not clearly a question)", where)
        return None
    feedback_id = state.feedback.remember(answer)
    options: dict[str, Any] = {"feedback_id": feedback_id, "asked_by": question.asked_by, "echo_question": question.echo_question}
    message = render_answer(answer, **options)
    details = render_answer(answer, include_text=False, **options).blocks if sink.streams else []
    try:
        sink.finish(message, details, answer.text)
    except Exception as exc:
        log.error("posting the answer in %s failed: %s", where, api_error(exc), exc_info=True)
        _fail(sink, render_apology(), where)
        return None
    state.recorder.record(answer, record_id=feedback_id)  # its votes find it by the same id
    log.info("answered in %s in %.0f ms (%s)", where, (time.perf_counter() - started) * 1000,
             "abstained" if answer.abstained else f"{len(answer.citations)} passages")
    return answer


def _ask(state: BotState, sink: ReplySink, collections: tuple[str, ...] | None) -> Callable[..., Answer]:
    """The answerer's call: its streaming variant feeding `sink` when both can stream; limited to
    the channel's `collections` when it has some (None: every collection, the call unchanged)."""
    answerer = state.answerer
    scoped: dict[str, Any] = {} if collections is None else {"collections": collections}
    if sink.streams and isinstance(answerer, StreamsAnswers):
        return functools.partial(_ask_streaming, answerer, sink, **scoped)
    return functools.partial(answerer.ask, **scoped) if scoped else answerer.ask


def _ask_streaming(answerer: StreamsAnswers, sink: ReplySink, question: str, history: tuple[str, ...],
                   **scoped: Any) -> Answer:
    return answerer.ask_streaming(question, history, sink.append, **scoped)


def _fail(sink: ReplySink, apology: Message, where: str) -> None:
    try:
        sink.fail(apology)
    except Exception as exc:
        log.error("could not post an apology in %s either: %s", where, api_error(exc))
