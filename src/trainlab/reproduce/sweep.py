"""The gallery's seed sweeps, over :mod:`trainlab.compare`'s planner.

An experiment names its configurations (a label and a run config each, without seed and
name); :func:`sweep` turns them into one comparison — a ``[compare]`` table with one named
variant per configuration and the context's seeds — and runs it with
:func:`trainlab.compare.run_comparison`. So every sweep of the gallery is

- resumable by config hash: a rerun (after an interruption, or of one experiment of
  ``reproduce all``) skips every run that already has a result in the store;
- parallel with ``--jobs`` (worker processes, leases on each run);
- vectorized over seeds wherever ``compare`` is (the population trainer), with no change here.

Runs are recorded in the experiment's group (``reproduce/<name>``, ``…/quick``) and named
``<group>/<label>``; :class:`Runs` gives each configuration's records in seed order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainlab.compare import RESULTS, plan, run_comparison
from trainlab.reproduce import Context
from trainlab.store import RunRecord, Store
from trainlab.train.config import RunConfig, flatten, load_config


@dataclass
class Runs:
    """One sweep's records: ``records[label][i]`` is the run of seed ``seeds[i]``."""

    records: dict[str, list[RunRecord]]
    seeds: list[int]
    store: Store

    def final(self, label: str, key: str) -> list[float]:
        """``final[key]`` of each seed's run of ``label`` (NaN where the run has none, e.g. diverged)."""
        return [
            float(r.final.get(key, np.nan)) if r.final.get(key) is not None else float("nan")
            for r in self.records[label]
        ]

    def completed(self, label: str, key: str, otherwise: float) -> list[float]:
        """:meth:`final` of the runs that completed, ``otherwise`` for the others: a run that
        diverged ends with nothing usable (chance, say), not its last evaluation before it."""
        return [v if s == "completed" else otherwise for v, s in zip(self.final(label, key), self.status(label))]

    def status(self, label: str) -> list[str]:
        return [r.status for r in self.records[label]]

    def metric(self, label: str, key: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each seed's logged ``(steps, values)`` of ``key``."""
        return [self.store.metrics(r.id, [key])[key] for r in self.records[label]]

    def model(self, label: str, seed_index: int):
        """The trained model of one run, rebuilt from its config and final checkpoint (eval mode)."""
        return trained_model(self.store, self.records[label][seed_index])


def comparison(
    ctx: Context, name: str, configs: Mapping[str, Mapping[str, Any]], seeds: Sequence[int] | None = None
) -> RunConfig:
    """The comparison config of a sweep: one named variant per ``configs`` entry (its whole
    config as overrides of the defaults), ``seeds`` (default ``range(ctx.seeds)``), named
    after the experiment's group."""
    variants = {label: flatten(dict(cfg)) for label, cfg in configs.items()}
    seed_list = list(range(ctx.seeds)) if seeds is None else [int(s) for s in seeds]
    return load_config({"name": ctx.group(name), "compare": {"seeds": seed_list, "variants": variants}})


def sweep(
    ctx: Context,
    name: str,
    configs: Mapping[str, Mapping[str, Any]],
    seeds: Sequence[int] | None = None,
    vectorize: str = "auto",
) -> Runs:
    """Run every configuration of ``configs`` (label -> run config without seed and name)
    over ``seeds`` (default: the context's) as one comparison, skipping the runs the store
    already has a result for; returns their records by label and seed. ``vectorize="off"``
    trains each run alone instead of in populations (for a measurement that needs the
    sequential run's own order of floating-point operations)."""
    cfg = comparison(ctx, name, configs, seeds)
    seed_list = list(cfg.compare["seeds"])  # type: ignore[index]
    planned = plan(cfg)
    ctx.log(f"{name}: {len(planned)} runs ({len(configs)} configurations × {len(seed_list)} seeds)")
    records = run_comparison(cfg, store=ctx.store, jobs=ctx.jobs, quiet=True, vectorize=vectorize)
    by_hash: dict[str, RunRecord] = {}
    for r in records:  # the latest run with a result of each config hash
        known = by_hash.get(r.config_hash) if r.config_hash is not None else None
        if r.status in RESULTS and r.config_hash is not None and (known is None or r.created_at >= known.created_at):
            by_hash[r.config_hash] = r
    out: dict[str, list[RunRecord]] = {label: [] for label in configs}
    for variant, run_cfg in planned:
        record = by_hash.get(run_cfg.hash())
        if record is None:  # run_comparison returns only when every planned run has a result
            raise RuntimeError(f"{name}: no result for {variant.name} seed {run_cfg.seed}")
        out[variant.name].append(record)
    return Runs(out, seed_list, ctx.store)


def trained_model(store: Store, record: RunRecord):
    """The model of a finished run: built from its config, weights from its final checkpoint."""
    from trainlab._io import torch_load
    from trainlab.train import setup

    ckpt = store.artifacts(record.id).get("checkpoint")
    if ckpt is None or not ckpt.exists():
        raise FileNotFoundError(f"run {record.id} has no checkpoint file")
    model = setup(load_config(record.config)).model
    model.load_state_dict(torch_load(ckpt)["model"])
    return model.eval()
