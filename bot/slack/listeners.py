"""The listeners: each Slack entry point turned into one `SlackQuestion` for `replies.answer_and_post`.

Entry points: an @mention (answered in a thread), a message (a DM, a follow-up in a thread the
bot answered in, or a top-level question in a Q&A channel — no mention needed; see `intent`),
the assistant panel, ``/ask`` (answered via its
``response_url``), and the 👍/👎 buttons under an answer (a vote, not a question). Each listener
gets the app's `BotState` as its ``qabot`` argument (see `middleware.provide_state`).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from slack_bolt import Ack, BoltContext, BoltResponse, Say
from slack_bolt.context.set_status import SetStatus
from slack_bolt.context.set_suggested_prompts import SetSuggestedPrompts
from slack_bolt.context.set_title import SetTitle
from slack_bolt.error import BoltUnhandledRequestError
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from .admin import add_command_url, add_files, add_url
from .blocks import (
    FEEDBACK_ACTIONS,
    WORKING_STATUS,
    Message,
    escape_truncate,
    parse_feedback_value,
    render_greeting,
)
from .client import api_error, post_to_response_url
from .guard import claim_message
from .intent import Kind, classify
from .markup import slack_to_plain
from .middleware import EXTERNAL_REFUSAL, HOLD_KEY, kind_of, refuses_external
from .question import SlackQuestion
from .replies import answer_and_post
from .state import BotState
from .store import message_key
from .threads import THREAD_REPLIES_LIMIT, ThreadContext, from_replies

log = logging.getLogger(__name__)

WORKING_REACTION = "eyes"
SLASH_USAGE = "Ask me about the indexed articles: `/ask <question>`, e.g. `/ask What deadline did Ryabkov give?`"
# The slash command's ack echoes the question, cut to this many characters.
ACK_ECHO_CHARS = 300
# An assistant thread's title is its first question, cut to this many characters.
TITLE_CHARS = 200


# --- messages: mentions, DMs, thread follow-ups ---------------------------------------------------

def on_app_mention(event: dict, context: BoltContext, client: WebClient, qabot: BotState) -> None:
    with finished(qabot, context):
        answer_user_message(qabot, event, context, client, mentioned=True)


def on_message(event: dict, context: BoltContext, client: WebClient, qabot: BotState) -> None:
    with finished(qabot, context):
        if event.get("files") and event.get("channel_type") == "im":
            add_shared_files(qabot, event, context, client)
            return
        answer_user_message(qabot, event, context, client, mentioned=False)


@contextmanager
def finished(state: BotState, context: BoltContext) -> Iterator[None]:
    """Ends the delivery's hand-over hold (middleware.hold_until_answered) once its listener is
    done, answered or not; an exception ends it too (a retry would fail the same way)."""
    try:
        yield
    finally:
        hold_id = context.get(HOLD_KEY)
        if state.handover is not None and hold_id:
            try:
                state.handover.drop(hold_id)
            except Exception as exc:
                log.warning("could not end the hand-over hold %s (%s)", hold_id, type(exc).__name__)


def add_shared_files(state: BotState, event: dict, context: BoltContext, client: WebClient) -> None:
    """Files shared with the bot in a DM: ingested for admins (admin.py), once per message (a bot's
    files never get here: middleware.ignore_bots_and_other_channels drops them first)."""
    channel, ts = event.get("channel"), event.get("ts")
    if not channel or not ts:
        return
    if not claim_message(state, client, context, channel, ts, event.get("thread_ts"), lock=False).answer:
        return

    def post(message) -> None:
        client.chat_postMessage(channel=channel, text=message.text)

    add_files(state.settings, event.get("user"), list(event["files"]), client.token or "", post,
              api_url=client.base_url)


def answer_user_message(state: BotState, event: dict, context: BoltContext, client: WebClient, *,
                        mentioned: bool) -> None:
    """Answer a person's message if it is for the bot: a DM, a mention, a follow-up in a thread
    the bot answered in, or a question at the top level of a Q&A channel. A mention arrives twice
    (``app_mention`` and ``message``): one answer. What no person wrote (bots, edits, other
    subtypes) never gets here: middleware.ignore_bots_and_other_channels drops it first."""
    channel, ts = event.get("channel"), event.get("ts")
    if not channel or not ts or state.answered.claimed(message_key(channel, ts)):
        return  # (the twin of a mention already being answered: skip the thread lookup)
    thread_ts = event.get("thread_ts")
    in_thread = bool(thread_ts) and thread_ts != ts
    text = event.get("text") or ""
    bot_user_id = context.bot_user_id
    mentioned = mentioned or bool(bot_user_id and f"<@{bot_user_id}" in text)
    is_dm = event.get("channel_type") == "im" or channel.startswith("D")
    qa_kind: Kind | None = None  # set for a top-level message in a Q&A channel

    if is_dm:
        reply_thread = thread_ts if in_thread else None  # a top-level DM is answered at the top level
    elif mentioned:
        reply_thread = thread_ts or ts
    elif in_thread:
        reply_thread = thread_ts
    elif state.is_qa_channel(channel):
        qa_kind = classify(slack_to_plain(text, bot_user_id))
        if qa_kind is Kind.NOT_A_QUESTION:
            return  # "thanks!", "ok": conversation, not a question for the bot
        reply_thread = ts
    else:
        return  # a plain channel message: not for us

    if reply_thread is not None and in_thread:
        thread = thread_context(state, client, context, channel, reply_thread, ts)
        if not (is_dm or mentioned or thread.bot_participated):
            return  # a thread the bot has not answered in
    elif reply_thread is None:
        thread = state.memory.get(channel, None) or ThreadContext(False, ())
    else:
        thread = ThreadContext(False, ())  # a new thread under a top-level mention

    granted = claim_message(state, client, context, channel, ts, reply_thread)
    if not granted.answer:
        return
    text = slack_to_plain(text, bot_user_id)
    tentative = qa_kind is Kind.REQUEST  # answered only if an answer is found (see intent)
    if not tentative:
        state.memory.record(channel, reply_thread, text)
    log.info("answering %s in %s (user %s)", "a DM" if is_dm else "a mention" if mentioned
             else f"a Q&A-channel {qa_kind.value}" if qa_kind else "a follow-up", channel, event.get("user"))

    def post(message: Message) -> None:
        client.chat_postMessage(channel=channel, thread_ts=reply_thread, unfurl_links=False,
                                unfurl_media=False, **message.as_kwargs())

    if refuses_external(context):
        if not tentative:  # (a maybe-question in a Q&A channel gets no reply of any kind)
            post(Message(EXTERNAL_REFUSAL))  # a person of another organisation: no index content
        if granted.reacted:
            react(client, "remove", channel, ts)
        return
    sink = state.streamer.reply(client, post, channel=channel, thread_ts=reply_thread, recipient_user=event.get("user"),
                                recipient_team=event.get("user_team") or event.get("team") or context.team_id)
    reacted = granted.reacted or (not tentative and react(client, "add", channel, ts))
    try:
        answered = answer_and_post(state, SlackQuestion(text, thread.history, post,
                                                        where=f"{channel}/{reply_thread or ts}",
                                                        collections=state.collections_for(channel)),
                                   sink=sink, only_if_found=tentative)
        if tentative and answered is not None:
            state.memory.record(channel, reply_thread, text)  # the bot has now answered in this thread
    finally:
        if reacted:
            react(client, "remove", channel, ts)


# --- the assistant panel --------------------------------------------------------------------------

def on_assistant_thread_started(event: dict, say: Say, set_suggested_prompts: SetSuggestedPrompts,
                                qabot: BotState) -> None:
    """Greet, offer suggested prompts, and remember the thread as the bot's."""
    thread = event.get("assistant_thread") or {}
    if thread.get("channel_id") and thread.get("thread_ts"):
        qabot.memory.record(thread["channel_id"], thread["thread_ts"], "", assistant=True)  # the bot's thread
    say(**render_greeting(thread.get("user_id")).as_kwargs())
    try:
        set_suggested_prompts(prompts=qabot.prompts_for(thread.get("channel_id")))
    except SlackClientError as exc:
        log.warning("could not set the assistant's suggested prompts: %s", api_error(exc))


