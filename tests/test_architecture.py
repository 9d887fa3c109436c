"""The import rule of docs/architecture.md: the building blocks never import the layers above them.

Checked on the source (every import statement, at the top or inside a function), so a lazy
import cannot hide an upward edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "trainlab"
FOUNDATION = (
    "optim",
    "schedules",
    "init",
    "nn",
    "regularization",
    "data",
    "store",
    "errors",
    "_io",
    "_lazy",
    "stats",
    "callbacks",
)
ABOVE = ("train", "compare", "tune", "diagnose", "report", "reproduce", "cli")


def _nodes(tree: ast.AST, typing_only: bool):
    """Every node, leaving out ``if TYPE_CHECKING:`` blocks unless ``typing_only`` is True."""
    for node in ast.iter_child_nodes(tree):
        if not typing_only and isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            continue
        yield node
        yield from _nodes(node, typing_only)


def imported_modules(path: Path, typing_only: bool = True) -> set[str]:
    """The ``trainlab.*`` modules ``path`` imports (``from trainlab import x`` counts as ``trainlab.x``)."""
    out = set()
    for node in _nodes(ast.parse(path.read_text(encoding="utf-8")), typing_only):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "trainlab":
            out |= {f"{node.module}.{a.name}" for a in node.names} if node.module == "trainlab" else {node.module}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("trainlab.")}
    return out


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


def _module_file(name: str) -> Path | None:
    rel = Path(*name.split(".")[1:])
    for candidate in (SRC / rel / "__init__.py", SRC / f"{rel}.py"):
        if candidate.is_file():
            return candidate
    return None


def test_train_imports_no_module_that_imports_train():
    """No import cycle through ``train`` at run time: the modules that the Trainer imports
    (at the top or lazily: per-layer statistics, loggers, stats, callbacks) reach ``train``
    through none of their own imports (type-only imports under TYPE_CHECKING aside)."""
    cycles = []
    for path in sorted((SRC / "train").rglob("*.py")):
        for name in imported_modules(path, typing_only=False):
            if name.startswith("trainlab.train"):
                continue
            seen, todo = set(), [name]
            while todo:
                mod = todo.pop()
                if mod in seen or (file := _module_file(mod)) is None:
                    continue
                seen.add(mod)
                for dep in imported_modules(file, typing_only=False):
                    if dep.startswith("trainlab.train"):
                        cycles.append(f"{path.relative_to(SRC)} -> {name} -> ... {mod} -> {dep}")
                    elif dep not in seen:
                        todo.append(dep)
    assert not cycles, cycles
