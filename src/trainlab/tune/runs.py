"""Any run config becomes a study: the ``[search]`` section and the objective that trains a run.

``[search]`` (documented in docs/tune.md)::

    [search]
    name = "mnist1d-gp"        # study name (default: the config's name)
    metric = "val_loss"        # a metric the Trainer evaluates (val_loss, val_acc)
    direction = "minimize"     # default: maximize for *acc*, else minimize
    sampler = "gp"             # gp | random | grid | reinforce (NAS) | optuna:tpe | optuna:cmaes | ...
    pruner = "hyperband"       # none | median | sha | asha | hyperband
    trials = 30
    jobs = 1
    seed = 0                   # default: the config's seed
    # sampler options: acquisition ("ei" | "pi" | "ucb"), n_startup, qmc, grid_steps
    # pruner options (training steps): min_resource, max_resource, eta

    [search.params]            # config keys -> ranges
    "optim.lr" = { type = "float", low = 1e-3, high = 1.0, log = true }
    "optim.momentum" = { type = "float", low = 0.0, high = 0.99, when = { "optim.name" = "sgd" } }
    "model.activation" = ["relu", "tanh"]       # a list is a categorical

    [search.architecture]      # NAS (`trainlab nas`): choices per decision, see ArchitectureSpace
    depth = [1, 2, 3]

The pruning resource is the training step: the Trainer reports ``(step, metric)`` at every
evaluation. ``min_resource`` defaults to the evaluation interval and ``max_resource`` to
the run's total steps, so Hyperband's rungs fall on evaluations.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainlab.callbacks import Callback
from trainlab.errors import ConfigError, did_you_mean, unknown_name
from trainlab.stats import mode_for
from trainlab.tune.nas import ArchitectureSpace
from trainlab.tune.pruners import PRUNERS, Pruner, create_pruner
from trainlab.tune.samplers import Sampler, create_sampler
from trainlab.tune.space import Space
from trainlab.tune.study import Study, Trial
from trainlab.tune.trial import FAILED, TrialPruned

SAMPLER_OPTIONS = {"gp": ("acquisition", "n_startup"), "random": ("qmc",), "grid": ("grid_steps",), "reinforce": ()}
PRUNER_OPTIONS = ("min_resource", "max_resource", "eta")
SEARCH_KEYS = {
    "name", "metric", "direction", "sampler", "pruner", "trials", "jobs", "seed", "params", "architecture",
    *PRUNER_OPTIONS, *(o for opts in SAMPLER_OPTIONS.values() for o in opts),
}  # fmt: skip


@dataclass
class SearchConfig:
    """The validated ``[search]`` section."""

    space: Space
    metric: str = "val_loss"
    direction: str = "minimize"
    sampler: str = "gp"
    pruner: str = "none"
    trials: int = 20
    jobs: int = 1
    seed: int = 0
    name: str = "study"
    options: dict[str, Any] = field(default_factory=dict)
    architecture: ArchitectureSpace | None = None

    def make_sampler(self) -> Sampler:
        opts = {k: self.options[k] for k in SAMPLER_OPTIONS.get(self.sampler, ()) if k in self.options}
        if "grid_steps" in opts:
            opts["steps"] = opts.pop("grid_steps")
        return create_sampler(self.sampler, **opts)

    def make_pruner(self, config) -> Pruner:
        """The pruner with resources in training steps (defaults from the run's length)."""
        if self.pruner in ("none", "median"):
            return create_pruner(self.pruner)
        min_r, max_r = self.options.get("min_resource"), self.options.get("max_resource")
        if min_r is None or max_r is None:
            eval_every, total = run_length(config)
            min_r = min_r or eval_every
            max_r = max_r or total
        eta = self.options.get("eta", 3)
        if self.pruner == "hyperband":
            return create_pruner("hyperband", max_resource=max_r, eta=eta, min_resource=min_r)
        return create_pruner(self.pruner, min_resource=min_r, eta=eta, max_resource=max_r)


def run_length(config) -> tuple[int, int]:
    """(steps between evaluations, total steps) of a run config, from its data set size."""
    from trainlab.train import setup

    s = setup(config)
    eval_every = config.train.eval_every or s.steps_per_epoch
    return int(eval_every), int(s.total_steps)


def parse_search(search: dict[str, Any] | None, config, *, nas: bool = False) -> SearchConfig:
    """Validate ``config.search`` (errors name the key); ``nas=True`` reads ``architecture``."""
    search = dict(search or {})
    for key in search:
        if key not in SEARCH_KEYS:
            raise ConfigError(
                f"search.{key}: unknown key{did_you_mean(key, SEARCH_KEYS)}; allowed: {', '.join(sorted(SEARCH_KEYS))}"
            )
    architecture = None
    if nas:
        architecture = ArchitectureSpace.from_dict(search.get("architecture") or {})
        space = architecture.space()
    else:
        if not search.get("params"):
            raise ConfigError(
                'search.params: give at least one config key and its range, e.g. "optim.lr" = {type="float", low=1e-3, high=1, log=true}'
            )
        space = Space.from_dict(search["params"])
    metric = search.get("metric", "val_acc" if nas else "val_loss")
    if metric not in ("val_loss", "val_acc"):
        raise ConfigError(f"search.metric: '{metric}' is not evaluated during training; choose val_loss or val_acc")
    direction = search.get("direction", f"{mode_for(metric)}imize")
    if direction not in ("minimize", "maximize"):
        raise ConfigError(f"search.direction: must be 'minimize' or 'maximize', got {direction!r}")
    sampler = search.get("sampler", "reinforce" if nas else "gp")
    if sampler not in SAMPLER_OPTIONS and not (isinstance(sampler, str) and sampler.startswith("optuna:")):
        raise unknown_name("search.sampler", sampler, [*SAMPLER_OPTIONS, "optuna:tpe", "optuna:cmaes"])
    pruner = search.get("pruner", "none")
    if pruner not in PRUNERS:
        raise unknown_name("search.pruner", pruner, PRUNERS)
    for key in ("trials", "jobs"):
        value = search.get(key, 20 if key == "trials" else 1)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"search.{key}: must be an integer >= 1, got {value!r}")
    seed = search.get("seed", config.seed)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ConfigError(f"search.seed: must be an integer in 0 .. 2**32-1 (the study's seed), got {seed!r}")
    options = {k: v for k, v in search.items() if k in PRUNER_OPTIONS or any(k in o for o in SAMPLER_OPTIONS.values())}
    return SearchConfig(
        space=space,
        metric=metric,
        direction=direction,
        sampler=sampler,
        pruner=pruner,
        trials=search.get("trials", 20),
        jobs=search.get("jobs", 1),
        seed=seed,
        name=str(search.get("name", config.name)),
        options=options,
        architecture=architecture,
    )


