"""Recurrent layers: layer-normalized cells against NumPy step-by-step references written
from Ba et al. 2016 / notes 000 §7.5.2, and the two RNN dropouts (notes 000 §7.7.4) checked
by hooking the cells and reading the masks back."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trainlab.nn.recurrent import (
    LayerNormGRU,
    LayerNormGRUCell,
    LayerNormLSTM,
    LayerNormLSTMCell,
    LayerNormRNNCell,
    LockedDropout,
    RecurrentNet,
)

# --- NumPy references ------------------------------------------------------------------


def np_ln(z, gain, bias, eps=1e-5):
    """LN over the units of each sample: γ ⊙ (z − μ) / √(σ² + ε) + β (σ² with 1/H)."""
    mu = z.mean(axis=-1, keepdims=True)
    var = ((z - mu) ** 2).mean(axis=-1, keepdims=True)
    return gain * (z - mu) / np.sqrt(var + eps) + bias


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def params(module):
    return {k: v.detach().numpy() for k, v in module.named_parameters()}


def np_ln_lstm_step(p, x, h, c):
    # Ba et al. 2016, appendix: gates = LN(W_h h) + LN(W_x x); c' = σ(f)c + σ(i)tanh(g); h' = σ(o)tanh(LN(c'))
    gates = np_ln(h @ p["weight_hh"].T, p["ln_hh.weight"], p["ln_hh.bias"]) + np_ln(
        x @ p["weight_ih"].T, p["ln_ih.weight"], p["ln_ih.bias"]
    )
    i, f, g, o = np.split(gates, 4, axis=1)  # torch's gate order
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    h = sigmoid(o) * np.tanh(np_ln(c, p["ln_c.weight"], p["ln_c.bias"]))
    return h, c


def np_ln_gru_step(p, x, h):
    a_r, a_z, a_n = np.split(np_ln(x @ p["weight_ih"].T, p["ln_ih.weight"], p["ln_ih.bias"]), 3, axis=1)
    b_r, b_z, b_n = np.split(np_ln(h @ p["weight_hh"].T, p["ln_hh.weight"], p["ln_hh.bias"]), 3, axis=1)
    r, z = sigmoid(a_r + b_r), sigmoid(a_z + b_z)
    n = np.tanh(a_n + r * b_n)
    return (1 - z) * n + z * h


def np_ln_rnn_step(p, x, h):
    # notes 000 §7.5.2: z_t = U h_{t-1} + W x_t, h_t = f(LN(z_t))
    return np.tanh(np_ln(h @ p["weight_hh"].T + x @ p["weight_ih"].T, p["ln.weight"], p["ln.bias"]))


def randomize_norms(module, seed=0):
    """LN gains and biases away from 1 and 0, so a wrong gain or bias shows."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if "ln" in name:
                param.copy_(torch.randn(param.shape, generator=gen, dtype=param.dtype) * 0.5 + ("weight" in name))
    return module


