"""Population training: K runs of one architecture trained as one batched program (issue 20).

A comparison trains the same small model for several seeds (and often several learning rates):
K runs one after another, each paying Python's and the kernel launches' overhead per step. A
*population* stacks the K members' parameters along a leading member axis ``[K, ...]`` and runs
every layer once for all members with batched kernels of our own — ``torch.baddbmm`` for linear
layers and recurrent steps, one grouped convolution (``groups=K``) for conv layers — so a step
costs one member's Python and launch overhead plus K members' arithmetic. (``torch.func.vmap``
of ``functional_call`` does the same but adds its own per-op overhead, which dominates for small
recurrent nets.)

Member k is the sequential run of its config, computed in another order of floating-point
operations:

- its initialization is the sequential run's: each member is built by :func:`trainlab.train.setup`
  from its own config and seed, then stacked;
- its batch order is the sequential run's: each member keeps the ``BatchIterator`` (own
  generator) of its setup;
- its dropout masks are the sequential run's: each member draws them, in the same order and
  shapes, from its own generator, started at the global RNG state its setup left;
- its scalar hyperparameters are its own: lr, momentum, betas, eps, weight decay (as ``[K]``
  tensors in trainlab's optimizers, :mod:`trainlab.optim.members`), the schedule (each member's
  own schedule function, evaluated each step into a ``[K]`` lr), dropout probability,
  label-smoothing ε and the clipping thresholds.

The loss minimized is Σ_k L_k, whose gradient with respect to member k's parameters is ∇L_k:
members do not interact. A member whose loss becomes non-finite is finished as ``diverged`` (as
its sequential run would be, at the same step) and removed; the others go on.

Each member is an ordinary run in the store — same rows, metrics and final values as the
sequential run, so reports and summaries read it unchanged — with ``final["population"]``
(``"<id>:<member>/<size>"``) and a ``population`` artifact: the population's checkpoint, from
which ``trainlab run --resume RUN_ID`` of any member resumes the whole population bit for bit.

Configs differ only in :data:`VECTOR_KEYS`, ``schedule.*``, ``seed`` and ``name`` to share a
population (:func:`structure_key`); :func:`unsupported` says why a config cannot be in one
(the caller then runs it sequentially and logs the reason).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from trainlab.errors import ConfigError
from trainlab.store import MetricBuffer, Store, resume_hint
from trainlab.train.callbacks import BestTracker
from trainlab.train.config import RunConfig, config_digest, flatten, load_config

log = logging.getLogger("trainlab.population")

# Keys whose values may differ between the members of one population (besides seed, name and
# every schedule.* key): scalars of the update rule, the loss and the forward pass.
VECTOR_KEYS = (
    "optim.lr", "optim.momentum", "optim.dampening", "optim.weight_decay", "optim.betas", "optim.eps",
    "optim.alpha", "optim.rho", "optim.lr_decay", "optim.initial_accumulator_value",
    "model.dropout", "train.label_smoothing", "train.clip_norm", "train.clip_value",
)  # fmt: skip
_NOT_COMPUTED = ("name", "seed", "compare", "search", "log")
MODELS = ("mlp", "linear", "deep_linear", "cnn", "rnn", "gru", "lstm")
_ELEMENTWISE_ACTIVATIONS = (
    "sigmoid", "hard_sigmoid", "softplus", "tanh", "softsign", "relu", "leaky_relu", "thresholded_relu",
    "linear", "elu", "gelu", "gelu_tanh", "selu",
)  # fmt: skip


def structure_key(cfg: RunConfig) -> str:
    """A digest of everything a population's members must share: the config without seed,
    name, the orchestrators' tables, :data:`VECTOR_KEYS` and the schedule."""
    flat = flatten({k: v for k, v in cfg.to_dict().items() if k not in _NOT_COMPUTED})
    kept = {k: v for k, v in flat.items() if k not in VECTOR_KEYS and not k.startswith("schedule.")}
    # a clipping threshold may differ, but clipping or not changes what is logged (grad_norm)
    kept["clip_norm?"] = cfg.train.clip_norm is not None
    return config_digest(kept)


def unsupported(cfg: RunConfig) -> str | None:
    """Why ``cfg`` cannot train in a population (None: it can)."""
    m, t, r = cfg.model, cfg.train, cfg.regularize
    for section in ("model", "data", "loss"):  # the user's code (trainlab.targets) has no batched kernels
        if getattr(cfg, section).target or getattr(cfg, section).python:
            return f"{section}.target (your own code) has no batched kernels"
    if m.init_from or m.forget_bias is not None:
        return "model.init_from / model.forget_bias are not batched"
    if m.name not in MODELS:
        return f"model.name = '{m.name}' has no batched kernels"
    if m.norm != "none":
        return f"model.norm = '{m.norm}' has no batched kernels"
    if m.name in ("rnn", "gru", "lstm"):
        if m.dropout_type not in ("standard", "naive"):
            return f"model.dropout_type = '{m.dropout_type}' for an RNN has no batched kernels"
        if m.dropout > 0 and len(m.hidden) > 1:
            return "dropout between stacked RNN layers (torch's internal dropout) has no batched kernels"
        if m.bidirectional or m.readout != "last":
            return "model.bidirectional / model.readout = 'all' have no batched kernels"
    else:
        if m.dropout > 0 and m.dropout_type != "standard":
            return f"model.dropout_type = '{m.dropout_type}' has no batched kernels"
        if m.name != "deep_linear" and m.activation not in _ELEMENTWISE_ACTIVATIONS:
            return f"model.activation = '{m.activation}' is not elementwise without parameters"
    if cfg.distill.teacher:
        return "distillation (distill.teacher) is not batched"
    if r.l1 or r.l2 or r.max_norm is not None or r.norm_bound is not None:
        return "regularize.l1 / l2 / max_norm / norm_bound are not batched"
    if cfg.data.augment:
        return "data.augment is not batched"
    if cfg.diagnose.stats_every:
        return "diagnose.stats_every needs a model per run"
    if cfg.log.to:
        return "log.to mirrors need a run each"
    if t.early_stopping is not None:
        return "train.early_stopping stops runs at different steps"
    if t.device not in ("cpu", "auto") or (t.device == "auto" and torch.cuda.is_available()):
        return f"train.device = '{t.device}': populations run on the CPU"
    if t.precision != "32" or t.accumulate != 1 or t.compile:
        return "train.precision / accumulate / compile are not batched"
    return None


