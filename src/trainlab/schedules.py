"""Learning-rate schedules: the learning rate as a pure function of the optimizer step.

Every schedule here is a callable ``f(step) -> lr`` where ``step`` counts optimizer steps
from 0. ``total_steps`` always means the number of optimizer steps a schedule spans, warm-up
included: the first runs at ``lr``, the last (step ``total_steps − 1``) at the end value. A schedule holds no state, so resuming a run only needs the step count, and warm-up
or restarts compose by shifting the step (:func:`join`) instead of chaining stateful
schedulers (the source of wrong rates after resume in pytorch #67586, #60265).

Sources: notes ``000_*.txt`` §7.2.3 "学习率调整" (decay: piecewise constant / step, inverse
time, exponential, natural exponential, cosine; gradual warm-up; triangular cyclic; SGDR),
§7.2.2 (linear scaling rule), ``002_*.txt`` "学习率衰减" (step, linear and 1/t decay);
Goyal et al. 2017 (arXiv:1706.02677), Smith 2017 (arXiv:1506.01186), Loshchilov & Hutter
2017 (arXiv:1608.03983). ``docs/schedules.md`` lists each formula with its test.

Example::

    >>> from trainlab import schedules
    >>> f = schedules.warmup(schedules.cosine(0.1, total_steps=1000), warmup_steps=100)
    >>> round(f(50), 4), round(f(100), 4), round(f(999), 4)
    (0.05, 0.1, 0.0)
"""

from __future__ import annotations

import bisect
import inspect
import itertools
import math
import numbers
import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from trainlab.errors import ConfigError, did_you_mean, unknown_name

ScheduleFn = Callable[[int], float]

__all__ = [
    "SCHEDULES",
    "Schedule",
    "ScheduleLR",
    "constant",
    "cosine",
    "cyclic_triangular",
    "exponential",
    "from_config",
    "from_spec",
    "inverse_time",
    "join",
    "linear",
    "linear_scaling_rule",
    "natural_exponential",
    "parse_spec",
    "piecewise_constant",
    "polynomial",
    "sgdr",
    "step",
    "to_torch",
    "warmup",
]


class Schedule:
    """A learning rate as a pure function of the step, with a readable ``repr``.

    ``schedule(step)`` checks that ``step`` is a non-negative integer and returns a float.
    A schedule that decays over a fixed number of steps (``polynomial``, ``linear``,
    ``cosine``) knows that span as ``total_steps`` and can be rebuilt over another span
    (``respan(n)``): :func:`warmup` gives it what the warm-up leaves of the run.
    """

    __slots__ = ("_description", "_fn", "_respan", "total_steps")

    def __init__(
        self,
        fn: Callable[[int], float],
        description: str,
        *,
        total_steps: int | None = None,
        respan: Callable[[int], Schedule] | None = None,
    ) -> None:
        self._fn = fn
        self._description = description
        self.total_steps = total_steps
        self._respan = respan

    def __call__(self, step: int) -> float:
        step = operator.index(step)  # rejects 1.5; accepts numpy / torch integers
        if step < 0:
            raise ValueError(f"step must be a non-negative integer, got {step}")
        return float(self._fn(step))

    def respan(self, total_steps: int) -> Schedule:
        """The same schedule spread over ``total_steps`` steps (only for schedules with a span)."""
        if self._respan is None:
            raise ValueError(f"{self!r} has no total_steps to change")
        return self._respan(total_steps)

    def __repr__(self) -> str:
        return self._description


def _describe(name: str, **params: Any) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