def rand(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --- layer-normalized cells -----------------------------------------------------------


def test_layer_norm_lstm_matches_numpy_step_by_step():
    torch.manual_seed(0)
    net = randomize_norms(LayerNormLSTM(3, 5, num_layers=2).double())
    x = rand(4, 7, 3)
    h0, c0 = rand(2, 4, 5, seed=2), rand(2, 4, 5, seed=3)
    out, (h_n, c_n) = net(x, (h0, c0))

    layer_in = x.numpy()
    for layer, cell in enumerate(net.cells):
        p, h, c = params(cell), h0[layer].numpy(), c0[layer].numpy()
        outs = []
        for t in range(7):
            h, c = np_ln_lstm_step(p, layer_in[:, t], h, c)
            outs.append(h)
        layer_in = np.stack(outs, axis=1)
        np.testing.assert_allclose(h_n[layer].detach().numpy(), h, rtol=0, atol=1e-12)
        np.testing.assert_allclose(c_n[layer].detach().numpy(), c, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.detach().numpy(), layer_in, rtol=0, atol=1e-12)


def test_layer_norm_lstm_time_major_layout():
    torch.manual_seed(0)
    net = LayerNormLSTM(3, 5, batch_first=True).double()
    tm = LayerNormLSTM(3, 5, batch_first=False).double()
    tm.load_state_dict(net.state_dict())
    x = rand(4, 6, 3)
    torch.testing.assert_close(tm(x.transpose(0, 1))[0].transpose(0, 1), net(x)[0], rtol=0, atol=0)


def test_layer_norm_gru_matches_numpy_step_by_step():
    torch.manual_seed(0)
    net = randomize_norms(LayerNormGRU(3, 5, num_layers=2).double())
    x, h0 = rand(4, 7, 3), rand(2, 4, 5, seed=2)
    out, h_n = net(x, h0)
    layer_in = x.numpy()
    for layer, cell in enumerate(net.cells):
        p, h = params(cell), h0[layer].numpy()
        outs = []
        for t in range(7):
            h = np_ln_gru_step(p, layer_in[:, t], h)
            outs.append(h)
        layer_in = np.stack(outs, axis=1)
        np.testing.assert_allclose(h_n[layer].detach().numpy(), h, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.detach().numpy(), layer_in, rtol=0, atol=1e-12)


def test_layer_norm_rnn_cell_matches_the_notes():
    torch.manual_seed(0)
    cell = randomize_norms(LayerNormRNNCell(3, 5).double())
    x, h = rand(4, 3), rand(4, 5, seed=2)
    np.testing.assert_allclose(
        cell(x, h).detach().numpy(), np_ln_rnn_step(params(cell), x.numpy(), h.numpy()), atol=1e-12
    )


@pytest.mark.parametrize("cell_class", [LayerNormLSTMCell, LayerNormGRUCell])
def test_layer_norm_makes_cells_invariant_to_weight_scale(cell_class):
    # Ba et al. 2016 §5 (Table 1): LN is invariant to re-scaling a weight matrix (exactly so
    # with eps -> 0; eps is what keeps the default cell from being exactly invariant).
    torch.manual_seed(0)
    cell = cell_class(3, 5, eps=1e-12).double()
    x, h = rand(4, 3), rand(4, 5, seed=2)
    state = (h, h.clone()) if cell_class is LayerNormLSTMCell else h
    before = cell(x, state)
    with torch.no_grad():
        cell.weight_ih.mul_(7.0)
        cell.weight_hh.mul_(0.2)
    torch.testing.assert_close(cell(x, state), before, rtol=0, atol=1e-9)


def test_cells_start_from_zero_state():
    cell = LayerNormLSTMCell(3, 4).double()
    x = rand(2, 3)
    zeros = torch.zeros(2, 4, dtype=torch.float64)
    torch.testing.assert_close(cell(x), cell(x, (zeros, zeros)))


# --- LockedDropout ----------------------------------------------------------------------


def test_locked_dropout_shares_one_mask_over_time():
    torch.manual_seed(0)
    drop = LockedDropout(0.3)
    y = drop(torch.ones(200, 6, 200))
    assert torch.equal(y, y[:, :1].expand_as(y))  # same mask at every step
    assert torch.allclose(y[y != 0], torch.tensor(1 / 0.7))
    assert abs((y[:, 0] == 0).float().mean().item() - 0.3) < 0.01  # p is the drop probability
    assert not torch.equal(y[0, 0], y[1, 0])  # a new mask per sequence


def test_locked_dropout_is_identity_in_eval_and_at_zero():
    x = torch.randn(3, 4, 5)
    assert LockedDropout(0.5).eval()(x) is x
    assert LockedDropout(0.0)(x) is x


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, True])
def test_locked_dropout_rejects_bad_p(p):
    with pytest.raises(ValueError, match=r"p must be a drop probability in \[0, 1\)"):
        LockedDropout(p)


def test_locked_dropout_needs_a_time_axis():
    with pytest.raises(ValueError, match=r"\(batch, time, features\)"):
        LockedDropout(0.5)(torch.randn(3, 4))


# --- RecurrentNet dropout, read back through hooks ----------------------------------------


class CellRecorder:
    """Records each call of a cell: its input x_t, h as it enters the recurrent weights
    (h_in), the state it carries (GRU: z ⊙ h), c for the LSTM, and its outputs."""

    def __init__(self, cell):
        self.x, self.h_in, self.c_in, self.h_out, self.c_out, self.carried = [], [], [], [], [], []
        cell.register_forward_pre_hook(self.pre)
        cell.register_forward_hook(self.post)

    def pre(self, module, args):
        x, state, *mask = args  # GRU cells take the recurrent mask as a third argument
        self.x.append(x.detach().clone())
        h, c = state if isinstance(state, tuple) else (state, None)
        self.carried.append(h.detach().clone())
        self.h_in.append((h if not mask or mask[0] is None else h * mask[0]).detach().clone())
        self.c_in.append(None if c is None else c.detach().clone())

    def post(self, module, args, out):
        h, c = out if isinstance(out, tuple) else (out, None)
        self.h_out.append(h.detach().clone())
        self.c_out.append(None if c is None else c.detach().clone())


