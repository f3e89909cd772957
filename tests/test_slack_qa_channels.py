"""Q&A channels (``[slack] qa_channels``): top-level questions answered without a mention, the rest
of the conversation left alone — over real HTTP against the Web API stand-in, with the real
Answerer — and the question test (`bot.slack.intent`) on its own."""

from __future__ import annotations

import json

import pytest

from bot.settings import load_settings
from bot.slack.intent import Kind, classify

from .conftest import SHARED_EVAL
from .slack_requests import SpyAnswerer, mention_event, message_event
from .slack_standin import new_ts, wait_until

QA = "C0ASKDOCS"
OTHER = "C0GENERAL"


@pytest.fixture
def qa_settings(slack_settings):
    return slack_settings.replace("slack", qa_channels=(QA,))


def test_a_question_is_answered_without_a_mention_and_thanks_gets_nothing(make_bot, standin, answerer,
                                                                           qa_settings):
    spy = SpyAnswerer(answerer)
    bot = make_bot(spy, qa_settings)
    question = message_event("When are the Geneva talks?", channel=QA)
    bot.send_event(question)
    post = standin.wait_for("chat.postMessage")[0]
    assert post.params["channel"] == QA and post.params["thread_ts"] == question["ts"]
    assert "Jan. 10" in post.text_and_blocks()

    for chatter in ("thanks!", "ok", "see you", "Thanks, will do.", "What a relief!", "The talks went well."):
        bot.send_event(message_event(chatter, channel=QA))
    bot.wait_idle()
    assert len(standin.posts()) == 1
    assert spy.calls == [("When are the Geneva talks?", ())]  # chatter never reaches the answerer
    assert len(standin.calls("reactions.add")) == 1


def test_other_channels_still_need_a_mention(make_bot, standin, answerer, qa_settings):
    spy = SpyAnswerer(answerer)
    bot = make_bot(spy, qa_settings)
    bot.send_event(message_event("When are the Geneva talks?", channel=OTHER))
    bot.wait_idle()
    assert standin.posts() == [] and spy.calls == []
    mention = mention_event("When are the Geneva talks?", channel=OTHER)
    bot.send_event(mention)
    post = standin.wait_for("chat.postMessage")[0]
    assert post.params["channel"] == OTHER and post.params["thread_ts"] == mention["ts"]


def test_a_question_the_documents_cannot_answer_gets_the_decline(make_bot, standin, answerer, qa_settings):
    bot = make_bot(answerer, qa_settings)
    bot.send_event(message_event("Is the cafeteria open on Sundays?", channel=QA))
    post = standin.wait_for("chat.postMessage")[0]
    assert "couldn't find" in post.text_and_blocks()


def test_a_request_is_answered_only_when_an_answer_is_found(make_bot, standin, answerer, qa_settings):
    spy = SpyAnswerer(answerer)
    bot = make_bot(spy, qa_settings)
    unfound = message_event("Tell me the weather forecast for Paris", channel=QA)
    bot.send_event(unfound)
    wait_until(lambda: spy.calls, message="the answerer to be asked")
    bot.wait_idle()
    assert standin.posts() == [] and standin.calls("reactions.add") == []  # silent: no decline, no 👀
    # The bot has said nothing in that thread, so a reply there is not a follow-up for it.
    bot.send_event(message_event("and for tomorrow?", channel=QA, thread_ts=unfound["ts"]))
    bot.wait_idle()
    assert standin.posts() == [] and len(spy.calls) == 1

    found = message_event("Tell me the deadline Ryabkov gave", channel=QA)
    bot.send_event(found)
    post = standin.wait_for("chat.postMessage")[0]
    assert post.params["thread_ts"] == found["ts"] and "couldn't find" not in post.text_and_blocks()
    assert "Ryabkov Affirms" in post.text_and_blocks()  # quoted, with its source


def test_follow_ups_in_a_qa_thread_need_no_mention(make_bot, standin, answerer, qa_settings):
    spy = SpyAnswerer(answerer)
    bot = make_bot(spy, qa_settings)
    question = message_event("What deadline did Ryabkov give?", channel=QA)
    bot.send_event(question)
    standin.wait_for("chat.postMessage")
    bot.send_event(message_event("and when are the talks", channel=QA, thread_ts=question["ts"]))
    standin.wait_for("chat.postMessage", 2)
    bot.wait_idle()
    assert spy.calls[1] == ("and when are the talks", ("What deadline did Ryabkov give?",))