# --- argument checks: each message starts with the argument name so from_config can
# --- prefix it with "schedule." and the user sees the config key.


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _non_negative(name: str, value: Any) -> float:
    value = _real(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def _positive(name: str, value: Any) -> float:
    value = _real(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def _fraction(name: str, value: Any) -> float:
    """A decay factor in (0, 1]: 1 keeps the lr constant, 0 would zero it after one decay."""
    value = _real(name, value)
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return value


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _boundaries(name: str, values: Any) -> list[int]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a list of step numbers, got {values!r}")
    out = [_positive_int(f"{name}[{i}]", b) for i, b in enumerate(values)]
    if any(b >= c for b, c in itertools.pairwise(out)):
        raise ValueError(f"{name} must be strictly increasing, got {list(values)!r}")
    return out


def _one_more(name: str, items: Sequence[Any], boundaries: Sequence[int]) -> None:
    if len(items) != len(boundaries) + 1:
        raise ValueError(f"{name} must have one more entry than boundaries ({len(boundaries) + 1}), got {len(items)}")


# --- the schedules of the notes -------------------------------------------------------


def constant(lr: float) -> Schedule:
    """α_t = α0."""
    lr = _non_negative("lr", lr)
    return Schedule(lambda t: lr, _describe("constant", lr=lr))


def step(lr: float, step_size: int, gamma: float = 0.1) -> Schedule:
    """Step decay (阶梯衰减, notes 002 "学习率衰减"): α_t = α0 · γ^⌊t / step_size⌋.

    Same as ``torch.optim.lr_scheduler.StepLR(step_size, gamma)`` stepped once per step.
    """
    lr, step_size, gamma = _non_negative("lr", lr), _positive_int("step_size", step_size), _fraction("gamma", gamma)
    return Schedule(
        lambda t: lr * gamma ** (t // step_size),
        _describe("step", lr=lr, step_size=step_size, gamma=gamma),
    )


def piecewise_constant(boundaries: Sequence[int], values: Sequence[float]) -> Schedule:
    """Piecewise constant decay (分段常数衰减, notes 000 §7.2.3): α_t = values[i] for
    boundaries[i-1] <= t < boundaries[i].

    ``values[i]`` takes effect *at* step ``boundaries[i-1]``, as in torch's ``MultiStepLR``
    and optax; Keras' ``PiecewiseConstantDecay`` switches one step later (``t > boundary``).
    """
    bounds = _boundaries("boundaries", boundaries)
    _one_more("values", values, bounds)
    vals = [_non_negative(f"values[{i}]", v) for i, v in enumerate(values)]
    return Schedule(
        lambda t: vals[bisect.bisect_right(bounds, t)],
        _describe("piecewise_constant", boundaries=bounds, values=vals),
    )


def _decay_exponent(t: int, decay_steps: int, staircase: bool) -> float:
    """t / decay_steps, floored for the staircase variant (Keras' ``staircase=True``)."""
    return t // decay_steps if staircase else t / decay_steps


def inverse_time(lr: float, decay_rate: float, decay_steps: int = 1, *, staircase: bool = False) -> Schedule:
    """Inverse time (逆时衰减, notes 000 §7.2.3; "1/t 衰减" in 002): α_t = α0 / (1 + β·t/decay_steps).

    With ``decay_steps=1`` this is the notes' α0 / (1 + β t); Keras' ``InverseTimeDecay``
    divides by ``decay_steps`` the same way. torch has no equivalent.
    """
    lr, rate = _non_negative("lr", lr), _non_negative("decay_rate", decay_rate)
    decay_steps = _positive_int("decay_steps", decay_steps)
    return Schedule(
        lambda t: lr / (1.0 + rate * _decay_exponent(t, decay_steps, staircase)),
        _describe("inverse_time", lr=lr, decay_rate=rate, decay_steps=decay_steps, staircase=staircase),
    )


def exponential(lr: float, decay_rate: float, decay_steps: int = 1, *, staircase: bool = False) -> Schedule:
    """Exponential decay (指数衰减, notes 000 §7.2.3): α_t = α0 · β^(t / decay_steps), β in (0, 1].

    ``decay_steps=1`` is the notes' α0 β^t and torch's ``ExponentialLR(gamma=β)``;
    ``staircase=True`` floors t / decay_steps as Keras' ``ExponentialDecay``.
    """
    lr, rate = _non_negative("lr", lr), _fraction("decay_rate", decay_rate)
    decay_steps = _positive_int("decay_steps", decay_steps)
    return Schedule(
        lambda t: lr * rate ** _decay_exponent(t, decay_steps, staircase),
        _describe("exponential", lr=lr, decay_rate=rate, decay_steps=decay_steps, staircase=staircase),
    )


def natural_exponential(lr: float, decay_rate: float, decay_steps: int = 1, *, staircase: bool = False) -> Schedule:
    """Natural exponential decay (自然指数衰减, notes 000 §7.2.3): α_t = α0 · exp(−β t / decay_steps).

    Equals :func:`exponential` with base e^(−β); here β >= 0 is a rate, not a base.
    """
    lr, rate = _non_negative("lr", lr), _non_negative("decay_rate", decay_rate)
    decay_steps = _positive_int("decay_steps", decay_steps)
    return Schedule(
        lambda t: lr * math.exp(-rate * _decay_exponent(t, decay_steps, staircase)),
        _describe("natural_exponential", lr=lr, decay_rate=rate, decay_steps=decay_steps, staircase=staircase),
    )


def _progress(t: int, total_steps: int) -> float:
    """How far step t is through a span of ``total_steps`` steps: 0 at step 0, 1 from step T − 1 on."""
    return min(t, total_steps - 1) / max(total_steps - 1, 1)


def polynomial(lr: float, total_steps: int, end_lr: float = 0.0, power: float = 1.0) -> Schedule:
    """Polynomial decay over ``total_steps`` = T steps: α_t = (α0 − α_end)(1 − u)^p + α_end with
    u = min(t, T − 1)/(T − 1), so step 0 runs at α0 and the last step, T − 1, at α_end.

    torch's ``PolynomialLR(total_iters=T − 1, power=p)`` (``end_lr=0``) and Keras'
    ``PolynomialDecay(decay_steps=T − 1)`` (``cycle=False``) give the same rates: they count
    the steps *to* the end value, trainlab the steps that run. ``end_lr > lr`` gives a ramp up.
    """
    lr, end_lr = _non_negative("lr", lr), _non_negative("end_lr", end_lr)
    total_steps, power = _positive_int("total_steps", total_steps), _positive("power", power)

    def f(t: int) -> float:
        return (lr - end_lr) * (1.0 - _progress(t, total_steps)) ** power + end_lr

    return Schedule(
        f,
        _describe("polynomial", lr=lr, total_steps=total_steps, end_lr=end_lr, power=power),
        total_steps=total_steps,
        respan=lambda n: polynomial(lr, n, end_lr, power),
    )


def linear(lr: float, total_steps: int, end_lr: float = 0.0) -> Schedule:
    """Linear decay (线性衰减, notes 002) over T steps: α_t = α0 + (α_end − α0) · min(t, T − 1)/(T − 1).

    :func:`polynomial` with power 1; torch's ``LinearLR(start_factor=1,
    end_factor=end_lr/lr, total_iters=T − 1)``.
    """
    line = polynomial(lr, total_steps, end_lr, power=1.0)
    return Schedule(
        line._fn,
        _describe("linear", lr=line(0), total_steps=total_steps, end_lr=float(end_lr)),
        total_steps=line.total_steps,
        respan=lambda n: linear(lr, n, end_lr),
    )


def cosine(lr: float, total_steps: int, min_lr: float = 0.0) -> Schedule:
    """Cosine decay (余弦衰减, notes 000 §7.2.3) over T steps:
    α_t = α_min + ½(α0 − α_min)(1 + cos(π u)), u = min(t, T − 1)/(T − 1).

    Step 0 runs at α0 and the last step, T − 1, at exactly α_min; after the span the rate stays
    there. The notes' ½ α0 (1 + cos(tπ/T)) names the step that reaches 0 "T"; here
    ``total_steps`` counts the steps that run, so the notes' T is ``total_steps − 1``, and
    torch's ``CosineAnnealingLR(T_max=total_steps − 1)`` gives the same rates up to T − 1
    (after it, torch's cosine rises again).
    """
    lr, min_lr = _non_negative("lr", lr), _non_negative("min_lr", min_lr)
    total_steps = _positive_int("total_steps", total_steps)

    def f(t: int) -> float:
        return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * _progress(t, total_steps)))

    return Schedule(
        f,
        _describe("cosine", lr=lr, total_steps=total_steps, min_lr=min_lr),
        total_steps=total_steps,
        respan=lambda n: cosine(lr, n, min_lr),
    )


_CYCLIC_MODES = ("triangular", "triangular2", "exp_range")


def cyclic_triangular(
    min_lr: float, max_lr: float, step_size: int, mode: str = "triangular", gamma: float = 1.0
) -> Schedule:
    """Triangular cyclic learning rate (三角循环学习率, notes 000 §7.2.3), Smith 2017 §3.1.

    cycle = ⌊1 + t / (2s)⌋, x = |t/s − 2·cycle + 1|,
    α_t = α_min + (α_max − α_min) · max(0, 1 − x) · scale, with scale = 1 ("triangular"),
    1 / 2^(cycle−1) ("triangular2": the amplitude halves every cycle) or γ^t ("exp_range").
    Same as torch's ``CyclicLR(base_lr=min_lr, max_lr, step_size_up=s, mode, gamma)``.
    """
    min_lr, max_lr = _non_negative("min_lr", min_lr), _non_negative("max_lr", max_lr)
    if min_lr > max_lr:
        raise ValueError(f"min_lr must be <= max_lr ({max_lr!r}), got {min_lr!r}")
    step_size = _positive_int("step_size", step_size)
    if mode not in _CYCLIC_MODES:
        raise ValueError(
            f"mode must be one of {', '.join(_CYCLIC_MODES)}, got {mode!r}{did_you_mean(str(mode), _CYCLIC_MODES)}"
        )
    gamma = _fraction("gamma", gamma)
    if mode != "exp_range" and gamma != 1.0:
        raise ValueError(f"gamma only applies to mode='exp_range', got gamma={gamma!r} with mode={mode!r}")

    def f(t: int) -> float:
        cycle = 1 + t // (2 * step_size)
        x = abs(t / step_size - 2 * cycle + 1)
        if mode == "triangular":
            scale = 1.0
        elif mode == "triangular2":
            scale = 0.5 ** (cycle - 1)
        else:
            scale = gamma**t
        return min_lr + (max_lr - min_lr) * max(0.0, 1.0 - x) * scale

    return Schedule(
        f, _describe("cyclic_triangular", min_lr=min_lr, max_lr=max_lr, step_size=step_size, mode=mode, gamma=gamma)
    )


def sgdr(lr: float, first_period: int, period_mult: float = 1, min_lr: float = 0.0) -> Schedule:
    """SGDR, cosine annealing with warm restarts (notes 000 §7.2.3), Loshchilov & Hutter 2017 eq. 5.

    α_t = α_min + ½(α0 − α_min)(1 + cos(π T_cur / T_i)), where period i lasts
    T_i = T_0 · mult^i steps and T_cur counts steps since the last restart. Same as torch's
    ``CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)`` stepped per step; torch only takes
    an integer ``T_mult``, here any ``period_mult >= 1`` works.
    """
    lr, min_lr = _non_negative("lr", lr), _non_negative("min_lr", min_lr)
    first_period = _positive_int("first_period", first_period)
    period_mult = _real("period_mult", period_mult)
    if period_mult < 1:
        raise ValueError(f"period_mult must be >= 1, got {period_mult!r}")

    def f(t: int) -> float:
        if period_mult == 1:
            t_cur, t_i = float(t % first_period), float(first_period)
        else:  # periods grow geometrically, so this loop runs O(log t) times
            t_cur, t_i = float(t), float(first_period)
            while t_cur >= t_i:
                t_cur -= t_i
                t_i *= period_mult
        return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * t_cur / t_i))

    return Schedule(f, _describe("sgdr", lr=lr, first_period=first_period, period_mult=period_mult, min_lr=min_lr))


