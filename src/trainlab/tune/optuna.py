"""Optuna interop, both ways (Optuna is an optional extra: ``pip install 'trainlab[optuna]'``).

trainlab's algorithms in any Optuna study — :class:`GPSampler` is an
``optuna.samplers.BaseSampler``, :class:`HyperbandPruner`, :class:`SuccessiveHalvingPruner` and
:class:`ASHAPruner` are ``optuna.pruners.BasePruner`` s::

    import optuna
    from trainlab.tune.optuna import GPSampler, HyperbandPruner

    study = optuna.create_study(sampler=GPSampler(seed=0), pruner=HyperbandPruner(max_resource=27))
    study.optimize(objective, n_trials=40)

The sampler honours Optuna's documented lifecycle (``optuna/samplers/_base.py``): the
relative search space is the intersection of the finished trials' distributions
(``infer_relative_search_space``, as Optuna's own GPSampler), jointly sampled by trainlab's GP
(``sample_relative``); parameters outside it (a dynamic, define-by-run space) fall back to an
independent sampler (``sample_independent``, Optuna's RandomSampler by default), which also
receives ``before_trial`` / ``after_trial``; ``reseed_rng`` reseeds both (Optuna calls it in
each worker of ``n_jobs > 1``).

Optuna's samplers in trainlab's studies — :class:`OptunaSampler` (``"optuna:tpe"``,
``"optuna:cmaes"``, ``"optuna:gp"``, ``"optuna:random"``, ``"optuna:qmc"`` wherever a sampler name is
accepted: ``trainlab tune --sampler optuna:tpe``, ``[search] sampler``).

The conversions between trainlab's spaces and Optuna's distributions
(:func:`to_distribution`, :func:`from_distribution`) are shared with ``trainlab export --format optuna``.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

from trainlab.errors import ConfigError, unknown_name
from trainlab.tune.pruners import ASHA, PRUNE, WAIT, Hyperband, SuccessiveHalving
from trainlab.tune.samplers import GP, Sampler
from trainlab.tune.space import Categorical, Float, Int, Param, Space
from trainlab.tune.trial import COMPLETE, FAILED, PRUNED, RUNNING, WAITING, FrozenTrial


def _require_optuna(what: str):
    try:
        import optuna
    except ImportError:
        raise ConfigError(f"{what} needs Optuna: pip install 'trainlab[optuna]'") from None
    return optuna


_BaseSampler: Any
_BasePruner: Any
try:  # the base classes when Optuna is installed; importing this module without it names the extra
    import optuna as _optuna

    _BaseSampler, _BasePruner = _optuna.samplers.BaseSampler, _optuna.pruners.BasePruner
except ImportError:  # pragma: no cover - exercised by the missing-extra test in a subprocess
    _BaseSampler = _BasePruner = object


# -- spaces and values ---------------------------------------------------------------------

_PLAIN = (type(None), bool, int, float, str)


def _choice_out(value: Any) -> Any:
    """A categorical choice as Optuna stores it: lists and tables (``model.hidden = [64, 64]``) as JSON text."""
    return value if isinstance(value, _PLAIN) else json.dumps(value)


def to_distribution(param: Param):
    """A trainlab parameter as an Optuna distribution (conditions are not carried: Optuna's
    define-by-run spaces are conditional by construction)."""
    optuna = _require_optuna("converting a space to Optuna")
    d = optuna.distributions
    if isinstance(param, Float):
        return d.FloatDistribution(float(param.low), float(param.high), log=param.log)
    if isinstance(param, Int):
        return d.IntDistribution(int(param.low), int(param.high), log=param.log)
    if isinstance(param, Categorical):
        return d.CategoricalDistribution([_choice_out(c) for c in param.choices])
    raise TypeError(f"not a trainlab parameter: {param!r}")


def from_distribution(dist) -> Param:
    """An Optuna distribution as a trainlab parameter (a stepped range becomes a categorical of its points)."""
    optuna = _require_optuna("converting an Optuna distribution")
    d = optuna.distributions
    if isinstance(dist, d.CategoricalDistribution):
        return Categorical(list(dist.choices))
    if isinstance(dist, d.IntDistribution):
        if dist.step != 1:
            return Categorical(list(range(dist.low, dist.high + 1, dist.step)))
        return Int(dist.low, dist.high, log=dist.log)
    if isinstance(dist, d.FloatDistribution):
        if dist.step is not None:
            n = round((dist.high - dist.low) / dist.step)
            return Categorical([dist.low + i * dist.step for i in range(n + 1)])
        return Float(dist.low, dist.high, log=dist.log)
    raise TypeError(f"unsupported Optuna distribution: {dist!r}")


def to_optuna_params(space: Space, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(params, distributions)`` of one trial as Optuna stores them (only the active parameters)."""
    out, dists = {}, {}
    for name, value in params.items():
        param = space.get(name, None)
        if param is None:
            continue
        out[name] = _choice_out(value) if isinstance(param, Categorical) else value
        dists[name] = to_distribution(param)
    return out, dists


