"""`qabot docs list|show|remove`: see and manage what the index holds; and the progress display
of `qabot ingest` (loading inputs, then embedding documents).

Kept apart from cli.py so that file stays a thin list of commands; the helpers for one-line errors
and settings come from cli_common.py, shared by both.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .cli_common import IndexOption, counted, err, run, settings_for, shown
from .cli_render import out

docs_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                       rich_markup_mode=None, help="List, show and remove indexed documents.")
# `docs show` prints this many passages of the document.
SHOW_CHUNKS = 3
SHOW_CHARS = 300  # of each passage


# Columns of `docs list` are set one space apart (collapsed padding, none at the edges).
COLUMN_GAP = 1
# In a narrow terminal the title gets at least this many characters (or its whole length): the
# columns a person can do without are dropped first, Size, then Added, then Chunks.
TITLE_FLOOR = 24
DROPPED_FIRST = ("Size", "Added", "Chunks")


def _share(free: int, needs: tuple[int, int]) -> tuple[int, int]:
    """Split `free` columns between the title and the source: each gets what it needs when both
    fit; otherwise the source gets what the title leaves, but at least a third, and the title the
    rest. The title is favoured: it says what a document is, and a source cut at the left still
    ends with its file name."""
    title, source = needs
    if title + source <= free:
        return title, source
    source = min(source, max(free - title, free // 3))
    return free - source, source


def _fitted(fixed: dict[str, int], needs: tuple[int, int], width: int) -> tuple[list[str], tuple[int, int]]:
    """The fixed columns kept and the (title, source) widths for a screen `width` wide: columns
    named in DROPPED_FIRST go, in that order, while the title would get less than TITLE_FLOOR."""
    kept = list(fixed)
    while True:
        used = sum(fixed[name] for name in kept) + COLUMN_GAP * (len(kept) + 1)
        widths = _share(max(width - used - 1, 12), needs)
        droppable = [name for name in DROPPED_FIRST if name in kept]
        if widths[0] >= min(needs[0], TITLE_FLOOR) or not droppable:
            return kept, widths
        kept.remove(droppable[0])


def _cut(text: str, width: int, left: bool = False) -> str:
    """`text` in at most `width` characters, an ellipsis marking the cut (at the start if `left`)."""
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1):] if left else text[:width - 1] + "…"


def _size(size: float) -> str:
    for unit in ("B", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} MB"  # pragma: no cover


def document_json(info) -> dict:
    """The `--json` form of one document (`docs list`, `docs show`, `docs remove`)."""
    return {"id": info.short_id, "doc_id": info.doc_id, "title": info.title, "source": info.source,
            "url": info.url, "added": info.added, "chunks": info.chunks, "size": info.size,
            "pages": info.pages[-1][1] if info.pages else None, "sha256": info.sha256,
            "collections": list(info.collections)}


def _documents(index: Optional[Path]):
    from embeddings.index import Index

    index_dir = settings_for(index).paths.index
    return index_dir, Index.stored_documents(index_dir)


@docs_app.command("list")
def list_command(index: Optional[Path] = IndexOption,
                 as_json: bool = typer.Option(False, "--json", help="Print one JSON array.")) -> None:
    """List the indexed documents: ID, title, source, collections, when added, chunks and size."""
    run(_list, index, as_json)


def _list(index: Optional[Path], as_json: bool) -> None:
    index_dir, documents = _documents(index)
    infos = sorted(documents.values(), key=lambda d: (d.added or "", d.title))
    if as_json:
        print(json.dumps([document_json(d) for d in infos], ensure_ascii=False))
        return
    sizes = {d.doc_id: _size(d.size) for d in infos}
    owned = {d.doc_id: ",".join(d.collections) for d in infos}
    # Every column but the title and source, with its cells: the ID always shows whole.
    cells = {"ID": [d.short_id for d in infos], "Collections": [owned[d.doc_id] for d in infos],
             "Added": [(d.added or "")[:10] for d in infos], "Chunks": [str(d.chunks) for d in infos],
             "Size": [sizes[d.doc_id] for d in infos]}
    fixed = {name: max([len(name), *(len(v) for v in values)]) for name, values in cells.items()}
    sources = [shown(d.source) for d in infos]
    needs = (max([len("Title"), *(len(d.title) for d in infos)]), max([len("Source"), *(len(s) for s in sources)]))
    # In a terminal (or with COLUMNS) the table fits the width: the title and source share what
    # the other columns leave, and the least useful columns go when the title would be a stub.
    # Piped into another program (grep, a file) with no COLUMNS, every column is whole: no screen
    # to fit, and a cut title cannot be found.
    fit = out.is_terminal or os.environ.get("COLUMNS", "").strip().isdigit()
    kept, (title_width, source_width) = _fitted(fixed, needs, out.width) if fit else (list(fixed), needs)
    columns = {"ID": cells["ID"], "Title": [_cut(d.title, title_width) for d in infos],
               "Source": [_cut(s, source_width, left=True) for s in sources],
               **{name: cells[name] for name in ("Collections", "Added", "Chunks", "Size")}}
    shown_columns = [name for name in columns if name in kept or name in ("Title", "Source")]
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    for name in shown_columns:
        table.add_column(name, no_wrap=True, justify="right" if name in ("Chunks", "Size") else "left")
    for row in zip(*(columns[name] for name in shown_columns)):
        table.add_row(*(escape(cell) for cell in row))
    total = sum(fixed.values()) + COLUMN_GAP * (len(fixed) + 1) + title_width + source_width
    wide = out if fit else Console(file=out.file, width=total + 1, highlight=False, color_system=None)
    wide.print(table, soft_wrap=False)
    counts: dict[str, int] = {}
    for d in infos:
        for name in d.collections:
            counts[name] = counts.get(name, 0) + 1
    held = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
    out.print(f"{counted(len(infos), 'document')} in {shown(index_dir)}"
              + (f" (collections: {held})." if held else "."))


@docs_app.command("show")
def show_command(ref: str = typer.Argument(..., metavar="ID|SOURCE", help="An ID from `qabot docs list`, a path or a URL."),
                 index: Optional[Path] = IndexOption,
                 as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Show one document: where it came from and its first passages."""
    run(_show, ref, index, as_json)