# --- composition ----------------------------------------------------------------------


def join(schedules: Sequence[ScheduleFn], boundaries: Sequence[int]) -> Schedule:
    """Run ``schedules[i]`` from step ``boundaries[i-1]`` on, each seeing steps counted from
    its own start: f(t) = schedules[i](t − boundaries[i−1]) (optax's ``join_schedules``).
    """
    bounds = _boundaries("boundaries", boundaries)
    _one_more("schedules", schedules, bounds)
    for i, s in enumerate(schedules):
        if not callable(s):
            raise ValueError(f"schedules[{i}] must be a callable step -> lr, got {s!r}")
    starts = [0, *bounds]
    parts = list(schedules)

    def f(t: int) -> float:
        i = bisect.bisect_right(bounds, t)
        return parts[i](t - starts[i])

    return Schedule(f, f"join({parts!r}, boundaries={bounds!r})")


def warmup(schedule: ScheduleFn, warmup_steps: int, start_lr: float = 0.0) -> Schedule:
    """Gradual warm-up (逐渐预热, notes 000 §7.2.3), Goyal et al. 2017 §2.2.

    α_t = start + (α0 − start) · t / T' for t < T', then the schedule from its own step 0,
    where α0 = schedule(0). With ``start_lr=0`` this is the notes' α'_t = t/T' · α0 (the notes
    count 1 <= t <= T'; here step 0 is the first step, so step T' is the first at α0).
    Goyal et al. start at the unscaled lr η and reach kη (see :func:`linear_scaling_rule`).

    ``total_steps`` means the whole run, warm-up included: a schedule with a span
    (``polynomial``, ``linear``, ``cosine``) is rebuilt over the ``total_steps − T'`` steps the
    warm-up leaves, so ``warmup(cosine(0.1, total_steps=1000), 100)`` runs at min_lr on step
    999, as ``cosine:lr=0.1,total_steps=1000,warmup_steps=100`` does. Any other schedule (step
    sizes, boundaries, periods, a plain function) counts its steps from the end of the warm-up.
    ``warmup_steps=0`` returns ``schedule`` unchanged.
    """
    if not callable(schedule):
        raise ValueError(f"schedule must be a callable step -> lr, got {schedule!r}")
    if warmup_steps == 0:
        return schedule if isinstance(schedule, Schedule) else Schedule(schedule, repr(schedule))
    warmup_steps = _positive_int("warmup_steps", warmup_steps)
    start_lr = _non_negative("start_lr", start_lr)
    after = schedule
    span = getattr(schedule, "total_steps", None)
    if isinstance(schedule, Schedule) and span is not None:
        if warmup_steps >= span:
            raise ValueError(f"warmup_steps ({warmup_steps}) must be smaller than total_steps ({span})")
        after = schedule.respan(span - warmup_steps)
    peak = after(0)

    def ramp(t: int) -> float:
        return start_lr + (peak - start_lr) * t / warmup_steps

    joined = join([ramp, after], [warmup_steps])
    return Schedule(joined, _describe("warmup", schedule=schedule, warmup_steps=warmup_steps, start_lr=start_lr))


