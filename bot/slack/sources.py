"""The Sources button under an answer: every passage found, the folded ones included.

Its value names the passages by chunk id only (never their text, which can be long and is
already in the index), so a click is served from the index by any replica, after a restart too
(`sources_modal.on_sources` opens the modal).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..answering.answer import Citation

SOURCES_ACTION = "qabot_sources"
BUTTON_VALUE_LIMIT = 2000  # Slack's cap on a button's value


def sources_value(citations: Sequence[Citation]) -> str:
    """The button's value: the passages' chunk ids, as many as fit."""
    ids: list[str] = []
    for citation in citations:
        if len(json.dumps({"c": ids + [citation.chunk_id]}, separators=(",", ":"))) > BUTTON_VALUE_LIMIT:
            break
        ids.append(citation.chunk_id)
    return json.dumps({"c": ids}, separators=(",", ":"))


def parse_sources_value(value: str | None) -> list[str]:
    """The chunk ids in a Sources button's value; [] if it is not ours."""
    try:
        data = json.loads(value or "")
    except ValueError:
        return []
    ids = data.get("c") if isinstance(data, dict) else None
    return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []


def sources_button(citations: Sequence[Citation]) -> dict[str, Any]:
    """The button that opens the Sources modal."""
    return {"type": "button", "action_id": SOURCES_ACTION, "value": sources_value(citations),
            "text": {"type": "plain_text", "text": f"📚 Sources ({len(citations)})", "emoji": True}}
