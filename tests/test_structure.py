"""The shape of the code, checked from its source (AST, nothing imported): no import cycles, no
arrow from the run-time packages to training or evaluation code, small modules and classes, and
one error root.

Every import counts, wherever it is written: at the top, inside a function (a lazy import is
still a dependency) or under ``if TYPE_CHECKING`` (a type a module needs ties it to its owner).
"""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "embeddings", "training")
MAX_MODULE_LINES = 450
MAX_CLASS_LINES = 250
# Training and evaluation: run-time code (what answers questions) must not depend on them.
OFFLINE = ("bot.evaluation", "training")
# Modules that run an offline job as a command of their own, and so may import it: the command
# line offers `qabot eval` (bot/cli.py calls bot.evaluation inside that command only).
FRONT_ENDS_OF_OFFLINE_JOBS = {"bot.cli"}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")) if (ROOT / package).is_dir() else ():
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Our modules that module `name` imports (a `from pkg import sub` names the submodule)."""
    package = name if _is_package(path) else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            bases = [alias.name for alias in node.names]
            names: list[str] = []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                bases = [".".join(anchor + ([node.module] if node.module else []))]
            else:
                bases = [node.module or ""]
            names = [alias.name for alias in node.names]
        else:
            continue
        for base in bases:
            for candidate in [f"{base}.{n}" for n in names] + [base]:
                if candidate in modules:
                    targets.add(candidate)
                    break
    targets.discard(name)
    return targets


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            advanced = False
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _offline(name: str) -> bool:
    return any(name == o or name.startswith(o + ".") for o in OFFLINE)


def test_the_graph_sees_lazy_and_relative_imports():
    graph = _graph()
    assert "embeddings.milvus_chunks" in graph["embeddings.index"]  # a lazy import, inside a method
    assert "embeddings.storage" in graph["embeddings.index"]  # `from . import storage`
    assert "bot.evaluation.runner" in graph["bot.cli"]  # inside the `eval` command


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_run_time_code_does_not_import_training_or_evaluation_code():
    arrows = sorted(f"{source} -> {target}" for source, targets in _graph().items()
                    if not _offline(source) and source not in FRONT_ENDS_OF_OFFLINE_JOBS
                    for target in targets if _offline(target))
    assert arrows == []


def test_the_report_reaches_its_store_without_the_slack_transport():
    """The gaps report and Slack's memories share the state store (bot/state_store.py, below
    both); `qabot report` never talks to Slack, so nothing of the report imports bot.slack."""
    arrows = sorted(f"{source} -> {target}" for source, targets in _graph().items()
                    if source.startswith("bot.report") for target in targets if target.startswith("bot.slack"))
    assert arrows == []
    assert "bot.state_store" in _graph()["bot.report.store"]


def test_modules_and_classes_are_small():
    """The shipped code and the benchmark (test helpers are held to it by review only)."""
    too_big = []
    for folder in (*PACKAGES, "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")) if (ROOT / folder).is_dir() else ():
            source = path.read_text(encoding="utf-8")
            where = path.relative_to(ROOT)
            if len(source.splitlines()) > MAX_MODULE_LINES:
                too_big.append(f"{where}: {len(source.splitlines())} lines")
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                    too_big.append(f"{where}: class {node.name}, {node.end_lineno - node.lineno + 1} lines")
    assert too_big == []


def test_the_package_maps_name_every_module():
    """bot/answering and bot/slack describe their modules in the package docstring: all of them."""
    unnamed = []
    for package in ("bot/answering", "bot/slack"):
        docstring = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text(encoding="utf-8"))) or ""
        for path in sorted((ROOT / package).glob("*.py")):
            if path.stem != "__init__" and not re.search(rf"\b{path.stem}\b", docstring):
                unnamed.append(f"{package}/{path.name}")
    assert unnamed == []


# Python's own exception classes: an error class of ours that derives from one of these directly
# stands outside the one root (``cli_common.run`` would not catch it as a user's error).
BUILTIN_ERRORS = {name for name, value in vars(builtins).items()
                  if isinstance(value, type) and issubclass(value, BaseException)}


def test_every_error_of_ours_derives_from_the_one_root():
    outside = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef) or node.name == "QabotError":
                continue
            builtin = [b for b in node.bases if isinstance(b, ast.Name) and b.id in BUILTIN_ERRORS]
            if builtin and len(builtin) == len(node.bases):  # `(QabotError, ValueError)` is in the family
                outside.append(f"{name}.{node.name}")
    assert outside == [], f"derive these from embeddings.errors.QabotError (or one of its family): {outside}"