def linear_scaling_rule(lr: float, batch_size: int, base_batch_size: int = 256) -> float:
    """Linear scaling rule (线性缩放规则, notes 000 §7.2.2), Goyal et al. 2017 §2.1:
    multiply the batch size by k, multiply the lr by k: α = α_base · K / K_base.

    Goyal et al. pair it with :func:`warmup` from the unscaled lr:
    ``warmup(f, W, start_lr=lr)`` where ``f`` starts at ``linear_scaling_rule(lr, K)``.
    """
    lr = _non_negative("lr", lr)
    return lr * _positive_int("batch_size", batch_size) / _positive_int("base_batch_size", base_batch_size)


# --- PyTorch adapter ------------------------------------------------------------------


class ScheduleLR(LRScheduler):
    """A ``torch.optim.lr_scheduler.LRScheduler`` driven by a pure schedule; see :func:`to_torch`."""

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: ScheduleFn, last_epoch: int = -1) -> None:
        if not callable(schedule):
            raise ValueError(f"schedule must be a callable step -> lr, got {schedule!r}")
        self.schedule = schedule
        super().__init__(optimizer, last_epoch)

    def _ratios(self) -> list[float]:
        base = [float(b) for b in self.base_lrs]
        if base[0] == 0:
            if any(b != 0 for b in base):
                raise ValueError(
                    "optimizer.param_groups[0]['lr'] is 0, so the other groups' lr ratios to it are "
                    "undefined; give the first group a non-zero lr"
                )
            return [1.0] * len(base)
        return [b / base[0] for b in base]

    def get_lr(self) -> list[float | torch.Tensor]:
        lr = self.schedule(self.last_epoch)
        return [lr * ratio for ratio in self._ratios()]

    def state_dict(self) -> dict[str, Any]:
        # The schedule is code, not state: leaving it out keeps the dict loadable with
        # torch.load(weights_only=True); the step count is all a pure schedule needs.
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "schedule")}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update({k: v for k, v in state_dict.items() if k not in ("optimizer", "schedule")})