def plan(
    configs: Sequence[RunConfig], *, min_size: int = 2, max_size: int | None = None
) -> tuple[list[list[int]], dict[int, str]]:
    """Split ``configs`` into populations (lists of indices, each of ``min_size`` to ``max_size``
    members sharing a :func:`structure_key`) and the rest, each with the reason it runs alone."""
    by_key: dict[str, list[int]] = {}
    alone: dict[int, str] = {}
    for i, cfg in enumerate(configs):
        reason = unsupported(cfg)
        if reason is None:
            by_key.setdefault(structure_key(cfg), []).append(i)
        else:
            alone[i] = reason
    populations = []
    for members in by_key.values():
        size = max_size or len(members)
        for start in range(0, len(members), size):
            chunk = members[start : start + size]
            if len(chunk) >= min_size:
                populations.append(chunk)
            else:
                for i in chunk:
                    alone[i] = "no other run of the same architecture and options to share a population with"
    return populations, alone


# ------------------------------------------------------------------------------------------
# batched kernels


def linear(x: Tensor, w_t: Tensor, b: Tensor | None) -> Tensor:
    """Member k: x_k W_kᵀ + b_k, for x [K, B, in], W_kᵀ stacked as ``w_t`` [K, in, out], b [K, out].

    The stacked weights are kept transposed (a member's weight W_k is ``w_t[k].T``): then the
    gradient ``bmm(xᵀ, grad)`` lands in the parameter's own layout, with no copy per step."""
    if b is None:
        return torch.bmm(x, w_t)
    return torch.baddbmm(b.unsqueeze(1), x, w_t)


class _Dropout:
    """Per-member inverted dropout with per-member p and generators, drawing each member's mask
    exactly as ``nn.Dropout`` does on that member's own tensor: ``empty_like(x).bernoulli_(1 − p)``."""

    def __init__(self, p: list[float], generators: list[torch.Generator]):
        self.p, self.generators = p, generators

    def active(self, training: bool) -> bool:
        return training and any(p > 0 for p in self.p)

    def masks(self, shape: Sequence[int], like: Tensor) -> Tensor:
        """[K, *shape] keep-masks scaled by 1/(1 − p_k) (ones for p_k = 0)."""
        out = []
        for p, g in zip(self.p, self.generators):
            if p > 0:
                out.append(torch.empty(tuple(shape), dtype=like.dtype).bernoulli_(1 - p, generator=g).div_(1 - p))
            else:
                out.append(torch.ones(tuple(shape), dtype=like.dtype))
        return torch.stack(out).to(like.device)

    def __call__(self, x: Tensor, training: bool) -> Tensor:
        """x [K, ...]: member k's slice times its mask."""
        if not self.active(training):
            return x
        return x * self.masks(x.shape[1:], x)


