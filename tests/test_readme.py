"""The README stays one section per topic, true to the code that points at it, and its Quick start
transcript is what `qabot chat` really prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
HEADING = re.compile(r"^(#{1,6}) (.+?)\s*$", re.MULTILINE)
# `README, "Slack setup"`, `(see README, 'JSON output')`, `README's "Configuration"`, with the
# quotes possibly escaped inside a Python string.
SECTION_REFERENCE = re.compile(r"""README(?:'s)?,?\s+(?:section\s+)?\\?["']([A-Z][^"'\\\n]{1,60})\\?["']""")


def _lines() -> list[tuple[str, bool]]:
    """Each README line, and whether it is Markdown (not inside a ``` code block)."""
    result, in_code = [], False
    for line in README.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            result.append((line, False))
        else:
            result.append((line, not in_code))
    return result


def headings() -> list[str]:
    return [m.group(2) for line, markdown in _lines() if markdown and (m := HEADING.match(line))]


def section(title: str) -> str:
    """The text of one section, up to the next heading of the same or a higher level."""
    level, body = None, []
    for line, markdown in _lines():
        m = HEADING.match(line) if markdown else None
        if level is None:
            if m and m.group(2) == title:
                level = len(m.group(1))
        elif m and len(m.group(1)) <= level:
            break
        else:
            body.append(line)
    assert level is not None, f"no README section {title!r}"
    return "\n".join(body) + "\n"


def test_headings_are_unique():
    seen = headings()
    duplicates = sorted({h for h in seen if seen.count(h) > 1})
    assert not duplicates, f"README sections appear more than once: {duplicates}"


def _code_files() -> list[Path]:
    files = [p for top in ("bot", "embeddings", "bench") for p in (ROOT / top).rglob("*.py")]
    return files + sorted((ROOT / "config").glob("*")) + [ROOT / "Makefile", ROOT / "SECURITY.md"]


def test_every_section_named_in_the_code_exists():
    named: dict[str, list[str]] = {}
    for path in _code_files():
        for title in SECTION_REFERENCE.findall(path.read_text(encoding="utf-8")):
            named.setdefault(title, []).append(str(path.relative_to(ROOT)))
    assert {"JSON output", "Slack setup", "Configuration"} <= set(named), named  # the scan works
    missing = {title: where for title, where in named.items() if title not in headings()}
    assert not missing, f"README sections named in the code but absent: {missing}"


def test_the_configuration_section_names_every_setting():
    from bot.settings import all_keys

    text = section("Configuration")
    missing = [key.name for key in all_keys() if f"`{key.name}`" not in text]
    assert not missing, f"settings missing from README, 'Configuration': {missing}"


def test_the_architecture_section_names_every_module():
    drawing = section("Architecture")
    for path in sorted([*(ROOT / "bot").rglob("*.py"), *(ROOT / "embeddings").rglob("*.py")]):
        if path.name == "__init__.py" or "__pycache__" in path.parts:
            continue
        assert path.name in drawing, f"{path.relative_to(ROOT)} is missing from README, 'Architecture'"


def test_the_quick_start_transcript_is_what_chat_prints(sample_index):
    """The questions of the Quick start transcript, piped into `qabot chat`, print its answers."""
    block = re.search(r"^(qabot: \d+ documents? indexed.*?)^```", section("Quick start"), re.MULTILINE | re.DOTALL)
    assert block, "no chat transcript in the Quick start"
    transcript = block.group(1).splitlines()
    questions = [line[2:] for line in transcript if line.startswith("? ")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QABOT_", "SLACK_"))}
    env.update(HF_HUB_OFFLINE="1", QABOT_INDEX=str(sample_index), COLUMNS="400")
    result = subprocess.run([str(Path(sys.executable).parent / "qabot"), "chat"],
                            input="\n".join(questions) + "\n", capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    # Piped, the prompt "? " is printed but the typed question is not echoed.
    printed = [line.removeprefix("? ") for line in result.stdout.splitlines()]
    expected = [line for line in transcript if not line.startswith("? ")]
    assert [line for line in printed if line.strip()] == [line for line in expected if line.strip()]
