"""The import rule of docs/architecture.md: the building blocks never import the layers above them.

Checked on the source (every import statement, at the top or inside a function), so a lazy
import cannot hide an upward edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "trainlab"
FOUNDATION = ("optim", "schedules", "init", "nn", "regularization", "data", "store", "errors", "_io", "_lazy")
ABOVE = ("train", "compare", "tune", "diagnose", "report", "reproduce", "cli")


def imported_units(path: Path) -> set[str]:
    units = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "trainlab":
            names = [f"{node.module}.{a.name}" for a in node.names] if node.module == "trainlab" else [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        units |= {n.split(".")[1] for n in names if n.startswith("trainlab.")}
    return units


def test_foundation_modules_import_nothing_above_them():
    upward = []
    for unit in FOUNDATION:
        files = sorted((SRC / unit).rglob("*.py")) if (SRC / unit).is_dir() else [SRC / f"{unit}.py"]
        for path in files:
            upward += [f"{path.relative_to(SRC)} -> {u}" for u in imported_units(path) if u in ABOVE]
    assert not upward, upward