class _Recurrence(torch.autograd.Function):
    """A whole recurrent layer over T steps for all members, with a hand-written backward
    (backpropagation through time) — the per-step autograd graph of a small cell costs more
    than its arithmetic. Inputs: the input projections ``gi`` [T, K, B, G] (for the tanh RNN
    both biases included), the transposed recurrent weights ``w_hh_t`` [K, H, G], ``b_hh``
    [K, G] (GRU only: b_hn stays inside r ⊙ ·) and ``last_only``: only the last state is used
    downstream (its gradient is the only one read). Returns every step's state [T, K, B, H].

    tanh RNN:  h_t = tanh(a_t + h_{t−1} W),  backward  δz_t = (δh_t + ∂L/∂h_t) ⊙ (1 − h_t²),
               δh_{t−1} = δz_t Wᵀ,  ∂L/∂W = Σ_t h_{t−1}ᵀ δz_t.
    GRU:       b = h_{t−1} W + b_hh,  r, z = σ(a_rz + b_rz),  n = tanh(a_n + r ⊙ b_n),
               h_t = n + z ⊙ (h_{t−1} − n);  backward, with g = δh_t + ∂L/∂h_t:
               δa_n = g (1 − z)(1 − n²),  δb_n = δa_n ⊙ r,  δ(r pre) = δa_n ⊙ b_n ⊙ r(1 − r),
               δ(z pre) = g (h_{t−1} − n) ⊙ z(1 − z),  δh_{t−1} = g ⊙ z + δb Wᵀ.
    """

    @staticmethod
    def forward(ctx, kind: str, gi: Tensor, w_hh_t: Tensor, b_hh: Tensor, last_only: bool) -> Tensor:
        T, K, B, _ = gi.shape
        H = w_hh_t.shape[1]
        out = gi.new_empty(T, K, B, H)
        h = gi.new_zeros(K, B, H)
        if kind == "rnn":
            for t in range(T):
                h = torch.baddbmm(gi[t], h, w_hh_t, out=out[t]).tanh_()
            ctx.save_for_backward(out, w_hh_t)
        else:
            gh_all, rz_all, n_all = gi.new_empty(T, K, B, 3 * H), gi.new_empty(T, K, B, 2 * H), gi.new_empty(T, K, B, H)
            bias = b_hh.unsqueeze(1)
            for t in range(T):
                a, gh = gi[t], torch.baddbmm(bias, h, w_hh_t, out=gh_all[t])
                rz = torch.add(a[..., : 2 * H], gh[..., : 2 * H], out=rz_all[t]).sigmoid_()
                n = torch.addcmul(a[..., 2 * H :], rz[..., :H], gh[..., 2 * H :], out=n_all[t]).tanh_()
                h = torch.addcmul(n, rz[..., H:], h - n, out=out[t])
            ctx.save_for_backward(out, w_hh_t, gh_all, rz_all, n_all)
        ctx.kind, ctx.last_only = kind, last_only
        return out

    @staticmethod
    def backward(ctx, d_out: Tensor):
        kind, last_only = ctx.kind, ctx.last_only
        out, w_hh_t = ctx.saved_tensors[:2]
        T, K, B, H = out.shape
        w = w_hh_t.transpose(1, 2)  # [K, G, H]
        prev = torch.cat([out.new_zeros(1, K, B, H), out[:-1]])  # h_{t−1}
        dh = out.new_zeros(K, B, H)
        if kind == "rnn":
            deriv = 1 - out * out
            d_pre = torch.empty_like(out)
            for t in range(T - 1, -1, -1):
                g = d_out[t] if t == T - 1 else (dh if last_only else dh + d_out[t])
                dh = torch.bmm(torch.mul(g, deriv[t], out=d_pre[t]), w)
            d_gi, d_b = d_pre, None
        else:
            gh, rz, n = ctx.saved_tensors[2:]
            r, z = rz[..., :H], rz[..., H:]
            c_n = (1 - z) * (1 - n * n)  # ∂h/∂a_n
            c_r = gh[..., 2 * H :] * r * (1 - r)  # ∂a_n/∂(r pre), per unit of δa_n
            c_z = (prev - n) * z * (1 - z)  # ∂h/∂(z pre)
            d_pre = out.new_empty(T, K, B, 3 * H)  # ∂L/∂(h W + b_hh)
            d_a_n = out.new_empty(T, K, B, H)
            for t in range(T - 1, -1, -1):
                g = d_out[t] if t == T - 1 else (dh if last_only else dh + d_out[t])
                a_n = torch.mul(g, c_n[t], out=d_a_n[t])
                torch.mul(a_n, c_r[t], out=d_pre[t, ..., :H])
                torch.mul(g, c_z[t], out=d_pre[t, ..., H : 2 * H])
                torch.mul(a_n, r[t], out=d_pre[t, ..., 2 * H :])
                dh = torch.baddbmm(g * z[t], d_pre[t], w)
            d_gi = torch.cat([d_pre[..., : 2 * H], d_a_n], dim=-1)
            d_b = d_pre.sum((0, 2))
        G = d_pre.shape[-1]
        d_w = torch.bmm(prev.permute(1, 3, 0, 2).reshape(K, H, T * B), d_pre.permute(1, 0, 2, 3).reshape(K, T * B, G))
        return None, d_gi, d_w, d_b, None


