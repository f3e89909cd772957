"""What every `qabot` command shares: the settings it runs with, one-line errors, paths as shown.

cli.py (the commands) and cli_docs.py (`qabot docs ...`) both import this; neither imports the
other's helpers, so the two command modules form no import loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from embeddings.errors import QabotError

from .cli_ask import Failure, settings_with
from .settings import Settings

err = Console(stderr=True, highlight=False, soft_wrap=True)
IndexOption = typer.Option(None, "--index", metavar="DIR", help="Index directory (default: $QABOT_INDEX or config).")
T = TypeVar("T")


class _Config:
    """The --config file given before the command (`qabot --config FILE ask ...`), for every command."""

    file: Optional[Path] = None


def use_config_file(path: Optional[Path]) -> None:
    """Set by the CLI's callback from --config / $QABOT_CONFIG, before any command runs."""
    _Config.file = path


def settings_for(index: Optional[Path] = None) -> Settings:
    """Code defaults, then --config / $QABOT_CONFIG (or the checkout's file), then $QABOT_*, then --index."""
    return settings_with(_Config.file, index)


def shown(path: Path | str) -> str:
    """A path as the user would type it: relative to the current directory when it lies inside it
    (paths from the checkout's config file are absolute), else as it is."""
    if "://" in str(path):  # a URL is no path
        return str(path)
    p = Path(path)
    if p.is_absolute() and p.is_relative_to(Path.cwd()):
        return str(p.relative_to(Path.cwd()))
    return str(path)  # as given: a relative path, or a URL (which Path would mangle)


def counted(n: int, noun: str) -> str:
    """`n` and the noun, singular for one: "1 document", "5 chunks" (not "1 documents")."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a command body, turning every `QabotError` (the whole family) into one line on stderr
    and an exit code: a `Failure`'s own, 1 for the rest, 130 for Ctrl-C."""
    try:
        return fn(*args, **kwargs)
    except QabotError as exc:
        err.print(f"[red]Error:[/red] {escape(str(exc))}")
        raise typer.Exit(exc.code if isinstance(exc, Failure) else 1) from None
    except KeyboardInterrupt:
        err.print("Interrupted.")
        raise typer.Exit(130) from None
