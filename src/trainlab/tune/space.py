"""Search spaces: ``Float``, ``Int``, ``Categorical``, conditions, and the unit-cube encoding.

A :class:`Space` is an ordered mapping ``name -> parameter``. A parameter may carry a
condition ``when={"optim.name": "sgd"}`` (or a list of allowed values): it is *active* only
when every parent named there is active and takes one of those values; an inactive
parameter is absent from the sampled ``params`` dict. Parents must come earlier in the
space, so one pass in order decides what is active.

Samplers that model the objective (the GP) see a point as a vector in the unit cube:
a ``Float``/``Int`` is one coordinate, linear in ``log(x)`` when ``log=True`` (the warp
that makes "1e-4 .. 1e-1" a uniform range); a ``Categorical`` with k choices is k
one-hot coordinates. Inactive parameters encode as 0 ("imputation" of Lévesque et al.
2017, the simplest treatment of conditional spaces for a stationary kernel).

Source: NNDL (``000_*.txt`` §7.6): hyperparameters are structure (layers, widths,
activation), optimization (method, learning rate, batch size) and regularization
coefficients — mixed continuous / integer / categorical, with conditional parts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainlab.errors import ConfigError

Value = float | int | str | bool


def _check_when(name: str, when: Mapping[str, Any] | None) -> dict[str, tuple[Any, ...]]:
    if when is None:
        return {}
    if not isinstance(when, Mapping):
        raise ConfigError(f"parameter '{name}': when must be a mapping parent -> value(s), got {when!r}")
    out = {}
    for parent, allowed in when.items():
        values = tuple(allowed) if isinstance(allowed, list | tuple) else (allowed,)
        if not values:
            raise ConfigError(f"parameter '{name}': when['{parent}'] lists no values")
        out[str(parent)] = values
    return out


@dataclass(frozen=True)
class _Param:
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict, kw_only=True)

    def is_active(self, assigned: Mapping[str, Any]) -> bool:
        """Active when every parent is assigned (active) and takes an allowed value."""
        return all(p in assigned and assigned[p] in allowed for p, allowed in self.when.items())


@dataclass(frozen=True)
class Float(_Param):
    """A real in ``[low, high]``; ``log=True`` samples ``log(x)`` uniformly (needs ``low > 0``).

    ``steps`` (optional) is the number of grid points :class:`~trainlab.tune.Grid` uses
    (log-spaced when ``log``); other samplers ignore it.
    """

    low: float
    high: float
    log: bool = False
    steps: int | None = None
    name: str = field(default="", kw_only=True, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "when", _check_when(self.name, self.when))
        if not self.name:  # checked when a Space names it, so the error can say which one
            return
        _check_range(self, float(self.low), float(self.high))
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 2):
            raise ConfigError(f"parameter '{self.name}': steps must be an integer >= 2, got {self.steps!r}")

    def to_unit(self, x: float) -> float:
        lo, hi, v = (math.log(self.low), math.log(self.high), math.log(x)) if self.log else (self.low, self.high, x)
        return (v - lo) / (hi - lo)

    def from_unit(self, u: float) -> float:
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            return float(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))
        return float(self.low + u * (self.high - self.low))

    def grid(self, steps: int | None) -> list[float]:
        n = self.steps or steps
        if n is None:
            raise ConfigError(
                f"parameter '{self.name}': a continuous range [{self.low}, {self.high}] cannot be enumerated; "
                "give it steps=N (or Grid(steps=N))"
            )
        return [self.from_unit(u) for u in np.linspace(0.0, 1.0, n)]


@dataclass(frozen=True)
class Int(_Param):
    """An integer in ``[low, high]`` (both included); ``log=True`` for ranges like 16..1024."""

    low: int
    high: int
    log: bool = False
    name: str = field(default="", kw_only=True, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "when", _check_when(self.name, self.when))
        if not self.name:  # checked when a Space names it, so the error can say which one
            return
        for bound in ("low", "high"):
            if not isinstance(getattr(self, bound), int | np.integer) or isinstance(getattr(self, bound), bool):
                raise ConfigError(f"parameter '{self.name}': {bound} must be an integer, got {getattr(self, bound)!r}")
        _check_range(self, self.low, self.high)

    # An integer k owns the interval [k - 0.5, k + 0.5] so each value gets an equal share
    # of the unit cube (equal in log-space when log=True).
    def _bounds(self) -> tuple[float, float]:
        lo, hi = self.low - 0.5, self.high + 0.5
        return (math.log(max(lo, 0.5)), math.log(hi)) if self.log else (lo, hi)

    def to_unit(self, x: float) -> float:
        lo, hi = self._bounds()
        v = math.log(x) if self.log else x
        return (v - lo) / (hi - lo)

    def from_unit(self, u: float) -> int:
        lo, hi = self._bounds()
        v = lo + min(max(float(u), 0.0), 1.0) * (hi - lo)
        return int(min(max(round(math.exp(v) if self.log else v), self.low), self.high))

    def grid(self, steps: int | None) -> list[int]:
        return list(range(self.low, self.high + 1))


@dataclass(frozen=True)
class Categorical(_Param):
    """One of ``choices`` (strings, numbers, booleans; unordered)."""

    choices: tuple[Value, ...]
    name: str = field(default="", kw_only=True, compare=False)

    def __init__(self, choices: Iterable[Value], *, when: Mapping[str, Any] | None = None, name: str = ""):
        object.__setattr__(self, "choices", tuple(choices) if not isinstance(choices, str) else (choices,))
        object.__setattr__(self, "when", _check_when(name, when))
        object.__setattr__(self, "name", name)
        if not name:  # checked when a Space names it, so the error can say which one
            return
        if not self.choices:
            raise ConfigError(f"parameter '{name}': choices is empty; give at least one value")
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise ConfigError(f"parameter '{name}': choices {list(self.choices)} contain duplicates")

    def grid(self, steps: int | None) -> list[Value]:
        return list(self.choices)

    def index(self, value: Any) -> int:
        for i, c in enumerate(self.choices):
            if c == value and isinstance(c, bool) == isinstance(value, bool):  # True is not 1
                return i
        raise ConfigError(f"parameter '{self.name}': {value!r} is not one of {list(self.choices)}")


Param = Float | Int | Categorical


def _check_range(p: Float | Int, low: float, high: float) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ConfigError(f"parameter '{p.name}': low and high must be finite, got [{low}, {high}]")
    if low >= high:
        raise ConfigError(f"parameter '{p.name}': low must be < high, got low={low}, high={high}")
    if p.log and low <= 0:
        raise ConfigError(f"parameter '{p.name}': log=True needs low > 0, got low={low}")


def _named(name: str, p: Param) -> Param:
    if not isinstance(p, Float | Int | Categorical):
        raise ConfigError(f"parameter '{name}': expected Float, Int or Categorical, got {type(p).__name__}")
    if isinstance(p, Categorical):
        return Categorical(p.choices, when=p.when, name=name)
    kw = {f: getattr(p, f) for f in p.__dataclass_fields__ if f not in ("name", "when")}
    return type(p)(**kw, when=p.when, name=name)


class Space(Mapping[str, Param]):
    """An ordered set of named parameters; parents of conditions come first.

    Parameters are checked when the space names them (``low < high``, ``low > 0`` with
    ``log``, non-empty ``choices``), so every error says which parameter is wrong.

    >>> space = Space({"optim.name": Categorical(["sgd", "adam"]),
    ...                "optim.lr": Float(1e-4, 1.0, log=True),
    ...                "optim.momentum": Float(0.0, 0.99, when={"optim.name": "sgd"})})
    >>> sorted(space.sample(np.random.default_rng(0)))  # doctest: +SKIP
    """

    def __init__(self, params: Mapping[str, Param]):
        if not params:
            raise ConfigError("a search space needs at least one parameter")
        self._params: dict[str, Param] = {}
        for name, p in params.items():
            p = _named(str(name), p)
            for parent in p.when:
                if parent not in self._params:
                    where = "later in the space" if parent in params else "not in the space"
                    raise ConfigError(
                        f"parameter '{name}': condition on '{parent}', which is {where}; list parents first"
                    )
            self._params[str(name)] = p

    def __getitem__(self, name: str) -> Param:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Space({self._params!r})"

    # -- activity -----------------------------------------------------------------------
    def active(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` restricted to the parameters active under their own parents."""
        out: dict[str, Any] = {}
        for name, p in self._params.items():
            if name in params and p.is_active(out):
                out[name] = params[name]
        return out

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check a full assignment (e.g. an enqueued one): every active parameter present and in range."""
        out: dict[str, Any] = {}
        for name, p in self._params.items():
            if not p.is_active(out):
                continue
            if name not in params:
                raise ConfigError(f"parameter '{name}' is active but missing from {dict(params)}")
            v = params[name]
            if isinstance(p, Categorical):
                v = p.choices[p.index(v)]
            elif not (p.low <= v <= p.high):
                raise ConfigError(f"parameter '{name}': {v!r} is outside [{p.low}, {p.high}]")
            out[name] = int(v) if isinstance(p, Int) else float(v) if isinstance(p, Float) else v
        return out

    # -- sampling and encoding ----------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """One point drawn uniformly (log-uniformly where ``log``) over the active parameters."""
        return self.from_uniform(rng.random(len(self)))

    def from_uniform(self, u: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """Map one coordinate in [0, 1) per parameter to a point (a k-way categorical takes
        ``choices[floor(u * k)]``); used by random and quasi-random (Sobol) sampling."""
        out: dict[str, Any] = {}
        for (name, p), ui in zip(self._params.items(), u):
            if not p.is_active(out):
                continue
            if isinstance(p, Categorical):
                out[name] = p.choices[min(int(ui * len(p.choices)), len(p.choices) - 1)]
            else:
                out[name] = p.from_unit(ui)
        return out

    @property
    def dims(self) -> int:
        """Coordinates in the unit-cube encoding (1 per number, k per k-way categorical)."""
        return sum(len(p.choices) if isinstance(p, Categorical) else 1 for p in self._params.values())

    def slices(self) -> dict[str, slice]:
        out, i = {}, 0
        for name, p in self._params.items():
            k = len(p.choices) if isinstance(p, Categorical) else 1
            out[name] = slice(i, i + k)
            i += k
        return out

    def to_unit(self, params: Mapping[str, Any]) -> np.ndarray:
        """Encode a point; inactive parameters are all-zero coordinates."""
        x = np.zeros(self.dims)
        for (name, p), sl in zip(self._params.items(), self.slices().values()):
            if name not in params:
                continue
            if isinstance(p, Categorical):
                x[sl.start + p.index(params[name])] = 1.0
            else:
                x[sl.start] = p.to_unit(params[name])
        return x

    def from_unit(self, u: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """Decode a unit-cube vector (categoricals by argmax); only active parameters come back."""
        u = np.asarray(u, dtype=float)
        out: dict[str, Any] = {}
        for (name, p), sl in zip(self._params.items(), self.slices().values()):
            if not p.is_active(out):
                continue
            if isinstance(p, Categorical):
                block = u[sl]
                out[name] = p.choices[int(np.argmax(block))]
            else:
                out[name] = p.from_unit(u[sl.start])
        return out

    @property
    def is_continuous(self) -> bool:
        """Only unconditional Float parameters: every vector of the unit cube encodes a point."""
        return all(isinstance(p, Float) and not p.when for p in self._params.values())

    def numeric_mask(self) -> np.ndarray:
        """True for coordinates of Float/Int parameters (those a local optimizer may move)."""
        mask = np.zeros(self.dims, dtype=bool)
        for p, sl in zip(self._params.values(), self.slices().values()):
            if not isinstance(p, Categorical):
                mask[sl] = True
        return mask

    # -- serialization ------------------------------------------------------------------
    def to_dict(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name, p in self._params.items():
            if isinstance(p, Categorical):
                d: dict[str, Any] = {"type": "categorical", "choices": list(p.choices)}
            else:
                d = {"type": "float" if isinstance(p, Float) else "int", "low": p.low, "high": p.high, "log": p.log}
                if isinstance(p, Float) and p.steps is not None:
                    d["steps"] = p.steps
            if p.when:
                d["when"] = {k: list(v) for k, v in p.when.items()}
            out[name] = d
        return out

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Space:
        """Build from ``{name: {"type": "float", "low": .., "high": .., "log": .., "when": {..}}}``;
        a plain list is shorthand for a categorical. Errors name the parameter and key."""
        if not isinstance(spec, Mapping):
            raise ConfigError(f"search params must be a table name -> spec, got {spec!r}")
        return cls({name: param_from_dict(name, s) for name, s in spec.items()})


_KEYS = {
    "float": {"type", "low", "high", "log", "steps", "when"},
    "int": {"type", "low", "high", "log", "when"},
    "categorical": {"type", "choices", "when"},
}


def param_from_dict(name: str, spec: Any) -> Param:
    """One parameter from its TOML/JSON form (see :meth:`Space.from_dict`)."""
    from trainlab.errors import did_you_mean, unknown_name

    if isinstance(spec, list):
        return Categorical(spec, name=name)
    if not isinstance(spec, Mapping):
        raise ConfigError(f"parameter '{name}': expected a table with 'type' or a list of choices, got {spec!r}")
    kind = spec.get("type", "categorical" if "choices" in spec else "float")
    if kind not in _KEYS:
        raise unknown_name(f"type of parameter '{name}'", str(kind), _KEYS)
    for key in spec:
        if key not in _KEYS[kind]:
            raise ConfigError(
                f"parameter '{name}': unknown key '{key}' for type {kind}{did_you_mean(key, _KEYS[kind])}; "
                f"allowed: {', '.join(sorted(_KEYS[kind]))}"
            )
    when = _check_when(name, spec.get("when"))
    try:
        if kind == "categorical":
            return Categorical(spec.get("choices", []), when=when, name=name)
        low, high = spec["low"], spec["high"]
    except KeyError as err:
        raise ConfigError(f"parameter '{name}': missing key {err.args[0]!r} for type {kind}") from None
    if kind == "float":
        return Float(float(low), float(high), bool(spec.get("log", False)), spec.get("steps"), when=when, name=name)
    return Int(low, high, bool(spec.get("log", False)), when=when, name=name)
