"""Recurrent layers that train well: layer-normalized cells and the two dropouts for RNNs.

Sources: notes ``000_*.txt`` §7.5.2 "层归一化" (layer norm in RNNs: h_t = f(LN(U h_{t-1} + W x_t)))
and §7.7.4 "RNN 上的 Dropout" (naive and variational dropout), ``004_*.txt`` "Layer
Normalization" and "循环神经网络丢弃"; Ba, Kiros & Hinton 2016 "Layer Normalization"
(arXiv:1607.06450) §3.1 and appendix; Zaremba, Sutskever & Vinyals 2014 (arXiv:1409.2329);
Gal & Ghahramani 2016 (arXiv:1512.05287). Formulas and tests: ``docs/recurrent.md``.

``p`` is always the *drop* probability (torch's convention); the notes' ``p`` is the keep
probability. Kept units are scaled by 1/(1−p) during training (inverted dropout), so
evaluation is the identity instead of the notes' "multiply by p at test time".

Example::

    >>> import torch
    >>> from trainlab.nn.recurrent import RecurrentNet
    >>> net = RecurrentNet("lstm", 3, 16, num_layers=2, dropout=0.25, dropout_mode="variational")
    >>> net(torch.randn(4, 10, 3)).shape
    torch.Size([4, 10, 16])
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn

from trainlab.errors import did_you_mean

CELLS = ("rnn", "gru", "lstm")
DROPOUT_MODES = ("naive", "variational")

LSTMState = tuple[Tensor, Tensor]


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _drop_probability(name: str, p: object) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise ValueError(f"{name} must be a drop probability in [0, 1), got {p!r}")
    return float(p)


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(choices)}, got {value!r}{did_you_mean(str(value), choices)}"
        )
    return value


def dropout_mask(shape: tuple[int, ...], p: float, like: Tensor) -> Tensor:
    """A Bernoulli keep-mask scaled by 1/(1−p): entries are 0 (prob. p) or 1/(1−p)."""
    return torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(1 - p).div_(1 - p)


class LockedDropout(nn.Module):
    """Dropout with one mask per sequence, shared by all time steps (Gal & Ghahramani 2016).

    For x of shape (batch, time, *features): y = x ⊙ m / (1−p) with m ~ Bernoulli(1−p) of
    shape (batch, 1, *features), so each sequence loses the same units at every step.
    ``p`` is the drop probability; identity in eval mode or when p = 0.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = _drop_probability("p", p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if x.dim() < 3:
            raise ValueError(f"LockedDropout expects (batch, time, features), got shape {tuple(x.shape)}")
        return x * dropout_mask((x.shape[0], 1, *x.shape[2:]), self.p, x)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _init_like_torch(cell: nn.Module) -> None:
    """torch's RNN initialization U(−1/√H, 1/√H) for the weights and for the LN biases
    (which stand in for torch's b_ih, b_hh); LN gains start at 1.

    Why not Ba et al.'s zero biases: an input sequence that is all zeros (padding, or
    variational dropout of a 1-feature input) would then keep every pre-activation and
    state exactly 0, where LN's Jacobian is γ/√ε (≈ 316 γ); compounded over time steps the
    gradient overflows to NaN. Random biases make the state non-zero after one step.
    """
    bound = 1 / math.sqrt(cell.hidden_size)  # type: ignore[arg-type]
    for name, param in cell.named_parameters():
        if name.endswith("weight") and param.dim() == 1:  # an LN gain
            nn.init.ones_(param)
        else:
            nn.init.uniform_(param, -bound, bound)


def _warn_if_scalar_input(input_size: int, cell: str) -> None:
    if input_size == 1:
        warnings.warn(
            f"{cell} with input_size=1: layer norm of W_ih·x for a scalar x is sign(x)·LN(w), so the "
            "cell sees only the sign of its input; project the input to several features first "
            "(e.g. nn.Linear(1, k) with a bias) or use layer_norm=False",
            UserWarning,
            stacklevel=3,
        )


class LayerNormRNNCell(nn.Module):
    """Elman cell with layer norm, as the notes write it (000 §7.5.2, Ba et al. §3.1):

    z_t = U h_{t−1} + W x_t,   h_t = tanh(LN_{γ,β}(z_t)),
    LN(z) = γ ⊙ (z − μ) / √(σ² + ε) + β, μ, σ² over the H units of z (not over the batch).
    """

    def __init__(self, input_size: int, hidden_size: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.input_size = _positive_int("input_size", input_size)
        self.hidden_size = _positive_int("hidden_size", hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.ln = nn.LayerNorm(hidden_size, eps=eps)
        _init_like_torch(self)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        return torch.tanh(self.ln(x @ self.weight_ih.T + h @ self.weight_hh.T))


class LayerNormLSTMCell(nn.Module):
    """LSTM cell with layer norm (Ba et al. 2016, appendix "LN for LSTM"), torch's gate order i, f, g, o:

    (i, f, g, o) = LN_h(W_hh h_{t−1}) + LN_x(W_ih x_t),
    c_t = σ(f) ⊙ c_{t−1} + σ(i) ⊙ tanh(g),
    h_t = σ(o) ⊙ tanh(LN_c(c_t)).

    Each LN normalizes its whole 4H (or H) vector per sample with its own gain and bias.
    Ba et al. add a separate bias b; it would only sum with the two LN biases, so it is
    left out (no effect on what the cell can represent).
    """

    def __init__(self, input_size: int, hidden_size: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.input_size = _positive_int("input_size", input_size)
        self.hidden_size = _positive_int("hidden_size", hidden_size)
        _warn_if_scalar_input(input_size, type(self).__name__)
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.ln_ih = nn.LayerNorm(4 * hidden_size, eps=eps)
        self.ln_hh = nn.LayerNorm(4 * hidden_size, eps=eps)
        self.ln_c = nn.LayerNorm(hidden_size, eps=eps)
        _init_like_torch(self)

    def forward(self, x: Tensor, state: LSTMState | None = None) -> LSTMState:
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        h, c = state
        gates = self.ln_ih(x @ self.weight_ih.T) + self.ln_hh(h @ self.weight_hh.T)
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(self.ln_c(c))
        return h, c


def _gru_update(a: Tensor, b: Tensor, h: Tensor) -> Tensor:
    """torch's GRU from the input-side (a) and hidden-side (b) pre-activations, gates r, z, n:
    r = σ(a_r + b_r), z = σ(a_z + b_z), n = tanh(a_n + r ⊙ b_n), h' = (1 − z) ⊙ n + z ⊙ h."""
    a_r, a_z, a_n = a.chunk(3, dim=1)
    b_r, b_z, b_n = b.chunk(3, dim=1)
    r, z = torch.sigmoid(a_r + b_r), torch.sigmoid(a_z + b_z)
    n = torch.tanh(a_n + r * b_n)
    return (1 - z) * n + z * h


class LayerNormGRUCell(nn.Module):
    """GRU cell with layer norm on the input-to-hidden and hidden-to-hidden pre-activations
    (Ba et al. 2016 §3.1 applied to torch's GRU), torch's gate order r, z, n:

    a = LN_x(W_ih x_t),  b = LN_h(W_hh (h_{t−1} ⊙ m)),
    r = σ(a_r + b_r),  z = σ(a_z + b_z),  n = tanh(a_n + r ⊙ b_n),
    h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}.

    The LN biases take the place of torch's b_ih and b_hh (b_hn stays inside r ⊙ ·).
    ``h_mask`` m (variational dropout) drops h only where it enters W_hh; the carry
    z ⊙ h_{t−1} keeps the undropped state (Gal & Ghahramani drop the recurrent *weights'*
    input; dropping the carry would scale kept units by 1/(1−p) at every step).
    """

    def __init__(self, input_size: int, hidden_size: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.input_size = _positive_int("input_size", input_size)
        self.hidden_size = _positive_int("hidden_size", hidden_size)
        _warn_if_scalar_input(input_size, type(self).__name__)
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.ln_ih = nn.LayerNorm(3 * hidden_size, eps=eps)
        self.ln_hh = nn.LayerNorm(3 * hidden_size, eps=eps)
        _init_like_torch(self)

    def forward(self, x: Tensor, h: Tensor | None = None, h_mask: Tensor | None = None) -> Tensor:
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        h_in = h if h_mask is None else h * h_mask
        return _gru_update(self.ln_ih(x @ self.weight_ih.T), self.ln_hh(h_in @ self.weight_hh.T), h)


class GRUCell(nn.GRUCell):
    """``nn.GRUCell`` that takes a variational-dropout mask for h like :class:`LayerNormGRUCell`:
    m multiplies h where it enters W_hh, not the carry z ⊙ h. Without a mask it is torch's cell."""

    def forward(self, x: Tensor, h: Tensor | None = None, h_mask: Tensor | None = None) -> Tensor:
        if h_mask is None or h is None:
            return super().forward(x, h)
        a = nn.functional.linear(x, self.weight_ih, self.bias_ih)
        b = nn.functional.linear(h * h_mask, self.weight_hh, self.bias_hh)
        return _gru_update(a, b, h)


def _is_lstm(cell: nn.Module) -> bool:
    return isinstance(cell, (nn.LSTMCell, LayerNormLSTMCell))


def _run_layer(
    cell: nn.Module, x: Tensor, state: Tensor | LSTMState | None, h_mask: Tensor | None = None
) -> tuple[Tensor, Tensor | LSTMState]:
    """Run ``cell`` over x (batch, time, features); returns outputs (batch, time, H) and the
    last state. ``h_mask`` (batch, H) multiplies h_{t−1} only where it enters the recurrent
    weights (variational dropout); the state carried on and the outputs stay undropped."""
    batch, hidden = x.shape[0], int(cell.hidden_size)  # type: ignore[arg-type]
    if state is None:
        zeros = x.new_zeros(batch, hidden)
        state = (zeros, zeros) if _is_lstm(cell) else zeros
    outputs = []
    for t in range(x.shape[1]):
        if _is_lstm(cell):  # h enters only W_hh h, so dropping it before the cell is exact
            h, c = state
            state = cell(x[:, t], (h if h_mask is None else h * h_mask, c))
            outputs.append(state[0])
        elif isinstance(cell, (GRUCell, LayerNormGRUCell)):  # GRU also carries h: mask inside
            state = cell(x[:, t], state, h_mask)
            outputs.append(state)
        else:  # Elman: h enters only W_hh h
            state = cell(x[:, t], state if h_mask is None else state * h_mask)
            outputs.append(state)
    return torch.stack(outputs, dim=1), state


class _LayerNormStack(nn.Module):
    """Stacked layer-normalized cells that run a sequence like ``nn.LSTM`` / ``nn.GRU``."""

    cell_class: type[nn.Module]

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, batch_first: bool = True) -> None:
        super().__init__()
        self.input_size = _positive_int("input_size", input_size)
        self.hidden_size = _positive_int("hidden_size", hidden_size)
        self.num_layers = _positive_int("num_layers", num_layers)
        self.batch_first = bool(batch_first)
        self.cells = nn.ModuleList(
            self.cell_class(input_size if layer == 0 else hidden_size, hidden_size) for layer in range(num_layers)
        )

    def _run(self, x: Tensor, states: list) -> tuple[Tensor, list]:
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            layout = "(batch, time, features)" if self.batch_first else "(time, batch, features)"
            raise ValueError(f"input must be {layout} with features={self.input_size}, got shape {tuple(x.shape)}")
        if not self.batch_first:
            x = x.transpose(0, 1)
        finals = []
        for cell, state in zip(self.cells, states):
            x, state = _run_layer(cell, x, state)
            finals.append(state)
        return (x if self.batch_first else x.transpose(0, 1)), finals


class LayerNormLSTM(_LayerNormStack):
    """A stack of :class:`LayerNormLSTMCell`; ``forward(x, (h0, c0)=None) -> (output, (h_n, c_n))``
    with the shapes of ``nn.LSTM`` (h_n, c_n: (num_layers, batch, hidden))."""

    cell_class = LayerNormLSTMCell

    def forward(self, x: Tensor, state: LSTMState | None = None) -> tuple[Tensor, LSTMState]:
        states = [None] * self.num_layers if state is None else list(zip(state[0], state[1]))
        out, finals = self._run(x, states)
        return out, (torch.stack([h for h, _ in finals]), torch.stack([c for _, c in finals]))


class LayerNormGRU(_LayerNormStack):
    """A stack of :class:`LayerNormGRUCell`; ``forward(x, h0=None) -> (output, h_n)`` with the
    shapes of ``nn.GRU`` (h_n: (num_layers, batch, hidden))."""

    cell_class = LayerNormGRUCell

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        states = [None] * self.num_layers if h0 is None else list(h0)
        out, finals = self._run(x, states)
        return out, torch.stack(finals)


_TORCH_RNNS: dict[str, type[nn.RNN] | type[nn.GRU] | type[nn.LSTM]] = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
_CELL_CLASSES: dict[tuple[str, bool], Callable[[int, int], nn.Module]] = {
    ("rnn", False): nn.RNNCell,
    ("gru", False): GRUCell,
    ("lstm", False): nn.LSTMCell,
    ("rnn", True): LayerNormRNNCell,
    ("gru", True): LayerNormGRUCell,
    ("lstm", True): LayerNormLSTMCell,
}


class RecurrentNet(nn.Module):
    """A stacked RNN / GRU / LSTM with optional layer norm and naive or variational dropout.

    ``forward(x)`` with x (batch, time, input_size) returns the last layer's outputs
    (batch, time, hidden_size), or (batch, time, 2 · hidden_size) when ``bidirectional``: each
    layer then also runs a second cell over the reversed sequence and its outputs, reversed
    back, are concatenated after the forward ones at every step (torch's ``bidirectional=True``
    layout; Schuster & Paliwal 1997), the next layer reading both. ``dropout`` is a drop
    probability:

    - ``"naive"`` (Zaremba et al. 2014; notes: dropout on the non-recurrent connections
      only): a fresh mask per time step on every layer's input and the last layer's output;
      h_{t−1} → h_t is never dropped. Without layer norm this runs torch's cuDNN/oneDNN
      ``nn.RNN/GRU/LSTM`` (its ``dropout`` between layers) with dropout before and after.
    - ``"variational"`` (Gal & Ghahramani 2016; notes: the same mask at every step): one
      mask per sequence on the inputs, the outputs *and* h_{t−1} where it enters the
      recurrence (the LSTM's c is not dropped). One mask per connection ("tied" weights
      in the paper's terms), not one per gate. Runs a loop over time steps.

    ``layer_norm=True`` uses :class:`LayerNormRNNCell` / :class:`LayerNormGRUCell` /
    :class:`LayerNormLSTMCell` in a loop over time steps.
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        layer_norm: bool = False,
        dropout: float = 0.0,
        dropout_mode: str = "naive",
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        self.cell = _choice("cell", cell, CELLS)
        self.input_size = _positive_int("input_size", input_size)
        self.hidden_size = _positive_int("hidden_size", hidden_size)
        self.num_layers = _positive_int("num_layers", num_layers)
        self.layer_norm = bool(layer_norm)
        self.dropout = _drop_probability("dropout", dropout)
        self.dropout_mode = _choice("dropout_mode", dropout_mode, DROPOUT_MODES)
        self.bidirectional = bool(bidirectional)
        self.fast = self.dropout_mode == "naive" and not self.layer_norm
        # Naive: elementwise nn.Dropout on (batch, time, features) draws a new mask per step.
        self.drop = nn.Dropout(self.dropout) if self.dropout_mode == "naive" else LockedDropout(self.dropout)
        if self.fast:
            self.rnn = _TORCH_RNNS[cell](
                input_size, hidden_size, num_layers, batch_first=True,
                dropout=self.dropout if num_layers > 1 else 0.0,  # torch drops between layers only
                bidirectional=self.bidirectional,
            )  # fmt: skip
        else:
            make = _CELL_CLASSES[(cell, self.layer_norm)]
            width = hidden_size * (2 if self.bidirectional else 1)  # what a layer above reads
            self.cells = nn.ModuleList(
                make(input_size if layer == 0 else width, hidden_size) for layer in range(num_layers)
            )
            if self.bidirectional:  # the cells that read the sequence backwards
                self.cells_reverse = nn.ModuleList(
                    make(input_size if layer == 0 else width, hidden_size) for layer in range(num_layers)
                )

    @property
    def output_size(self) -> int:
        """Features per time step of the output: ``hidden_size``, doubled when bidirectional."""
        return self.hidden_size * (2 if self.bidirectional else 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(
                f"input must be (batch, time, features) with features={self.input_size}, got shape {tuple(x.shape)}"
            )
        if self.fast:
            return self.drop(self.rnn(self.drop(x))[0])
        variational = self.training and self.dropout > 0 and self.dropout_mode == "variational"
        for layer, cell in enumerate(self.cells):
            h_mask = dropout_mask((x.shape[0], self.hidden_size), self.dropout, x) if variational else None
            x = self.drop(x)
            out, _ = _run_layer(cell, x, None, h_mask)
            if self.bidirectional:
                back_mask = dropout_mask((x.shape[0], self.hidden_size), self.dropout, x) if variational else None
                back, _ = _run_layer(self.cells_reverse[layer], x.flip(1), None, back_mask)
                out = torch.cat([out, back.flip(1)], dim=-1)
            x = out
        return self.drop(x)

    def extra_repr(self) -> str:
        return (
            f"cell={self.cell!r}, layer_norm={self.layer_norm}, dropout={self.dropout}, "
            f"dropout_mode={self.dropout_mode!r}, bidirectional={self.bidirectional}, fast={self.fast}"
        )