def on_assistant_message(payload: dict, context: BoltContext, client: WebClient, say: Say,
                         set_status: SetStatus, set_title: SetTitle, qabot: BotState) -> None:
    with finished(qabot, context):
        answer_assistant_message(payload, context, client, say, set_status, set_title, qabot)


def answer_assistant_message(payload: dict, context: BoltContext, client: WebClient, say: Say, set_status: SetStatus,
                             set_title: SetTitle, qabot: BotState) -> None:
    channel, ts = payload.get("channel"), payload.get("ts")
    if not channel or not ts:  # (a subtype no person writes was dropped by middleware)
        return
    thread_ts: str = payload.get("thread_ts") or ts
    thread = thread_context(qabot, client, context, channel, thread_ts, ts)
    if not claim_message(qabot, client, context, channel, ts, thread_ts, lock=False).answer:
        return
    if refuses_external(context):
        say(text=EXTERNAL_REFUSAL)
        return
    text = slack_to_plain(payload.get("text") or "", context.bot_user_id)
    qabot.memory.record(channel, thread_ts, text)
    log.info("answering in the assistant panel %s (user %s)", channel, payload.get("user"))
    if not thread.history and text:
        quietly(set_title, text[:TITLE_CHARS], what="set the assistant thread title")
    quietly(set_status, WORKING_STATUS, what="set the assistant status")

    def post(message: Message) -> None:
        say(unfurl_links=False, unfurl_media=False, **message.as_kwargs())

    sink = qabot.streamer.reply(client, post, channel=channel, thread_ts=thread_ts, recipient_user=payload.get("user"),
                                recipient_team=payload.get("user_team") or payload.get("team") or context.team_id)
    answer_and_post(qabot, SlackQuestion(text, thread.history, post, where=f"{channel}/{thread_ts}",
                                         collections=qabot.collections_for(channel)), sink=sink)