class _RecordRunId(Callback):
    """Store the run id on the trial as soon as the run exists (a crash keeps the link)."""

    def __init__(self, trial: Trial):
        self.trial = trial

    def on_fit_start(self, trainer) -> None:
        self.trial.run_id = trainer.run_id


class RunObjective:
    """``objective(trial)``: train the base config with the trial's parameters and seed;
    the value is the run's final ``metric``. Picklable, so worker processes can run it."""

    def __init__(self, config: dict[str, Any], store_url: str, nas: bool = False, allow: Sequence[str] = ()):
        self.config, self.store_url, self.nas = config, store_url, nas
        self.allow = list(allow)  # code the user's own config names (not read from the store)

    def overrides(self, trial: Trial) -> dict[str, Any]:
        params = ArchitectureSpace.to_overrides(trial.params) if self.nas else dict(trial.params)
        return {**params, "seed": trial.seed, "name": f"{trial.study.name}-t{trial.number}"}

    def __call__(self, trial: Trial) -> float:
        from trainlab import targets
        from trainlab.store import Store
        from trainlab.train import load_config, run

        targets.check_stored(
            self.config, what=f"study '{trial.study.name}'", allow=self.allow
        )  # the study's stored config may name code
        config = load_config(self.config, self.overrides(trial))
        result = run(
            config, store=Store(self.store_url), group=trial.study.name, trial=trial, callbacks=[_RecordRunId(trial)]
        )
        trial.run_id = result.run_id
        if result.status == "pruned":
            raise TrialPruned()
        if result.status != "completed":
            raise RuntimeError(f"run {result.run_id} {result.status}: {result.message}")
        return float(result.final[trial.metric])


