"""Architecture options against torch references: per-layer CNN kernels and padding, a
bidirectional recurrent net (both of RecurrentNet's paths) and the all-steps readout."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trainlab.errors import ConfigError
from trainlab.models import build_model
from trainlab.nn.recurrent import RecurrentNet
from trainlab.train.config import ModelConfig


def _cnn(**kw):
    return build_model(ModelConfig(name="cnn", activation="relu", **kw), (40,), 10)


def test_cnn_per_layer_kernels_and_padding_are_greydanus_convbase():
    """ConvBase of greydanus/mnist1d notebooks/models.py, by torch.nn.functional with the same weights."""
    torch.manual_seed(0)
    model = _cnn(channels=[25, 25, 25], kernel_size=[5, 3, 3], padding=1, stride=2)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
    assert [(c.kernel_size[0], c.padding[0], c.stride[0]) for c in convs] == [(5, 1, 2), (3, 1, 2), (3, 1, 2)]
    assert model.head.in_features == 125  # 40 -> 19 -> 10 -> 5, times 25 channels
    x = torch.randn(6, 40)
    h = x.view(6, 1, 40)
    for c in convs:
        h = F.conv1d(h, c.weight, c.bias, stride=2, padding=1).relu()
    expected = F.linear(h.reshape(6, -1), model.head.weight, model.head.bias)
    torch.testing.assert_close(model(x), expected)


def test_cnn_single_kernel_keeps_half_padding_and_per_layer_lists_must_match_channels():
    convs = [m for m in _cnn(channels=[4, 4], kernel_size=5).modules() if isinstance(m, torch.nn.Conv1d)]
    assert [(c.kernel_size[0], c.padding[0]) for c in convs] == [(5, 2), (5, 2)]
    convs = [m for m in _cnn(channels=[4, 4], kernel_size=[5, 3]).modules() if isinstance(m, torch.nn.Conv1d)]
    assert [(c.kernel_size[0], c.padding[0]) for c in convs] == [(5, 2), (3, 1)]
    with pytest.raises(ConfigError, match="model.kernel_size lists 3 values for 2 conv layers"):
        _cnn(channels=[4, 4], kernel_size=[5, 3, 3])
    with pytest.raises(ConfigError, match="model.padding lists 1 values for 2 conv layers"):
        _cnn(channels=[4, 4], padding=[1])


def _copy_direction(cell, ref: torch.nn.GRU, suffix: str) -> None:
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(ref, f"{name}_l0{suffix}"))


@pytest.mark.parametrize("mode", ["naive", "variational"])  # torch's fused GRU, and the loop over cells
def test_bidirectional_gru_matches_torch(mode):
    torch.manual_seed(1)
    net = RecurrentNet("gru", 3, 5, bidirectional=True, dropout_mode=mode)
    ref = torch.nn.GRU(3, 5, batch_first=True, bidirectional=True)
    if net.fast:
        ref.load_state_dict(net.rnn.state_dict())
    else:
        _copy_direction(net.cells[0], ref, "")
        _copy_direction(net.cells_reverse[0], ref, "_reverse")
    x = torch.randn(4, 7, 3)
    out = net(x)
    assert out.shape == (4, 7, 10) and net.output_size == 10
    torch.testing.assert_close(out, ref(x)[0])


def test_bidirectional_loop_by_numpy():
    """The backward direction is the same recurrence over the reversed sequence, its outputs reversed back."""
    torch.manual_seed(2)
    net = RecurrentNet("gru", 1, 2, bidirectional=True, dropout_mode="variational")
    x = torch.randn(3, 5, 1)

    def gru(cell, xs):  # h' = (1 − z) n + z h,  n = tanh(W_in x + b_in + r (W_hn h + b_hn))
        wi, wh = cell.weight_ih.detach().double().numpy(), cell.weight_hh.detach().double().numpy()
        bi, bh = cell.bias_ih.detach().double().numpy(), cell.bias_hh.detach().double().numpy()
        h, out = np.zeros((xs.shape[0], 2)), []
        for t in range(xs.shape[1]):
            a, b = xs[:, t] @ wi.T + bi, h @ wh.T + bh
            r = 1 / (1 + np.exp(-(a[:, :2] + b[:, :2])))
            z = 1 / (1 + np.exp(-(a[:, 2:4] + b[:, 2:4])))
            n = np.tanh(a[:, 4:] + r * b[:, 4:])
            h = (1 - z) * n + z * h
            out.append(h)
        return np.stack(out, 1)

    xs = x.double().numpy()
    expected = np.concatenate([gru(net.cells[0], xs), gru(net.cells_reverse[0], xs[:, ::-1])[:, ::-1]], -1)
    np.testing.assert_allclose(net(x).detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_gru_readout_all_is_greydanus_grubase():
    """GRUBase: a bidirectional GRU (hidden 6), a linear layer on all 40 steps' outputs."""
    torch.manual_seed(3)
    model = build_model(ModelConfig(name="gru", hidden=[6], bidirectional=True, readout="all"), (40,), 10)
    assert model.head.in_features == 2 * 6 * 40
    ref = torch.nn.GRU(1, 6, batch_first=True, bidirectional=True)
    ref.load_state_dict(model.rnn.rnn.state_dict())
    x = torch.randn(5, 40)
    out, _ = ref(x.view(5, 40, 1))
    torch.testing.assert_close(model(x), F.linear(out.reshape(5, -1), model.head.weight, model.head.bias))


def test_gru_readout_last_bidirectional_reads_each_directions_final_state():
    torch.manual_seed(4)
    model = build_model(ModelConfig(name="gru", hidden=[3], bidirectional=True), (8,), 2)
    ref = torch.nn.GRU(1, 3, batch_first=True, bidirectional=True)
    ref.load_state_dict(model.rnn.rnn.state_dict())
    x = torch.randn(4, 8)
    _, h_n = ref(x.view(4, 8, 1))  # (2, batch, 3): the forward's state after step 8, the backward's after step 1
    torch.testing.assert_close(model(x), F.linear(torch.cat([h_n[0], h_n[1]], -1), model.head.weight, model.head.bias))


def test_population_trains_the_new_options_alone():
    from trainlab.train.config import load_config
    from trainlab.train.population import unsupported

    base = {"data": {"name": "mnist1d"}, "model": {"name": "gru", "hidden": [6]}}
    assert unsupported(load_config(base)) is None
    assert "bidirectional" in unsupported(
        load_config({**base, "model": {"name": "gru", "hidden": [6], "bidirectional": True}})
    )
    assert "readout" in unsupported(load_config({**base, "model": {"name": "gru", "hidden": [6], "readout": "all"}}))
    assert "norm_bound" in unsupported(load_config({**base, "regularize": {"norm_bound": 1.0}}))
