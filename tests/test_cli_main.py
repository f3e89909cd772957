"""The console script's short path (bot/cli_main.py): which command lines it runs itself, and that
everything else reaches the typer app unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli_main import parse_ask


def test_plain_ask_lines_are_taken_with_their_options_where_click_allows_them(monkeypatch):
    monkeypatch.delenv("QABOT_CONFIG", raising=False)
    line = parse_ask(["-v", "--config", "q.toml", "ask", "--json", "When", "are", "--index=idx", "the", "talks?"])
    assert line is not None and line.verbose and line.as_json and not line.sources
    assert (line.config, line.index, line.words) == (Path("q.toml"), Path("idx"), ["When", "are", "the", "talks?"])
    after = parse_ask(["ask", "-v", "--index", "idx", "-", "--", "--json"])
    assert after is not None and after.sources and not after.verbose and not after.as_json
    assert after.words == ["-", "--json"]
    monkeypatch.setenv("QABOT_CONFIG", "env.toml")
    assert parse_ask(["ask", "why?"]).config == Path("env.toml")


@pytest.mark.parametrize("argv", [[], ["--version"], ["ask"], ["ask", "--help"], ["ask", "--index"],
                                  ["ask", "--limit", "3", "why?"], ["ask", "-5", "degrees?"], ["--config", "ask"],
                                  ["chat"], ["ingest", "ask"], ["-x", "ask", "why?"], ["ask", "--index=", "why?"]])
def test_everything_else_goes_to_the_typer_app(argv, monkeypatch):
    monkeypatch.delenv("QABOT_CONFIG", raising=False)
    assert parse_ask(argv) is None