# --- /ask -----------------------------------------------------------------------------------------

def on_ask(ack: Ack, command: dict, context: BoltContext, qabot: BotState) -> None:
    """``/ask``: acknowledge at once, then post the answer to the command's response_url.
    ``/ask add <url>`` adds a document instead, for admins (admin.py)."""
    url = add_command_url(command.get("text") or "")
    if url is not None:
        ack(response_type="ephemeral", text=f"Adding {escape_truncate(url, ACK_ECHO_CHARS)}…")
        if command.get("response_url"):
            add_url(qabot.settings, command.get("user_id"), url,
                    lambda message: post_to_response_url(command["response_url"], message, response_type="ephemeral"))
        return
    text = slack_to_plain(command.get("text") or "", context.bot_user_id)
    if not text:
        ack(response_type="ephemeral", text=SLASH_USAGE)
        return
    ack(response_type="ephemeral", text=f"Searching the articles for “{escape_truncate(text, ACK_ECHO_CHARS)}”…")
    response_url = command.get("response_url")
    if not response_url:
        log.error("/ask from %s came without a response_url; cannot answer", command.get("user_id"))
        return
    response_type = "ephemeral" if qabot.settings.slack.slash_ephemeral else "in_channel"
    log.info("answering /ask in %s (user %s)", command.get("channel_id"), command.get("user_id"))

    def post(message: Message) -> None:
        post_to_response_url(response_url, message, response_type=response_type)

    answer_and_post(qabot, SlackQuestion(text, (), post, where=f"/ask in {command.get('channel_id')}",
                                         asked_by=command.get("user_id"), echo_question=True,
                                         collections=qabot.collections_for(command.get("channel_id"))))


# --- 👍/👎 -----------------------------------------------------------------------------------------

