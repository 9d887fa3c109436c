"""Pruners: dynamic resource allocation by stopping unpromising trials early.

NNDL ``000_*.txt`` §7.6.4: "if a configuration can be seen to be bad early, stop
evaluating it, and give the limited resources to the configurations more likely to pay
off" — early stopping of runs that do not converge, and the best-arm (bandit) view of
Hyperband. A trial reports intermediate values ``trial.report(step, value)``; after each
report ``trial.should_prune()`` asks the pruner, which sees every trial of the study.

The *resource* is the ``step`` a trial reports. For training runs trainlab reports the
training step at every evaluation, so ``min_resource``/``max_resource`` are counted in
optimizer steps (see docs/tune.md). A trial reaches rung ``k`` at its first report with
``step >= r_k``; its rung value is the value of that report.

- :class:`Median` — Vizier's median stopping rule (Golovin et al., KDD 2017, §3.2.2):
  stop at step s if the trial's best value so far is worse than the median, over
  completed trials, of their running averages up to s.
- :class:`SuccessiveHalving` — Jamieson & Talwalkar (AISTATS 2016): rungs at
  ``r_k = min_resource · η^k``; at each rung only the best ``⌊m/η⌋`` of the ``m`` trials
  there continue (at least one). Synchronous: a trial reaching a rung waits until every
  concurrently running trial has reached it too, so the cut is made on the whole cohort.
- :class:`ASHA` — the asynchronous variant (Li et al., MLSys 2020): the same cut, decided
  at once against the trials that have reached the rung so far — no waiting on stragglers,
  at the cost of occasionally keeping a trial the full cohort would have cut.
- :class:`Hyperband` — Li et al. (JMLR 2018), Algorithm 1: SHA run in brackets
  ``s = s_max .. 0`` with ``n_s = ⌈(s_max + 1) / (s + 1) · η^s⌉`` configurations starting at
  ``r_s = R · η^-s``, hedging between aggressive and no early stopping. Trials are dealt to
  brackets in proportion to ``n_s`` (smooth weighted round robin on the trial number);
  each bracket cuts only among its own trials.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from trainlab.errors import ConfigError, unknown_name
from trainlab.tune.trial import COMPLETE, FAILED, RUNNING, WAITING, FrozenTrial

CONTINUE, PRUNE, WAIT = "continue", "prune", "wait"


class Pruner:
    """Base class: ``decide`` returns ``"continue"``, ``"prune"`` or ``"wait"`` (ask again later)."""

    name = "none"

    def decide(self, trial: FrozenTrial, trials: Sequence[FrozenTrial], direction: str) -> str:
        return CONTINUE

    def spec(self) -> dict[str, Any]:
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.spec().items() if k != "name")
        return f"{type(self).__name__}({args})"


class NoPruner(Pruner):
    """Never stops a trial."""


def _better(direction: str):
    return (lambda a, b: a < b) if direction == "minimize" else (lambda a, b: a > b)


def _check_positive(owner: str, **values: float | None) -> None:
    for name, v in values.items():
        if v is not None and not (isinstance(v, int | float) and v > 0 and math.isfinite(v)):
            raise ConfigError(f"{owner}: {name} must be a positive number, got {v!r}")


# -- median ---------------------------------------------------------------------------


class Median(Pruner):
    """Median stopping rule; idle for the first ``n_startup_trials`` completed trials and
    before step ``n_warmup_steps``."""

    name = "median"

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 0):
        if not isinstance(n_startup_trials, int) or n_startup_trials < 1:
            raise ConfigError(f"Median: n_startup_trials must be an integer >= 1, got {n_startup_trials!r}")
        if not isinstance(n_warmup_steps, int) or n_warmup_steps < 0:
            raise ConfigError(f"Median: n_warmup_steps must be an integer >= 0, got {n_warmup_steps!r}")
        self.n_startup_trials, self.n_warmup_steps = n_startup_trials, n_warmup_steps

    def spec(self):
        return {"name": self.name, "n_startup_trials": self.n_startup_trials, "n_warmup_steps": self.n_warmup_steps}

    def decide(self, trial, trials, direction):
        if not trial.intermediate or trial.last_step < self.n_warmup_steps:
            return CONTINUE
        step = trial.last_step
        found = [
            running_average(t.intermediate, step) for t in trials if t.state == COMPLETE and t.number != trial.number
        ]
        averages = [a for a in found if a is not None]
        if len(averages) < self.n_startup_trials:
            return CONTINUE
        own = [v for _, v in trial.intermediate if not math.isnan(v)]
        if not own:
            return PRUNE
        best = min(own) if direction == "minimize" else max(own)
        return PRUNE if _better(direction)(float(np.median(averages)), best) else CONTINUE


def running_average(intermediate: Sequence[tuple[int, float]], step: int) -> float | None:
    """Mean of the values reported at steps <= ``step`` (None if none)."""
    values = [v for s, v in intermediate if s <= step and not math.isnan(v)]
    return float(np.mean(values)) if values else None


# -- successive halving and friends ----------------------------------------------------


def rung_value(intermediate: Sequence[tuple[int, float]], resource: float) -> float | None:
    """The value a trial had when it reached ``resource`` (its first report at or past it)."""
    for step, value in intermediate:
        if step >= resource:
            return value
    return None


def survivors(values: Sequence[float], eta: float, direction: str = "minimize") -> list[int]:
    """Indices of the top ``max(1, ⌊m/η⌋)`` of ``m`` values (ties: the earlier index wins).

    NaN ranks last. This is the successive-halving cut, shared by SHA, ASHA and Hyperband.
    """
    m = len(values)
    key = [(math.inf if math.isnan(v) else (v if direction == "minimize" else -v), i) for i, v in enumerate(values)]
    return sorted(i for _, i in sorted(key)[: max(1, int(m // eta))])


def rungs(min_resource: float, eta: float, max_resource: float | None) -> list[float]:
    """``min_resource · η^k`` for k = 0, 1, ... strictly below ``max_resource`` (60 if unbounded)."""
    out: list[float] = []
    r = float(min_resource)
    while (max_resource is None and len(out) < 60) or (max_resource is not None and r < max_resource * (1 - 1e-12)):
        out.append(r)
        r *= eta
    return out


class _Halving(Pruner):
    """The shared successive-halving rule; subclasses choose the rungs, cohort and waiting."""

    synchronous = False

    def __init__(
        self, min_resource: float = 1, eta: float = 3, max_resource: float | None = None, max_wait: float = 600.0
    ):
        _check_positive(type(self).__name__, min_resource=min_resource, max_resource=max_resource, max_wait=max_wait)
        if not (isinstance(eta, int | float) and eta > 1):
            raise ConfigError(f"{type(self).__name__}: eta must be > 1, got {eta!r}")
        if max_resource is not None and max_resource < min_resource:
            raise ConfigError(
                f"{type(self).__name__}: max_resource ({max_resource}) must be >= min_resource ({min_resource})"
            )
        self.min_resource, self.eta, self.max_resource, self.max_wait = min_resource, eta, max_resource, max_wait

    def spec(self):
        return {
            "name": self.name,
            "min_resource": self.min_resource,
            "eta": self.eta,
            "max_resource": self.max_resource,
        }

    def _rungs(self, trial: FrozenTrial) -> list[float]:
        return rungs(self.min_resource, self.eta, self.max_resource)

    def _cohort(self, trial: FrozenTrial, trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
        return [t for t in trials if t.state not in (WAITING, FAILED)]

    def decide(self, trial, trials, direction):
        if not trial.intermediate:
            return CONTINUE
        last = trial.intermediate[-1][0]
        previous = trial.intermediate[-2][0] if len(trial.intermediate) > 1 else -math.inf
        crossed = [r for r in self._rungs(trial) if previous < r <= last]
        cohort = [t for t in self._cohort(trial, trials) if t.number != trial.number] + [trial]
        for r in crossed:
            if self.synchronous and any(
                t.state == RUNNING and t.number != trial.number and (t.last_step is None or t.last_step < r)
                for t in cohort
            ):
                return WAIT
            values = [(t.number, rung_value(t.intermediate, r)) for t in cohort]
            at_rung = [(n, v) for n, v in values if v is not None]
            keep = survivors([v for _, v in at_rung], self.eta, direction)
            if trial.number not in {at_rung[i][0] for i in keep}:
                return PRUNE
        return CONTINUE


class SuccessiveHalving(_Halving):
    """Synchronous successive halving (waits at a rung for concurrently running trials, up
    to ``max_wait`` seconds); with one worker it decides at once, like :class:`ASHA`."""

    name = "sha"
    synchronous = True


class ASHA(_Halving):
    """Asynchronous successive halving: cut at each rung against the trials seen so far."""

    name = "asha"


class Hyperband(_Halving):
    """Hyperband brackets over successive halving; ``max_resource`` is required.

    >>> Hyperband(81, eta=3).brackets()
    [(81, 1.0), (34, 3.0), (15, 9.0), (8, 27.0), (5, 81.0)]
    """

    name = "hyperband"
    max_resource: float  # required here; successive halving's None (unbounded) is refused

    def __init__(self, max_resource: float, eta: float = 3, min_resource: float = 1):
        if max_resource is None:
            raise ConfigError("Hyperband: max_resource is required (the full budget of one trial)")
        super().__init__(min_resource=min_resource, eta=eta, max_resource=max_resource)

    def spec(self):
        return {
            "name": self.name,
            "max_resource": self.max_resource,
            "eta": self.eta,
            "min_resource": self.min_resource,
        }

    @property
    def s_max(self) -> int:
        """The largest s with ``min_resource · η^s <= max_resource`` (⌊log_η(R / r_min)⌋, exactly)."""
        s = 0
        while self.min_resource * self.eta ** (s + 1) <= self.max_resource * (1 + 1e-12):
            s += 1
        return s

    def brackets(self) -> list[tuple[int, float]]:
        """``(n_s, r_s)`` for s = s_max .. 0: configurations and their starting resource."""
        s_max, eta, big_r = self.s_max, self.eta, float(self.max_resource)
        return [(math.ceil((s_max + 1) / (s + 1) * eta**s - 1e-9), big_r / eta**s) for s in range(s_max, -1, -1)]

    def bracket_of(self, number: int) -> int:
        """The bracket index (0 = most aggressive) of trial ``number``: smooth weighted
        round robin with weights ``n_s``, so any prefix of trials is split in proportion."""
        if not hasattr(self, "_dealt"):
            self._weights = [n for n, _ in self.brackets()]
            self._dealt: list[int] = []
            self._current = [0] * len(self._weights)
        while len(self._dealt) <= number:  # extend the deal once; trials ask about it often
            self._current = [c + w for c, w in zip(self._current, self._weights)]
            chosen = max(range(len(self._weights)), key=lambda i: (self._current[i], -i))
            self._current[chosen] -= sum(self._weights)
            self._dealt.append(chosen)
        return self._dealt[number]

    def _rungs(self, trial):
        return rungs(self.brackets()[self.bracket_of(trial.number)][1], self.eta, self.max_resource)

    def _cohort(self, trial, trials):
        b = self.bracket_of(trial.number)
        return [t for t in super()._cohort(trial, trials) if self.bracket_of(t.number) == b]


PRUNERS: dict[str, type[Pruner]] = {
    "none": NoPruner,
    "median": Median,
    "sha": SuccessiveHalving,
    "asha": ASHA,
    "hyperband": Hyperband,
}


def create_pruner(name: str, **options: Any) -> Pruner:
    """A pruner by name (``none``, ``median``, ``sha``, ``asha``, ``hyperband``) with its options."""
    if name not in PRUNERS:
        raise unknown_name("pruner", name, PRUNERS)
    try:
        return PRUNERS[name](**options)
    except TypeError as err:
        raise ConfigError(f"pruner '{name}': {err}") from None


def pruner_from_spec(spec: Mapping[str, Any]) -> Pruner:
    spec = dict(spec)
    return create_pruner(spec.pop("name"), **spec)


def as_pruner(pruner: Pruner | str | Mapping[str, Any] | None) -> Pruner | None:
    """What every ``pruner=`` argument accepts: a :class:`Pruner`, a name (``"median"``), a spec
    (``{"name": "hyperband", "max_resource": 81}``) or None (the caller's default)."""
    if pruner is None or isinstance(pruner, Pruner):
        return pruner
    if isinstance(pruner, str):
        return create_pruner(pruner)
    if isinstance(pruner, Mapping) and "name" in pruner:
        return pruner_from_spec(pruner)
    raise ConfigError(f"pruner must be a Pruner, a name ({', '.join(PRUNERS)}) or None, got {pruner!r}")
