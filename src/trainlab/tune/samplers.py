"""Samplers choose the next point: ``Grid``, ``Random`` (optionally Sobol) and ``GP`` (Bayesian optimization).

NNDL ``000_*.txt`` §7.6.1–7.6.3: grid search tries every combination; random search draws
combinations at random because "some hyperparameters matter little" (Bergstra & Bengio,
JMLR 2012: with a few important dimensions, n random points cover each of them with n
distinct values where a grid gives only n^(1/D)); neither uses what earlier trials
showed, which Bayesian optimization (SMBO) does: fit a model of the objective to the
trials so far and pick the point with the largest expected gain.

A sampler is a pure function of the study's history: ``sample(space, trials, number=,
seed=, direction=)`` looks only at the stored trials, the trial number and the study
seed. So a study rerun with the same seed and one worker proposes the same points, a
resumed study continues where it stopped, and parallel workers need no shared state.
``None`` means the sampler is exhausted (a finished grid).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.optimize
import scipy.stats.qmc
import torch

from trainlab.errors import ConfigError, unknown_name
from trainlab.tune.acquisition import ACQUISITIONS, negative_lower_confidence_bound
from trainlab.tune.gp import GaussianProcess, GPParams, fit_hyperparameters, single_threaded
from trainlab.tune.space import Categorical, Space
from trainlab.tune.trial import COMPLETE, PRUNED, RUNNING, WAITING, FrozenTrial


class Sampler:
    """Base class: subclasses implement :meth:`sample` and :meth:`spec`."""

    name = "sampler"

    def sample(
        self, space: Space, trials: Sequence[FrozenTrial], *, number: int, seed: int, direction: str = "minimize"
    ) -> dict[str, Any] | None:
        raise NotImplementedError

    def spec(self) -> dict[str, Any]:
        """A JSON-able description; :func:`create_sampler` ``(**spec)`` rebuilds the sampler."""
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.spec().items() if k != "name")
        return f"{type(self).__name__}({args})"


def _params_key(params: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


# -- grid -------------------------------------------------------------------------------


def grid_points(space: Space, steps: int | None = None) -> list[dict[str, Any]]:
    """Every combination of the active parameters, in order (the first parameter varies slowest).

    A conditional parameter multiplies only the combinations where it is active, so the
    result is the exact product over each branch. Continuous ranges need ``steps``.
    """
    points: list[dict[str, Any]] = [{}]
    for name, p in space.items():
        values = p.grid(steps)
        expanded: list[dict[str, Any]] = []
        for pt in points:
            if p.is_active(pt):
                expanded.extend({**pt, name: v} for v in values)
            else:
                expanded.append(pt)
        points = expanded
    return points


class Grid(Sampler):
    """Cartesian product of the choices; ``steps`` points for each continuous range that has
    no ``steps`` of its own (log-spaced when ``log``). Trials take the points in order,
    skipping points an earlier trial already has (so re-queued points are not repeated)."""

    name = "grid"

    def __init__(self, steps: int | None = None):
        if steps is not None and (not isinstance(steps, int) or steps < 2):
            raise ConfigError(f"Grid: steps must be an integer >= 2, got {steps!r}")
        self.steps = steps

    def sample(self, space, trials, *, number, seed, direction="minimize"):
        taken = {_params_key(t.params) for t in trials}
        for point in grid_points(space, self.steps):
            if _params_key(point) not in taken:
                return point
        return None

    def spec(self):
        return {"name": self.name, "steps": self.steps}


# -- random -----------------------------------------------------------------------------


def _sobol_point(d: int, seed: int, index: int) -> np.ndarray:
    sobol = scipy.stats.qmc.Sobol(d, scramble=True, seed=seed)
    if index:
        sobol.fast_forward(index)
    with warnings.catch_warnings():  # "balance properties need n = 2^m": we draw one at a time
        warnings.simplefilter("ignore")
        return sobol.random(1)[0]


class Random(Sampler):
    """Independent uniform draws (log-uniform where ``log``); ``qmc=True`` takes point
    ``number`` of a scrambled Sobol sequence instead (Owen scrambling; scipy.stats.qmc),
    which covers the space more evenly for the same number of trials.

    The draw for trial ``n`` uses a generator seeded by ``(seed, n)`` only.
    """

    name = "random"

    def __init__(self, qmc: bool = False):
        self.qmc = bool(qmc)

    def sample(self, space, trials, *, number, seed, direction="minimize"):
        if self.qmc:
            return space.from_uniform(_sobol_point(len(space), seed, number))
        return space.sample(np.random.default_rng([seed, number]))

    def spec(self):
        return {"name": self.name, "qmc": self.qmc}


# -- Gaussian-process Bayesian optimization ----------------------------------------------


class GP(Sampler):
    """Bayesian optimization with a Gaussian-process surrogate (Snoek et al. 2012).

    Each call: encode the complete (and pruned, with their last value) trials into the unit cube (log-scaled parameters warped,
    categoricals one-hot, see :mod:`trainlab.tune.space`); fit a Matérn-5/2 ARD GP by
    maximizing the marginal likelihood (:mod:`trainlab.tune.gp`); add the *pending* trials
    (running or queued) as fake observations equal to the mean of the observed values —
    the "constant liar" of Ginsbourger, Le Riche & Carraro (2010) — so the posterior
    variance there collapses, their acquisition drops to ~0 and parallel workers do not
    ask for the same point; then maximize the acquisition: ``n_candidates`` scrambled Sobol
    points plus Gaussian perturbations of the best trials, and L-BFGS-B (on the numeric
    coordinates, categoricals held fixed) from the ``n_restarts`` best of them, all starts in
    one batched problem. The hyperparameter fit is warm-started from the previous one.

    Args:
        acquisition: ``"ei"`` (log expected improvement), ``"pi"`` (log probability of
            improvement) or ``"ucb"`` (lower confidence bound with ``beta``).
        n_startup: trials drawn from the Sobol sequence before the model is used.
        n_candidates, n_restarts: the acquisition optimizer's effort.
        noise: fix the observation noise variance (standardized units) instead of fitting it.
        beta: the exploration weight of ``"ucb"``.
    """

    name = "gp"

    def __init__(
        self,
        acquisition: str = "ei",
        *,
        n_startup: int = 10,
        n_candidates: int = 2048,
        n_restarts: int = 5,
        noise: float | None = None,
        beta: float = 4.0,
    ):
        if acquisition not in ACQUISITIONS:
            raise unknown_name("acquisition", acquisition, ACQUISITIONS)
        for arg, value, lo in (
            ("n_startup", n_startup, 1),
            ("n_candidates", n_candidates, 1),
            ("n_restarts", n_restarts, 0),
        ):
            if not isinstance(value, int) or value < lo:
                raise ConfigError(f"GP: {arg} must be an integer >= {lo}, got {value!r}")
        if noise is not None and not (noise > 0):
            raise ConfigError(f"GP: noise must be > 0 (a variance) or None to fit it, got {noise!r}")
        if not beta > 0:
            raise ConfigError(f"GP: beta must be > 0, got {beta!r}")
        self.acquisition, self.n_startup, self.n_candidates = acquisition, n_startup, n_candidates
        self.n_restarts, self.noise, self.beta = n_restarts, noise, float(beta)
        self._last_fit: GPParams | None = None

    def spec(self):
        return {
            "name": self.name,
            "acquisition": self.acquisition,
            "n_startup": self.n_startup,
            "n_candidates": self.n_candidates,
            "n_restarts": self.n_restarts,
            "noise": self.noise,
            "beta": self.beta,
        }

    def sample(self, space, trials, *, number, seed, direction="minimize"):
        with single_threaded():
            return self._sample(space, trials, number, seed, direction)

    def _sample(self, space, trials, number, seed, direction):
        # Pruned trials count with their last reported value: a pessimistic but real
        # observation of a bad region; leaving them out makes the GP propose them again.
        done = [t for t in trials if t.state in (COMPLETE, PRUNED) and t.value is not None and math.isfinite(t.value)]
        if len(done) < self.n_startup:
            return space.from_uniform(_sobol_point(len(space), seed, number))
        rng = np.random.default_rng([seed, number])
        sign = 1.0 if direction == "minimize" else -1.0
        x = np.stack([space.to_unit(t.params) for t in done])
        y = sign * np.array([t.value for t in done])
        ys = (y - y.mean()) / (y.std() or 1.0)
        # Warm start from this sampler's previous fit (per process; a fresh rerun of a study
        # makes the same calls in the same order, so its trials stay reproducible).
        gp_params = fit_hyperparameters(x, ys, noise=self.noise, warm_start=self._last_fit)
        self._last_fit = gp_params
        best, best_x = float(ys.min()), x[np.argsort(ys)[:5]]
        pending = [space.to_unit(t.params) for t in trials if t.state in (RUNNING, WAITING) and t.params]
        if pending:  # constant liar: pretend each pending point returned the mean (0 after standardizing)
            x = np.concatenate([x, np.stack(pending)])
            ys = np.concatenate([ys, np.zeros(len(pending))])
        gp = GaussianProcess(x, ys, gp_params)
        taken = {_params_key(t.params) for t in trials}
        return self._maximize(space, gp, best, best_x, rng, taken)

    def _acquisition(self, gp: GaussianProcess, xs: torch.Tensor, best: float) -> torch.Tensor:
        mean, var = gp.predict(xs)
        std = var.clamp_min(1e-20).sqrt()
        if self.acquisition == "ucb":
            return negative_lower_confidence_bound(mean, std, best, self.beta)
        return ACQUISITIONS[self.acquisition](mean, std, best)

    def _candidates(self, space: Space, best_x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Unit-cube encodings of the candidates: ``n_candidates`` scrambled Sobol points and,
        around each of the best trials, small Gaussian moves of its numeric coordinates
        (exploitation the global set is too coarse for once the GP is confident). Each row is
        a valid point's encoding (Ints rounded, one-hot categoricals, inactive parameters 0)."""
        sobol = scipy.stats.qmc.Sobol(len(space), scramble=True, seed=rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            uniform = sobol.random(self.n_candidates)
        numeric = space.numeric_mask()
        per_best = max(self.n_candidates // 20, 10)
        local = np.repeat(best_x, per_best, axis=0)
        local[:, numeric] = np.clip(
            local[:, numeric] + 0.05 * rng.standard_normal((len(local), int(numeric.sum()))), 0.0, 1.0
        )
        if space.is_continuous:  # Floats only: every vector in the cube already encodes a point
            return np.concatenate([uniform, local])
        points = [space.from_uniform(u) for u in uniform] + [space.from_unit(z) for z in local]
        return np.stack([space.to_unit(p) for p in points])

    def _maximize(self, space, gp, best, best_x, rng, taken) -> dict[str, Any]:
        units = self._candidates(space, best_x, rng)
        with torch.no_grad():
            acq = self._acquisition(gp, torch.as_tensor(units), best).numpy()
        order = np.argsort(-acq)
        top = order[: self.n_restarts]
        results: list[tuple[float, dict[str, Any] | None, int]] = [
            (score, params, -1)
            for score, params in self._refine([space.from_unit(units[i]) for i in top], acq[top], space, gp, best)
        ]
        results.extend((float(acq[i]), None, int(i)) for i in order[self.n_restarts :])
        results.sort(key=lambda r: -r[0])
        for _, params, i in results:  # the best point no trial has yet (matters for Int/categorical)
            params = params if params is not None else space.from_unit(units[i])
            if _params_key(params) not in taken:
                return params
        return space.sample(rng)  # every candidate is taken (a tiny discrete space)

    def _refine(self, starts: list[dict[str, Any]], values: np.ndarray, space: Space, gp: GaussianProcess, best: float):
        """L-BFGS-B on the active numeric coordinates of the ``starts``, all in one problem.

        The objective is the sum of the starts' acquisitions, each a function of its own
        coordinates only, so one run optimizes every start at once (BoTorch's batched
        multi-start) with one posterior evaluation of all of them per step. Returns
        ``(acquisition, params)`` per start: the refined point where it is better, else the start.
        """
        if not starts:
            return []
        base = torch.as_tensor(np.stack([space.to_unit(p) for p in starts]))
        slices = space.slices()
        free = np.zeros(base.shape, dtype=bool)
        for row, params in enumerate(starts):
            for name, p in space.items():
                if name in params and not isinstance(p, Categorical):
                    free[row, slices[name]] = True
        if not free.any():
            return [(float(v), p) for v, p in zip(values, starts)]
        rows, cols = (torch.as_tensor(i) for i in np.nonzero(free))

        def negative(z: np.ndarray) -> tuple[float, np.ndarray]:
            zt = torch.as_tensor(z, dtype=torch.float64).requires_grad_(True)
            a = self._acquisition(gp, base.index_put((rows, cols), zt), best).sum()
            (grad,) = torch.autograd.grad(a, zt)
            return -a.item(), -grad.numpy()

        x0 = base[rows, cols].numpy()
        res = scipy.optimize.minimize(
            negative,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * len(x0),
            options={"maxiter": 50, "ftol": 1e-7},
        )
        refined_unit = (
            base.index_put((rows, cols), torch.as_tensor(res.x)).numpy() if np.all(np.isfinite(res.x)) else base.numpy()
        )
        refined = [space.from_unit(z) for z in refined_unit]
        # Ints are rounded on decoding; score the points actually proposed.
        with torch.no_grad():
            scores = self._acquisition(gp, torch.as_tensor(np.stack([space.to_unit(p) for p in refined])), best).numpy()
        return [
            (float(sc), r) if np.isfinite(sc) and sc > v else (float(v), p)
            for sc, r, v, p in zip(scores, refined, values, starts)
        ]


# -- registry ---------------------------------------------------------------------------

SAMPLERS: dict[str, type[Sampler]] = {"grid": Grid, "random": Random, "gp": GP}


def create_sampler(name: str, **options: Any) -> Sampler:
    """A sampler by name (``grid``, ``random``, ``gp``, ``reinforce`` for NAS, or one of Optuna's
    as ``optuna:tpe``, ``optuna:cmaes``, ... — :class:`trainlab.tune.optuna.OptunaSampler`) with its options."""
    from trainlab.tune.nas import Reinforce  # NAS's controller is a sampler too

    if isinstance(name, str) and name.startswith("optuna:"):
        from trainlab.tune.optuna import OptunaSampler

        try:
            return OptunaSampler(name.split(":", 1)[1], **options)
        except TypeError as err:
            raise ConfigError(f"sampler '{name}': {err}") from None

    registry = {**SAMPLERS, "reinforce": Reinforce}
    if name not in registry:
        raise unknown_name("sampler", name, registry)
    try:
        return registry[name](**options)
    except TypeError as err:
        raise ConfigError(f"sampler '{name}': {err}") from None


def sampler_from_spec(spec: Mapping[str, Any]) -> Sampler:
    spec = dict(spec)
    return create_sampler(spec.pop("name"), **spec)


def as_sampler(sampler: Sampler | str | Mapping[str, Any] | None) -> Sampler | None:
    """What every ``sampler=`` argument accepts: a :class:`Sampler`, a name (``"gp"``), a spec
    (``{"name": "gp", "acquisition": "ucb"}``) or None (the caller's default)."""
    if sampler is None or isinstance(sampler, Sampler):
        return sampler
    if isinstance(sampler, str):
        return create_sampler(sampler)
    if isinstance(sampler, Mapping) and "name" in sampler:
        return sampler_from_spec(sampler)
    raise ConfigError(f"sampler must be a Sampler, a name (gp, grid, random, reinforce) or None, got {sampler!r}")


__all__ = ["GP", "Grid", "Random", "Sampler", "as_sampler", "create_sampler", "grid_points", "sampler_from_spec"]