class _Net:
    """The batched forward pass of one member architecture, on parameters ``{name: [K, ...]}``
    named as in the member model (so a member's ``state_dict`` is one slice of each)."""

    def __init__(self, cfg: RunConfig, model: Any, input_shape: tuple[int, ...], dropout: _Dropout):
        # model: a built member (trainlab.models), read by its submodules' names
        self.cfg, self.kind, self.drop = cfg.model, cfg.model.name, dropout
        self.act: Any = None
        self.input_shape = input_shape
        if self.kind in ("mlp", "linear"):
            self.blocks = len(model.blocks)
            self.act = model.blocks[0].act if self.blocks else None
            self.residual = cfg.model.residual
        elif self.kind == "deep_linear":
            self.layers = len(model.layers)
            self.bias = cfg.model.bias
        elif self.kind == "cnn":
            self.blocks = len(model.features)
            self.act = model.features[0].act
            self.sample_shape = model.sample_shape
            self.conv = [(b.layer.stride, b.layer.padding) for b in model.features]
            self.convf = F.conv1d if len(model.sample_shape) == 2 else F.conv2d
        else:
            self.seq_shape = model.seq_shape
            self.layers = len(cfg.model.hidden)
            self.hidden = cfg.model.hidden[0]
            # nn.Dropout draws its mask in the memory order of the tensor it drops: torch's CPU
            # RNNs return batch-first outputs stored time-major, so the mask is drawn (T, B, H).
            with torch.no_grad():
                probe = model.rnn.rnn(torch.zeros(2, 3, model.rnn.input_size))[0]
            self.time_major = probe.stride(1) > probe.stride(0)

    def __call__(self, P: dict[str, Tensor], x: Tensor, training: bool) -> Tensor:
        """x [K, B, *sample] (or [B, *sample], shared by all members) -> outputs [K, B, out]."""
        K = next(iter(P.values())).shape[0]
        if x.dim() == len(self.input_shape) + 1:
            x = x.unsqueeze(0).expand(K, *x.shape)
        forward = {"mlp": self._mlp, "linear": self._mlp, "deep_linear": self._deep_linear, "cnn": self._cnn}.get(
            self.kind, self._rnn
        )
        return forward(P, x, training)

    def _mlp(self, P: dict[str, Tensor], x: Tensor, training: bool) -> Tensor:
        h = x.reshape(x.shape[0], x.shape[1], -1)
        for i in range(self.blocks):
            out = self.drop(self.act(linear(h, P[f"blocks.{i}.layer.weight"], P[f"blocks.{i}.layer.bias"])), training)
            h = h + out if self.residual and out.shape == h.shape else out
        return linear(h, P["head.weight"], P["head.bias"])

    def _deep_linear(self, P: dict[str, Tensor], x: Tensor, training: bool) -> Tensor:
        h = x.reshape(x.shape[0], x.shape[1], -1)
        for i in range(self.layers):
            h = linear(h, P[f"layers.{i}.weight"], P.get(f"layers.{i}.bias"))
        return h

    def _cnn(self, P: dict[str, Tensor], x: Tensor, training: bool) -> Tensor:
        # members side by side in the channel axis: [B, K*C, *spatial], one conv with groups=K
        K, B = x.shape[0], x.shape[1]
        h = (
            x.reshape(K, B, *self.sample_shape)
            .transpose(0, 1)
            .reshape(B, K * self.sample_shape[0], *self.sample_shape[1:])
        )
        for i, (stride, padding) in enumerate(self.conv):
            w, b = P[f"features.{i}.layer.weight"], P[f"features.{i}.layer.bias"]
            h = self.act(
                self.convf(h, w.reshape(-1, *w.shape[2:]), b.reshape(-1), stride=stride, padding=padding, groups=K)
            )
            if self.drop.active(training):
                spatial = h.shape[2:]
                per_member = h.reshape(B, K, -1, *spatial).transpose(0, 1)  # [K, B, C, *spatial]
                h = self.drop(per_member, training).transpose(0, 1).reshape(B, -1, *spatial)
        flat = h.reshape(B, K, -1).transpose(0, 1)  # member k's (C, *spatial) flattened as nn.Flatten does
        return linear(flat, P["head.weight"], P["head.bias"])

    def _rnn(self, P: dict[str, Tensor], x: Tensor, training: bool) -> Tensor:
        K, B = x.shape[0], x.shape[1]
        T = self.seq_shape[0]
        h_seq = self.drop(x.reshape(K, B, *self.seq_shape), training)  # naive dropout on the inputs
        last = None
        for layer in range(self.layers):
            w_ih, w_hh = P[f"rnn.rnn.weight_ih_l{layer}"], P[f"rnn.rnn.weight_hh_l{layer}"]
            b_ih, b_hh = P[f"rnn.rnn.bias_ih_l{layer}"], P[f"rnn.rnn.bias_hh_l{layer}"]
            F_in = h_seq.shape[-1]
            gi = linear(h_seq.reshape(K, B * T, F_in), w_ih, b_ih).reshape(K, B, T, -1)
            if self.kind != "gru":  # b_hh sums with b_ih (the GRU keeps b_hn inside r ⊙ ·)
                gi = gi + b_hh[:, None, None, :]
            gi = gi.permute(2, 0, 1, 3).contiguous()  # [T, K, B, G]
            if self.kind in ("rnn", "gru"):
                last_layer = layer == self.layers - 1
                states = _Recurrence.apply(self.kind, gi, w_hh, b_hh, last_layer)  # w_hh stored transposed, [K, H, G]
                last = states[-1]
                if layer < self.layers - 1:
                    h_seq = states.permute(1, 2, 0, 3)  # [K, B, T, H]
                continue
            # the LSTM through autograd; [T, K, B, G] unbound once: one backward node (a slice
            # per step would give each step's gradient the whole tensor's size: O(T²))
            steps = gi.unbind(0)
            h = x.new_zeros(K, B, self.hidden)
            c = x.new_zeros(K, B, self.hidden)
            outputs = []
            for t in range(T):  # LSTM: gates i, f, g, o
                i, f, g, o = torch.baddbmm(steps[t], h, w_hh).chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                if layer < self.layers - 1:
                    outputs.append(h)
            last = h
            if layer < self.layers - 1:
                h_seq = torch.stack(outputs, dim=2)
        assert last is not None
        if self.drop.active(training):  # naive dropout on the outputs: a mask for every step is drawn
            if self.time_major:
                last = last * self.drop.masks((T, B, self.hidden), last)[:, -1]
            else:
                last = last * self.drop.masks((B, T, self.hidden), last)[:, :, -1]
        return linear(last, P["head.weight"], P["head.bias"])


# ------------------------------------------------------------------------------------------
# the population


def _member_values(values: list[Any]) -> Any:
    """One value for all members if they agree, else a [K] tensor (a pair: per component)."""
    if all(v == values[0] for v in values):
        return values[0]
    if isinstance(values[0], (tuple, list)):
        return tuple(_member_values([v[i] for v in values]) for i in range(len(values[0])))
    return torch.tensor([float(v) for v in values], dtype=torch.float64)


