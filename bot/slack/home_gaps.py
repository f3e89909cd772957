"""The Home tab's gaps section, for admins: the top five groups of questions the bot declined or
that were voted 👎 in the last week, with their counts (bot/report/summary.py makes the groups).

Read from the report's store on each opening of the tab by an admin; a store that fails leaves
the section out (logged), never the tab.
"""

from __future__ import annotations

import logging
from typing import Any

from ..report.recorder import QuestionRecorder
from ..report.summary import HOME_WINDOW_S, GapGroup, home_groups
from .blocks import SECTION_TEXT_LIMIT, escape_truncate

log = logging.getLogger(__name__)

GROUP_NAME_CHARS = 150


def top_gaps(recorder: QuestionRecorder, now: float) -> list[GapGroup] | None:
    """The groups of the last week from `recorder`'s store; None when it has none or fails."""
    store = recorder.store
    if store is None:
        return None
    try:
        return home_groups(store.read(now - HOME_WINDOW_S), now)
    except Exception as exc:
        log.warning("could not read the report's store for the Home tab (%s)", type(exc).__name__)
        return None


def gap_blocks(groups: list[GapGroup]) -> list[dict[str, Any]]:
    """A header and one section: "12 × “How do I …”" a line, largest first."""
    header = {"type": "header", "text": {"type": "plain_text", "text": "Unanswered this week", "emoji": True}}
    if not groups:
        text = "No declined or 👎 questions in the last 7 days (or their text is not kept)."
    else:
        text = "\n".join(f"*{g.size}* × “{escape_truncate(' '.join(g.name.split()), GROUP_NAME_CHARS)}”"
                         + (f" — {g.declined} declined, {g.down_voted} 👎" if g.down_voted else "")
                         for g in groups)
        text += "\n_`qabot report` shows every group, with examples._"
    return [header, {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_TEXT_LIMIT], "verbatim": True}}]