def from_optuna_params(space: Space, params: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna's stored values back to trainlab's (JSON-text choices to their lists)."""
    out = {}
    for name, value in params.items():
        param = space.get(name, None)
        if isinstance(param, Categorical):
            value = next((c for c in param.choices if _choice_out(c) == value), value)
        out[name] = value
    return out


STATE_TO_OPTUNA = {COMPLETE: "COMPLETE", PRUNED: "PRUNED", FAILED: "FAIL", RUNNING: "RUNNING", WAITING: "WAITING"}
STATE_FROM_OPTUNA = {v: k for k, v in STATE_TO_OPTUNA.items()}


def _frozen_from_optuna(t, params: dict[str, Any] | None = None) -> FrozenTrial:
    """An Optuna trial as the trainlab record the samplers and pruners read."""
    state = STATE_FROM_OPTUNA.get(t.state.name, FAILED)
    intermediate = sorted((int(s), float(v)) for s, v in t.intermediate_values.items())
    value = t.value if t.state.name == "COMPLETE" else None
    if state == PRUNED:  # trainlab records a pruned trial with its last reported value
        value = t.value if t.value is not None else (intermediate[-1][1] if intermediate else None)
    return FrozenTrial(
        t.number, state, dict(t.params) if params is None else params, value=value, intermediate=intermediate
    )


# -- trainlab's GP as an Optuna sampler ------------------------------------------------------


class GPSampler(_BaseSampler):
    """trainlab's GP Bayesian optimization (:class:`trainlab.tune.GP`) as an Optuna sampler.

    Args:
        seed: seeds the GP's candidate draws (per trial number) and the independent sampler;
            None draws one at random.
        independent_sampler: for parameters outside the relative search space (default
            ``optuna.samplers.RandomSampler(seed)``).
        **gp_options: passed to :class:`trainlab.tune.GP` (``acquisition``, ``n_startup``,
            ``n_candidates``, ``n_restarts``, ``noise``, ``beta``).
    """

    def __init__(self, *, seed: int | None = None, independent_sampler=None, **gp_options: Any):
        optuna = _require_optuna("trainlab.tune.optuna.GPSampler")
        self._gp = GP(**gp_options)
        self._seed = secrets.randbelow(2**31) if seed is None else int(seed)
        self._independent_sampler = independent_sampler or optuna.samplers.RandomSampler(seed=seed)
        self._search_space = optuna.search_space.IntersectionSearchSpace()

    def reseed_rng(self) -> None:
        self._seed = secrets.randbelow(2**31)
        self._independent_sampler.reseed_rng()

    def infer_relative_search_space(self, study, trial) -> dict[str, Any]:
        return {name: d for name, d in self._search_space.calculate(study).items() if not d.single()}

    def sample_relative(self, study, trial, search_space: dict[str, Any]) -> dict[str, Any]:
        self._raise_error_if_multi_objective(study)
        if not search_space:
            return {}
        space = Space({name: from_distribution(d) for name, d in search_space.items()})
        names = set(search_space)
        trials = []
        for t in study.get_trials(deepcopy=False, states=None):
            if t.number == trial.number or not names <= set(t.params):
                continue  # the GP needs every parameter of the joint space
            params = {n: t.params[n] for n in search_space}
            trials.append(_frozen_from_optuna(t, params))
        direction = "minimize" if study.direction.name == "MINIMIZE" else "maximize"
        params = self._gp.sample(space, trials, number=trial.number, seed=self._seed, direction=direction)
        return dict(params)

    def sample_independent(self, study, trial, param_name: str, param_distribution) -> Any:
        return self._independent_sampler.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        self._independent_sampler.before_trial(study, trial)

    def after_trial(self, study, trial, state, values: Sequence[float] | None) -> None:
        self._independent_sampler.after_trial(study, trial, state, values)


# -- trainlab's pruners as Optuna pruners ----------------------------------------------------


class _PrunerAdapter(_BasePruner):
    """``prune(study, trial)`` -> trainlab's ``decide(trial, trials, direction)``.

    The resource is Optuna's step (``trial.report(value, step)``); a synchronous pruner's
    ``wait`` makes ``prune`` poll the study (every 0.2 s, up to ``max_wait`` seconds).
    """

    _pruner: Any

    def __init__(self) -> None:
        _require_optuna(type(self).__name__)

    def prune(self, study, trial) -> bool:
        direction = "minimize" if study.direction.name == "MINIMIZE" else "maximize"
        me = _frozen_from_optuna(trial)
        me = FrozenTrial(me.number, RUNNING, me.params, intermediate=me.intermediate)
        deadline = time.monotonic() + getattr(self._pruner, "max_wait", 0.0)
        while True:
            others = [_frozen_from_optuna(t) for t in study.get_trials(deepcopy=False) if t.number != trial.number]
            decision = self._pruner.decide(me, others, direction)
            if decision != WAIT or time.monotonic() > deadline:
                return decision == PRUNE
            time.sleep(0.2)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._pruner!r})"


class SuccessiveHalvingPruner(_PrunerAdapter):
    """trainlab's synchronous successive halving (:class:`trainlab.tune.SuccessiveHalving`);
    with one worker it decides at once, as ASHA."""

    def __init__(
        self, min_resource: float = 1, eta: float = 3, max_resource: float | None = None, max_wait: float = 600.0
    ):
        super().__init__()
        self._pruner = SuccessiveHalving(
            min_resource=min_resource, eta=eta, max_resource=max_resource, max_wait=max_wait
        )


class ASHAPruner(_PrunerAdapter):
    """trainlab's asynchronous successive halving (:class:`trainlab.tune.ASHA`)."""

    def __init__(self, min_resource: float = 1, eta: float = 3, max_resource: float | None = None):
        super().__init__()
        self._pruner = ASHA(min_resource=min_resource, eta=eta, max_resource=max_resource)


class HyperbandPruner(_PrunerAdapter):
    """trainlab's Hyperband (:class:`trainlab.tune.Hyperband`): brackets dealt by trial number."""

    def __init__(self, max_resource: float, eta: float = 3, min_resource: float = 1):
        super().__init__()
        self._pruner = Hyperband(max_resource, eta=eta, min_resource=min_resource)


# -- Optuna's samplers in trainlab studies ---------------------------------------------------

OPTUNA_SAMPLERS = {
    "tpe": "TPESampler",
    "cmaes": "CmaEsSampler",
    "gp": "GPSampler",
    "random": "RandomSampler",
    "qmc": "QMCSampler",
}


class OptunaSampler(Sampler):
    """One of Optuna's samplers proposing the points of a trainlab study (``"optuna:tpe"``).

    Optuna's samplers keep state in their study (CMA-ES its generations), so this sampler keeps
    a mirror: an in-memory Optuna study in this process. Each ``sample`` call tells the mirror
    the trials that finished since the last call (the ones it proposed are told, others are
    added with their parameters, value and intermediate values) and asks it for the next point.
    A study reopened in a new process rebuilds the mirror from the stored trials (CMA-ES then
    starts a new generation from them). Seeded by the study seed.
    """

    def __init__(self, algorithm: str = "tpe", **options: Any):
        if algorithm not in OPTUNA_SAMPLERS:
            raise unknown_name("Optuna sampler", f"optuna:{algorithm}", [f"optuna:{a}" for a in OPTUNA_SAMPLERS])
        _require_optuna(f"sampler 'optuna:{algorithm}'")
        if algorithm == "cmaes":
            import importlib.util

            if importlib.util.find_spec("cmaes") is None:
                raise ConfigError("sampler 'optuna:cmaes' needs the 'cmaes' package: pip install 'trainlab[optuna]'")
        self.algorithm, self.options = algorithm, options
        self.name = f"optuna:{algorithm}"
        self._mirror: Any = None  # an optuna.Study, made on first use
        self._asked: dict[int, Any] = {}  # trainlab number -> the mirror's trial
        self._told: set[int] = set()

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}

    def _open(self, seed: int, direction: str):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = getattr(optuna.samplers, OPTUNA_SAMPLERS[self.algorithm])(seed=seed, **self.options)
        self._mirror = optuna.create_study(direction=direction, sampler=sampler)  # type: ignore[arg-type]
        self._direction = direction

    def sample(self, space, trials, *, number, seed, direction="minimize"):
        import optuna

        if self._mirror is None or self._direction != direction:
            self._open(seed, direction)
        dists = {name: to_distribution(p) for name, p in space.items()}
        for t in trials:
            if t.state not in (COMPLETE, PRUNED, FAILED) or t.number in self._told:
                continue
            self._told.add(t.number)
            state = getattr(optuna.trial.TrialState, STATE_TO_OPTUNA[t.state])
            value = t.value if t.state == COMPLETE else None
            if t.number in self._asked:
                mirror_trial = self._asked.pop(t.number)
                for step, v in t.intermediate:
                    if math.isfinite(v):
                        mirror_trial.report(v, step)
                self._mirror.tell(mirror_trial, value, state=state)
            elif t.params:
                params, pd = to_optuna_params(space, t.params)
                inter = {s: v for s, v in t.intermediate if math.isfinite(v)}
                self._mirror.add_trial(
                    optuna.trial.create_trial(
                        params=params, distributions=pd, value=value, state=state, intermediate_values=inter
                    )
                )
        # Optuna's ask samples every distribution given (no define-by-run here); inactive
        # conditional parameters are dropped afterwards, as trainlab's own samplers leave them out.
        mirror_trial = self._mirror.ask(dists)
        self._asked[number] = mirror_trial
        drawn = from_optuna_params(space, mirror_trial.params)
        active: dict[str, Any] = {}
        for name, p in space.items():
            if p.is_active(active):
                active[name] = drawn[name]
        return active


__all__ = [
    "ASHAPruner", "GPSampler", "HyperbandPruner", "OptunaSampler", "SuccessiveHalvingPruner",
    "from_distribution", "to_distribution",
]  # fmt: skip