class Population:
    """Trains the runs of ``configs`` (members of one :func:`structure_key`) as one program.

    Example::

        results = Population([cfg.override({"seed": s}) for s in range(8)], store=store).fit()
        [r.final["val_loss"] for r in results]
    """

    def __init__(
        self,
        configs: Sequence[RunConfig | dict | str],
        *,
        store: Store | None = None,
        group: str | None = None,
        quiet: bool = True,
    ):
        self.configs = [load_config(c) for c in configs]
        if not self.configs:
            raise ValueError("a population needs at least one member")
        for cfg in self.configs:
            reason = unsupported(cfg)
            if reason is not None:
                raise ValueError(f"run '{cfg.name}' (seed {cfg.seed}) cannot train in a population: {reason}")
        keys = {structure_key(c) for c in self.configs}
        if len(keys) > 1:
            raise ValueError(
                "the members of a population must differ only in seed, name, schedule and " + ", ".join(VECTOR_KEYS)
            )
        self.store = store or Store()
        self.group, self.quiet = group, quiet

    # -- building ---------------------------------------------------------------------------
    def _build(self) -> None:
        from trainlab.train.trainer import setup

        cfg0 = self.configs[0]
        if cfg0.train.threads:
            torch.set_num_threads(cfg0.train.threads)
        self.setups, self.generators = [], []
        for cfg in self.configs:
            s = setup(cfg, self.store)  # seeds everything and builds the member as its sequential run does
            self.setups.append(s)
            g = torch.Generator()
            g.set_state(torch.get_rng_state())  # the global RNG state its sequential run trains with
            self.generators.append(g)
        s0 = self.setups[0]
        self.K = len(self.configs)
        self.data, self.loss_kind = s0.data, s0.data.num_classes
        self.steps_per_epoch, self.total_steps = s0.steps_per_epoch, s0.total_steps
        names = {id(p): n for n, p in s0.model.named_parameters()}
        # 2-D weights (linear maps) are stacked transposed, [K, in, out]: see `linear`
        self.transposed = {n for n, p in s0.model.named_parameters() if p.dim() == 2}
        self.params = {
            n: torch.stack(
                [_layout(dict(s.model.named_parameters())[n].detach(), n in self.transposed) for s in self.setups]
            ).requires_grad_()
            for n in names.values()
        }
        self.dropout = _Dropout([c.model.dropout for c in self.configs], self.generators)
        self.net = _Net(cfg0, s0.model, tuple(self.data.input_shape), self.dropout)
        self.optimizer = self._stacked_optimizer(names)
        self.schedules = [s.schedule for s in self.setups]
        self.clip_norm = [c.train.clip_norm for c in self.configs]
        self.clip_value = [c.train.clip_value for c in self.configs]
        self.smoothing = [c.train.label_smoothing for c in self.configs]
        self.run_ids: list[str] = []
        self.alive = list(range(self.K))  # original member indices still training

    def _stacked_optimizer(self, names: dict[int, str]) -> torch.optim.Optimizer:
        """Member 0's optimizer groups over the stacked parameters, each hyperparameter a [K]
        tensor where the members' values differ (:mod:`trainlab.optim.members`)."""
        opt0 = self.setups[0].optimizer
        groups = []
        for gi, group in enumerate(opt0.param_groups):
            stacked = {"params": [self.params[names[id(p)]] for p in group["params"]]}
            for key in group:
                if key != "params":
                    stacked[key] = _member_values([s.optimizer.param_groups[gi][key] for s in self.setups])
            groups.append(stacked)
        return type(opt0)(groups)  # type: ignore[call-arg]  # trainlab optimizers default every option

    # -- per-step pieces --------------------------------------------------------------------
    def _lr(self, step: int) -> Tensor:
        return torch.tensor([self.schedules[k](step) for k in self.alive])

    def _set_lr(self, step: int) -> Tensor:
        lr = self._lr(step)
        value: Any = lr if len(set(lr.tolist())) > 1 else float(lr[0])
        for group in self.optimizer.param_groups:
            group["lr"] = value
        return lr

    def _losses(self, out: Tensor, y: Tensor, training: bool) -> Tensor:
        """Per-member mean task loss [K] (with member k's label smoothing in training)."""
        K, B = out.shape[0], out.shape[1]
        if not self.loss_kind:
            return ((out.squeeze(-1) - y) ** 2).mean(1)
        eps = [self.smoothing[k] for k in self.alive]
        if not training or not any(eps):
            return F.cross_entropy(out.reshape(K * B, -1), y.reshape(K * B), reduction="none").reshape(K, B).mean(1)
        from trainlab.regularization import label_smoothing_targets

        style = self.configs[0].train.label_smoothing_style
        C = out.shape[-1]
        e = torch.tensor(eps, dtype=out.dtype).view(K, 1, 1)
        one_hot = label_smoothing_targets(y, C, 0.0, style, dtype=out.dtype)
        targets = one_hot * (1 - e - e / (C - 1)) + e / (C - 1) if style == "notes" else one_hot * (1 - e) + e / C
        return -(targets * F.log_softmax(out, dim=-1)).sum(-1).mean(1)

    def _clip(self) -> Tensor | None:
        """Per-member clipping: by norm (min(1, b_k/(‖g_k‖ + 1e-6)), torch's rule), by value."""
        norms = None
        grads = [p.grad for p in self.params.values() if p.grad is not None]
        K = len(self.alive)
        if any(self.clip_norm[k] is not None for k in self.alive):
            norms = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(g.reshape(K, -1), dim=1) for g in grads]), dim=0
            )
            bound = torch.tensor([self.clip_norm[k] or math.inf for k in self.alive], dtype=norms.dtype)
            scale = torch.clamp(bound / (norms + 1e-6), max=1.0)
            for g in grads:
                g.mul_(scale.view(K, *([1] * (g.dim() - 1))))
        if any(self.clip_value[k] is not None for k in self.alive):
            c = torch.tensor([self.clip_value[k] or math.inf for k in self.alive])
            for g in grads:
                v = c.to(g.dtype).view(K, *([1] * (g.dim() - 1)))
                torch.maximum(g, -v, out=g)
                torch.minimum(g, v, out=g)
        return norms

    def _next_batches(self, iterators: dict[int, Any]) -> tuple[Tensor, Tensor] | None:
        """The next batch of each living member (its own order), stacked: x [K, B, ...], y [K, B]."""
        xs, ys = [], []
        for k in self.alive:
            try:
                xb, yb = next(iterators[k])
            except StopIteration:
                return None
            xs.append(xb)
            ys.append(yb)
        return torch.stack(xs), torch.stack(ys)

    # -- the run ------------------------------------------------------------------------------
    def fit(self, resume: str | None = None) -> list:
        """Train every member; returns their :class:`~trainlab.train.trainer.RunResult` (in the
        order of ``configs``). ``resume`` is a population checkpoint path."""
        self._build()
        K = self.K
        self.history: list[dict[str, list[tuple[int, float]]]] = [defaultdict(list) for _ in range(K)]
        self.best = [BestTracker(c.train.monitor) for c in self.configs]
        self.windows: list[dict[str, float]] = [defaultdict(float) for _ in range(K)]
        self.correct = torch.zeros(K, dtype=torch.long)
        self.seen = 0
        self.step, self.epoch = 0, 0
        self._checkpoint_step: int | None = None  # the step of the last checkpoint (the divergence message names it)
        self.results: dict[int, Any] = {}
        self._last_checkpoint = time.monotonic()
        if resume is None:
            self.population_id = uuid.uuid4().hex[:12]
            for cfg in self.configs:
                self.run_ids.append(
                    self.store.create_run(
                        cfg.name, cfg.to_dict(), seed=cfg.seed, group=self.group, config_hash=cfg.hash()
                    )
                )
        else:
            self._restore(resume)
        self.ckpt_path = self.store.artifact_root / "populations" / self.population_id / "checkpoint.pt"
        self.buffers = {k: MetricBuffer(self.store, self.run_ids[k]) for k in range(K)}
        self._write_preprocessors(resume)
        self._started = time.perf_counter()
        status, message = "completed", None
        try:
            status, message = self._loop()
        except KeyboardInterrupt:
            status = "interrupted"
            self._save_checkpoint()
        except Exception as err:
            for k in self.alive:
                self.buffers[k].flush()
                self.store.finish_run(
                    self.run_ids[k], "failed", final={"step": self.step}, message=f"{type(err).__name__}: {err}"
                )
            raise
        test = self.evaluate(self.data.x_test, self.data.y_test) if status == "completed" and self.alive else None
        for i, k in enumerate(list(self.alive)):
            self._finish(k, status, message, test[i] if test else None)
        return [self.results[k] for k in range(K)]

    def _seconds(self) -> float:
        """Wall time of the population so far (before a resume too)."""
        return self._seconds_before + time.perf_counter() - self._started

    _seconds_before = 0.0

    def _write_preprocessors(self, resume: str | None) -> None:
        if resume is not None:
            return
        from trainlab._io import atomic_torch_save

        for k, s in enumerate(self.setups):
            if s.preprocessor is not None:
                path = atomic_torch_save(
                    self.store.run_dir(self.run_ids[k]) / "preprocessing.pt", s.preprocessor.state_dict()
                )
                self.store.add_artifact(self.run_ids[k], "preprocessing", path)

    def _loop(self) -> tuple[str, str | None]:
        cfg = self.configs[0]
        eval_every = cfg.train.eval_every or self.steps_per_epoch
        ckpt_every = cfg.train.checkpoint_every
        while self.step < self.total_steps and self.alive:
            iterators = {k: iter(self.setups[k].batches) for k in self.alive}
            while True:
                batch = self._next_batches(iterators)
                if batch is None:
                    break
                self._train_step(*batch)
                self.step += 1
                end_of_run = self.step >= self.total_steps
                if not self.alive:
                    return "completed", None
                if self.step % cfg.train.log_every == 0:
                    for k in self.alive:
                        self._log_window(k, reset=False)
                if self.step % eval_every == 0 or end_of_run:
                    self._evaluate_and_report()
                if not end_of_run and self._checkpoint_due(ckpt_every, eval_every):
                    self._save_checkpoint()
                if end_of_run:
                    break
            self.epoch += 1
        return "completed", None

    def _train_step(self, xb: Tensor, yb: Tensor) -> None:
        self._set_lr(self.step)
        out = self.net(self.params, xb, training=True)
        losses = self._losses(out, yb, training=True)
        values = losses.detach().tolist()  # the step's one host sync, as in the sequential loop
        finite = [math.isfinite(v) for v in values]
        dead = [k for i, k in enumerate(self.alive) if not finite[i]]
        for k in dead:  # finished as its sequential run is: before the update, at this step
            kept = (
                "no checkpoint was written before it"
                if self._checkpoint_step is None
                else f"the last good checkpoint (step {self._checkpoint_step}) is kept"
            )
            self._finish(k, "diverged", f"loss became non-finite at step {self.step + 1}; {kept}", None)
        total = losses.sum() if all(finite) else torch.where(torch.tensor(finite), losses, torch.zeros(())).sum()
        for p in self.params.values():
            p.grad = None
        total.backward()
        norms = self._clip()
        self.optimizer.step()
        if self.loss_kind:
            self.correct[self.alive] += (out.detach().argmax(-1) == yb).sum(1)
        self.seen += yb.shape[1]
        norm_values = norms.tolist() if norms is not None else None
        for i, k in enumerate(self.alive):
            w = self.windows[k]
            w["loss"] += values[i]
            if norm_values is not None and self.clip_norm[k] is not None:
                w["grad_norm"] += norm_values[i]
            w["n"] += 1
        if dead:
            self._shrink([i for i, ok in enumerate(finite) if ok])

    def _shrink(self, keep: list[int]) -> None:
        """Drop the members not in ``keep`` (positions in ``alive``) from every stacked tensor."""
        index = torch.tensor(keep, dtype=torch.long)
        old = list(self.params.values())
        self.params = {n: p.detach().index_select(0, index).requires_grad_() for n, p in self.params.items()}
        new_of = {id(o): n for o, n in zip(old, self.params.values())}
        K_old = len(self.alive)

        def select(v: Any) -> Any:
            if isinstance(v, Tensor) and v.dim() >= 1 and v.shape[0] == K_old:
                return v.index_select(0, index)
            if isinstance(v, tuple):
                return tuple(select(x) for x in v)
            return v

        groups = []
        for group in self.optimizer.param_groups:
            groups.append({k: ([new_of[id(p)] for p in v] if k == "params" else select(v)) for k, v in group.items()})
        state = {new_of[id(p)]: {k: select(v) for k, v in s.items()} for p, s in self.optimizer.state.items()}
        self.optimizer = type(self.optimizer)(groups)  # type: ignore[call-arg]
        for p, s in state.items():
            self.optimizer.state[p] = s
        self.alive = [self.alive[i] for i in keep]
        self.dropout.p = [self.configs[k].model.dropout for k in self.alive]
        self.dropout.generators = [self.generators[k] for k in self.alive]

    # -- logging and evaluation ------------------------------------------------------------
    def _log_window(self, k: int, reset: bool) -> dict[str, float]:
        w = self.windows[k]
        n = w.get("n", 0)
        if not n:
            return {}
        means = {f"train_{key}": v / n for key, v in w.items() if key not in ("n", "lr")}
        means["train_lr"] = self.schedules[k](self.step)
        if self.seen:
            means["train_acc"] = float(self.correct[k]) / self.seen
        if not reset:
            self.buffers[k].add(self.step, means)
        else:
            self.windows[k] = defaultdict(float)
        return means

    @torch.no_grad()
    def evaluate(self, x: Tensor, y: Tensor) -> list[dict[str, float]]:
        """Each living member's mean task loss (and accuracy) over ``x, y``."""
        K, n = len(self.alive), len(x)
        bs = self.configs[0].data.eval_batch_size
        total, correct = torch.zeros(K, dtype=torch.float64), torch.zeros(K, dtype=torch.long)
        for i in range(0, n, bs):
            xb, yb = x[i : i + bs], y[i : i + bs]
            out = self.net(self.params, xb, training=False)
            losses = self._losses(out, yb.unsqueeze(0).expand(K, *yb.shape), training=False)
            total += losses.double() * len(xb)
            if self.loss_kind:
                correct += (out.argmax(-1) == yb).sum(1)
        out_metrics = []
        for i in range(K):
            m = {"loss": float(total[i]) / max(n, 1)}
            if self.loss_kind:
                m["acc"] = int(correct[i]) / max(n, 1)
            out_metrics.append(m)
        return out_metrics

    def _evaluate_and_report(self) -> None:
        trains = {k: self._log_window(k, reset=True) for k in self.alive}
        self.correct.zero_()
        self.seen = 0
        vals = self.evaluate(self.data.x_val, self.data.y_val)
        for i, k in enumerate(self.alive):
            metrics = {f"val_{key}": v for key, v in vals[i].items()}
            metrics.update({key: v for key, v in trains[k].items() if key in ("train_loss", "train_acc")})
            metrics["lr"] = self.schedules[k](self.step)
            metrics["epoch"] = self.step / self.steps_per_epoch
            self.best[k].update(self.step, metrics)
            for key, v in metrics.items():
                self.history[k][key].append((self.step, v))
            self.buffers[k].add(self.step, metrics)

    # -- checkpoints ------------------------------------------------------------------------
    def _checkpoint_due(self, every: int, eval_every: int) -> bool:
        if every:
            return self.step % every == 0
        return (
            self.step % eval_every == 0
            and time.monotonic() - self._last_checkpoint >= self.configs[0].train.checkpoint_seconds
        )

    def _save_checkpoint(self) -> None:
        from trainlab.train.checkpoint import save_checkpoint

        self._last_checkpoint = time.monotonic()
        for k in self.alive:
            self.buffers[k].flush()
        state = {
            "population": self.population_id,
            "run_ids": self.run_ids,
            "alive": self.alive,
            "params": {n: p.detach() for n, p in self.params.items()},
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "seconds": self._seconds(),
            "members": {
                k: {
                    "batches": self.setups[k].batches.state_dict(),
                    "generator": self.generators[k].get_state(),
                    "history": {key: [list(p) for p in v] for key, v in self.history[k].items()},
                    "window": dict(self.windows[k]),
                    "correct": int(self.correct[k]),
                    "best": self.best[k].state_dict(),
                }
                for k in self.alive
            },
            "seen": self.seen,
        }
        save_checkpoint(self.ckpt_path, state)
        self._checkpoint_step = self.step
        for k in self.alive:
            self.store.add_artifact(self.run_ids[k], "population", self.ckpt_path)

    def _restore(self, path: str) -> None:
        from trainlab.train.checkpoint import load_checkpoint, set_rng_state

        state = load_checkpoint(path)
        self.population_id, self.run_ids = state["population"], list(state["run_ids"])
        alive = list(state["alive"])
        for k in range(self.K):
            if k not in alive:
                self.results[k] = _result_from_store(self.store, self.run_ids[k], self.configs[k])
        self._shrink([self.alive.index(k) for k in alive])
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(state["params"][n])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.epoch, self.seen = state["step"], state["epoch"], state["seen"]
        self._checkpoint_step = self.step
        self._seconds_before = float(state.get("seconds", 0.0))
        for k, m in state["members"].items():
            self.setups[k].batches.load_state_dict(m["batches"])
            self.generators[k].set_state(m["generator"])
            self.history[k] = defaultdict(list, {key: [tuple(p) for p in v] for key, v in m["history"].items()})
            self.windows[k] = defaultdict(float, m["window"])
            self.correct[k] = m["correct"]
            self.best[k].load_state_dict(m["best"])
        set_rng_state(state["rng"])
        for k in alive:
            self.store.truncate_metrics(self.run_ids[k], self.step)
            self.store.set_status(self.run_ids[k], "running")

    # -- the end of a member ---------------------------------------------------------------------
    def _member_state(self, k: int) -> dict[str, Tensor]:
        i = self.alive.index(k)
        return {n: _layout(p.detach()[i], n in self.transposed).contiguous() for n, p in self.params.items()}

    def _member_checkpoint(self, k: int, model: torch.nn.Module) -> dict[str, Any]:
        """Member ``k``'s state in the sequential run's checkpoint format (``Trainer._save_checkpoint``):
        its weights, its slice of the optimizer state in its own optimizer's layout (lr at the
        schedule's current value), batch position, history and dropout generator, so that whatever reads or
        resumes a run's checkpoint reads this one too."""
        from trainlab.train.checkpoint import rng_state

        s, i = self.setups[k], self.alive.index(k)
        K = len(self.alive)

        def member_value(key: str, v: Any, transposed: bool) -> Any:
            if not isinstance(v, Tensor) or v.dim() == 0 or v.shape[0] != K:
                return v.clone() if isinstance(v, Tensor) else v
            if key == "mu_product":  # Nadam keeps Π_t as a number per parameter
                return float(v[i].reshape(-1)[0])
            return _layout(v[i], transposed).contiguous()

        optimizer = s.optimizer
        for n, p in s.model.named_parameters():
            state = self.optimizer.state.get(self.params[n])
            if state:
                optimizer.state[p] = {key: member_value(key, v, n in self.transposed) for key, v in state.items()}
        for group in optimizer.param_groups:
            group["lr"] = s.schedule(self.step)
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batches": s.batches.state_dict(),
            "aug_gen": torch.Generator().manual_seed(self.configs[k].seed + 1).get_state(),
            "history": {key: [list(p) for p in v] for key, v in self.history[k].items()},
            "window": {**self.windows[k], "correct": int(self.correct[k]), "seen": self.seen},
            "best": self.best[k].state_dict(),
            "callbacks": [],
            "rng": {**rng_state(), "torch": self.generators[k].get_state()},
            "run_id": self.run_ids[k],  # a resume refuses another run's checkpoint
            "population": f"{self.population_id}:{k}/{self.K}",
        }

    def _finish(self, k: int, status: str, message: str | None, test: dict[str, float] | None) -> None:
        """Record member ``k``'s end as its sequential run's ``_finish`` does; ``seconds`` is its
        share of the population's wall time (wall time / K)."""
        from trainlab._io import atomic_torch_save
        from trainlab.train.trainer import RunResult, _json_safe

        run_id, cfg = self.run_ids[k], self.configs[k]
        last = {key: v[-1][1] for key, v in self.history[k].items() if v}
        final: dict[str, Any] = {
            "step": self.step,
            "epochs": self.step / self.steps_per_epoch,
            "train_loss": last.get("train_loss", math.nan),
            "val_loss": last.get("val_loss", math.nan),
            "best_step": self.best[k].best_step,
            "seconds": self._seconds() / self.K,
            "population": f"{self.population_id}:{k}/{self.K}",
        }
        for key in ("val_loss", "val_acc"):
            values = [v for _, v in self.history[k].get(key, []) if math.isfinite(v)]
            if values:
                final[f"best_{key}"] = min(values) if key == "val_loss" else max(values)
        if self.loss_kind:
            final["train_acc"] = last.get("train_acc", math.nan)
            final["val_acc"] = last.get("val_acc", math.nan)
        model = self.setups[k].model
        if status in ("completed", "diverged", "interrupted"):
            model.load_state_dict(self._member_state(k))
        if status == "completed" and test is not None:
            final.update({f"test_{key}": v for key, v in test.items()})
            path = atomic_torch_save(self.store.run_dir(run_id) / "checkpoint.pt", self._member_checkpoint(k, model))
            self.store.add_artifact(run_id, "checkpoint", path)
        self.buffers[k].flush()
        if status != "interrupted":
            self.store.finish_run(run_id, status, final=_json_safe(final), message=message)
        else:
            message = f"interrupted at step {self.step}; {resume_hint(run_id, cfg.to_dict())}"
            self.store.set_status(run_id, status, message=message)
        logged = self.store.metrics(run_id)
        history = {key: list(zip(steps.tolist(), values.tolist())) for key, (steps, values) in logged.items()}
        self.results[k] = RunResult(run_id, status, final, history, cfg, message, model)


