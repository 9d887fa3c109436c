"""docs/formulas.md, the index of every formula, names tests that exist, and every row names one.

A test is named as ``file.py::test_name`` (relative to tests/), or as a bare ``test_name`` in a
table whose header says ``test (`file.py`)``; "same" repeats the row above.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "formulas.md"
QUALIFIED = re.compile(r"`(?:tests/)?([\w/]+\.py)::(test_\w+)")


def cells(line: str) -> list[str]:
    """A table row's cells; ``\\|`` (a pipe inside a formula) does not split."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


@cache
def defined(path: str) -> frozenset[str]:
    file = ROOT / "tests" / path
    return (
        frozenset(re.findall(r"^def (test_\w+)", file.read_text(encoding="utf-8"), re.M))
        if file.exists()
        else frozenset()
    )


def test_every_named_test_exists():
    text = DOC.read_text(encoding="utf-8")
    missing = [f"{path}::{name}" for path, name in QUALIFIED.findall(text) if name not in defined(path)]
    default, header = None, None
    for line in text.splitlines():
        if line.startswith("|") and header is None:
            header = cells(line)
            m = re.search(r"test \(`([\w/]+\.py)`\)", line)
            default = m.group(1) if m else None
        elif not line.startswith("|"):
            header = None
        elif default and not set(line) <= set("|-: "):
            for name in re.findall(r"(?<![:\w])`(test_\w+)`", line):
                if name not in defined(default):
                    missing.append(f"{default}::{name}")
    assert len(QUALIFIED.findall(text)) > 50
    assert not missing, f"docs/formulas.md names tests that do not exist: {missing}"


def test_every_formula_row_names_its_test():
    rows_without = []
    header = None
    for number, line in enumerate(DOC.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.startswith("|"):
            header = None
            continue
        row = cells(line)
        if header is None:
            header = row
            continue
        if set(line) <= set("|-: ") or not any(h.startswith("test") for h in header):
            continue
        test_cell = row[next(i for i, h in enumerate(header) if h.startswith("test"))]
        if "test_" not in test_cell and not test_cell.startswith("same"):
            rows_without.append(number)
    assert not rows_without, f"docs/formulas.md rows without a test, lines {rows_without}"


def test_errata_are_numbered_and_each_names_its_notes():
    text = DOC.read_text(encoding="utf-8")
    errata = re.findall(r"^(\d+)\. \*\*(.+?)\*\* — (.+)$", text.split("## Errata of the notes", 1)[1], re.M)
    assert [int(n) for n, _, _ in errata] == list(range(1, len(errata) + 1))
    assert len(errata) >= 40
    for n, title, place in errata:
        assert re.search(r"\b00[0-4]\b", place), f"erratum {n} ({title}) does not name the notes file"