def to_torch(optimizer: torch.optim.Optimizer, schedule: ScheduleFn) -> ScheduleLR:
    """Wrap ``schedule`` as a torch ``LRScheduler``: call ``.step()`` after each optimizer step.

    After ``k`` calls to ``.step()``, ``param_groups[0]['lr'] == schedule(k)`` and every
    other group gets ``schedule(k)`` times its initial lr divided by the first group's
    (so per-group lr multipliers survive). ``state_dict()`` holds only numbers; to resume,
    build the scheduler again with the same schedule, then load the optimizer's and the
    scheduler's state dicts.
    """
    return ScheduleLR(optimizer, schedule)


# --- config and CLI -------------------------------------------------------------------

_BUILDERS: dict[str, Callable[..., Schedule]] = {
    "constant": constant,
    "step": step,
    "piecewise_constant": piecewise_constant,
    "inverse_time": inverse_time,
    "exponential": exponential,
    "natural_exponential": natural_exponential,
    "polynomial": polynomial,
    "linear": linear,
    "cosine": cosine,
    "cyclic_triangular": cyclic_triangular,
    "sgdr": sgdr,
}
SCHEDULES: tuple[str, ...] = tuple(_BUILDERS)

# The argument that receives the optimizer's lr (None: the schedule's values are absolute).
_LR_ARGUMENT = {"cyclic_triangular": "max_lr", "piecewise_constant": None}
_WARMUP_KEYS = ("warmup_steps", "warmup_start_lr")