def test_a_qa_channel_is_answered_in_even_outside_allowed_channels(make_bot, standin, answerer, qa_settings):
    bot = make_bot(answerer, qa_settings.replace("slack", allowed_channels=(OTHER,)))
    bot.send_event(message_event("When are the Geneva talks?", channel=QA, ts=new_ts()))
    assert "Jan. 10" in standin.wait_for("chat.postMessage")[0].text_and_blocks()


def test_qa_channels_and_admin_users_come_from_the_environment():
    settings = load_settings(environ={"QABOT_QA_CHANNELS": "C1, C2", "QABOT_ADMIN_USERS": "U1"})
    assert settings.slack.qa_channels == ("C1", "C2")
    assert settings.slack.admin_users == ("U1",)


@pytest.mark.parametrize("text, kind", [
    # interrogative: a question mark, a wh-word, or an inverted auxiliary with its subject
    ("When are the Geneva talks?", Kind.QUESTION),
    ("who heads the Russian delegation", Kind.QUESTION),
    ("Hi all, what did Ryabkov say about NATO", Kind.QUESTION),
    ("Did Ryabkov give a deadline", Kind.QUESTION),
    ("Can you list the demands", Kind.QUESTION),
    ("Isn't the meeting in Geneva", Kind.QUESTION),
    ("Morning! Is there a date for the next round", Kind.QUESTION),
    ("In what year did ABC launch", Kind.QUESTION),
    ("How many passages are indexed", Kind.QUESTION),
    ("What's the deadline", Kind.QUESTION),
    ("Quick question, did Ryabkov give a deadline", Kind.QUESTION),
    # requests: directives and indirect questions, and "?"-reactions too short to ask the documents
    ("Tell me about the security guarantees", Kind.REQUEST),
    ("please explain the draft agreements", Kind.REQUEST),
    ("I wonder when the talks start", Kind.REQUEST),
    ("I'd like to know what Moscow delivered", Kind.REQUEST),
    ("Really?", Kind.REQUEST),
    ("lunch anyone?", Kind.REQUEST),
    # not questions: thanks, greetings, acknowledgements, exclamations, statements
    ("thanks!", Kind.NOT_A_QUESTION),
    ("ok", Kind.NOT_A_QUESTION),
    ("see you", Kind.NOT_A_QUESTION),
    ("Will do", Kind.NOT_A_QUESTION),
    ("Good morning everyone", Kind.NOT_A_QUESTION),
    ("What a relief!", Kind.NOT_A_QUESTION),
    ("How nice!", Kind.NOT_A_QUESTION),
    ("The Geneva talks went well.", Kind.NOT_A_QUESTION),
    ("thanks a lot, that helped", Kind.NOT_A_QUESTION),
    ("Please", Kind.NOT_A_QUESTION),
    # wh-words that open relative and subordinate clauses, and a verb after a long subject
    ("Sky UK, which is a broadcaster, launched in 1990", Kind.NOT_A_QUESTION),
    ("John Houghton, who was a co-chair, has responded", Kind.NOT_A_QUESTION),
    ("When Sky Digital launched, it used the Astra 2A satellite", Kind.NOT_A_QUESTION),
    ("What he said was clear enough", Kind.NOT_A_QUESTION),
    ("Sky UK Limited, formerly BSkyB, is a British company", Kind.NOT_A_QUESTION),
    ("Sky UK Limited (formerly BSkyB) is a British company", Kind.NOT_A_QUESTION),
    ("new notes at https://example.org/notes?id=7 for the team", Kind.NOT_A_QUESTION),
    ("", Kind.NOT_A_QUESTION),
    ("👍", Kind.NOT_A_QUESTION),
])
def test_a_question_is_read_from_its_form(text, kind):
    assert classify(text) is kind


@pytest.mark.skipif(not (SHARED_EVAL / "squad-dev10.questions.jsonl").exists(), reason="no ../shared/eval")
def test_the_form_test_on_real_questions_and_real_statements():
    """SQuAD's questions with their "?" removed still read as questions; the sentences of its
    passages (all declarative) almost never do (figures in bot/slack/intent.py)."""
    import pysbd

    questions = [json.loads(line)["question"].rstrip("? ")
                 for line in (SHARED_EVAL / "squad-dev10.questions.jsonl").open(encoding="utf-8")]
    found = sum(classify(q) is Kind.QUESTION for q in questions) / len(questions)
    segmenter = pysbd.Segmenter(language="en", clean=False)
    sentences = [s.strip() for line in (SHARED_EVAL / "squad-dev10.contexts.jsonl").open(encoding="utf-8")
                 for s in segmenter.segment(json.loads(line)["text"])]
    mistaken = sum(classify(s) is not Kind.NOT_A_QUESTION for s in sentences) / len(sentences)
    assert found >= 0.85 and mistaken <= 0.01, (found, mistaken)
