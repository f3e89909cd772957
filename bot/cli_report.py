"""`qabot report`: what the bot was asked in Slack and `qabot chat`, what it could not answer,
grouped by meaning, and which documents it cites (docs/report.md).

Reads the question records from the state store the settings name (the ``state_db`` SQLite file,
or Redis) and the document list of the index; prints a summary, ``--json`` the same as one
object, ``--html FILE`` a page with charts (matplotlib, imported only then).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from .cli_common import Failure, IndexOption, run, settings_for, shown
from .cli_render import out
from .report.groups import wording
from .report.recorder import open_store
from .report.summary import Report, build_report, parse_since

EXAMPLE_CHARS = 100


def report_command(
    since: str = typer.Option("7d", "--since", metavar="DURATION", help="The window: 30m, 24h, 7d, 2w ... up to now."),
    collection: Optional[List[str]] = typer.Option(
        None, "--collection", metavar="NAME",
        help="Only questions answered from this collection (repeatable: from any of them)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
    html: Optional[Path] = typer.Option(None, "--html", metavar="FILE", help="Also write the report as one HTML page with charts."),
    index: Optional[Path] = IndexOption,
) -> None:
    """What was asked in Slack and chat: answered rate, 👍/👎, unanswered questions grouped by meaning."""
    run(_report, since, collection or [], as_json, html, index)


def _report(since: str, collections: list[str], as_json: bool, html: Optional[Path], index: Optional[Path]) -> None:
    window = parse_since(since)
    settings = settings_for(index)
    state_db = settings.paths.state_db
    if settings.state.state_backend == "sqlite" and not Path(state_db).exists():
        # Opening it would create an empty database (and its folders) and report "no questions":
        # a mistyped path would pass for a quiet week. A report reads; it creates nothing.
        raise Failure(f"no state database at {shown(state_db)}: nothing was recorded there (the bot and "
                      "`qabot chat` write it; [paths] state_db, QABOT_STATE_DB)")
    now = time.time()
    store = open_store(settings)
    try:
        records = store.read(now - window)
    finally:
        store.close()
    report = build_report(records, since=now - window, until=now, collections=collections,
                          index_dir=settings.paths.index)
    if html is not None:
        from .report.html import write_html

        try:
            write_html(report, html, keep_questions=settings.report.keep_questions)
        except OSError as exc:  # a folder, a read-only or missing mount: one line, not a traceback
            raise Failure(f"cannot write the report to {shown(html)} ({exc.strerror or exc})") from None
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
        return
    _print(report, settings.report.keep_questions)
    if html is not None:
        out.print(f"Wrote {shown(html)}")


def _print(report: Report, keep_questions: bool) -> None:
    t = report.totals
    scope = f" (collections {escape(', '.join(report.collections))})" if report.collections else ""
    out.print(f"[bold]Questions since {time.strftime('%Y-%m-%d %H:%M', time.gmtime(report.since))} UTC{scope}[/bold]")
    if not t.asked:
        out.print("No questions recorded in this window.")
        return
    rate = t.answered_rate or 0.0
    out.print(f"{t.asked:,} asked · {rate:.0%} answered ({t.answered:,} + {t.llm_fallback:,} with the LLM "
              f"fallback) · {t.declined:,} declined · 👍 {t.up:,} · 👎 {t.down:,}")
    table = Table("from", "asked", "answered", "declined", "👍", "👎", box=None, pad_edge=False)
    fmt = "%Y-%m-%d %H:00" if report.step_s < 86400 else "%Y-%m-%d"
    for b in report.timeline:
        if b.asked:
            table.add_row(time.strftime(fmt, time.gmtime(b.start)), str(b.asked),
                          f"{b.answered_rate or 0:.0%}", str(b.declined), str(b.up), str(b.down))
    out.print(table)
    out.print(f"\n[bold]Gaps[/bold]: {report.gaps:,} declined or down-voted questions")
    if report.gaps_without_text:
        why = "[report] keep_questions is false" if not keep_questions else "their text was not kept"
        out.print(f"{report.gaps_without_text:,} of them are counted only ({why}).")
    for n, group in enumerate(report.groups[:20], 1):
        out.print(f"{n:>2}. [bold]{group.size}×[/bold] {escape(_cut(group.name))}")
        named = wording(group.name)  # the name is already shown above its examples
        for example in group.examples:
            if wording(example) != named:
                out.print(f"      – {escape(_cut(example))}", style="dim")
    out.print("\n[bold]Documents cited most[/bold]")
    for d in report.most_cited:
        out.print(f"  {d.cited:>5,}  {escape(d.title)} [dim]({escape(d.short_id)})[/dim]")
    if not report.documents_known:
        out.print("(the index could not be read: documents never cited are not listed)")
    elif report.never_cited:
        out.print(f"[bold]Never cited[/bold] ({len(report.never_cited):,}): "
                  + ", ".join(escape(d.title) for d in report.never_cited[:30])
                  + (" …" if len(report.never_cited) > 30 else ""))


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS - 1] + "…"