def on_feedback(ack: Ack, body: dict, action: dict, client: WebClient, qabot: BotState) -> None:
    """A 👍/👎 click: acknowledge, append it to the feedback log, thank the user privately."""
    ack()
    feedback_id, vote = parse_feedback_value(action.get("value"))
    vote = vote or FEEDBACK_ACTIONS.get(action.get("action_id", ""), "up")
    user = (body.get("user") or {}).get("id")
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    message = body.get("message") or {}
    message_ts = message.get("ts") or container.get("message_ts")
    try:
        qabot.feedback.record_vote(feedback_id=feedback_id, vote=vote, user=user, channel=channel,
                                   message_ts=message_ts, fallback_answer=message.get("text"))
        thanks = f"Thanks for the feedback ({'👍' if vote == 'up' else '👎'}): it was recorded."
    except OSError as exc:
        log.error("could not append to the feedback log %s: %s", qabot.feedback.path, exc, exc_info=True)
        thanks = "Sorry, I couldn't record your feedback. The error has been logged."
    qabot.recorder.vote(feedback_id, vote)  # the report's count (never fails: logged if it cannot)
    log.info("feedback %s from %s on answer %s", vote, user, feedback_id)
    try:
        if body.get("response_url"):
            post_to_response_url(body["response_url"], Message(thanks), response_type="ephemeral")
        elif channel and user:
            client.chat_postEphemeral(channel=channel, user=user, text=thanks, thread_ts=message.get("thread_ts"))
    except Exception as exc:
        log.warning("could not thank %s for the feedback: %s", user, api_error(exc))


def on_error(error: Exception, body: dict) -> BoltResponse | None:
    """Log a listener's failure; acknowledge (HTTP 200) a request no listener handles (bolt raises
    `BoltUnhandledRequestError` for those, see `app`), since Slack retries anything else."""
    if isinstance(error, BoltUnhandledRequestError):
        log.debug("acknowledged %s, which no listener handles", kind_of(body))
        return BoltResponse(status=200, body="")
    log.error("unhandled error in a Slack listener (%s): %s", kind_of(body), api_error(error), exc_info=error)
    return None


# --- helpers --------------------------------------------------------------------------------------

def thread_context(state: BotState, client: WebClient, context: BoltContext, channel: str, thread_ts: str,
                   before_ts: str) -> ThreadContext:
    """Whether the bot answered in this thread, and the questions asked there before `before_ts`:
    from memory, else (after a restart) from conversations.replies."""
    known = state.memory.get(channel, thread_ts)
    if known is not None:
        return known
    ours = state.memory.is_bot_thread(channel, thread_ts)  # answered by another process, or before a restart
    if not ours and state.not_bot_threads.seen((channel, thread_ts)):
        return ThreadContext(False, ())
    try:
        response = client.conversations_replies(channel=channel, ts=thread_ts, limit=THREAD_REPLIES_LIMIT)
    except Exception as exc:
        log.warning("could not read thread %s/%s: %s", channel, thread_ts, api_error(exc))
        return ThreadContext(ours, ())
    bot_user_id = context.bot_user_id
    found = from_replies(response.get("messages") or [], before_ts=before_ts, bot_user_id=bot_user_id,
                         bot_id=context.bot_id, to_question=lambda t: slack_to_plain(t, bot_user_id))
    if ours and not found.bot_participated:
        found = ThreadContext(True, found.history)
    if not found.bot_participated:
        state.not_bot_threads.claim((channel, thread_ts))
    return found


def react(client: WebClient, verb: str, channel: str, ts: str) -> bool:
    """Add or remove the 👀 "working" reaction; failures are logged, never fatal."""
    try:
        if verb == "add":
            client.reactions_add(channel=channel, timestamp=ts, name=WORKING_REACTION)
        else:
            client.reactions_remove(channel=channel, timestamp=ts, name=WORKING_REACTION)
        return True
    except Exception as exc:
        log.warning("could not %s the %s reaction on %s/%s: %s", verb, WORKING_REACTION, channel, ts, api_error(exc))
        return False


def quietly(call: Callable[..., Any], *args: Any, what: str) -> None:
    """Call a cosmetic Slack API (a title, a status); a failure is only worth a DEBUG line."""
    try:
        call(*args)
    except Exception as exc:
        log.debug("could not %s: %s", what, api_error(exc))