def read_mask(masked, unmasked):
    """The mask m with masked = unmasked ⊙ m (unmasked is non-zero almost surely)."""
    return masked / unmasked


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layer_norm", [False, True])
def test_variational_dropout_one_mask_per_sequence_on_inputs_state_and_outputs(cell, layer_norm):
    torch.manual_seed(0)
    p, T = 0.5, 6
    net = RecurrentNet(cell, 4, 8, num_layers=2, layer_norm=layer_norm, dropout=p, dropout_mode="variational").double()
    recs = [CellRecorder(c) for c in net.cells]
    x = 1.0 + rand(16, T, 4).abs()  # non-zero inputs, so the mask can be read back
    y = net(x)

    for layer, rec in enumerate(recs):
        layer_in = x if layer == 0 else torch.stack(recs[0].h_out, dim=1)
        m_x = [read_mask(rec.x[t], layer_in[:, t]) for t in range(T)]
        m_h = [read_mask(rec.h_in[t], rec.h_out[t - 1]) for t in range(1, T)]
        for masks in (m_x, m_h):
            for m in masks[1:]:
                torch.testing.assert_close(m, masks[0], rtol=1e-12, atol=1e-12)  # same mask every step
            values = set(np.round(masks[0].numpy(), 9).ravel().tolist())
            assert values == {0.0, 2.0}  # inverted scaling 1/(1 - p)
            assert not torch.equal(masks[0][0], masks[0][1])  # each sequence its own mask
        for t in range(1, T):
            if cell == "lstm":  # the cell state c is not dropped
                assert torch.equal(rec.c_in[t], rec.c_out[t - 1])
            if cell == "gru":  # nor is the GRU's carry z ⊙ h_{t-1}: only W_hh's input is
                assert torch.equal(rec.carried[t], rec.h_out[t - 1])
    last = torch.stack(recs[-1].h_out, dim=1)
    m_out = read_mask(y, last)
    assert torch.allclose(m_out, m_out[:, :1].expand_as(m_out), atol=1e-12)

    first_mask = read_mask(recs[0].x[0], x[:, 0])
    net(x)  # a new forward pass is a new set of sequences: new masks
    assert not torch.equal(read_mask(recs[0].x[T], x[:, 0]), first_mask)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_naive_dropout_never_touches_the_recurrent_state(cell):
    torch.manual_seed(0)
    p, T = 0.9, 8
    net = RecurrentNet(cell, 4, 8, layer_norm=True, dropout=p, dropout_mode="naive").double()
    rec = CellRecorder(net.cells[0])
    x = 1.0 + rand(32, T, 4).abs()
    net(x)
    for t in range(1, T):
        assert torch.equal(rec.h_in[t], rec.h_out[t - 1])  # h_{t-1} enters the recurrence untouched
        if cell == "lstm":
            assert torch.equal(rec.c_in[t], rec.c_out[t - 1])
    masks = [read_mask(rec.x[t], x[:, t]) for t in range(T)]
    assert set(np.round(torch.stack(masks).numpy(), 9).ravel().tolist()) == {0.0, 10.0}
    assert not all(torch.equal(masks[0], m) for m in masks[1:])  # a fresh mask per time step


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_naive_fast_path_drops_only_outside_the_recurrence(cell):
    """With p close to 1 on a 1-layer torch RNN: the recurrence run by hand on the dropped
    input, with the state passed on unmasked, reproduces torch's output; the net's output
    is that output with its own mask."""
    torch.manual_seed(0)
    p = 0.9
    net = RecurrentNet(cell, 4, 8, dropout=p, dropout_mode="naive").double()
    seen = {}
    net.rnn.register_forward_hook(lambda m, args, out: seen.update(x=args[0], out=out[0]))
    x = 1.0 + rand(32, 8, 4).abs()
    y = net(x)

    cell_module = {"rnn": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}[cell](4, 8).double()
    cell_module.load_state_dict({k[: -len("_l0")]: v for k, v in net.rnn.state_dict().items()})
    state = None
    outs = []
    for t in range(8):
        state = cell_module(seen["x"][:, t], state)
        outs.append(state[0] if cell == "lstm" else state)
    torch.testing.assert_close(torch.stack(outs, dim=1), seen["out"], rtol=0, atol=1e-12)
    m_in, m_out = read_mask(seen["x"], x), read_mask(y, seen["out"])
    assert set(np.round(m_in.detach().numpy(), 9).ravel().tolist()) == {0.0, 10.0}
    assert set(np.round(m_out.detach().numpy(), 6).ravel().tolist()) == {0.0, 10.0}


