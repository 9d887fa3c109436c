"""The example configs shipped with trainlab: where they are, their names, writing one out.

In a wheel they are package data, ``trainlab/examples/`` (hatch's ``force-include`` maps the
repository's ``examples/`` there); in a source checkout (an editable install) they are that
``examples/`` folder itself. ``trainlab examples`` lists them, ``trainlab init NAME`` copies one.
"""

from __future__ import annotations

from pathlib import Path

from trainlab.errors import ConfigError, unknown_name

DEFAULT = "quickstart"


def folder() -> Path | None:
    """The folder holding the shipped examples, or None if this installation has none."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "examples", here.parents[1] / "examples"):  # wheel, then source checkout
        if (candidate / f"{DEFAULT}.toml").is_file():
            return candidate
    return None


def available() -> dict[str, Path]:
    """``{name: path}`` of every example config, name = its path under the folder without ``.toml``."""
    root = folder()
    if root is None:
        return {}
    return {p.relative_to(root).with_suffix("").as_posix(): p for p in sorted(root.rglob("*.toml"))}


def summary(path: Path) -> str:
    """The example's first comment line (each example starts with one saying what it shows)."""
    for text in path.read_text(encoding="utf-8").splitlines():
        if text.startswith("#"):
            return text.lstrip("# ").strip()
        if text.strip():
            break
    return ""


def find(name: str) -> Path:
    """The example called ``name`` (``quickstart``, ``quickstart.toml`` or ``examples/quickstart.toml``)."""
    examples = available()
    if not examples:
        raise ConfigError(
            "this installation of trainlab has no example configs (reinstall it from a wheel or a checkout)"
        )
    key = name.removeprefix("examples/").removesuffix(".toml")
    if key not in examples:
        raise unknown_name("example", name, examples)
    return examples[key]


def write(name: str, output: Path | None = None, *, force: bool = False) -> Path:
    """Copy example ``name`` to ``output`` (default: its file name in the current folder).
    An example in a folder of its own with Python files (``custom/custom``: the model and
    data code its targets name) brings them along, beside the config."""
    from trainlab._io import atomic_write_text

    source = find(name)
    target = Path(output) if output is not None else Path(source.name)
    if target.is_dir():
        target = target / source.name
    root = folder()
    code = sorted(source.parent.glob("*.py")) if root is not None and source.parent != root else []
    for path in [target, *(target.parent / p.name for p in code)]:
        if path.exists() and not force:
            raise ConfigError(f"{path} exists; pass --force to overwrite it, or -o FILE to write elsewhere")
    for p in code:
        atomic_write_text(target.parent / p.name, p.read_text(encoding="utf-8"))
    return atomic_write_text(target, source.read_text(encoding="utf-8"))


def hint(missing: str | Path) -> str:
    """For a config path that does not exist: how to get it if it names a shipped example."""
    path = Path(missing)
    if path.suffix != ".toml":
        return ""
    examples = available()
    for key in (path.with_suffix("").as_posix().removeprefix("examples/"), path.stem):
        if key in examples:
            return f"; it is a shipped example: `trainlab init {key} -o {path.as_posix()}` writes it there"
    return ""
