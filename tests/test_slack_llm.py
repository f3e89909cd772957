"""Composed answers in Slack (issue 13), over real HTTP against the Web API stand-in and the LLM
stand-in, with the real Answerer: the LLM's text streams into the thread (chat.startStream /
appendStream / stopStream) and ends with its numbered sources and the 👍/👎 buttons; an LLM outage
midway ends with the extractive answer in place of the half-streamed text, never half a message."""

from __future__ import annotations

from bot.answering.llm import UNAVAILABLE_NOTICE
from bot.slack.blocks import escape

from .llm_standin import GOOD
from .slack_requests import SpyAnswerer, mention_event
from .test_llm_article import composing

DEADLINE_Q = "What deadline did Ryabkov give?"


class Recording(SpyAnswerer):
    """The composing Answerer (it streams: `ask_streaming`), remembering each answer."""

    def __init__(self, real) -> None:
        super().__init__(real)
        self.answers: list = []

    def ask_streaming(self, question, history, on_text):
        answer = self.real.ask_streaming(question, history, on_text)
        self.answers.append(answer)
        return answer


def test_a_composed_answer_streams_into_the_thread_then_carries_its_sources_and_buttons(
        make_bot, standin, answerer, slack_settings, llm_standin):
    settings = slack_settings.replace("slack", stream_after_s=0.1)
    llm_standin.script(reply=GOOD, delay=0.05)
    spy = Recording(composing(answerer, settings, llm_standin))
    bot = make_bot(spy, settings)
    event = mention_event(DEADLINE_Q)
    bot.send_event(event)
    stop = standin.wait_for("chat.stopStream")[0]
    bot.wait_idle()
    (answer,) = spy.answers
    assert answer.composed and llm_standin.calls[0].stream
    start = standin.calls("chat.startStream")[0]
    assert start.params["thread_ts"] == event["ts"]
    assert start.params["markdown_text"] and len(start.params["markdown_text"]) < len(answer.text)  # a beginning
    message = standin.message(event["channel"], stop.params["ts"])
    assert message["text"] == escape(answer.text)  # the LLM's words, every one, in order
    blocks = stop.blocks()
    labels = " ".join(e["text"] for b in blocks if b["type"] == "context" for e in b["elements"])
    assert "[1] Russian Diplomat Ryabkov" in labels
    assert "results within a few weeks" in str(blocks)  # the sentence the answer rests on
    assert blocks[-1]["type"] == "actions"
    assert standin.posts() == [] and standin.calls("chat.update") == []


def test_an_llm_outage_during_streaming_ends_with_the_extractive_answer(
        make_bot, standin, answerer, slack_settings, llm_standin):
    settings = slack_settings.replace("slack", stream_after_s=0.1)
    llm_standin.script("drop", GOOD, delay=0.05, keep=8)
    spy = Recording(composing(answerer, settings, llm_standin, max_retries=0))
    bot = make_bot(spy, settings)
    event = mention_event(DEADLINE_Q)
    bot.send_event(event)
    update = standin.wait_for("chat.update")[0]
    bot.wait_idle()
    (answer,) = spy.answers
    assert not answer.composed and answer.notice == UNAVAILABLE_NOTICE
    start = standin.calls("chat.startStream")[0]  # the LLM's text had started to stream ...
    assert start.params["thread_ts"] == event["ts"] and "Ryabkov" in start.params["markdown_text"]
    assert update.params["ts"] == standin.calls("chat.stopStream")[0].params["ts"]
    message = standin.message(event["channel"], update.params["ts"])  # ... and the extractive answer replaced it
    assert "within a few weeks" in message["text"] and "[1]" not in message["text"]
    assert UNAVAILABLE_NOTICE in str(message["blocks"]) and message["blocks"][-1]["type"] == "actions"
    assert standin.posts() == []


def test_a_question_the_articles_do_not_answer_is_declined_in_slack_without_the_llm(
        make_bot, standin, answerer, slack_settings, llm_standin):
    settings = slack_settings.replace("slack", stream_after_s=0.1)
    bot = make_bot(composing(answerer, settings, llm_standin), settings)
    bot.send_event(mention_event("What did President Biden say about the Geneva talks?"))
    post = standin.wait_for("chat.postMessage")[0]
    bot.wait_idle()
    assert "couldn" in post.text_and_blocks() and llm_standin.calls == []