def _config_keys(name: str) -> list[str]:
    params = inspect.signature(_BUILDERS[name]).parameters
    return [p for p in params if p != "lr"] + list(_WARMUP_KEYS)


def from_config(name: str, options: dict[str, Any], *, base_lr: float, total_steps: int) -> Schedule:
    """Build a schedule from a run config's ``[schedule]`` section.

    ``options`` are the section's keys other than ``name``. ``base_lr`` (the optimizer's lr,
    already linearly scaled if asked) is the schedule's ``lr`` (``max_lr`` for
    cyclic_triangular, unless given). ``total_steps`` is the whole run, warm-up included.

    Warm-up: ``warmup_steps = W`` (and ``warmup_start_lr``, default 0) works with any
    schedule, as :func:`warmup`: steps 0..W-1 ramp linearly to the schedule's first lr, then
    the schedule runs on the step counted from W. Keys measured in steps (``step_size``,
    ``boundaries``, ``first_period``, ``decay_steps``) count from the end of warm-up;
    ``total_steps`` (default: the run's) counts the whole run from step 0, so a warm-up +
    cosine run of ``total_steps`` steps runs its last step at ``min_lr``.
    """
    if name not in _BUILDERS:
        raise unknown_name("schedule", name, SCHEDULES)
    accepted = _config_keys(name)
    for key in options:
        if key not in accepted:
            raise ConfigError(
                f"schedule.{key} is not a key of schedule '{name}'{did_you_mean(key, accepted)}; "
                f"it takes: {', '.join(accepted)}"
            )
    kwargs = dict(options)
    warmup_steps = kwargs.pop("warmup_steps", 0)
    warmup_start_lr = kwargs.pop("warmup_start_lr", 0.0)

    params = inspect.signature(_BUILDERS[name]).parameters
    if "total_steps" in params:
        kwargs.setdefault("total_steps", total_steps)  # the whole run; warmup() gives the decay the rest

    lr_argument = _LR_ARGUMENT.get(name, "lr")
    if lr_argument is not None:
        kwargs.setdefault(lr_argument, base_lr)
    missing = [p.name for p in params.values() if p.default is p.empty and p.name not in kwargs]
    if missing:
        raise ConfigError(f"schedule '{name}' needs schedule.{missing[0]}; it takes: {', '.join(accepted)}")
    try:
        schedule = _BUILDERS[name](**kwargs)
        if lr_argument is None and not math.isclose(schedule(0), base_lr, rel_tol=1e-12, abs_tol=0.0):
            raise ValueError(
                f"values[0] ({schedule(0)!r}) must equal the optimizer's lr ({base_lr!r}, after any "
                f"linear scaling): {name} values are absolute learning rates"
            )
        return warmup(schedule, warmup_steps, warmup_start_lr) if warmup_steps else schedule
    except ValueError as err:
        raise ConfigError(f"schedule.{err}") from None


