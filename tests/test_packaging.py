"""qabot installed as a user installs it: `pip install .` (not editable) into a new venv, then run
from a directory that is not the checkout. Nothing may depend on the source tree being there."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from .conftest import ROOT, SAMPLE

# Left out of the copy pip builds from: the dev venv, git, build output, local data and results.
NOT_SOURCE = (".venv", ".git", "data", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
              "results", ".pytest_cache")
PIP_TIMEOUT_S = 900  # a new venv gets torch and ~60 wheels from the local cache: ~1.5 min here


def _package_data() -> dict[str, list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["setuptools"].get("package-data", {})


def test_every_runtime_data_file_is_declared_as_package_data():
    """A non-Python file inside bot/ or embeddings/ ships only if pyproject declares it."""
    patterns = _package_data()
    for top in ("bot", "embeddings"):
        for path in (ROOT / top).rglob("*"):
            if not path.is_file() or path.suffix in {".py", ".pyc"} or "__pycache__" in path.parts:
                continue
            rel = path.relative_to(ROOT)
            covered = any(
                rel.parts[:len(pkg.split("."))] == tuple(pkg.split("."))
                and fnmatch.fnmatch(str(rel.relative_to(*pkg.split("."))), pattern)
                for pkg, globs in patterns.items() for pattern in globs)
            assert covered, f"{rel} is not in [tool.setuptools.package-data]: an installed qabot lacks it"


def test_bench_does_not_import_the_tests():
    for path in (ROOT / "bench").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "from tests" not in text and "import tests" not in text, path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("QABOT_", "SLACK_")) and k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["HF_HUB_OFFLINE"] = "1"
    env.update(extra)
    return env


def _pip(venv_python: Path, *args: str) -> None:
    # This venv's pip drives the new one (--python), so the new venv needs no pip of its own;
    # --no-compile skips byte-compiling torch's thousands of modules nobody imports here.
    result = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv_python), "install",
                             "--quiet", "--no-compile", "--disable-pip-version-check", *args],
                            capture_output=True, text=True, env=_env(), timeout=PIP_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_pip_install_outside_the_checkout_then_run_from_another_directory(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    _pip(python, "torch==2.13.0")  # first, exactly this CPU build (see Makefile)
    _pip(python, str(source))  # not editable: a wheel is built and installed into site-packages
    shutil.rmtree(source)  # nothing may still point at it

    work = tmp_path / "elsewhere"
    work.mkdir()
    qabot = str(venv / "bin" / "qabot")

    def run(*args: str, cwd: Path = work, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([qabot, *args], capture_output=True, text=True, cwd=cwd,
                              env=_env(**env), timeout=300)

    where = subprocess.run([str(python), "-c", "import bot, embeddings; print(bot.__file__)"],
                           capture_output=True, text=True, cwd=work, env=_env(), timeout=60)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr

    ingested = run("ingest", "--index", "idx", str(SAMPLE))
    assert ingested.returncode == 0, ingested.stderr
    assert "added" in ingested.stdout and (work / "idx").is_dir()

    asked = run("ask", "--json", "When are the Geneva talks?", QABOT_INDEX="idx")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert not answer["abstained"] and "Jan. 10" in answer["answer"]

    # A config file's relative paths resolve from its own folder, whatever the working directory.
    (work / "etc").mkdir()
    (work / "etc" / "qabot.toml").write_text('[paths]\nindex = "../idx"\n', encoding="utf-8")
    (work / "sub").mkdir()
    configured = run("--config", "../etc/qabot.toml", "ask", "Which newspaper interviewed him?",
                     cwd=work / "sub")
    assert configured.returncode == 0 and "Izvestia" in configured.stdout, configured.stderr

    # Installed, qabot reads no config file unless told: the default index is ./data/index.
    missing = run("ask", "When?")
    assert missing.returncode == 1 and missing.stderr.startswith("Error: no index at data/index")

    served = run("serve", "--help")
    assert served.returncode == 0 and "--port" in served.stdout and "--host" in served.stdout
    assert run("--version").stdout == "qabot 0.1.0\n"  # pyproject.toml's version, installed
    assert "bundled" not in run("ingest", "--help").stdout  # an installed qabot ships no articles

    site = Path(where.stdout.strip()).parent
    assert (site / "answering" / "answer_types.json").is_file()  # the learned answer-type table
    assert not (site / "reader").exists()  # the trained reader (and its training code) is gone
