"""`qabot report --html FILE`: the report as one self-contained page, charts embedded as PNG.

matplotlib draws the charts (Agg, no display) and each is embedded as a base64 ``data:`` URI, so
the page is one file that opens anywhere, offline, and can be mailed or attached to a ticket. The
page holds: the totals, the answered rate and the questions per day (or hour), the votes per
day, the gap groups (a bar per group, then each group's examples) and the documents cited most
and never. Every text from a question or a document is HTML-escaped; no emoji (a
browser without an emoji font shows boxes). matplotlib is imported only
here, so no other command pays for it.
"""

from __future__ import annotations

import base64
import io
import os
import tempfile
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

from .summary import Report

GROUPS_CHARTED = 10
GROUPS_LISTED = 30
LABEL_CHARS = 60
NEVER_LISTED = 200
COLORS = {"answered": "#2e7d32", "llm_fallback": "#f9a825", "declined": "#c62828", "up": "#1565c0",
          "down": "#ad1457", "rate": "#263238"}

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 980px;
       color: #263238; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
.sub { color: #607d8b; margin-top: 0; }
.tiles { display: flex; gap: 1rem; flex-wrap: wrap; margin: 1rem 0; }
.tile { background: #eceff1; border-radius: 8px; padding: .8rem 1.1rem; min-width: 6.5rem; }
.tile b { display: block; font-size: 1.5rem; }
img { max-width: 100%; height: auto; }
.group { border-left: 4px solid #c62828; padding: .3rem .8rem; margin: .8rem 0; background: #fafafa; }
.group .n { font-weight: bold; } .group ul { margin: .3rem 0; color: #455a64; }
td, th { padding: .2rem .6rem; text-align: left; } .muted { color: #90a4ae; }
"""


def _plt() -> Any:
    """pyplot on the Agg backend; its cache in a temporary folder when the home one is not writable."""
    if not os.access(Path.home(), os.W_OK):
        os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="qabot-mpl-"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    fig.clf()
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(data: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}">'


def _dates(report: Report) -> list[datetime]:
    return [datetime.fromtimestamp(b.start, timezone.utc) for b in report.timeline]


def _activity_chart(plt: Any, report: Report) -> str:
    """Questions per step, stacked by outcome, with the answered rate on a second axis."""
    fig, ax = plt.subplots(figsize=(9, 3.4))
    x = _dates(report)
    width = report.step_s / 86400 * 0.8
    answered = [b.answered for b in report.timeline]
    fallback = [b.llm_fallback for b in report.timeline]
    declined = [b.declined for b in report.timeline]
    ax.bar(x, answered, width, color=COLORS["answered"], label="answered")
    ax.bar(x, fallback, width, bottom=answered, color=COLORS["llm_fallback"], label="LLM fallback")
    ax.bar(x, declined, width, bottom=[a + f for a, f in zip(answered, fallback)], color=COLORS["declined"],
           label="declined")
    ax.set_ylabel("questions")
    ax.set_ylim(0, max([a + f + d for a, f, d in zip(answered, fallback, declined)] + [1]) * 1.3)  # room for the legend
    rate_ax = ax.twinx()
    points = [(d, b.answered_rate * 100) for d, b in zip(x, report.timeline) if b.answered_rate is not None]
    if points:
        rate_ax.plot([p[0] for p in points], [p[1] for p in points], color=COLORS["rate"], marker="o",
                     label="answered rate")
    rate_ax.set_ylim(0, 130)
    rate_ax.set_yticks(range(0, 101, 20))
    rate_ax.set_ylabel("answered (%)")
    handles = ax.get_legend_handles_labels()[0] + rate_ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper left", fontsize=8, frameon=False, ncol=4)
    ax.set_title("Questions and the answered rate")
    fig.autofmt_xdate()
    return _png(fig)


def _votes_chart(plt: Any, report: Report) -> str:
    fig, ax = plt.subplots(figsize=(9, 2.6))
    x = _dates(report)
    width = report.step_s / 86400 * 0.4
    ax.bar(x, [b.up for b in report.timeline], width, color=COLORS["up"], label="helpful (up)")
    ax.bar(x, [-b.down for b in report.timeline], width, color=COLORS["down"], label="not helpful (down)")
    ax.axhline(0, color="#90a4ae", linewidth=0.8)
    top = max([b.up for b in report.timeline] + [1])
    ax.set_ylim(-max([b.down for b in report.timeline] + [1]) * 1.1, top * 1.45)  # room for the legend
    ax.set_ylabel("votes")
    ax.legend(loc="upper left", fontsize=8, frameon=False, ncol=2)
    ax.set_title("Feedback: votes up, and down below the line")
    fig.autofmt_xdate()
    return _png(fig)


def _short(text: str, chars: int = LABEL_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= chars else text[:chars - 1] + "…"


def _bars_chart(plt: Any, labels: list[str], values: list[int], color: str, title: str) -> str:
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(labels) + 1))
    ax.barh(range(len(labels)), values, color=color)
    ax.set_yticks(range(len(labels)), labels=labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title)
    for i, v in enumerate(values):
        ax.text(v, i, f" {v}", va="center", fontsize=8)
    return _png(fig)


def render_html(report: Report, *, keep_questions: bool = True) -> str:
    """The whole page (see the module docstring)."""
    plt = _plt()
    t = report.totals
    since = datetime.fromtimestamp(report.since, timezone.utc).strftime("%Y-%m-%d %H:%M")
    until = datetime.fromtimestamp(report.until, timezone.utc).strftime("%Y-%m-%d %H:%M")
    scope = f" · collections: {escape(', '.join(report.collections))}" if report.collections else ""
    rate = f"{t.answered_rate:.0%}" if t.answered_rate is not None else "–"
    tiles = [("asked", f"{t.asked:,}"), ("answered", rate), ("declined", f"{t.declined:,}"),
             ("LLM fallback", f"{t.llm_fallback:,}"), ("voted up", f"{t.up:,}"), ("voted down", f"{t.down:,}")]
    parts = [f"<h1>What the bot was asked</h1><p class='sub'>{since} – {until} UTC{scope}</p>",
             "<div class='tiles'>" + "".join(f"<div class='tile'><b>{v}</b>{k}</div>" for k, v in tiles) + "</div>"]
    if t.asked:
        parts += [_img(_activity_chart(plt, report), "questions and answered rate over time"),
                  _img(_votes_chart(plt, report), "feedback over time")]
    parts.append(f"<h2>Gaps: what the documents did not answer</h2><p>{report.gaps:,} questions were declined "
                 f"or voted down; grouped by meaning, largest group first.</p>")
    if report.gaps_without_text:
        why = "[report] keep_questions is false" if not keep_questions else "their text was not kept"
        parts.append(f"<p class='muted'>{report.gaps_without_text:,} of them are counted only ({escape(why)}).</p>")
    groups = report.groups[:GROUPS_LISTED]
    if groups:
        charted = groups[:GROUPS_CHARTED]
        parts.append(_img(_bars_chart(plt, [_short(g.name) for g in charted], [g.size for g in charted],
                                      COLORS["declined"], "Largest gap groups (questions)"), "largest gap groups"))
        for g in groups:
            items = "".join(f"<li>{escape(e)}</li>" for e in g.examples)
            parts.append(f"<div class='group'><span class='n'>{g.size} question{'s' if g.size != 1 else ''}</span>"
                         f" — {g.declined} declined, {g.down_voted} voted down<ul>{items}</ul></div>")
    parts.append("<h2>Documents cited most</h2>")
    if report.most_cited:
        parts.append(_img(_bars_chart(plt, [_short(d.title) for d in report.most_cited],
                                      [d.cited for d in report.most_cited], COLORS["answered"],
                                      "Answers citing each document"), "documents cited most"))
    else:
        parts.append("<p class='muted'>No answer cited a document in this window.</p>")
    if not report.documents_known:
        parts.append("<p class='muted'>The index could not be read: documents never cited are not listed.</p>")
    elif report.never_cited:
        rows = "".join(f"<tr><td>{escape(d.title)}</td><td class='muted'>{escape(d.short_id)}</td></tr>"
                       for d in report.never_cited[:NEVER_LISTED])
        more = len(report.never_cited) - NEVER_LISTED
        parts.append(f"<h2>Never cited ({len(report.never_cited):,})</h2><table>{rows}</table>"
                     + (f"<p class='muted'>…and {more:,} more.</p>" if more > 0 else ""))
    plt.close("all")
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>qabot report</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_STYLE}</style>"
            f"</head><body>\n{body}\n</body></html>\n")


def write_html(report: Report, path: Path, *, keep_questions: bool = True) -> None:
    """Write the page to `path` (its folder is created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report, keep_questions=keep_questions), encoding="utf-8")