@pytest.mark.parametrize("mode", ["naive", "variational"])
@pytest.mark.parametrize("layer_norm", [False, True])
def test_eval_mode_is_deterministic_and_drops_nothing(mode, layer_norm):
    torch.manual_seed(0)
    net = (
        RecurrentNet("lstm", 4, 8, num_layers=2, layer_norm=layer_norm, dropout=0.5, dropout_mode=mode).double().eval()
    )
    plain = RecurrentNet("lstm", 4, 8, num_layers=2, layer_norm=layer_norm, dropout=0.0, dropout_mode=mode).double()
    plain.load_state_dict(net.state_dict())
    x = rand(3, 5, 4)
    assert torch.equal(net(x), net(x))
    assert torch.equal(net(x), plain(x))
    assert not torch.equal(net.train()(x), plain(x))  # and training mode does drop


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_fast_path_equals_loop_path_with_the_same_weights(cell):
    torch.manual_seed(0)
    fast = RecurrentNet(cell, 4, 8, num_layers=3).double()
    loop = RecurrentNet(cell, 4, 8, num_layers=3, dropout_mode="variational").double()  # dropout 0: loop
    assert fast.fast and not loop.fast
    state = fast.rnn.state_dict()
    loop.load_state_dict(
        {
            f"cells.{k}.{name}": state[f"{name}_l{k}"]
            for k in range(3)
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        }
    )
    x = rand(5, 9, 4)
    torch.testing.assert_close(loop(x), fast(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"cell": "lsmt"}, r"cell must be one of rnn, gru, lstm, got 'lsmt' \(did you mean 'lstm'\?\)"),
        ({"input_size": 0}, r"input_size must be a positive integer, got 0"),
        ({"hidden_size": -3}, r"hidden_size must be a positive integer, got -3"),
        ({"num_layers": 0}, r"num_layers must be a positive integer, got 0"),
        ({"dropout": 1.0}, r"dropout must be a drop probability in \[0, 1\), got 1\.0"),
        ({"dropout": -0.5}, r"dropout must be a drop probability in \[0, 1\), got -0\.5"),
        ({"dropout_mode": "gal"}, r"dropout_mode must be one of naive, variational, got 'gal'"),
    ],
)
def test_recurrent_net_rejects_bad_arguments(kwargs, match):
    args = {"cell": "lstm", "input_size": 4, "hidden_size": 8, **kwargs}
    with pytest.raises(ValueError, match=match):
        RecurrentNet(**args)


def test_recurrent_net_rejects_wrong_input_shape():
    net = RecurrentNet("gru", 4, 8)
    with pytest.raises(ValueError, match=r"features=4, got shape \(2, 3, 5\)"):
        net(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match=r"got shape \(2, 4\)"):
        LayerNormLSTM(4, 8)(torch.randn(2, 4))


def test_layer_norm_lstm_trains():
    torch.manual_seed(0)
    net = RecurrentNet("lstm", 2, 16, layer_norm=True, dropout=0.1, dropout_mode="variational")
    head = nn.Linear(16, 1)
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=0.01)
    x = torch.randn(64, 10, 2)
    target = x[:, :, 0].sum(dim=1, keepdim=True)  # needs memory over the sequence
    losses = []
    for _ in range(100):
        loss = nn.functional.mse_loss(head(net(x)[:, -1]), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all() and losses[-1] < 0.4 * losses[0]


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_variational_layer_norm_gradients_stay_moderate(cell):
    """Regression: with 1-feature inputs, variational dropout zeroes whole sequences, and a
    GRU whose carry were dropped too would scale kept units by 1/(1-p) every step. The
    gradients must stay within a small factor of the undropped net's (they reached 1e12)."""
    torch.manual_seed(0)
    x = torch.randn(64, 40, 4)
    x[:8] = 0.0  # some all-zero sequences, as dropout or padding make them

    def max_grad(p):
        torch.manual_seed(0)
        net = RecurrentNet(cell, 4, 16, num_layers=2, layer_norm=True, dropout=p, dropout_mode="variational")
        net(x)[:, -1].pow(2).mean().backward()
        return max(q.grad.abs().max().item() for q in net.parameters())

    reference = max_grad(0.0)
    assert np.isfinite(reference) and max_grad(0.5) < 20 * reference


@pytest.mark.parametrize("cell_class", [LayerNormLSTMCell, LayerNormGRUCell])
def test_scalar_input_warns_that_layer_norm_keeps_only_its_sign(cell_class):
    with pytest.warns(UserWarning, match="input_size=1"):
        cell = cell_class(1, 8, eps=1e-12).double()
    x = torch.tensor([[0.3], [2.0], [-0.3]], dtype=torch.float64)
    a = cell.ln_ih(x @ cell.weight_ih.T)  # the claim of the warning, checked
    torch.testing.assert_close(a[0], a[1])
    assert not torch.allclose(a[0], a[2])
