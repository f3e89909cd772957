"""`qabot`: ingest documents, ask questions, chat, evaluate and serve the Slack bot.

Every command reports a user error as one line on stderr and a non-zero exit code; `--json`
prints machine-readable output (see docs/cli.md, "JSON output").
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import List, Optional, Sequence

import typer
from rich.markup import escape
from rich.text import Text

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from .answering.answer import Answer
from .cli_ask import chosen_collections, run_ask, setup_logging
from .cli_common import Failure, IndexOption, counted, err, use_config_file
from .cli_common import run as _run
from .cli_common import settings_for as _settings
from .cli_common import shown as _shown
from .cli_docs import docs_app, ingest_progress
from .cli_report import report_command
from .cli_render import ask_and_show, out
from .report.recorder import QuestionRecorder
from .settings import RETRIEVAL_MODES, Settings

# rich_markup_mode=None: help in click's plain layout. Help texts name settings as "[slack] port",
# which Rich markup would swallow, and typer's Rich panels print every flag as "<bool>".
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="qabot: answers questions about your articles, with quoted sources.")
log = logging.getLogger("qabot")

app.add_typer(docs_app, name="docs")
app.command("report")(report_command)
CollectionOption = typer.Option(None, "--collection", metavar="NAME",
                                help="Answer from this collection's documents only (repeatable; default: all).")
SourcesOption = typer.Option(False, "--sources", help="Also list the other passages found (folded away by default).")
VerboseOption = typer.Option(False, "--verbose", "-v", help="Show more: the other passages found, as --sources.")
_verbose = False  # -v before the command: also show what a follow-up searched for


def _print_version(requested: bool) -> None:
    """`qabot --version`: the installed distribution's version (pyproject.toml's), then exit; eager,
    so it needs no command and reads no settings."""
    if requested:
        from importlib.metadata import version

        print(f"qabot {version('qabot')}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debugging detail."),
    config: Optional[Path] = typer.Option(
        None, "--config", envvar="QABOT_CONFIG", metavar="FILE",
        help="Settings file (TOML, like config/default.toml); relative paths in it resolve from its folder."),
    _version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                  help="Print qabot's version and exit."),
) -> None:
    global _verbose
    setup_logging(verbose)
    use_config_file(config)
    _verbose = verbose


# --- ingest -------------------------------------------------------------------------------

@app.command()
def ingest(
    paths: Optional[List[str]] = typer.Argument(
        None, help="Files (.txt, .md, .html, .pdf, .docx), folders of them, http(s):// URLs or sitemap URLs "
                   "(default: the paths.sample setting; data/articles in this checkout). URLs may be intranet, "
                   "private or loopback addresses here (Slack's `/ask add` refuses those unless [ingest] allow_private_urls)."),
    from_list: Optional[List[Path]] = typer.Option(
        None, "--from-list", metavar="FILE", help="A file naming one URL or path a line (# comments); its dead links are refused one by one."),
    index: Optional[Path] = IndexOption,
    rebuild: bool = typer.Option(False, "--rebuild", help="Build the index afresh from these paths alone."),
    if_empty: bool = typer.Option(False, "--if-empty", help="Do nothing if the index already has documents."),
    encoding: Optional[str] = typer.Option(None, "--encoding", metavar="E", help="Text encoding of non-UTF-8 files, e.g. latin-1."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    collection: Optional[List[str]] = typer.Option(
        None, "--collection", metavar="NAME",
        help="Put these documents in this collection (repeatable): Slack channels answer from the collections "
             "mapped to them. Moves documents indexed before, without embedding them again; "
             "default: new documents in 'default', known ones where they are."),
) -> None:
    """Add documents to the index (unchanged ones are skipped, changed ones replaced)."""
    _run(_ingest, paths, index, rebuild, if_empty, encoding, as_json, from_list or [], collection or None)


def _ingest(paths, index, rebuild, if_empty, encoding, as_json, from_list, collections=None) -> None:
    from embeddings.index import Index
    from embeddings.ingest import IngestOptions, ingest as run_ingest

    settings = _settings(index)
    index_dir = settings.paths.index
    if if_empty and not rebuild and Index.exists(index_dir):
        if not as_json:
            out.print(f"Index at {_shown(index_dir)} already has documents; nothing to do.")
        else:
            print(json.dumps({"added": [], "updated": [], "skipped": [], "refused": [], "index": str(index_dir)}))
        return
    if not paths and not from_list:
        if not settings.paths.sample.exists():
            raise Failure(f"no paths given, and paths.sample ({settings.paths.sample}) does not exist; "
                          "name the files or folders to ingest", 2)
        paths = [settings.paths.sample]
    with ingest_progress(show=not as_json and sys.stderr.isatty()) as (on_load, on_embed):
        result = run_ingest(
            paths or [], index_dir, IngestOptions.from_settings(settings), rebuild=rebuild, encoding=encoding,
            from_lists=from_list, load_progress=on_load, progress=on_embed, collections=collections)
    report = result.report
    nothing = result.refused and not (report.added or report.updated or report.skipped or report.moved)
    if as_json:
        print(json.dumps({"added": report.added, "updated": report.updated, "skipped": report.skipped,
                          "moved": report.moved, "refused": result.refused, "chunks_added": report.chunks_added,
                          "documents": result.documents_total, "chunks": result.chunks_total,
                          "index": str(index_dir)}))
        if nothing:
            raise typer.Exit(1)
        return
    for label, items, colour in (("added", report.added, "green"), ("updated", report.updated, "yellow"),
                                 ("moved", report.moved, "cyan"), ("skipped (unchanged)", report.skipped, "dim")):
        for item in items:
            out.print(f"[{colour}]{label}[/{colour}] {escape(_shown(item))}")
    for reason in result.refused:
        err.print(f"[red]refused[/red] {escape(reason)}")
    if nothing:
        raise Failure(f"nothing indexed: {counted(len(result.refused), 'input')} refused, the index is unchanged")
    out.print(f"Index {_shown(index_dir)}: {counted(result.documents_total, 'document')}, "
              f"{counted(result.chunks_total, 'chunk')} ({report.chunks_added} new).")


# --- ask / chat ---------------------------------------------------------------------------

def _live_answerer(settings: Settings, warm_max_chunks: int = 0):
    """For `chat` and `serve`: follows the index, so documents ingested or removed while it runs
    are used from the next question on (bot/answering/live.py)."""
    from .answering.live import LiveAnswerer

    return LiveAnswerer(settings, warm_max_chunks=warm_max_chunks).start()


@app.command()
def ask(
    question: List[str] = typer.Argument(..., help="The question, or - to read one question per line from stdin."),
    index: Optional[Path] = IndexOption,
    as_json: bool = typer.Option(False, "--json", help="One JSON object per question per line."),
    sources: bool = SourcesOption,
    verbose: bool = VerboseOption,
    collection: Optional[List[str]] = CollectionOption,
) -> None:
    """Answer a question from the indexed articles."""
    _run(_ask, question, index, as_json, sources or verbose, collection or [])


def _ask(question: list[str], index: Optional[Path], as_json: bool, sources: bool = False,
         collections: Sequence[str] = ()) -> None:
    run_ask(question, _settings(index), as_json, sources, collections)


@app.command()
def chat(index: Optional[Path] = IndexOption, sources: bool = SourcesOption, verbose: bool = VerboseOption,
         collection: Optional[List[str]] = CollectionOption) -> None:
    """Ask questions interactively; follow-ups use the conversation so far. exit or Ctrl-D quits."""
    _run(_chat, index, sources or verbose, collection or [])


def _chat(index: Optional[Path], sources: bool = False, collections: Sequence[str] = ()) -> None:
    settings = _settings(index)
    answerer = _live_answerer(settings)
    scope = chosen_collections(collections, answerer.index)
    out.print(f"qabot: {counted(len(answerer.index.documents), 'document')} indexed. Ask a question; "
              "'exit' or Ctrl-D quits.")
    read = _line_reader(settings)
    recorder = QuestionRecorder.from_settings(settings, via="chat", required=False)
    history: list[str] = []
    while True:
        try:
            line = read()
        except (EOFError, KeyboardInterrupt):
            out.print()
            break
        question = line.strip()
        if not question:
            continue
        if question.lower() in {"exit", "quit", ":q"}:
            break
        recorder.record(ask_and_show(answerer, question, history, sources=sources,
                                     show_query=lambda answer: _show_query(answer, sources), collections=scope))
        out.print()
        history.append(question)
    recorder.close()


def _show_query(answer: Answer, verbose: bool = False) -> None:
    """`-v` (before or after the command): the rewritten search text of a follow-up (on stderr:
    it is no part of the answer)."""
    if (verbose or _verbose) and answer.query:
        err.print(Text(f"(searched as: {answer.query})", style="dim"))


def _line_reader(settings: Settings):
    """prompt_toolkit with persistent history at a terminal; plain input() when piped."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        history_file = Path(settings.paths.index).parent / ".chat_history"
        history_file.parent.mkdir(parents=True, exist_ok=True)
        session: PromptSession[str] = PromptSession(history=FileHistory(str(history_file)))
        return lambda: session.prompt("? ")
    return lambda: input("? ")


