"""Imports flow one way: quiz → generation → training. training never imports Django."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "training": {"django", "celery", "quiz", "studies", "generation", "config"},
    "generation": {"quiz", "studies"},
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
