"""Inbound Slack text: the markup of a message a person sent, turned into the question they typed.

The other direction, rendering answers for Slack (escaping, Block Kit), is blocks.py; this module
only reads, and every entry point (mention, message, assistant panel, ``/ask``, a thread read
back with ``conversations.replies``) passes its text through `slack_to_plain` once.
"""

from __future__ import annotations

import re

_SLACK_ENTITY = re.compile(r"<([^<>]*)>")


def slack_to_plain(text: str, bot_user_id: str | None = None) -> str:
    """Slack's message markup turned into the plain question a person typed.

    Mentions of the bot vanish, other mentions, channels, links and broadcasts become their
    labels ("@name", "#general", "@here"), and ``&amp; &lt; &gt;`` are decoded.
    """

    def entity(match: re.Match) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            if bot_user_id and target[1:] == bot_user_id:
                return " "
            return f"@{label.lstrip('@')}" if label else ""
        if target.startswith("#"):
            return f"#{label}" if label else ""
        if target.startswith("!"):
            word = target[1:].split("^", 1)[0]
            if label:
                return label
            return f"@{word}" if word in ("here", "channel", "everyone") else ""
        return label or target

    plain = _SLACK_ENTITY.sub(entity, text or "")
    plain = plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return re.sub(r"\s+", " ", plain).strip()