def _parse_value(text: str) -> Any:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [_parse_value(part) for part in _split_top_level(inner)] if inner else []
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text.strip("'\"")


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets, so ``boundaries=[10,20]`` stays one item."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth < 0:
            raise ConfigError(f"unbalanced ']' in schedule spec {text!r}")
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise ConfigError(f"unbalanced '[' in schedule spec {text!r}")
    parts.append(text[start:])
    return parts


def parse_spec(text: str) -> tuple[str, dict[str, Any]]:
    """Parse the CLI's one-line schedule syntax ``NAME[:KEY=VALUE,KEY=VALUE,...]``.

    Values are integers, floats (``1e-3``), ``true``/``false``, lists in brackets
    (``boundaries=[1000,2000]``) or bare words (``mode=triangular2``). Example:
    ``"cosine:lr=0.1,total_steps=1000,warmup_steps=100"`` -> ``("cosine", {"lr": 0.1, ...})``.
    The name and keys are checked by :func:`from_config` / :func:`from_spec`.
    """
    name, _, rest = text.strip().partition(":")
    name = name.strip()
    if not name:
        raise ConfigError(f"schedule spec {text!r} has no name; write e.g. 'cosine:lr=0.1,total_steps=1000'")
    options: dict[str, Any] = {}
    for item in _split_top_level(rest) if rest.strip() else []:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key or not value.strip():
            raise ConfigError(f"schedule spec item {item.strip()!r} must look like key=value")
        if key in options:
            raise ConfigError(f"schedule spec sets {key!r} twice")
        options[key] = _parse_value(value)
    return name, options


def from_spec(text: str, *, base_lr: float | None = None, total_steps: int | None = None) -> tuple[Schedule, int]:
    """Build ``(schedule, total_steps)`` from a :func:`parse_spec` string for plotting.

    The spec may set ``lr`` (else ``base_lr``) and ``total_steps`` (else the argument),
    which is both the plot's length and the default of the schedule's own ``total_steps``.
    ``piecewise_constant`` needs no ``lr``: its ``values`` are absolute.
    """
    name, options = parse_spec(text)
    lr = options.pop("lr", base_lr)
    steps = options.pop("total_steps", total_steps)
    if name == "piecewise_constant" and lr is None and isinstance(options.get("values"), list):
        lr = options["values"][0] if options["values"] else None
    if lr is None:
        raise ConfigError(f"schedule spec {text!r} needs lr=... (the base learning rate)")
    if steps is None:
        raise ConfigError(f"schedule spec {text!r} needs total_steps=... (how many steps to draw)")
    try:
        steps = _positive_int("total_steps", steps)
        lr = _non_negative("lr", lr)
    except ValueError as err:
        raise ConfigError(f"schedule.{err}") from None
    return from_config(name, options, base_lr=lr, total_steps=steps), steps