def _layout(w: Tensor, transposed: bool) -> Tensor:
    """A member's weight in the population's layout and back (a transpose is its own inverse)."""
    return w.T if transposed else w


def _result_from_store(store: Store, run_id: str, cfg: RunConfig):
    from trainlab.train.trainer import RunResult

    record = store.get_run(run_id)
    logged = store.metrics(run_id)
    history = {key: list(zip(steps.tolist(), values.tolist())) for key, (steps, values) in logged.items()}
    return RunResult(run_id, record.status, record.final, history, cfg, record.message)


def run_population(
    configs: Sequence[RunConfig | dict | str],
    *,
    store: Store | str | None = None,
    group: str | None = None,
    quiet: bool = True,
) -> list:
    """Train ``configs`` as one population (see :class:`Population`); returns their RunResults."""
    store = store if isinstance(store, Store) else Store(store)
    return Population(configs, store=store, group=group, quiet=quiet).fit()


def latest_population_checkpoint(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The newest population checkpoint that loads: ``path``, else the one kept before it (a kill
    between setting the last one aside and writing the new one leaves only that)."""
    from trainlab._io import torch_load
    from trainlab.train.checkpoint import previous_path

    for candidate in (Path(path), previous_path(path)):
        try:
            return candidate, torch_load(candidate)
        except Exception:  # missing, damaged or truncated: the one before it
            continue
    raise ConfigError(f"no usable population checkpoint at {path} or before it")


def resume_population(run_id: str, store: Store) -> list:
    """Resume the population that run ``run_id`` belongs to from its checkpoint."""
    path, state = latest_population_checkpoint(store.artifacts(run_id)["population"])
    records = [store.get_run(r) for r in state["run_ids"]]
    from trainlab.targets import check_stored

    for r in records:  # every member's stored config, not only the one asked for
        check_stored(r.config, what=f"run {r.id}")
    configs = [load_config(r.config) for r in records]
    return Population(configs, store=store, group=records[0].group).fit(resume=str(path))
