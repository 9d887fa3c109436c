"""Neural architecture search: an architecture space and a REINFORCE controller.

NNDL ``000_*.txt`` §7.6.5: NAS (Zoph & Le, ICLR 2017) uses a *controller* that emits the
description of a child network; the controller is trained by reinforcement learning.

:class:`ArchitectureSpace` describes MLP architectures as a sequence of categorical
decisions — depth, the width of each layer (``width_i`` is active only when
``depth >= i``), activation, normalization, dropout, skip connections — and maps a choice
to run-config overrides (``model.hidden``, ``model.activation``, ``model.norm``,
``model.dropout``, ``model.residual``).

Two searchers produce trials in the same study store: random search (``Random`` over
that space) and :class:`Reinforce`, the controller of Zoph & Le (2017) §3.1–3.2: a
recurrent policy (LSTM cell) emits one decision per step, each step's input being the
embedding of the previous decision; after a child network is trained, its reward R
(validation accuracy) updates the policy by REINFORCE (Williams 1992) with a baseline::

    ∇J(θ) ≈ Σ_t ∇_θ log P(a_t | a_(t-1):1; θ) (R - b)
    b ← β b + (1 - β) R        (exponential moving average of past rewards)

Like every trainlab sampler it is a pure function of the stored trials: the policy is
rebuilt from the study seed and trained by replaying the completed trials in order,
so resumed and parallel studies need no controller checkpoint. Zoph & Le train the
controller with many parallel children per update; here each trial is one update (a batch
of 1), with Adam as in the paper.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.tune.gp import single_threaded
from trainlab.tune.samplers import Sampler
from trainlab.tune.space import Categorical, Float, Space
from trainlab.tune.trial import COMPLETE, FrozenTrial


@dataclass(frozen=True)
class ArchitectureSpace:
    """The choices for an MLP; each tuple lists the allowed values of one decision."""

    depth: tuple[int, ...] = (1, 2, 3)
    widths: tuple[int, ...] = (32, 64, 128, 256)
    activations: tuple[str, ...] = ("relu", "tanh", "gelu")
    norms: tuple[str, ...] = ("none", "batch", "layer")
    dropouts: tuple[float, ...] = (0.0, 0.1, 0.3)
    skip: tuple[bool, ...] = (False, True)

    def __post_init__(self) -> None:
        for name in ("depth", "widths", "activations", "norms", "dropouts", "skip"):
            values = getattr(self, name)
            if isinstance(values, str) or not isinstance(values, Sequence) or not values:
                raise ConfigError(f"architecture.{name}: give a non-empty list of choices, got {values!r}")
            object.__setattr__(self, name, tuple(values))
        for name, values in (("depth", self.depth), ("widths", self.widths)):
            if any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
                raise ConfigError(f"architecture.{name}: every choice must be an integer >= 1, got {list(values)}")
        if any(not (0 <= p < 1) for p in self.dropouts):
            raise ConfigError(
                f"architecture.dropouts: drop probabilities must lie in [0, 1), got {list(self.dropouts)}"
            )

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> ArchitectureSpace:
        fields = set(cls.__dataclass_fields__)
        for key in spec:
            if key not in fields:
                from trainlab.errors import did_you_mean

                raise ConfigError(
                    f"search.architecture: unknown key '{key}'{did_you_mean(key, fields)}; allowed: {', '.join(sorted(fields))}"
                )
        return cls(**spec)

    def to_dict(self) -> dict[str, list]:
        return {k: list(getattr(self, k)) for k in self.__dataclass_fields__}

    def space(self) -> Space:
        """The decisions in the order the controller emits them."""
        params: dict[str, Any] = {"depth": Categorical(self.depth)}
        for i in range(1, max(self.depth) + 1):
            deep_enough = [d for d in self.depth if d >= i]
            params[f"width_{i}"] = Categorical(self.widths, when={"depth": deep_enough})
        params.update(
            activation=Categorical(self.activations),
            norm=Categorical(self.norms),
            dropout=Categorical(self.dropouts),
            skip=Categorical(self.skip),
        )
        return Space(params)

    @staticmethod
    def to_overrides(params: dict[str, Any]) -> dict[str, Any]:
        """Run-config overrides for one architecture (the ``[model]`` keys of an MLP)."""
        return {
            "model.hidden": [params[f"width_{i}"] for i in range(1, params["depth"] + 1)],
            "model.activation": params["activation"],
            "model.norm": params["norm"],
            "model.dropout": params["dropout"],
            "model.residual": params["skip"],
        }


def _choices(name: str, p) -> list:
    if isinstance(p, Float) and p.steps is None:
        raise ConfigError(f"Reinforce: parameter '{name}' is a continuous range; give it steps=N or use choices")
    values = p.grid(None)
    if len(values) > 256:
        raise ConfigError(f"Reinforce: parameter '{name}' has {len(values)} values; at most 256 per decision")
    return values


class _Policy(nn.Module):
    """LSTM controller: one softmax head and one embedding table per decision."""

    def __init__(self, sizes: list[int], hidden: int):
        super().__init__()
        self.start = nn.Parameter(torch.zeros(hidden))
        self.cell = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, k) for k in sizes)
        self.embeddings = nn.ModuleList(nn.Embedding(k, hidden) for k in sizes)

    def run(
        self, space: Space, values: dict[str, list], fixed: dict[str, Any] | None, generator: torch.Generator | None
    ):
        """Walk the decisions in order; sample (``fixed`` None) or score the given choices.
        Returns the chosen params and the summed log-probability."""
        h = c = torch.zeros(1, self.start.numel())
        x = self.start[None, :]
        chosen: dict[str, Any] = {}
        log_prob = torch.zeros(())
        for i, (name, p) in enumerate(space.items()):
            if not p.is_active(chosen):
                continue
            h, c = self.cell(x, (h, c))
            logits = self.heads[i](h)[0]
            if fixed is None:
                k = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=generator))
            else:
                k = values[name].index(fixed[name])
            log_prob = log_prob + torch.log_softmax(logits, -1)[k]
            chosen[name] = values[name][k]
            x = self.embeddings[i](torch.tensor([k]))
        return chosen, log_prob


class Reinforce(Sampler):
    """The REINFORCE controller of Zoph & Le (2017) as a sampler over a discrete space.

    Args:
        hidden: LSTM width (Zoph & Le: 35 units per layer, 2 layers; one layer here).
        lr: Adam learning rate of the controller (the paper: 6e-4 over thousands of
            children; small studies need a larger step).
        baseline_decay: β of the moving-average baseline (the first reward initializes it).
    """

    name = "reinforce"

    def __init__(self, hidden: int = 32, lr: float = 0.05, baseline_decay: float = 0.8):
        if not isinstance(hidden, int) or hidden < 1:
            raise ConfigError(f"Reinforce: hidden must be an integer >= 1, got {hidden!r}")
        if not lr > 0:
            raise ConfigError(f"Reinforce: lr must be > 0, got {lr!r}")
        if not 0 <= baseline_decay < 1:
            raise ConfigError(f"Reinforce: baseline_decay must lie in [0, 1), got {baseline_decay!r}")
        self.hidden, self.lr, self.baseline_decay = hidden, float(lr), float(baseline_decay)

    def spec(self):
        return {"name": self.name, "hidden": self.hidden, "lr": self.lr, "baseline_decay": self.baseline_decay}

    def policy(
        self, space: Space, trials: Sequence[FrozenTrial], seed: int, direction: str = "maximize"
    ) -> tuple[_Policy, dict]:
        """The controller after replaying every complete trial (in trial order)."""
        values = {name: _choices(name, p) for name, p in space.items()}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            policy = _Policy([len(v) for v in values.values()], self.hidden)
        optimizer = torch.optim.Adam(policy.parameters(), lr=self.lr)
        sign = 1.0 if direction == "maximize" else -1.0
        baseline = None
        for t in sorted(trials, key=lambda t: t.number):
            if t.state != COMPLETE or t.value is None or not math.isfinite(t.value):
                continue
            reward = sign * t.value
            baseline = reward if baseline is None else baseline
            _, log_prob = policy.run(space, values, space.active(t.params), None)
            loss = -(reward - baseline) * log_prob
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            baseline = self.baseline_decay * baseline + (1 - self.baseline_decay) * reward
        return policy, values

    def sample(self, space, trials, *, number, seed, direction="maximize"):
        with single_threaded():
            policy, values = self.policy(space, trials, seed, direction)
            generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, number]).generate_state(1)[0]))
            with torch.no_grad():
                params, _ = policy.run(space, values, None, generator)
        return params
