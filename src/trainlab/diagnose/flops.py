"""Count the multiplications and additions of a model's forward pass, layer by layer.

The notes' exercise (``002_*.txt`` 作业习题 (3)): an L-layer network of width n with sigmoid
activations — how many multiplications and additions does the forward pass take? Per layer
z = W a + b is n² multiplications and n(n − 1) + n = n² additions, then n sigmoid evaluations;
the whole forward pass ≈ L n² multiplications. In general, per sample:

    Linear(I → O)                 mults O·I        adds O·(I − 1) + O·[bias]
    ConvNd(C_in → C_out, k)       per output element: mults (C_in/groups)·Πk,
                                  adds (C_in/groups)·Πk − 1 + [bias]
    RNN / GRU / LSTM (G gates:    per time step and layer: the gate pre-activations
      1 / 3 / 4, hidden H)        W_ih x + b_ih + W_hh h + b_hh: mults G·H·(I + H),
                                  adds G·H·(I + H − 1 + 2·[bias]),
                                  plus the gate combination (LSTM c' = f⊙c + i⊙g,
                                  h' = o⊙tanh c': 3 mults, 1 add per unit; GRU
                                  r⊙(W_hn h + b_hn), h' = (1 − z)⊙n + z⊙h: 3 mults, 2 adds)
    activations                   no mults/adds; one "nonlinear" evaluation per output element

FLOPs = mults + adds (a fused multiply-add counts as two). ``torch.utils.flop_counter``
counts 2·I·O per sample for a Linear (every product and every sum, bias not counted) —
``mults + adds`` here is that plus O for the bias. Modules with parameters of a type not
listed (norms, embeddings, custom layers) are returned in ``unsupported``; their cost is not
counted, not guessed.

Example::

    count = count_flops(model, torch.zeros(1, 40))
    print(count.table()); count.total_flops
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class LayerFlops:
    name: str
    kind: str
    mults: int
    adds: int
    nonlinear: int  # elementwise nonlinearity evaluations (sigmoid, tanh, ReLU, ...)

    @property
    def flops(self) -> int:
        return self.mults + self.adds


@dataclass
class FlopCount:
    rows: list[LayerFlops] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    batch_size: int = 1

    @property
    def total_mults(self) -> int:
        return sum(r.mults for r in self.rows)

    @property
    def total_adds(self) -> int:
        return sum(r.adds for r in self.rows)

    @property
    def total_flops(self) -> int:
        return self.total_mults + self.total_adds

    def table(self) -> str:
        headers = ("layer", "type", "mults", "adds", "nonlinear", "flops")
        body = [(r.name, r.kind, f"{r.mults:,}", f"{r.adds:,}", f"{r.nonlinear:,}", f"{r.flops:,}") for r in self.rows]
        body.append(
            (
                "total",
                "",
                f"{self.total_mults:,}",
                f"{self.total_adds:,}",
                f"{sum(r.nonlinear for r in self.rows):,}",
                f"{self.total_flops:,}",
            )
        )
        widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(headers)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in body]
        if self.unsupported:
            lines.append("not counted: " + ", ".join(self.unsupported))
        return "\n".join(lines)


_NONLINEAR = (
    nn.Sigmoid, nn.Tanh, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.GELU, nn.Softplus,
    nn.Softsign, nn.Hardtanh, nn.Hardsigmoid, nn.SiLU, nn.Mish, nn.Threshold, nn.Softmax, nn.LogSoftmax,
)  # fmt: skip


def _linear(m: nn.Linear, out: torch.Tensor) -> tuple[int, int]:
    rows = out.numel() // m.out_features  # samples (and any leading dims)
    mults = rows * m.out_features * m.in_features
    adds = rows * m.out_features * (m.in_features - 1 + (m.bias is not None))
    return mults, adds


def _conv(m: nn.modules.conv._ConvNd, out: torch.Tensor) -> tuple[int, int]:
    per_output = (m.in_channels // m.groups) * math.prod(m.kernel_size)
    n = out.numel()
    return n * per_output, n * (per_output - 1 + (m.bias is not None))


_GATES = {nn.RNN: 1, nn.GRU: 3, nn.LSTM: 4}
_COMBINE = {nn.RNN: (0, 0), nn.GRU: (3, 2), nn.LSTM: (3, 1)}  # (mults, adds) per hidden unit and step


def _recurrent(m: nn.RNNBase, inp: torch.Tensor) -> tuple[int, int, int]:
    """Gate pre-activations: per gate unit, W_ih x (I mults, I − 1 adds) + W_hh h (H mults,
    H − 1 adds), their sum (1 add) and the two biases b_ih, b_hh (2 adds), as torch computes it."""
    if m.proj_size:
        raise NotImplementedError("LSTM with proj_size")
    kind = next(t for t in _GATES if type(m) is t)
    gates, (c_mults, c_adds) = _GATES[kind], _COMBINE[kind]
    seq_dims = inp.shape[:2] if inp.dim() == 3 else (1, inp.shape[0])
    steps_x_batch = math.prod(seq_dims)
    hidden, directions = m.hidden_size, 2 if m.bidirectional else 1
    mults = adds = nonlinear = 0
    for layer in range(m.num_layers):
        width = m.input_size if layer == 0 else hidden * directions
        units = gates * hidden
        mults += units * (width + hidden) + hidden * c_mults
        adds += units * ((width - 1) + (hidden - 1) + 1 + 2 * m.bias) + hidden * c_adds
        nonlinear += units + (hidden if kind is nn.LSTM else 0)  # gate nonlinearities (+ tanh c' for LSTM)
    scale = steps_x_batch * directions
    return mults * scale, adds * scale, nonlinear * scale


def count_flops(model: nn.Module, example_input: Any) -> FlopCount:
    """Run ``model(example_input)`` once under ``torch.no_grad`` and count each leaf layer's
    multiplications, additions and nonlinearity evaluations for that input (its batch size
    included; divide by ``batch_size`` for per-sample figures)."""
    count = FlopCount()
    handles = []

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            out = output[0] if isinstance(output, (tuple, list)) else output
            kind = type(module).__name__
            if isinstance(module, nn.Linear):
                count.rows.append(LayerFlops(name, kind, *_linear(module, out), 0))
            elif isinstance(module, nn.modules.conv._ConvNd):
                count.rows.append(LayerFlops(name, kind, *_conv(module, out), 0))
            elif isinstance(module, nn.RNNBase) and type(module) in _GATES:
                count.rows.append(LayerFlops(name, kind, *_recurrent(module, inputs[0])))
            elif isinstance(module, _NONLINEAR):
                count.rows.append(LayerFlops(name, kind, 0, 0, out.numel()))
            elif any(True for _ in module.parameters(recurse=False)) and name not in count.unsupported:
                count.unsupported.append(name)

        return record

    for name, module in model.named_modules():
        is_leaf = not any(True for _ in module.children()) or type(module) in _GATES
        if is_leaf:
            handles.append(module.register_forward_hook(hook(name or type(module).__name__)))
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for h in handles:
            h.remove()
    first = example_input[0] if isinstance(example_input, (tuple, list)) else example_input
    count.batch_size = int(first.shape[0]) if isinstance(first, torch.Tensor) and first.dim() > 0 else 1
    return count
