"""Global middleware, run for every request before any listener, in the order `app` registers it:
hand the `BotState` to listeners, drop repeats, drop whatever no person wrote and channels the bot
is not enabled in, and mark people from other organisations (Slack Connect).

Every request that stops here is still acknowledged with HTTP 200: Slack retries anything else and
disables the event subscriptions of apps that keep failing.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Mapping

from slack_bolt import BoltContext, BoltResponse
from slack_sdk import WebClient

from .guard import replied
from .handover import HANDOVERS_KEY
from .state import BotState
from .store import event_key, slack_ts
from .threads import ANSWERABLE_SUBTYPES, is_from_bot

log = logging.getLogger(__name__)

# The bolt context key (and so the listener argument name) under which listeners get the state.
STATE_KEY = "qabot"
# Set in the context when the author is from another organisation and may not be answered.
REFUSE_EXTERNAL_KEY = "qabot_refuse_external"
NOT_ENABLED_HERE = "I'm not enabled in this channel. Ask me in a direct message instead."
EXTERNAL_REFUSAL = "Sorry, I only answer questions from members of this workspace."
# Slackbot's user id in every workspace (it DMs the bot, e.g. "You have been removed from #x").
SLACKBOT_USER_ID = "USLACKBOT"
# Event types that carry a message someone wrote (the only ones checked for a human author).
MESSAGE_EVENT_TYPES = ("message", "app_mention")

Next = Callable[[], BoltResponse]
Middleware = Callable[..., BoltResponse]


def provide_state(state: BotState) -> Middleware:
    """Middleware putting `state` in bolt's context: bolt then passes it to any listener or
    middleware with a ``qabot`` parameter (bolt injects context keys by name)."""

    def attach_state(context: BoltContext, next: Next) -> BoltResponse:
        context[STATE_KEY] = state
        return next()

    return attach_state


def ignore_duplicates(body: dict, qabot: BotState, next: Next) -> BoltResponse:
    """Each event id once, in any process sharing the state database: HTTP retries
    (X-Slack-Retry-Num) and Socket Mode redeliveries reuse it, and may reach another replica.

    Messages are not claimed here: the listeners claim the message itself (channel + ts), which
    also covers its other deliveries (the ``message`` twin of a mention, an edit's new event id),
    and the store is written only for the messages the bot answers, not every channel message."""
    event = body.get("event") or {}
    event_id = body.get("event_id")
    if not event_id or event.get("type") in MESSAGE_EVENT_TYPES:
        return next()
    claim = qabot.answered.try_claim(event_key(event_id), slack_ts(body.get("event_time"), time.time()))
    if claim.won is False:
        log.info("ignoring a repeat of event %s (%s)", event_id, (body.get("event") or {}).get("type"))
        return BoltResponse(status=200, body="")
    return next()  # (with the store unreachable: these events are harmless to handle twice)


# The context key under which a held delivery keeps its hold id (see `hold_until_answered`).
HOLD_KEY = "qabot_hold"


def hold_until_answered(body: dict, context: BoltContext, qabot: BotState, next: Next) -> BoltResponse:
    """The last middleware: with Redis state, a message event that got this far is held in Redis
    until its listener finishes, so another replica answers it if this one dies after the ack
    (handover.py). Without a hand-over (SQLite) it does nothing."""
    event = body.get("event") or {}
    if qabot.handover is not None and event.get("type") in MESSAGE_EVENT_TYPES:
        try:
            context[HOLD_KEY] = qabot.handover.hold(body)
        except Exception as exc:  # answering still goes on; only the hand-over is lost
            log.warning("could not hold event %s for hand-over (%s)", body.get("event_id"), type(exc).__name__)
    return next()


def skip_handovers_already_answered(body: dict, context: BoltContext, client: WebClient,
                                    next: Next) -> BoltResponse:
    """A message taken over from a dead replica (handover.py) that the replica did answer after
    all (it died between posting and ending its hold) gets no second answer: the thread, as Slack
    shows it, says whether the bot already replied there after the message. If the thread cannot
    be read, the message is answered (a possible double beats a lost answer)."""
    event = body.get("event") or {}
    channel, ts = event.get("channel"), event.get("ts")
    if not body.get(HANDOVERS_KEY) or not channel or not ts:
        return next()
    if replied(client, context, channel, ts, event.get("thread_ts") or ts):
        log.info("taken-over event %s was already answered in %s/%s", body.get("event_id"), channel, ts)
        return BoltResponse(status=200, body="")
    return next()


def ignore_bots_and_other_channels(body: dict, context: BoltContext, qabot: BotState,
                                   next: Next) -> BoltResponse:
    """Never answer what no person wrote (bots, this one included, apps, Slackbot, edits and other
    message subtypes); answer only in allowed channels (DMs always)."""
    event = body.get("event") or {}
    if event and is_bot_event(event, context.bot_user_id, context.bot_id):
        return BoltResponse(status=200, body="")
    channel = channel_of(body)
    if channel and not qabot.allowed(channel):
        log.debug("ignoring %s in channel %s (not in allowed_channels)", kind_of(body), channel)
        if body.get("command"):
            return BoltResponse(status=200, body={"response_type": "ephemeral", "text": NOT_ENABLED_HERE})
        return BoltResponse(status=200, body="")
    return next()


def mark_external_users(body: dict, context: BoltContext, qabot: BotState, next: Next) -> BoltResponse:
    """Unless ``answer_external_users`` is on, people from other organisations get a one-line
    refusal instead of index content: at once for ``/ask``; for messages the listeners post it
    (only they know whether a message was for the bot), when `refuses_external` says so."""
    if qabot.settings.slack.answer_external_users or not is_external(body, context.team_id):
        return next()
    log.info("refusing %s from %s, a user of another organisation", kind_of(body), user_of(body))
    if body.get("command"):
        return BoltResponse(status=200, body={"response_type": "ephemeral", "text": EXTERNAL_REFUSAL})
    context[REFUSE_EXTERNAL_KEY] = True
    return next()


def refuses_external(context: Mapping) -> bool:
    """Whether the listener must post `EXTERNAL_REFUSAL` instead of an answer."""
    return bool(context.get(REFUSE_EXTERNAL_KEY))


def in_assistant_thread(body: dict, context: BoltContext) -> bool:
    """Matcher for the assistant's user-message listener. bolt sends every threaded DM message to
    the assistant; only real assistant threads belong there (a plain DM thread has no title or
    status to set): Slack marks their messages with ``assistant_thread``, and a thread the
    assistant opened (``assistant_thread_started``) is remembered as one."""
    event = body.get("event") or {}
    if event.get("assistant_thread"):
        return True
    state = context.get(STATE_KEY)
    channel, thread_ts = event.get("channel"), event.get("thread_ts")
    return bool(state and channel and thread_ts and state.memory.is_assistant_thread(channel, thread_ts))


def is_bot_event(event: Mapping, bot_user_id: str | None, bot_id: str | None) -> bool:
    """Messages no person wrote: bots (this one included), apps, Slackbot, and every message
    subtype but the answerable ones (edits, joins, channel topics ...)."""
    if event.get("type") not in MESSAGE_EVENT_TYPES:
        return False
    return bool(event.get("bot_id") or event.get("bot_profile") or event.get("app_id")
                or event.get("user") in (None, SLACKBOT_USER_ID)
                or event.get("subtype") not in ANSWERABLE_SUBTYPES
                or is_from_bot(event, bot_user_id, bot_id))


def is_external(body: Mapping, home_team: str | None) -> bool:
    """Whether a request comes from a person of another organisation: the channel is shared with
    another organisation (``is_ext_shared_channel``, Slack Connect) and the author's team
    (``user_team``; ``user.team_id`` on actions) is not the app's workspace, or is not given (then
    the safe answer is "not ours"). Outside shared channels everyone is a member of the workspace
    (or, on Enterprise Grid, of the same organisation)."""
    if not body.get("is_ext_shared_channel"):
        return False
    home_team = home_team or body.get("team_id")
    event = body.get("event") or {}
    user_team = event.get("user_team") or body.get("user_team") or (body.get("user") or {}).get("team_id")
    return not user_team or user_team != home_team


def channel_of(body: Mapping) -> str | None:
    """The channel a request comes from, whatever its kind (event, command, action)."""
    event = body.get("event") or {}
    if event:
        return (event.get("channel") or (event.get("assistant_thread") or {}).get("channel_id")
                or (event.get("item") or {}).get("channel"))
    if body.get("command"):
        return body.get("channel_id")
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")


def user_of(body: Mapping) -> str | None:
    """The user behind a request, whatever its kind (for the logs)."""
    event = body.get("event") or {}
    return event.get("user") or body.get("user_id") or (body.get("user") or {}).get("id")


def kind_of(body: Mapping) -> str:
    """A short name for a request in the logs ("event app_mention", "command /ask", ...)."""
    if body.get("event"):
        return f"event {body['event'].get('type')}"
    if body.get("command"):
        return f"command {body['command']}"
    return str(body.get("type") or "request")