# --- serve --------------------------------------------------------------------------------

@app.command()
def serve(
    index: Optional[Path] = IndexOption,
    port: Optional[int] = typer.Option(None, "--port", min=0, max=65535, metavar="N",
                                       help="HTTP port when not in Socket Mode (default: [slack] port, 3000; 0 picks a free one)."),
    host: Optional[str] = typer.Option(None, "--host", metavar="HOST",
                                       help="HTTP interface when not in Socket Mode (default: [slack] host, 0.0.0.0)."),
) -> None:
    """Run the Slack bot (Socket Mode if SLACK_APP_TOKEN is set, else HTTP on --port)."""
    if logging.getLogger().level > logging.INFO:  # a server logs what it does
        logging.getLogger().setLevel(logging.INFO)
    _run(_serve, index, port, host)


# Larger indexes embed sentences lazily, as questions reach them (and cache them).
WARM_MAX_CHUNKS = 5000


def _serve(index: Optional[Path], port: Optional[int], host: Optional[str]) -> None:
    if not os.environ.get("SLACK_BOT_TOKEN") and not os.environ.get("SLACK_BOT_TOKEN_FILE"):
        raise Failure("SLACK_BOT_TOKEN is not set (see README, 'Slack setup')", 2)
    from .slack.server import serve as serve_slack

    settings = _settings(index)
    if host is not None:
        settings = settings.replace("slack", host=host)
    answerer = _live_answerer(settings, WARM_MAX_CHUNKS)
    stop = threading.Event()
    warmer = threading.Thread(target=answerer.warm, kwargs={"stop": stop}, name="warm-sentences",
                              daemon=True)

    def connected(_info) -> None:
        # Once Slack accepted the tokens, embed every sentence in the background, so no user
        # waits for it; larger indexes embed sentences as questions reach them.
        if len(answerer.index) <= WARM_MAX_CHUNKS:
            warmer.start()

    try:
        serve_slack(settings, answerer, port=port, host=settings.slack.host, ready=connected)
    finally:
        stop.set()
        answerer.stop()
        if warmer.is_alive():
            warmer.join(timeout=10)


