"""Imports flow one way: quiz → generation → training, and studies → generation. training never imports Django."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "training": {"django", "celery", "quiz", "studies", "stats", "generation", "config"},
    "generation": {"quiz", "studies", "stats"},
    # The rating study is its own audience: it builds on the catalog, never on the game's internals.
    "quiz": {"studies", "stats"},
    "studies": {"quiz", "stats"},
    # The statistics run on a lab's own files too: plain pandas/scipy/statsmodels, no web framework.
    "stats/analysis": {"django", "celery", "quiz", "generation", "config", "studies", "training"},
}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_imports_flow_one_way():
    offences = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            bad = _imported_roots(path) & forbidden
            if bad:
                offences.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert offences == []


def test_training_and_the_analysis_import_without_django():
    code = (
        "import sys, importlib, pkgutil, training\n"
        "for m in pkgutil.walk_packages(training.__path__, 'training.'):\n"
        "    importlib.import_module(m.name)\n"
        "import stats.analysis.report, stats.analysis.figures, stats.analysis.simulate\n"
        "assert 'django' not in sys.modules, 'django was imported'\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# --- the import graph of the project's own modules ----------------------------------------------------

PROJECT = ("training", "generation", "quiz", "studies", "config")
WEB = ("generation", "quiz", "studies")
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PROJECT
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    }


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules a file imports, at any depth in the file (function-level imports count)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # `from package import module` names a module; `from module import name` names the module.
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _project_modules()
    graph = {}
    for name, path in modules.items():
        # Importing a.b.c also runs a and a.b; a package's own __init__ importing nothing is the norm here.
        graph[name] = {m for m in _imports(path, modules) if m != name and not name.startswith(m + ".")}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (as a path a → … → a), or None."""
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in colour:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = 2
        return None

    for node in sorted(graph):
        if node not in colour:
            found = visit(node)
            if found:
                return found
    return None


def _reachable(graph: dict[str, set[str]], start: set[str]) -> set[str]:
    seen, todo = set(), list(start)
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def _in(module: str, room: str) -> bool:
    return module == room or module.startswith(room + ".")


def test_no_import_circle_among_project_modules():
    circle = _cycle(_graph())
    assert circle is None, "import circle: " + " → ".join(circle or [])


def test_the_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_only_the_cli_imports_the_cli():
    graph = _graph()
    offences = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        if not _in(name, "training.cli")
        for target in targets
        if _in(target, "training.cli")
    )
    assert offences == []


def test_the_loops_never_import_inference():
    graph = _graph()
    offences = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        if _in(name, "training.loops")
        for target in targets
        if _in(target, "training.inference")
    )
    assert offences == []


def test_the_web_side_imports_only_inference_and_data_and_what_they_need():
    graph = _graph()
    allowed_rooms = {m for m in graph if _in(m, "training.inference") or _in(m, "training.data")}
    needed = _reachable(graph, allowed_rooms)
    web = {m for m in graph if any(_in(m, package) for package in WEB)}
    direct = sorted(
        f"{name} imports {target}"
        for name in web
        for target in graph[name]
        if _in(target, "training") and target not in needed
    )
    assert direct == []
    pulled = _reachable(graph, web)
    forbidden = sorted(m for m in pulled if any(_in(m, room) for room in
                                                 ("training.loops", "training.cli", "training.synthetic")))
    assert forbidden == [], "the web side pulls in " + ", ".join(forbidden)


def test_no_file_in_training_is_over_400_lines():
    long = sorted(
        f"{path.relative_to(ROOT)}: {n} lines"
        for path in (ROOT / "training").rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    )
    assert long == []