def study_from_config(
    config, *, nas: bool = False, store: str | None = None, overrides: Sequence[str] = (), **cli: Any
) -> tuple[Study, SearchConfig]:
    """Create (or, with ``resume``, reopen) the study a run config describes.

    ``overrides`` (``key.sub=value``, as for ``trainlab run``) change the base config of every
    trial; ``cli`` overrides ``[search]`` keys (sampler, pruner, trials, jobs, name); ``resume``
    names an existing study to continue (with its stored config: no overrides).
    """
    from trainlab.credentials import display_url
    from trainlab.store import resolve_url
    from trainlab.train import load_config

    if overrides and cli.get("resume") is not None:
        raise ConfigError("--resume continues a study with its stored config; do not pass overrides")
    config = load_config(config, list(overrides))
    resume = cli.pop("resume", None)
    search = {**(config.search or {}), **{k: v for k, v in cli.items() if v is not None}}
    spec = parse_search(search, config, nas=nas)
    url = resolve_url(store)
    base = config.to_dict()
    base.pop("search", None)
    if resume is None:
        from trainlab.tune.storage import StudyStorage

        if StudyStorage(url).get_study(spec.name) is not None:
            raise ConfigError(
                f"study '{spec.name}' already exists in {display_url(url)}; "
                f"continue it with --resume {spec.name} or set search.name"
            )
        # Validate every key of the space against the config before the first trial.
        probe = spec.space.sample(np.random.default_rng(0))
        load_config(base, ArchitectureSpace.to_overrides(probe) if nas else probe)
        token = uuid.uuid4().hex  # tells this process's study from one another process created at the same moment
        study = Study(
            spec.name,
            spec.space,
            sampler=spec.make_sampler(),
            pruner=spec.make_pruner(config),
            direction=spec.direction,
            storage=url,
            seed=spec.seed,
            metric=spec.metric,
            objective={"config": base, "nas": nas, "created_by": token},
        )
        if (study.objective or {}).get("created_by") != token:
            raise ConfigError(
                f"study '{spec.name}' already exists in {display_url(url)}; "
                f"continue it with --resume {spec.name} or set search.name"
            )
    else:
        sampler = spec.make_sampler() if cli.get("sampler") else None
        pruner = spec.make_pruner(config) if cli.get("pruner") else None
        study = Study.load(resume, storage=url, sampler=sampler, pruner=pruner)
    return study, spec


def optimize_in_populations(study, objective: RunObjective, n_trials: int, size: int, callback=None) -> None:
    """Run ``n_trials`` trials, asking ``size`` suggestions at a time and training those that can
    share a population (:func:`trainlab.train.population.plan`) as one. Each ask sees the
    earlier ones of its batch as pending (the GP's constant liar), so a batch spreads out. A
    trial's value is its run's final metric; a diverged run fails its trial. Pruners see no
    intermediate values here (members train in lockstep); the others run one by one as usual."""
    from trainlab.store import Store
    from trainlab.train import load_config
    from trainlab.train.population import Population, plan

    if not isinstance(size, int) or size < 1:
        raise ConfigError(f"--population must be an integer >= 1, got {size!r}")
    started = 0
    while started < n_trials:
        trials = []  # type: ignore[var-annotated]
        while len(trials) < min(size, n_trials - started):
            trial = study.ask()
            if trial is None:
                break
            trials.append(trial)
        if not trials:
            return
        started += len(trials)
        configs = [load_config(objective.config, objective.overrides(t)) for t in trials]
        populations, alone = plan(configs) if len(trials) > 1 else ([], {0: "one trial"})
        for members in populations:
            results = Population(
                [configs[i] for i in members], store=Store(objective.store_url), group=study.name
            ).fit()
            for i, result in zip(members, results):
                trial = trials[i]
                trial.run_id = result.run_id
                if result.status == "completed":
                    done = study.tell(trial, float(result.final[trial.metric]))
                else:
                    done = study.tell(
                        trial, None, FAILED, message=f"run {result.run_id} {result.status}: {result.message}"
                    )
                if callback is not None:
                    callback(study, done)
        for i in sorted(alone):
            done = study.run_trial(trials[i], objective)
            if callback is not None:
                callback(study, done)