# --- eval ---------------------------------------------------------------------------------

@app.command("eval")
def eval_command(
    contexts: Path = typer.Option(..., "--contexts", metavar="FILE", help="JSON lines {context_id, title, text}: one document per title."),
    questions: Path = typer.Option(..., "--questions", metavar="FILE", help="JSON lines {id, question, answers}."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
    abstain_check: bool = typer.Option(False, "--abstain-check",
                                       help="Also run the cross-split abstention protocol (index half the titles, ask all)."),
    unanswerable: Optional[Path] = typer.Option(
        None, "--unanswerable", metavar="FILE",
        help="Also ask these unanswerable questions (SQuAD 2.0 JSON lines, empty answers) and report declined/answered."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, metavar="N", help="Ask only the first N questions (of each file)."),
    mode: Optional[str] = typer.Option(None, "--mode", metavar="MODE", help="Retrieval: hybrid (default), dense or keyword."),
    work_dir: Optional[Path] = typer.Option(None, "--work-dir", metavar="DIR",
                                            help="Keep the built indexes here and reuse them next time (default: a temporary directory)."),
    llm: bool = typer.Option(False, "--llm", help="Compose the answers with the [llm] server (enabled for this run) "
                                                  "and report citation validity and composed-answer accuracy."),
) -> None:
    """Measure retrieval, answers, highlights and abstention on a question set (e.g. ../shared/eval)."""
    _run(_eval, contexts, questions, as_json, abstain_check, limit, mode, work_dir, unanswerable, llm)


def _eval(contexts, questions, as_json, abstain_check, limit, mode, work_dir, unanswerable=None,
          llm=False) -> None:
    from .evaluation.data import EvalDataError
    from .evaluation.report import format_report
    from .evaluation.runner import run_eval

    settings = _settings()
    if mode is not None:
        if mode not in RETRIEVAL_MODES:
            raise Failure(f"--mode must be one of {', '.join(RETRIEVAL_MODES)}; got {mode!r}", 2)
        settings = settings.replace("retrieval", mode=mode)
    if llm:
        settings = settings.replace("llm", enabled=True)
    for path in (contexts, questions, *([unanswerable] if unanswerable else [])):
        if not path.is_file():
            raise Failure(f"{path}: no such file", 2)
    try:
        report = run_eval(contexts, questions, settings, limit=limit, abstain_check=abstain_check,
                          unanswerable=unanswerable, work_dir=work_dir, progress=True)
    except EvalDataError as exc:
        raise Failure(str(exc), 2) from None
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        out.print(Text(format_report(report)))


if __name__ == "__main__":  # pragma: no cover
    app()