def _show(ref: str, index: Optional[Path], as_json: bool) -> None:
    from embeddings.catalog import resolve
    from embeddings.index import Index

    index_dir = settings_for(index).paths.index
    loaded = Index.load(index_dir)
    info = resolve(loaded.documents, ref)
    chunks = loaded.chunks_of(info.doc_id)
    if as_json:
        print(json.dumps({**document_json(info), "passages": [
            {"chunk_id": c.chunk_id, "page": info.page_at(c.start), "text": c.text} for c in chunks]},
            ensure_ascii=False))
        return
    rows = [("ID", info.short_id), ("Title", info.title), ("Source", shown(info.source)),
            ("URL", info.url or "-"), ("Added", info.added or "-"), ("Chunks", str(info.chunks)),
            ("Size", _size(info.size)), ("Pages", str(info.pages[-1][1]) if info.pages else "-"),
            ("SHA-256", info.sha256)]
    for label, value in rows:
        out.print(f"[bold]{label + ':':9}[/bold] {escape(value)}")
    for c in chunks[:SHOW_CHUNKS]:
        page = info.page_at(c.start)
        text = c.text if len(c.text) <= SHOW_CHARS else c.text[:SHOW_CHARS] + "…"
        out.print(f"\n[dim]{escape(c.chunk_id)}{f' (p. {page})' if page else ''}[/dim]\n{escape(text)}")
    if len(chunks) > SHOW_CHUNKS:
        out.print(f"\n[dim]… {len(chunks) - SHOW_CHUNKS} more passages[/dim]")


@docs_app.command("remove")
def remove_command(refs: List[str] = typer.Argument(..., metavar="ID|SOURCE...",
                                                    help="IDs from `qabot docs list`, paths or URLs."),
                   index: Optional[Path] = IndexOption,
                   as_json: bool = typer.Option(False, "--json", help="Print the removed documents as JSON.")) -> None:
    """Remove documents from the index (one atomic write; all named documents or none)."""
    run(_remove, refs, index, as_json)


def _remove(refs: list[str], index: Optional[Path], as_json: bool) -> None:
    from embeddings.catalog import resolve
    from embeddings.ingest import remove_documents

    settings = settings_for(index)
    index_dir, documents = _documents(index)
    targets = [resolve(documents, ref).doc_id for ref in refs]  # every ref must match, or none goes
    removed = remove_documents(index_dir, targets, settings.ingest.lock_timeout_s)
    if as_json:
        print(json.dumps({"removed": [document_json(d) for d in removed], "index": str(index_dir)},
                         ensure_ascii=False))
        return
    for info in removed:
        out.print(f"[red]removed[/red] {escape(info.short_id)} {escape(info.title)} ({counted(info.chunks, 'chunk')})")
    out.print(f"Index {shown(index_dir)}: {counted(len(documents) - len(removed), 'document')} left.")


# --- ingest progress ------------------------------------------------------------------------

@contextmanager
def ingest_progress(show: bool) -> Iterator[tuple[Callable[[float, int, str], None], Callable[[float, int], None]]]:
    """(on_load, on_embed) callbacks that drive two progress bars on stderr, shown only when
    `show` (a terminal, not --json): one for fetching/reading inputs, one for embedding."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("[dim]{task.fields[item]}"), console=err,
                  disable=not show, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def task(name: str) -> TaskID:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=None, item="")
            return tasks[name]

        def on_load(done: float, total: int, item: str) -> None:
            shown = item if len(item) <= 60 else "…" + item[-59:]
            bar.update(task("Reading inputs"), completed=done, total=total, item=escape(shown))

        def on_embed(done: float, total: int) -> None:
            bar.update(task("Embedding documents"), completed=done, total=total, item="")

        yield on_load, on_embed
