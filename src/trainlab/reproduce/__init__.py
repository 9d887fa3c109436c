"""The reproduction gallery: every claim of the notes as a one-command experiment.

Each experiment lives in its own module ``trainlab/reproduce/<name>.py`` (dashes become
underscores) and defines ``EXPERIMENT = Experiment(...)``. Its ``run(ctx)`` trains through
the public API (configs, ``trainlab.train.run``, ``trainlab.compare``, ``trainlab.diagnose``)
and returns an :class:`Outcome`: whether the claim held — tested with a statistical margin
across seeds, never one lucky run — the measured figures, and plots for the gallery page.

    trainlab reproduce --list
    trainlab reproduce init-depth --quick --json
    trainlab reproduce all -o gallery/
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainlab.errors import ConfigError, unknown_name
from trainlab.store import Store

NAMES = (
    "init-depth",
    "zero-init-symmetry",
    "orthogonal-deep-linear",
    "vanishing-gradients",
    "batch-size-sharpness",
    "linear-scaling-warmup",
    "lr-schedules",
    "optimizer-paths",
    "gradient-clipping-rnn",
    "batchnorm",
    "adamw-vs-l2",
    "l1-vs-l2",
    "dropout",
    "early-stopping",
    "augmentation",
    "label-smoothing",
    "distillation",
    "preprocessing",
    "random-vs-grid",
    "mnist1d-table",
)


@dataclass
class Context:
    """What an experiment gets: how many seeds, quick or full, where to record runs, and how
    many worker processes its sweeps may use (``jobs``, :mod:`trainlab.reproduce.sweep`)."""

    seeds: int
    quick: bool
    store: Store
    out_dir: Path
    log: Callable[[str], None] = print
    jobs: int = 1

    def group(self, name: str) -> str:
        """The store group for this experiment's runs (quick runs kept apart from full ones)."""
        return f"reproduce/{name}" + ("/quick" if self.quick else "")


@dataclass
class Outcome:
    """The result of an experiment.

    ``holds``: the claim's statistical test passed. ``statement``: the test as run (what was
    compared, the margin, the interval). ``figures``: the measured numbers (JSON-ready).
    ``plots``: ``(caption, svg)`` pairs. ``tables``: ``(caption, headers, rows)``.
    """

    holds: bool
    statement: str
    figures: dict[str, Any]
    plots: list[tuple[str, str]] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[Any]]]] = field(default_factory=list)
    notes: str = ""


@dataclass(frozen=True)
class Protocol:
    """One line of an experiment's protocol table: what ``aspect`` is here (``ours``) and in
    the source (``theirs``), and ``reason`` for any difference ("" where they agree)."""

    aspect: str
    ours: str
    theirs: str
    reason: str = ""

    @property
    def differs(self) -> bool:
        return bool(self.reason)


@dataclass(frozen=True)
class Experiment:
    """A claim and how it is tested.

    ``claim``: our claim, stated as the source states it. ``source``: the notes' section and
    the paper. ``quote``: the source's own words (the notes' sentence, the paper's section,
    figure or table), so a reader can check that ``claim`` says no more than the source.
    ``protocol``: the source's set-up beside ours, each difference with its reason.
    """

    name: str
    claim: str
    source: str  # seed file and section of the notes, and the paper
    run: Callable[[Context], Outcome]
    default_seeds: int = 3
    quote: str = ""
    protocol: tuple[Protocol, ...] = ()


def get(name: str) -> Experiment:
    if name not in NAMES:
        raise unknown_name("experiment", name, NAMES)
    module = importlib.import_module(f"trainlab.reproduce.{name.replace('-', '_')}")
    return module.EXPERIMENT


def seeds_for(exp: Experiment, seeds: int | None, quick: bool) -> int:
    """The number of seeds a run of ``exp`` uses: ``seeds``, else 2 quick, else its default."""
    n = seeds if seeds is not None else (2 if quick else exp.default_seeds)
    if n < 1:
        raise ValueError(f"--seeds must be >= 1, got {n}")
    return n


def run_experiment(
    name: str,
    *,
    seeds: int | None = None,
    quick: bool = False,
    store: Store | None = None,
    out_dir: Path | str = "gallery",
    log=print,
    jobs: int = 1,
) -> tuple[Experiment, Outcome, int]:
    exp = get(name)
    n = seeds_for(exp, seeds, quick)
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    ctx = Context(seeds=n, quick=quick, store=store or Store(), out_dir=Path(out_dir), log=log, jobs=jobs)
    return exp, exp.run(ctx), n
