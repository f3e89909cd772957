"""qabot installed as a user installs it: a wheel built from a copy of the checkout (not
editable), installed by pip into a new venv, then run from a directory that is not the checkout.
Nothing may depend on the source tree being there.

The new venv gets qabot's run-time dependencies from this venv, linked rather than downloaded
and unpacked again (torch alone is most of a minute): exactly the distributions the wheel's own
metadata requires, transitively, without extras, so a run-time import of something only the
test or scale extras bring fails here as it would for a user; `pip check` then proves the
wheel's requirements are met by them. Resolving them from the index is what `make install`
does on every fresh CI machine."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from email.parser import Parser
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

import pytest

from .conftest import ROOT, SAMPLE
from .qabot_env import qabot_environ

# Left out of the copy pip builds from: the dev venv, git, build output, local data and results.
NOT_SOURCE = (".venv", ".git", "data", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
              "results", ".pytest_cache")
PIP_TIMEOUT_S = 300  # each pip call: building the wheel is the longest, seconds


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
    return qabot_environ("PYTHONPATH", "VIRTUAL_ENV", **extra)


def _pip(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                            capture_output=True, text=True, env=_env(), timeout=PIP_TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def _runtime_closure(wheel: Path) -> list[Distribution]:
    """The installed distributions the wheel needs at run time: its `Requires-Dist` without
    extras, then theirs (with the extras each names), as this venv holds them."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        requires = Parser().parsestr(archive.read(metadata).decode()).get_all("Requires-Dist") or []
    found: dict[str, Distribution] = {}
    todo = [(Requirement(r), frozenset({""})) for r in requires]
    while todo:
        requirement, extras = todo.pop()
        if requirement.marker and not any(requirement.marker.evaluate({"extra": e}) for e in extras):
            continue
        name = canonicalize_name(requirement.name)
        try:
            dist = distribution(requirement.name)
        except PackageNotFoundError:
            pytest.fail(f"{requirement.name} (required by qabot) is not installed in this venv: make install")
        wanted = frozenset({"", *requirement.extras})
        if name in found and not requirement.extras:
            continue
        found[name] = dist
        todo.extend((Requirement(r), wanted) for r in dist.requires or [])
    return list(found.values())


def _link_into(site: Path, dists: list[Distribution]) -> None:
    """Each distribution's top-level files and folders (its RECORD), symlinked into `site`:
    to the new venv's Python they are installed there."""
    for dist in dists:
        home = Path(dist.locate_file(""))
        for top in {f.parts[0] for f in dist.files or [] if f.parts[0] not in ("..", "__pycache__")}:
            if not (site / top).exists() and (home / top).exists():
                (site / top).symlink_to(home / top)


@pytest.mark.slow
def test_pip_install_outside_the_checkout_then_run_from_another_directory(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    # Built by this venv's setuptools (spaCy and torch require it, so make install brings it):
    # the backend pyproject names, without pip installing it again into a build environment.
    _pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(tmp_path / "dist"), str(source))
    shutil.rmtree(source)  # nothing may still point at it
    wheel = next((tmp_path / "dist").glob("qabot-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    _link_into(site, _runtime_closure(wheel))
    # This venv's pip drives the new one (--python), so the new venv needs no pip of its own.
    _pip("--python", str(python), "install", "--quiet", "--no-deps", "--no-compile", str(wheel))
    assert "No broken requirements" in _pip("--python", str(python), "check")

    work = tmp_path / "elsewhere"
    work.mkdir()
    qabot = str(venv / "bin" / "qabot")

    def run(*args: str, cwd: Path = work, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([qabot, *args], capture_output=True, text=True, cwd=cwd,
                              env=_env(**env), timeout=300)

    where = subprocess.run([str(python), "-c", "import bot, embeddings; print(bot.__file__)"],
                           capture_output=True, text=True, cwd=work, env=_env(), timeout=60)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr

    (work / "etc").mkdir()
    (work / "etc" / "qabot.toml").write_text('[paths]\nindex = "../idx"\n', encoding="utf-8")
    (work / "sub").mkdir()
    # Independent runs go side by side (separate processes): what needs no index with the ingest,
    # the two questions after it.
    with ThreadPoolExecutor(4) as pool:
        # Installed, qabot reads no config file unless told: the default index is ./data/index.
        missing = pool.submit(run, "ask", "When?")
        served = pool.submit(run, "serve", "--help")
        version = pool.submit(run, "--version")
        ingest_help = pool.submit(run, "ingest", "--help")
        ingested = run("ingest", "--index", "idx", str(SAMPLE))
        assert ingested.returncode == 0, ingested.stderr
        assert "added" in ingested.stdout and (work / "idx").is_dir()
        asked = pool.submit(run, "ask", "--json", "When are the Geneva talks?", QABOT_INDEX="idx")
        # A config file's relative paths resolve from its own folder, whatever the working directory.
        configured = pool.submit(run, "--config", "../etc/qabot.toml", "ask", "Which newspaper interviewed him?",
                                 cwd=work / "sub")

    assert asked.result().returncode == 0, asked.result().stderr
    answer = json.loads(asked.result().stdout)
    assert not answer["abstained"] and "Jan. 10" in answer["answer"]
    assert configured.result().returncode == 0 and "Izvestia" in configured.result().stdout, configured.result().stderr
    assert missing.result().returncode == 1 and missing.result().stderr.startswith("Error: no index at data/index")
    assert served.result().returncode == 0 and "--port" in served.result().stdout and "--host" in served.result().stdout
    assert version.result().stdout == "qabot 0.1.0\n"  # pyproject.toml's version, installed
    assert "bundled" not in ingest_help.result().stdout  # an installed qabot ships no articles

    site = Path(where.stdout.strip()).parent
    assert (site / "answering" / "answer_types.json").is_file()  # the learned answer-type table
    assert not (site / "reader").exists()  # the trained reader (and its training code) is gone
