"""The README and the pages of docs/ stay true to the code: short enough to read, one section per
topic, every section the code points at present, every link resolving, every command in them
runs as written (transcripts are run and their output compared; the rest are parsed against the
real `qabot` command, the Makefile and the files they name), and the Quick start transcript is
what `qabot chat` really prints."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import typer.main

# typer (0.2x) carries its own copy of click: its commands raise this copy's errors.
from typer._click.exceptions import UsageError

from .conftest import ROOT
from .qabot_env import qabot_environ

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 300
HEADING = re.compile(r"^(#{1,6}) (.+?)\s*$", re.MULTILINE)
# `README, "Slack setup"`, `(see README, 'JSON output')`, `README's "Configuration"`, with the
# quotes possibly escaped inside a Python string.
SECTION_REFERENCE = re.compile(r"""README(?:'s)?,?\s+(?:section\s+)?\\?["']([A-Z][^"'\\\n]{1,60})\\?["']""")
# `docs/scale-out.md`, `docs/quality.md, "Rules only vs the reader (ablation)"`.
DOCS_REFERENCE = re.compile(r"""docs/([a-z-]+\.md)(?:,\s+\\?["']([A-Z][^"'\\\n]{1,60})\\?["'])?""")
LINK = re.compile(r"\]\(([^)\s]+)\)")
QABOT = str(Path(sys.executable).parent / "qabot")


def _text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def _lines(page: Path) -> list[tuple[str, bool]]:
    """Each line of a page, and whether it is Markdown (not inside a ``` code block)."""
    result, in_code = [], False
    for line in _text(page).splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            result.append((line, False))
        else:
            result.append((line, not in_code))
    return result


def headings(page: Path = README) -> list[str]:
    return [m.group(2) for line, markdown in _lines(page) if markdown and (m := HEADING.match(line))]


def section(title: str, page: Path = README) -> str:
    """The text of one section, up to the next heading of the same or a higher level."""
    level, body = None, []
    for line, markdown in _lines(page):
        m = HEADING.match(line) if markdown else None
        if level is None:
            if m and m.group(2) == title:
                level = len(m.group(1))
        elif m and len(m.group(1)) <= level:
            break
        else:
            body.append(line)
    assert level is not None, f"no section {title!r} in {page.relative_to(ROOT)}"
    return "\n".join(body) + "\n"


def code_blocks(page: Path) -> list[tuple[str, list[str]]]:
    """The fenced code blocks of a page: (language, lines), the fence's indentation removed."""
    blocks, current, language, indent = [], None, "", 0
    for line in _text(page).splitlines():
        stripped = line.lstrip()
        if stripped.startswith("```"):
            if current is None:
                current, language, indent = [], stripped[3:].strip(), len(line) - len(stripped)
            else:
                blocks.append((language, current))
                current = None
        elif current is not None:
            current.append(line[indent:])
    return blocks


# --- the pages themselves ----------------------------------------------------------------------

def test_the_readme_is_short_enough_to_read_to_the_end():
    lines = len(_text(README).splitlines())
    assert lines <= README_MAX_LINES, f"README has {lines} lines; move reference and figures to docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_headings_are_unique(page):
    seen = headings(page)
    duplicates = sorted({h for h in seen if seen.count(h) > 1})
    assert not duplicates, f"{page.name}: sections appear more than once: {duplicates}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(_text(page)):
        if "://" in target or target.startswith(("#", "mailto:")):
            continue
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: links to missing files {broken}"


def test_every_docs_page_is_listed_in_the_readme():
    listed = section("Read more")
    missing = [p.name for p in PAGES[1:] if f"(docs/{p.name})" not in listed]
    assert not missing, f"docs/ pages missing from README, 'Read more': {missing}"


def _code_files() -> list[Path]:
    files = [p for top in ("bot", "embeddings", "bench", "tests") for p in (ROOT / top).rglob("*.py")
             if p.name != "test_readme.py"]  # its own patterns are no references
    return [*files, *sorted((ROOT / "config").glob("*")), *sorted((ROOT / "deploy").rglob("*.*")),
            ROOT / "Makefile", ROOT / "SECURITY.md", ROOT / "bench" / "README.md", *PAGES[1:]]


def test_every_section_named_in_the_code_exists():
    named: dict[tuple[str, str | None], list[str]] = {}
    for path in _code_files():
        text = path.read_text(encoding="utf-8")
        where = str(path.relative_to(ROOT))
        for title in SECTION_REFERENCE.findall(text):
            named.setdefault(("README.md", title), []).append(where)
        for page, title in DOCS_REFERENCE.findall(text):
            named.setdefault((f"docs/{page}", title or None), []).append(where)
    assert {("README.md", "Slack setup"), ("README.md", "Configuration"), ("docs/cli.md", "JSON output")} <= set(named)
    missing = {f"{page}, {title!r}": where for (page, title), where in named.items()
               if not (ROOT / page).is_file() or (title is not None and title not in headings(ROOT / page))}
    assert not missing, f"sections named in the code but absent: {missing}"


def test_the_configuration_reference_names_every_setting():
    from bot.settings import all_keys

    text = _text(ROOT / "docs" / "configuration.md")
    missing = [key.name for key in all_keys() if f"`{key.name}`" not in text]
    assert not missing, f"settings missing from docs/configuration.md: {missing}"


def test_the_architecture_page_names_every_module():
    drawing = section("Architecture", ROOT / "docs" / "architecture.md")
    for path in sorted([*(ROOT / "bot").rglob("*.py"), *(ROOT / "embeddings").rglob("*.py")]):
        if path.name == "__init__.py" or "__pycache__" in path.parts:
            continue
        assert path.name in drawing, f"{path.relative_to(ROOT)} is missing from docs/architecture.md"


# --- every command runs as written --------------------------------------------------------------

def _commands(lines: list[str]) -> list[tuple[str, bool]]:
    """The shell commands of a code block: `$ ` lines of a transcript, or every line of a script;
    continuation lines joined, comments kept for shlex to drop. With each, whether the transcript
    shows it failing (its output starts with "Error:"): a bad setting shown on purpose."""
    transcript = any(line.startswith("$ ") for line in lines)
    commands: list[tuple[str, bool]] = []
    continued = False
    for number, line in enumerate(lines):
        if continued:
            commands[-1] = (commands[-1][0][:-1] + " " + line.strip(), False)
        elif transcript and line.startswith("$ "):
            following = lines[number + 1] if number + 1 < len(lines) else ""
            commands.append((line[2:], following.startswith("Error:")))
        elif not transcript and line.strip() and not line.lstrip().startswith("#"):
            commands.append((line.strip(), False))
        else:
            continue
        continued = commands[-1][0].endswith("\\")
    return commands


def shell_blocks() -> list[tuple[str, list[str]]]:
    """Every sh/console block of the README and docs/, with where it is."""
    found = []
    for page in PAGES:
        for number, (language, lines) in enumerate(code_blocks(page), 1):
            if language in ("sh", "console", "bash", "shell"):
                found.append((f"{page.relative_to(ROOT)} block {number}", lines))
    return found


def _segments(command: str) -> list[list[str]]:
    """A command line split at pipes, `&&`, `;` and redirections, comments dropped."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    segments: list[list[str]] = [[]]
    redirect = False
    for token in lexer:
        if token in ("|", "&&", ";", "||"):
            segments.append([])
        elif set(token) <= set("<>&"):
            redirect = True
        elif redirect:
            redirect = False  # the redirection's target
        else:
            segments[-1].append(token)
    return [s for s in segments if s]


def _make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", _text(ROOT / "Makefile"), re.MULTILINE))


def _parse_qabot(args: list[str]) -> None:
    """Parse `qabot ARGS` with the real click command, without running it: an unknown command
    or option, a missing argument or a bad value raises UsageError."""
    from bot.cli import app

    command = typer.main.get_command(app)
    name, parent = "qabot", None
    while True:
        try:
            ctx = command.make_context(name, list(args), parent=parent)
        except typer.Exit:  # --help, --version
            return
        if not hasattr(command, "resolve_command"):  # a command, not a group
            return
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        assert rest, f"qabot {' '.join(args)}: no command"
        name, sub, args = command.resolve_command(ctx, rest)
        assert sub is not None, f"qabot {' '.join(args)}: no command {name}"
        command, parent = sub, ctx


def _check_segment(words: list[str], where: str, fails: bool = False) -> None:
    """One program call of a documented command: it exists and takes these arguments (and, unless
    it is shown failing, its QABOT_* variables are settings with values qabot accepts)."""
    from bot.settings import load_settings

    environ = {}
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        key, _, value = words.pop(0).partition("=")
        environ[key] = value
    if not words:
        return
    program, args = words[0], words[1:]
    settings_env = {k: v for k, v in environ.items() if k.startswith("QABOT_") and k != "QABOT_CONFIG"}
    if settings_env and not fails:
        load_settings(environ=settings_env)  # every variable is a setting, every value accepted
    if program.endswith("qabot"):
        _parse_qabot(args)
    elif program == "make":
        targets = [a for a in args if "=" not in a and not a.startswith("-")]
        assert set(targets) <= _make_targets(), f"{where}: make {targets}: no such target"
        for variable in (a.partition("=")[0] for a in args if "=" in a):
            assert re.search(rf"\b{variable}\b", _text(ROOT / "Makefile")), f"{where}: make ignores {variable}"
    elif program in ("docker", "kubectl"):
        for flag, value in zip(args, args[1:], strict=False):
            if flag == "-f":
                assert (ROOT / value).is_file(), f"{where}: {program} -f {value}: no such file"
    elif program.endswith("python"):
        if args[:1] == ["-m"]:
            import importlib.util

            assert importlib.util.find_spec(args[1]), f"{where}: no module {args[1]}"
    elif program == "pip":
        assert args[0] == "install" and all(a in ("torch==2.13.0", "/path/to/qabot") for a in args[1:]), where
    elif program == "export":
        for assignment in args:
            assert re.match(r"^(SLACK|QABOT|OPENAI|DEPLOY)_[A-Z_]+=", assignment), f"{where}: export {assignment}"
            if assignment.startswith("QABOT_"):
                load_settings(environ=dict([assignment.split("=", 1)]))
    else:
        assert program in ("printf", "echo", "cat"), f"{where}: {program}: a command this test does not know"


# Transcripts that need what a test has not (a network, a Slack workspace, an LLM server, Docker)
# are parsed, not run.
NOT_RUN = re.compile(r"https?://|\bexport\b|\bmake\b|\bdocker\b|\bkubectl\b|QABOT_LLM")


def _transcripts() -> list[tuple[str, list[str]]]:
    return [(where, lines) for where, lines in shell_blocks()
            if any(line.startswith("$ ") for line in lines) and not NOT_RUN.search("\n".join(lines))]


def test_every_command_parses_against_the_real_cli_the_makefile_and_the_files():
    blocks = shell_blocks()
    assert len(blocks) >= 15  # the scan finds the pages' commands
    checked = 0
    for where, lines in blocks:
        for command, fails in _commands(lines):
            for words in _segments(command):
                try:
                    _check_segment(list(words), where, fails)
                except UsageError as exc:
                    pytest.fail(f"{where}: {command!r}: {exc.format_message()}")
                checked += 1
    assert checked >= 40


def _expected(line: str) -> re.Pattern:
    """An output line of a transcript; `...` and `…` stand for text left out."""
    parts = re.split(r"\.\.\.|…", line.rstrip())
    return re.compile(".*".join(re.escape(p) for p in parts))


@pytest.mark.slow  # real ingests and a dozen `qabot` processes: about 20 s
def test_every_transcript_prints_what_it_shows(tmp_path):
    """Each transcript runs in a fresh folder holding the bundled articles (data/articles, the
    index in data/index as in the checkout), one command after another, as a user types them."""
    transcripts = _transcripts()
    assert len(transcripts) >= 3, [where for where, _ in transcripts]
    env = qabot_environ(QABOT_INDEX="data/index", COLUMNS="400",
                        PATH=f"{Path(QABOT).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for number, (where, lines) in enumerate(transcripts):
        work = tmp_path / str(number)
        shutil.copytree(ROOT / "data" / "articles", work / "data" / "articles")
        steps: list[tuple[str, list[str]]] = []
        for line in lines:
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps and line.strip():
                steps[-1][1].append(line)
        for command, expected in steps:
            result = subprocess.run(["bash", "-c", command + " 2>&1"], capture_output=True, text=True,
                                    cwd=work, env=env, timeout=180)
            printed = [line for line in result.stdout.splitlines() if line.strip()]
            assert len(printed) == len(expected) and all(
                _expected(e).fullmatch(p.rstrip()) for e, p in zip(expected, printed, strict=True)), (
                f"{where}: $ {command}\nexpected:\n" + "\n".join(expected) + "\nprinted:\n" + result.stdout)


# --- the JSON output is documented as it prints -------------------------------------------------

def _json_section() -> str:
    return section("JSON output", ROOT / "docs" / "cli.md")


def test_the_json_example_and_key_table_are_what_ask_prints(answerer):
    text = _json_section()
    example = json.loads(re.search(r"```json\n(.*?)```", text, re.DOTALL).group(1))
    from bot.answering.layout import layout_json

    answer = answerer.ask(example["question"])
    real = {**answer.to_json(), **layout_json(answer)}  # what `qabot ask --json` prints
    shown = json.dumps(real, ensure_ascii=False, indent=2)
    assert set(example) == set(real), f"docs/cli.md's example has other keys than ask --json:\n{shown}"
    assert set(example["citations"][0]) == set(real["citations"][0]), shown
    for key in ("answer", "abstained", "highlight", "reader", "composed", "notice", "llm"):
        assert example[key] == real[key], f"docs/cli.md's example differs in {key!r} from ask --json:\n{shown}"
    table = [m.group(1) for m in re.finditer(r"^\| `([\w\[\].]+)` \|", text, re.MULTILINE)]
    assert len(table) == len(set(table)), f"a key documented twice: {table}"
    assert set(real) - {"question"} <= set(table), f"keys not in the table: {set(real) - set(table)}"
    in_table = text[text.index("| key | meaning |"):]
    rows = in_table.split("\n\n")[0].splitlines()
    assert all(row.startswith("|") for row in rows), "the key table is broken by a paragraph"


# --- the Quick start ------------------------------------------------------------------------------

def test_the_quick_start_transcript_is_what_chat_prints(sample_index):
    """The questions of the Quick start transcript, piped into `qabot chat`, print its answers."""
    block = re.search(r"^(qabot: \d+ documents? indexed.*?)^```", section("Quick start"), re.MULTILINE | re.DOTALL)
    assert block, "no chat transcript in the Quick start"
    transcript = block.group(1).splitlines()
    questions = [line[2:] for line in transcript if line.startswith("? ")]
    env = qabot_environ(QABOT_INDEX=str(sample_index), COLUMNS="400")
    result = subprocess.run([QABOT, "chat"], input="\n".join(questions) + "\n", capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    # Piped, the prompt "? " is printed but the typed question is not echoed.
    printed = [line.removeprefix("? ") for line in result.stdout.splitlines()]
    expected = [line for line in transcript if not line.startswith("? ")]
    assert [line for line in printed if line.strip()] == [line for line in expected if line.strip()]
