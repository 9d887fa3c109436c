"""Compare variants of a config across seeds: the lab's basic experiment.

A ``[compare]`` table lists what varies. Two forms, combinable:

    [compare]
    seeds = 3                         # or a list of seeds: [0, 1, 2]
    "optim.name" = ["sgd", "adam"]    # a list: one variant per value (several lists: their product)

    [compare.variants.nesterov]       # named variants overriding several keys
    "optim.name" = "sgd"
    "optim.momentum" = 0.9
    "optim.nesterov" = true

Optional: ``metric`` (default ``val_acc`` for classification) and ``target`` (report the
steps until the metric first reaches it).

Every variant × seed is an ordinary run in the store with ``group = <config name>`` and
``name = <config name>/<variant>``. Running the comparison again skips runs that already
completed with the same config (by hash) and resumes interrupted ones from their checkpoint.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing as mp
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainlab._progress import ItemProgress
from trainlab.errors import ConfigError
from trainlab.store import RunRecord, Store
from trainlab.train.config import RunConfig, config_digest, load_config

RESERVED = ("seeds", "variants", "metric", "target")


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: dict[str, Any]


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _label(value: Any) -> str:
    return str(value).replace(" ", "")


def parse_compare(table: Mapping[str, Any] | None) -> tuple[list[Variant], list[int]]:
    """Variants and seeds from a ``[compare]`` table (see the module docstring)."""
    if not table:
        raise ConfigError("the config has no [compare] section: list the variants to compare (see docs/compare.md)")
    seeds_spec = table.get("seeds", 3)
    if isinstance(seeds_spec, int) and not isinstance(seeds_spec, bool):
        if seeds_spec < 1:
            raise ConfigError(f"compare.seeds must be >= 1, got {seeds_spec}")
        seeds = list(range(seeds_spec))
    elif isinstance(seeds_spec, list) and seeds_spec and all(isinstance(s, int) for s in seeds_spec):
        seeds = list(seeds_spec)
    else:
        raise ConfigError(f"compare.seeds must be a count or a list of integers, got {seeds_spec!r}")

    grid = _flatten({k: v for k, v in table.items() if k not in RESERVED})
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"compare.{key} must be a non-empty list of values to compare, got {values!r}")
    variants = []
    if grid:
        keys = list(grid)
        for combo in itertools.product(*(grid[k] for k in keys)):
            name = ",".join(_label(v) if len(keys) == 1 else f"{k.split('.')[-1]}={_label(v)}" for k, v in zip(keys, combo))
            variants.append(Variant(name, dict(zip(keys, combo))))
    named = table.get("variants", {})
    if not isinstance(named, Mapping):
        raise ConfigError("compare.variants must be a table of named variants, each a table of key = value overrides")
    for name, overrides in named.items():
        if not isinstance(overrides, Mapping):
            raise ConfigError(f"compare.variants.{name} must be a table of overrides such as \"optim.lr\" = 0.1")
        variants.append(Variant(str(name), _flatten(overrides)))
    if not variants:
        raise ConfigError("compare: no variants; give a list such as \"optim.name\" = [\"sgd\", \"adam\"] or [compare.variants.NAME] tables")
    if len({v.name for v in variants}) != len(variants):
        raise ConfigError("compare: two variants have the same name")
    return variants, seeds


def plan(config: RunConfig, seeds: int | None = None) -> list[tuple[Variant, RunConfig]]:
    """Every (variant, run config) of a comparison, each validated before anything runs."""
    table = dict(config.compare or {})
    if seeds is not None:
        table["seeds"] = seeds
    variants, seed_list = parse_compare(table)
    # Each run keeps the comparison's metric and target (what its summary is read with), not
    # the variants; RunConfig.hash leaves [compare] out, so this does not change which runs match.
    kept = {k: table[k] for k in ("metric", "target") if table.get(k) is not None}
    base = config.model_copy(update={"compare": kept or None})
    runs = []
    for variant in variants:
        for seed in seed_list:
            try:
                cfg = base.override({**variant.overrides, "seed": seed, "name": f"{config.name}/{variant.name}"})
            except ConfigError as err:
                raise ConfigError(f"compare variant '{variant.name}': {err}") from None
            runs.append((variant, cfg))
    return runs


def _run_one(config: dict[str, Any], store_url: str, group: str, resume: str | None, threads: int) -> tuple[str, str]:
    import torch

    from trainlab.train import run

    torch.set_num_threads(threads)
    result = run(config if resume is None else None, store=Store(store_url), group=group, resume=resume, quiet=True)
    return result.run_id, result.status


def run_comparison(config: RunConfig, *, store: Store | None = None, jobs: int = 1, seeds: int | None = None, quiet: bool = False) -> list[RunRecord]:
    """Run (or finish) every variant × seed; returns the comparison's run records."""
    store = store or Store()
    group = config.name
    todo = []
    for _variant, cfg in plan(config, seeds):
        existing = store.list_runs(group=group, config_hash=cfg.hash())
        if any(r.status == "completed" for r in existing):
            continue
        resumable = [r for r in existing if r.status in ("running", "interrupted") and "checkpoint" in store.artifacts(r.id)]
        todo.append((cfg, resumable[-1].id if resumable else None))
    threads = max(1, (os.cpu_count() or 1) // max(jobs, 1))
    if jobs > 1 and todo and store.in_memory:
        raise ConfigError("--store ':memory:' lives in this process only; worker processes (--jobs > 1) need a file or server URL")
    with ItemProgress(f"compare {group}", len(todo), quiet=quiet) as progress:
        if jobs <= 1:
            for cfg, resume in todo:
                progress.done("run {} {}".format(*_run_one(cfg.to_dict(), store.url, group, resume, threads)))
        else:
            # The store URL (it may carry a password) reaches the workers through the pool's
            # pipe, pickled with the call; a spawned worker's command line holds no argument of ours.
            with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
                futures = [pool.submit(_run_one, cfg.to_dict(), store.url, group, resume, threads) for cfg, resume in todo]
                for fut in as_completed(futures):
                    progress.done("run {} {}".format(*fut.result()))
    return store.list_runs(group=group)


# ----------------------------------------------------------------------------------------
# statistics


def bootstrap_ci(values: np.ndarray | list[float], confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean (Efron & Tibshirani 1993).

    Resample the values with replacement ``n_resamples`` times, take each resample's mean,
    and return the (1-c)/2 and (1+c)/2 quantiles of those means. One value gives (v, v).
    """
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return (math.nan, math.nan)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_resamples, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def steps_to_target(steps: np.ndarray, values: np.ndarray, target: float, mode: str) -> int | None:
    """The first evaluation step where the metric reaches ``target`` (>= for max, <= for min)."""
    hit = values >= target if mode == "max" else values <= target
    idx = np.flatnonzero(hit)
    return int(steps[idx[0]]) if idx.size else None


def variant_key(config: Mapping[str, Any]) -> str:
    """A short digest of a run's config apart from its seed, name and [compare]/[search]/[log]
    tables: runs with equal keys are seeds of one variant."""
    return config_digest(config, ("seed", "name", "compare", "search", "log"), length=6)


def group_by_variant(records: Sequence[RunRecord], label: Callable[[RunRecord], str]) -> dict[str, list[RunRecord]]:
    """Runs with the same ``label`` and config (apart from seed) form one variant, in first-seen
    order; a label shared by different configs (the config was edited between two runs of a
    comparison) gets the config's :func:`variant_key` appended, so the two are never pooled."""
    by_key: dict[tuple[str, str], list[RunRecord]] = {}
    for r in records:
        by_key.setdefault((label(r), variant_key(r.config)), []).append(r)
    names = [name for name, _ in by_key]
    return {(f"{name} [{key}]" if names.count(name) > 1 else name): recs for (name, key), recs in by_key.items()}


def summarize(
    store: Store, group: str, metric: str | None = None, target: float | None = None, *, config_hashes: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """Per variant: n, mean, std and 95% bootstrap CI of the final and best metric, steps to
    target, and wall time. ``metric`` and ``target`` default to the runs' ``[compare]`` table;
    ``config_hashes`` keeps only the runs of one plan (:func:`plan`), leaving out runs of an
    earlier version of the config that share the group."""
    records = [r for r in store.list_runs(group=group) if r.status == "completed"]
    if config_hashes is not None:
        records = [r for r in records if r.config_hash in config_hashes]
    if not records:
        raise ConfigError(f"no completed runs in comparison '{group}'")
    cfg_compare = records[0].config.get("compare") or {}
    metric = metric or cfg_compare.get("metric") or ("val_acc" if "val_acc" in records[0].final else "val_loss")
    target = target if target is not None else cfg_compare.get("target")
    mode = "max" if "acc" in metric else "min"
    by_variant = group_by_variant(records, lambda r: r.name.split("/", 1)[-1])
    rows = []
    for variant, recs in by_variant.items():
        final = np.array([_num(r.final.get(metric)) for r in recs])
        best = np.array([_num(r.final.get(f"best_{metric}")) for r in recs])
        row: dict[str, Any] = {"variant": variant, "n": len(recs), "metric": metric, "target": target}
        for label, arr in (("final", final), ("best", best)):
            ok = arr[np.isfinite(arr)]
            row[f"{label}_mean"] = float(ok.mean()) if ok.size else math.nan
            row[f"{label}_std"] = float(ok.std(ddof=1)) if ok.size > 1 else 0.0
            row[f"{label}_ci"] = bootstrap_ci(ok)
        if target is not None:
            hits = []
            for r in recs:
                steps, values = store.metrics(r.id, [metric]).get(metric, (np.array([]), np.array([])))
                hits.append(steps_to_target(steps, values, target, mode))
            reached = [h for h in hits if h is not None]
            row["steps_to_target"] = float(np.mean(reached)) if reached else None
            row["reached"] = f"{len(reached)}/{len(recs)}"
        row["seconds"] = float(np.mean([r.final.get("seconds") or math.nan for r in recs]))
        rows.append(row)
    rows.sort(key=lambda r: -r["final_mean"] if mode == "max" else r["final_mean"])
    return rows


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def print_summary(rows: list[dict[str, Any]], console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    metric = rows[0]["metric"]
    has_target = "steps_to_target" in rows[0]
    headers = ["variant", "n", f"final {metric}", "95% CI", f"best {metric}", "95% CI"]
    headers += [f"steps to {metric} {rows[0]['target']:g}", "reached"] if has_target else []
    table = Table(*headers, "seconds", title=f"{metric}: mean ± std over seeds")
    for r in rows:
        cells = [
            r["variant"], str(r["n"]), f"{r['final_mean']:.4f} ± {r['final_std']:.4f}", f"[{r['final_ci'][0]:.4f}, {r['final_ci'][1]:.4f}]",
            f"{r['best_mean']:.4f} ± {r['best_std']:.4f}", f"[{r['best_ci'][0]:.4f}, {r['best_ci'][1]:.4f}]",
        ]  # fmt: skip
        if has_target:
            cells += ["-" if r["steps_to_target"] is None else f"{r['steps_to_target']:.0f}", r["reached"]]
        table.add_row(*cells, f"{r['seconds']:.1f}")
    console.print(table)


def compare(config: RunConfig | dict | str, *, store: Store | None = None, jobs: int = 1, seeds: int | None = None, quiet: bool = True) -> list[dict[str, Any]]:
    """Run a comparison and return its summary rows (see :func:`summarize`)."""
    cfg = load_config(config)
    store = store or Store()
    run_comparison(cfg, store=store, jobs=jobs, seeds=seeds, quiet=quiet)
    return summarize_plan(cfg, store, seeds)


def summarize_plan(config: RunConfig, store: Store, seeds: int | None = None) -> list[dict[str, Any]]:
    """:func:`summarize` of exactly the runs that ``config``'s comparison plans."""
    table = config.compare or {}
    hashes = {cfg.hash() for _, cfg in plan(config, seeds)}
    return summarize(store, config.name, table.get("metric"), table.get("target"), config_hashes=hashes)
