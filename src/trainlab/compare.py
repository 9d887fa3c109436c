"""Compare variants of a config across seeds: the lab's basic experiment.

A ``[compare]`` table lists what varies. Two forms, combinable:

    [compare]
    seeds = 3                         # or a list of seeds: [0, 1, 2]
    "optim.name" = ["sgd", "adam"]    # a list: one variant per value (several lists: their product)

    [compare.variants.nesterov]       # named variants overriding several keys
    "optim.name" = "sgd"
    "optim.momentum" = 0.9
    "optim.nesterov" = true

Optional: ``metric`` (one of :data:`METRICS`; default ``val_acc`` for classification) and
``target`` (report the steps until the metric first reaches it). Both are checked, with the
seeds (distinct integers) and every variant's config, before the first run starts.

Every variant × seed is an ordinary run in the store with ``group = <config name>`` and
``name = <config name>/<variant>``. Running the comparison again skips runs that already
have a result with the same config (by hash): completed, or diverged — a diverged run is a
result, reported as such, not repeated. It resumes interrupted runs from their checkpoint
and makes again those killed before their first one.

Several processes may run one comparison on one store at once (two terminals, two
machines on one PostgreSQL server): each run is made under a lease on its (group, config
hash) — :meth:`trainlab.store.Store.lease` — so each (variant, seed) runs once, and the
summary counts each seed of a variant once.

Runs that differ only in seed or in scalars a population can vary (learning rate, momentum,
betas, weight decay, dropout, label smoothing, clipping thresholds, the schedule) are trained as
one population (:mod:`trainlab.train.population`) — ``vectorize="auto"``, the default; with
``jobs`` > 1 each worker trains one population. Each member is still an ordinary run, made once
under its own lease. ``vectorize="off"`` runs them one by one. A run a population cannot hold
runs alone; one line says why.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainlab._progress import ItemProgress, line
from trainlab.errors import ConfigError, unknown_name
from trainlab.stats import bootstrap_ci, mode_for
from trainlab.store import RunRecord, Store
from trainlab.train.config import RunConfig, config_digest, flatten, load_config

log = logging.getLogger("trainlab.compare")

RESERVED = ("seeds", "variants", "metric", "target")
METRICS = ("val_acc", "val_loss", "train_acc", "train_loss", "test_acc", "test_loss")  # what compare.metric may name
RESULTS = ("completed", "diverged")  # a run with a result: a rerun does not repeat it
VECTORIZE = ("auto", "off")


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: dict[str, Any]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
    elif isinstance(seeds_spec, list) and seeds_spec and all(_is_int(s) for s in seeds_spec):
        seeds = list(seeds_spec)
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        if repeated:
            raise ConfigError(
                f"compare.seeds lists seed {repeated[0]} twice; "
                "give distinct seeds (a repeated seed would count one run as two)"
            )
    else:
        raise ConfigError(f"compare.seeds must be a count or a list of integers, got {seeds_spec!r}")
    metric, target = table.get("metric"), table.get("target")
    if metric is not None and metric not in METRICS:
        raise unknown_name("compare.metric", str(metric), METRICS)
    if target is not None and not (_is_int(target) or (isinstance(target, float) and math.isfinite(target))):
        raise ConfigError(
            f"compare.target must be a number (the value of compare.metric to reach, e.g. 0.9), got {target!r}"
        )

    grid = flatten({k: v for k, v in table.items() if k not in RESERVED})
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"compare.{key} must be a non-empty list of values to compare, got {values!r}")
    variants = []
    if grid:
        keys = list(grid)
        for combo in itertools.product(*(grid[k] for k in keys)):
            name = ",".join(
                _label(v) if len(keys) == 1 else f"{k.split('.')[-1]}={_label(v)}" for k, v in zip(keys, combo)
            )
            variants.append(Variant(name, dict(zip(keys, combo))))
    named = table.get("variants", {})
    if not isinstance(named, Mapping):
        raise ConfigError("compare.variants must be a table of named variants, each a table of key = value overrides")
    for name, overrides in named.items():
        if not isinstance(overrides, Mapping):
            raise ConfigError(f'compare.variants.{name} must be a table of overrides such as "optim.lr" = 0.1')
        variants.append(Variant(str(name), flatten(overrides)))
    if not variants:
        raise ConfigError(
            'compare: no variants; give a list such as "optim.name" = ["sgd", "adam"] or [compare.variants.NAME] tables'
        )
    if len({v.name for v in variants}) != len(variants):
        raise ConfigError("compare: two variants have the same name")
    return variants, seeds


def plan(config: RunConfig, seeds: int | Sequence[int] | None = None) -> list[tuple[Variant, RunConfig]]:
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


BUSY = "busy"  # what _make_run returns when another process holds the run's lease


def _make_run(config: dict[str, Any], store_url: str, group: str, threads: int) -> str:
    """Make the run of ``config`` in ``group`` unless it has a result, holding its lease:
    resume an interrupted run from its checkpoint, or start it (again: a stub killed before
    its first checkpoint is deleted). Returns :data:`BUSY` when another process holds the
    lease, ``"made by another process"`` when it had a result, else the new run's status
    (``"completed"``, ``"diverged"``, ...). Runs in a worker process."""
    import torch

    from trainlab.train import run

    cfg = load_config(config)
    store = Store(store_url)
    config_hash = cfg.hash()
    with store.lease(group, config_hash, seed=cfg.seed) as held:
        if not held:
            return BUSY
        store.reap(group=group)
        existing = store.list_runs(group=group, config_hash=config_hash)
        if any(r.status in RESULTS for r in existing):
            return "made by another process"
        if any(r.status == "running" for r in existing):
            return BUSY  # a live process makes it without a lease (an older trainlab)
        interrupted = [r.id for r in existing if r.status == "interrupted"]
        with_checkpoint = [i for i in interrupted if "checkpoint" in store.artifacts(i)]
        resume = with_checkpoint[-1] if with_checkpoint else None
        for run_id in interrupted:
            if run_id not in with_checkpoint:
                store.delete_run(run_id)  # nothing to resume from: it is made again below
        torch.set_num_threads(threads)
        from trainlab.targets import trusted_code

        allow = trusted_code(config)  # the code the user's own config names, for its stored runs
        result = run(None if resume else cfg, store=store, group=group, resume=resume, quiet=True, allow_targets=allow)
    return result.status


def _make_population(configs: list[dict[str, Any]], store_url: str, group: str, threads: int) -> list[str]:
    """:func:`_make_run` for several runs trained as one population: each run's lease is taken
    (a run whose lease another process holds is :data:`BUSY`, left for later); a run with a
    result is not made again; interrupted members of a population are resumed with it (when
    every living member's lease is held here), other interrupted runs as :func:`_make_run` does;
    the rest train together. Returns each config's outcome, in order. Runs in a worker process."""
    import torch

    from trainlab._io import torch_load
    from trainlab.train import run
    from trainlab.train.population import Population, resume_population

    cfgs = [load_config(c) for c in configs]
    store = Store(store_url)
    hashes = [c.hash() for c in cfgs]
    outcome: dict[str, str] = {}
    held: list[str] = []
    try:
        for cfg, h in zip(cfgs, hashes):
            if store.claim(group, h, seed=cfg.seed):
                held.append(h)
            else:
                outcome[h] = BUSY
        store.reap(group=group)
        torch.set_num_threads(threads)
        fresh, resumed = [], set()
        for cfg, h in zip(cfgs, hashes):
            if h in outcome:
                continue
            existing = store.list_runs(group=group, config_hash=h)
            if any(r.status in RESULTS for r in existing):
                outcome[h] = "made by another process"
                continue
            if any(r.status == "running" for r in existing):
                outcome[h] = BUSY
                continue
            interrupted = [r.id for r in existing if r.status == "interrupted"]
            members = [i for i in interrupted if "population" in store.artifacts(i)]
            if members and h not in resumed:
                state = torch_load(store.artifacts(members[-1])["population"])
                living = [state["run_ids"][k] for k in state["alive"]]
                found = {r.id: r.config_hash for r in store.list_runs(group=group) if r.id in living}
                # a member another worker made again alone is gone (its stub deleted): the
                # population cannot resume as a whole; its other members are made again below
                need = [x for x in found.values() if x not in held] if len(found) == len(living) else []
                got = [x for x in need if store.claim(group, x)]  # type: ignore[arg-type]
                held.extend(got)  # type: ignore[arg-type]
                if len(found) == len(living) and len(got) == len(need):
                    for result in resume_population(members[-1], store):
                        outcome.setdefault(result.config.hash(), result.status)
                        resumed.add(result.config.hash())
                    continue
            if h in resumed:
                continue
            with_checkpoint = [i for i in interrupted if "checkpoint" in store.artifacts(i)]
            for run_id in interrupted:
                if run_id not in with_checkpoint and run_id not in members:
                    store.delete_run(run_id)
            if with_checkpoint:
                outcome[h] = run(None, store=store, group=group, resume=with_checkpoint[-1], quiet=True).status
            else:
                for run_id in members:  # its population was resumed elsewhere or cannot be: make it again
                    store.delete_run(run_id)
                fresh.append(cfg)
        if len(fresh) > 1:
            for cfg, result in zip(fresh, Population(fresh, store=store, group=group).fit()):
                outcome[cfg.hash()] = result.status
        elif fresh:
            outcome[fresh[0].hash()] = run(fresh[0], store=store, group=group, quiet=True).status
    finally:
        for h in held:
            store.release(group, h)
    return [outcome.get(h, "made by another process") for h in hashes]


def _tasks(
    configs: Sequence[RunConfig], vectorize: str, jobs: int, say: Callable[[str], None]
) -> list[list[RunConfig]]:
    """The comparison's runs as tasks: one config (a run alone) or several (a population).
    With ``jobs`` workers and fewer populations than workers, populations are split so that
    each worker gets one."""
    if vectorize not in VECTORIZE:
        raise unknown_name("vectorize", str(vectorize), VECTORIZE)
    if vectorize == "off" or len(configs) < 2:
        return [[c] for c in configs]
    from trainlab.train.population import plan as plan_populations

    populations, alone = plan_populations(configs)
    if populations and len(populations) < jobs:
        split = -(-jobs // len(populations))
        populations = [p[i::split] for p in populations for i in range(split) if len(p[i::split]) > 0]
    reasons: dict[str, int] = {}
    for reason in alone.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    for reason, n in reasons.items():
        say(f"{n} run{'s' if n > 1 else ''} one by one: {reason}")
    return [[configs[i] for i in p] for p in populations] + [[configs[i]] for i in sorted(alone)]


class _InProcess:
    """The pool interface for ``jobs = 1``: each task runs at submit, in this process."""

    def submit(self, fn, *args) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except Exception as err:
            fut.set_exception(err)
        return fut

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def run_comparison(
    config: RunConfig,
    *,
    store: Store | None = None,
    jobs: int = 1,
    seeds: int | Sequence[int] | None = None,
    quiet: bool = False,
    poll_seconds: float = 1.0,
    vectorize: str = "auto",
) -> list[RunRecord]:
    """Run (or finish) every variant × seed; returns the comparison's run records.

    Runs whose lease another process holds are tried again every ``poll_seconds`` until
    that process has made them (or died: its lease is then taken over). ``vectorize="auto"``
    trains runs that differ only in seed or vectorizable scalars as populations; ``"off"``
    runs each alone."""
    from trainlab._workers import process_pool

    store = store or Store()
    group = config.name
    planned = [cfg for _, cfg in plan(config, seeds)]
    store.reap(group=group)  # runs of a killed comparison: interrupted, then resumed below
    have_result = {r.config_hash for r in store.list_runs(group=group) if r.status in RESULTS}
    pending = [cfg for cfg in planned if cfg.hash() not in have_result]
    threads = max(1, (os.cpu_count() or 1) // max(jobs, 1))
    if jobs > 1 and pending and store.in_memory:
        raise ConfigError(
            "--store ':memory:' lives in this process only; worker processes (--jobs > 1) need a file or server URL"
        )

    def say(text: str) -> None:
        log.info("compare %s: %s", group, text)
        if not quiet:
            line(f"compare {group}: {text}")

    todo = deque((task, 0.0) for task in _tasks(pending, vectorize, jobs, say))  # (configs, when to try them)
    waiting_said = interrupted = False
    with (
        ItemProgress(f"compare {group}", len(pending), quiet=quiet) as progress,
        process_pool(jobs) if jobs > 1 else _InProcess() as pool,
    ):
        in_flight: dict[Future, list[RunConfig]] = {}
        while todo or in_flight:
            now = time.monotonic()
            while todo and len(in_flight) < jobs and todo[0][1] <= now:
                # The store URL (it may carry a password) reaches the workers through the pool's
                # pipe, pickled with the call; a spawned worker's command line holds no argument of ours.
                task, _ = todo.popleft()
                if len(task) == 1:
                    fut = pool.submit(_make_run, task[0].to_dict(), store.url, group, threads)
                else:
                    fut = pool.submit(_make_population, [c.to_dict() for c in task], store.url, group, threads)
                in_flight[fut] = task
            if not in_flight:
                if not waiting_said and not quiet:
                    line(f"compare {group}: waiting for {sum(len(t) for t, _ in todo)} runs another process is making")
                    waiting_said = True
                time.sleep(max(0.0, todo[0][1] - now))
                continue
            done, _ = wait(in_flight, timeout=poll_seconds, return_when=FIRST_COMPLETED)
            for fut in done:
                task = in_flight.pop(fut)
                result = fut.result()
                outcomes = [result] if isinstance(result, str) else result
                busy = [cfg for cfg, outcome in zip(task, outcomes) if outcome == BUSY]
                if busy:
                    todo.append((busy, time.monotonic() + poll_seconds))
                for cfg, outcome in zip(task, outcomes):
                    if outcome != BUSY:
                        progress.done(f"{cfg.name} seed {cfg.seed}: {outcome}")
                if "interrupted" in outcomes:  # Ctrl-C: the run saved its checkpoint; start no other
                    interrupted, todo = True, deque()
    if interrupted:
        raise KeyboardInterrupt(
            f"compare {group}: interrupted; finished runs are kept and an interrupted one resumes from its "
            "checkpoint: run the same command again to continue"
        )
    return store.list_runs(group=group)


# ----------------------------------------------------------------------------------------
# statistics


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


def one_per_seed(records: Sequence[RunRecord]) -> list[RunRecord]:
    """The first run of each seed: a seed run twice (by two comparisons at once, before
    leases existed) is still one sample, not two."""
    seen: dict[int | None, RunRecord] = {}
    for r in records:
        seen.setdefault(r.seed, r)
    return list(seen.values())


def summarize(
    store: Store,
    group: str,
    metric: str | None = None,
    target: float | None = None,
    *,
    config_hashes: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Per variant: n (distinct seeds completed), mean, std and 95% bootstrap CI of the final
    and best metric, steps to target, and wall time. A variant whose runs diverged keeps its
    row, with ``note`` = "k diverged of m" (its statistics are over the completed seeds only;
    NaN when none completed). ``metric`` and ``target`` default to the runs' ``[compare]``
    table; ``config_hashes`` keeps only the runs of one plan (:func:`plan`), leaving out runs
    of an earlier version of the config that share the group."""
    records = [r for r in store.list_runs(group=group) if r.status in RESULTS]
    if config_hashes is not None:
        records = [r for r in records if r.config_hash in config_hashes]
    if not records:
        raise ConfigError(f"no completed runs in comparison '{group}'")
    completed = [r for r in records if r.status == "completed"] or records
    cfg_compare = completed[0].config.get("compare") or {}
    classification = completed[0].final.get("val_acc") is not None
    metric = metric or cfg_compare.get("metric") or ("val_acc" if classification else "val_loss")
    target = target if target is not None else cfg_compare.get("target")
    mode = mode_for(metric)
    by_variant = group_by_variant(records, lambda r: r.name.split("/", 1)[-1])
    rows = []
    for variant, recs in by_variant.items():
        done = one_per_seed([r for r in recs if r.status == "completed"])
        diverged = {r.seed for r in recs if r.status == "diverged"} - {r.seed for r in done}
        final = np.array([_num(r.final.get(metric)) for r in done])
        best = np.array([_num(r.final.get(f"best_{metric}")) for r in done])
        row: dict[str, Any] = {"variant": variant, "n": len(done), "diverged": len(diverged)}
        row.update(metric=metric, target=target)
        if diverged:
            row["note"] = f"{len(diverged)} diverged of {len(done) + len(diverged)}"
        for label, arr in (("final", final), ("best", best)):
            ok = arr[np.isfinite(arr)]
            row[f"{label}_mean"] = float(ok.mean()) if ok.size else math.nan
            row[f"{label}_std"] = float(ok.std(ddof=1)) if ok.size > 1 else 0.0
            row[f"{label}_ci"] = bootstrap_ci(ok)
        if target is not None:
            hits = []
            for r in done:
                steps, values = store.metrics(r.id, [metric]).get(metric, (np.array([]), np.array([])))
                hits.append(steps_to_target(steps, values, target, mode))
            reached = [h for h in hits if h is not None]
            row["steps_to_target"] = float(np.mean(reached)) if reached else None
            row["reached"] = f"{len(reached)}/{len(done)}"
        row["seconds"] = float(np.mean([r.final.get("seconds") or math.nan for r in done])) if done else math.nan
        rows.append(row)
    sign = -1.0 if mode == "max" else 1.0

    def best_first(row: dict[str, Any]) -> tuple[bool, float]:  # a variant with no completed seed last
        mean = row["final_mean"]
        return math.isnan(mean), 0.0 if math.isnan(mean) else sign * mean

    rows.sort(key=best_first)
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
    has_note = any("note" in r for r in rows)
    table = Table(*headers, "seconds", *(["note"] if has_note else []), title=f"{metric}: mean ± std over seeds")
    for r in rows:
        cells = [
            r["variant"], str(r["n"]), f"{r['final_mean']:.4f} ± {r['final_std']:.4f}", f"[{r['final_ci'][0]:.4f}, {r['final_ci'][1]:.4f}]",
            f"{r['best_mean']:.4f} ± {r['best_std']:.4f}", f"[{r['best_ci'][0]:.4f}, {r['best_ci'][1]:.4f}]",
        ]  # fmt: skip
        if has_target:
            cells += ["-" if r["steps_to_target"] is None else f"{r['steps_to_target']:.0f}", r["reached"]]
        table.add_row(*cells, f"{r['seconds']:.1f}", *([r.get("note", "")] if has_note else []))
    console.print(table)


def compare(
    config: RunConfig | dict | str | Mapping[str, Callable[..., Any]],
    *,
    store: Store | None = None,
    jobs: int = 1,
    seeds: int | Sequence[int] | None = None,
    quiet: bool = True,
    name: str = "compare",
    vectorize: str = "auto",
    **fit_kwargs: Any,
) -> list[dict[str, Any]]:
    """Run a comparison and return its summary rows (see :func:`summarize`).

    ``config``: a config (its ``[compare]`` table), or ``{variant: callable}`` of model
    factories ``seed -> nn.Module`` (``fit``'s arguments given here: ``train=(X, y), val=...``)
    or functions ``seed -> trainlab.fit(...)`` — see :func:`_compare_python`. ``vectorize``
    ("auto" or "off") says whether a config's runs may train as populations (:func:`run_comparison`)."""
    if isinstance(config, Mapping) and config and all(callable(v) for v in config.values()):
        if jobs != 1:
            raise ConfigError("compare of Python callables runs in this process: jobs must be 1")
        return _compare_python(config, store=store, seeds=seeds, name=name, quiet=quiet, fit_kwargs=fit_kwargs)
    if fit_kwargs:
        raise ConfigError(
            f"compare: unknown argument '{next(iter(fit_kwargs))}' (fit's arguments go with a dict of model factories)"
        )
    cfg = load_config(config)
    store = store or Store()
    run_comparison(cfg, store=store, jobs=jobs, seeds=seeds, quiet=quiet, vectorize=vectorize)
    return summarize_plan(cfg, store, seeds)


def summarize_plan(config: RunConfig, store: Store, seeds: int | Sequence[int] | None = None) -> list[dict[str, Any]]:
    """:func:`summarize` of exactly the runs that ``config``'s comparison plans."""
    table = config.compare or {}
    hashes = {cfg.hash() for _, cfg in plan(config, seeds)}
    return summarize(store, config.name, table.get("metric"), table.get("target"), config_hashes=hashes)


def _compare_python(
    variants: Mapping[str, Callable[..., Any]],
    *,
    store: Store | None,
    seeds: int | Sequence[int] | None,
    name: str,
    quiet: bool,
    fit_kwargs: dict[str, Any],
) -> list[dict[str, Any]]:
    """``compare({"narrow": factory, ...}, train=..., ...)``: every variant × seed through
    ``trainlab.fit``. A variant is a model factory ``seed -> nn.Module`` (with ``fit``'s
    arguments given to ``compare``) or a function ``seed -> RunResult`` that calls ``fit``
    itself; either way its runs are recorded in group ``name`` as ``name/<variant>``. Runs
    that already have a result (same variant and seed) are not repeated."""
    from trainlab.train.fit import context, fit

    seed_list = list(range(3 if seeds is None else seeds)) if seeds is None or isinstance(seeds, int) else list(seeds)
    if not seed_list:
        raise ConfigError("seeds must be a count >= 1 or a non-empty list of seeds")
    store = store or Store()
    done = {(r.name, r.seed) for r in store.list_runs(group=name) if r.status in RESULTS}
    todo = [(v, s) for v in variants for s in seed_list if (f"{name}/{v}", s) not in done]
    with ItemProgress(f"compare {name}", len(todo), quiet=quiet) as progress:
        for variant, seed in todo:
            fn = variants[variant]
            with context(store=store, group=name, name=f"{name}/{variant}", seed=seed):
                if "train" in fit_kwargs:
                    result = fit(fn, **fit_kwargs)
                else:
                    result = fn(seed)
                    if not hasattr(result, "final") or not hasattr(result, "run_id"):
                        raise ConfigError(
                            f"compare: variant '{variant}' returned {type(result).__name__}; a variant returns trainlab.fit(...)'s result, "
                            "or is a model factory seed -> nn.Module with the data given to compare (train=...)"
                        )
            progress.done(f"{variant} seed {seed}: {result.status}")
    return summarize(store, name)


class _CallableModule(type(os)):  # type: ignore[misc]
    """``trainlab.compare(...)`` calls :func:`compare` even once ``trainlab.compare`` is this module."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return compare(*args, **kwargs)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _CallableModule
