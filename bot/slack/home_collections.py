"""The Home tab's part about document collections: what the viewer's channels answer from, and
for admins a control per channel to change it (``multi_static_select``; the change is kept in
the state store by channel_collections.py, so every replica applies it from the next question).

A person sees the collections of the channels they are in (``users.conversations``: only
channels the bot can see, shared with them) and of DMs; the documents the Home tab lists are those
collections' alone, so the tab shows no title a person could not get an answer from. Admins see
every document and every mapped channel.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from slack_sdk import WebClient

from ..settings import EVERY_COLLECTION
from .blocks import escape_truncate
from .channel_collections import ChannelScope, OverridesUnavailable, as_scope, is_dm
from .client import api_error
from .state import BotState

log = logging.getLogger(__name__)

ACTION_ID = "qabot_channel_collections"
BLOCK_PREFIX = "qabot_cc:"
RESET = "!configured"  # the option that drops an admin's override (back to the settings)
MAX_CHANNELS = 20  # channels listed (and, for admins, given a control)
MAX_OPTIONS = 100  # Slack's cap on a select's options
CONVERSATION_PAGES = 3  # pages of users.conversations read (200 channels a page)
NAME_CHARS = 75  # an option's text (Slack allows 75)
_CHANNEL_ID = re.compile(r"^[A-Z0-9]{2,}$")


@dataclass(frozen=True)
class ChannelView:
    """One channel's line: its id, the names it answers from, whether an admin set them here."""

    channel: str
    names: tuple[str, ...]
    override: bool


def user_channels(client: WebClient, user: str) -> list[str] | None:
    """The channels `user` is in that the bot can see (None when Slack cannot tell)."""
    channels: list[str] = []
    cursor = None
    try:
        for _ in range(CONVERSATION_PAGES):
            response = client.users_conversations(user=user, types="public_channel,private_channel",
                                                  exclude_archived=True, limit=200, cursor=cursor)
            channels += [c["id"] for c in response.get("channels") or [] if isinstance(c, dict) and c.get("id")]
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
    except Exception as exc:
        log.warning("could not list the channels of %s for the Home tab: %s", user, api_error(exc))
        return None
    return channels


def channel_views(state: BotState, channels: Iterable[str]) -> list[ChannelView]:
    """Each channel's collections as the bot applies them (an unreadable store shows none)."""
    if state.channels is None:
        return []
    try:
        overrides = state.channels.overrides.all()
    except OverridesUnavailable:
        overrides = None
    views = []
    for channel in list(dict.fromkeys(channels))[:MAX_CHANNELS]:
        if overrides is None:
            views.append(ChannelView(channel, (), False))
        else:
            names = overrides.get(channel)
            views.append(ChannelView(channel, names if names is not None else state.channels.configured(channel),
                                     names is not None))
    return views


def reachable(state: BotState, views: Sequence[ChannelView]) -> ChannelScope:
    """The collections a person can get answers from (their channels' and DMs'): None for all."""
    scopes = [as_scope(v.names) for v in views] + [state.collections_for("D")]
    if any(scope is None for scope in scopes):
        return None
    return tuple(sorted({name for scope in scopes for name in scope or ()}))


def _shown(names: Sequence[str]) -> str:
    if EVERY_COLLECTION in names:
        return "all collections"
    return ", ".join(f"`{escape_truncate(n, NAME_CHARS)}`" for n in names) or "_no collection_"


def _option(value: str, text: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text[:NAME_CHARS], "emoji": True}, "value": value}


def _control(view: ChannelView, known: Sequence[str]) -> dict[str, Any]:
    """An admin's select for one channel: every collection, "all", and back to the settings."""
    names = list(dict.fromkeys([*known, *(n for n in view.names if n != EVERY_COLLECTION)]))
    options = [_option(EVERY_COLLECTION, "All collections"), *(_option(n, n) for n in names),
               _option(RESET, "↺ As configured")][:MAX_OPTIONS]
    values = {o["value"] for o in options}
    select: dict[str, Any] = {"type": "multi_static_select", "action_id": ACTION_ID, "options": options,
                              "placeholder": {"type": "plain_text", "text": "No collection"}}
    initial = [o for o in options if o["value"] in view.names and o["value"] in values]
    if initial:
        select["initial_options"] = initial
    return select


def collection_blocks(state: BotState, views: Sequence[ChannelView], *, admin: bool,
                      known: Sequence[str], channels_known: bool) -> list[dict[str, Any]]:
    """The Home tab's "Where I answer from" section (with the admins' controls)."""
    blocks: list[dict[str, Any]] = [{"type": "divider"}, {"type": "header", "text": {
        "type": "plain_text", "text": "Where I answer from"}}]
    dm = state.channels.names_for("D") if state.channels is not None else (EVERY_COLLECTION,)
    lines = [f"• Direct messages and the assistant panel: {_shown(dm)}"]
    if not channels_known:
        lines.append("• (Slack did not tell me which channels you are in.)")
    for view in views if not admin else ():
        lines.append(f"• <#{view.channel}>: {_shown(view.names)}")
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}})
    for view in views if admin else ():
        where = "set here" if view.override else "from the settings"
        blocks.append({"type": "section", "block_id": BLOCK_PREFIX + view.channel,
                       "text": {"type": "mrkdwn", "text": f"<#{view.channel}>: {_shown(view.names)} ({where})"},
                       "accessory": _control(view, known)})
    return blocks


def home_collections(state: BotState, client: WebClient, user: str, known: Sequence[str]
                     ) -> tuple[list[dict[str, Any]], ChannelScope]:
    """(the Home tab's collection blocks for `user`, the collections whose documents it may list)."""
    admin = state.is_admin(user)
    mine = user_channels(client, user)
    channels = list(mine or [])
    if admin and state.channels is not None:
        configured = list(state.settings.slack.channel_collections)
        try:
            configured += list(state.channels.overrides.all())
        except OverridesUnavailable:
            pass
        channels = [c for c in configured if not is_dm(c)] + channels
    views = channel_views(state, channels)
    scope = None if admin else reachable(state, views)
    return collection_blocks(state, views, admin=admin, known=known, channels_known=mine is not None), scope


def change_collections(body: Mapping, action: Mapping, qabot: BotState) -> str | None:
    """An admin's change of a channel's collections on the Home tab, kept in the state store;
    anyone else's is refused (logged). Returns the admin whose tab to publish again (None if refused)."""
    user = (body.get("user") or {}).get("id")
    channel = str(action.get("block_id") or "").removeprefix(BLOCK_PREFIX)
    if not qabot.is_admin(user) or qabot.channels is None:
        log.warning("refused a change of channel collections from %s: not an admin", user)
        return None
    if not _CHANNEL_ID.match(channel):
        log.warning("refused a change of channel collections: %r is not a channel id", channel[:40])
        return None
    values = [str(o.get("value")) for o in action.get("selected_options") or [] if isinstance(o, dict)]
    try:
        qabot.channels.set_override(channel, None if RESET in values else values)
        log.info("admin %s set the collections of %s to %s", user, channel,
                 "the configured ones" if RESET in values else (values or "none"))
    except (OverridesUnavailable, ValueError) as exc:
        log.warning("could not change the collections of %s: %s", channel, exc)
    return user
