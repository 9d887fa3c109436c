"""FLOP counts equal the hand count of the notes' exercise and torch's own counter."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from trainlab.diagnose.flops import count_flops


def test_mlp_matches_the_hand_count_of_the_notes_exercise():
    # the exercise: L layers of width n, sigmoid; per layer n² mults, n(n−1) + n adds, n sigmoids
    n, layers, batch = 7, 3, 5
    model = nn.Sequential(*[m for _ in range(layers) for m in (nn.Linear(n, n), nn.Sigmoid())])
    count = count_flops(model, torch.zeros(batch, n))
    assert count.total_mults == batch * layers * n * n
    assert count.total_adds == batch * layers * (n * (n - 1) + n)
    assert sum(r.nonlinear for r in count.rows) == batch * layers * n
    assert [r.name for r in count.rows] == ["0", "1", "2", "3", "4", "5"]
    assert count.batch_size == batch and not count.unsupported


def test_mlp_without_bias_and_torch_flop_counter():
    model = nn.Sequential(nn.Linear(10, 20, bias=False), nn.ReLU(), nn.Linear(20, 4, bias=False))
    x = torch.zeros(3, 10)
    count = count_flops(model, x)
    assert count.total_mults == 3 * (10 * 20 + 20 * 4)
    assert count.total_adds == 3 * (20 * 9 + 4 * 19)
    with FlopCounterMode(display=False) as torch_counter:
        model(x)
    # torch counts 2·I·O per output row (every product and I sums); without bias that is
    # mults + adds + one add per output (the first add into the accumulator)
    assert torch_counter.get_total_flops() == count.total_flops + 3 * (20 + 4)


def test_conv_counts_per_output_element():
    conv = nn.Conv1d(2, 4, kernel_size=3, stride=2, padding=1)
    x = torch.zeros(5, 2, 11)
    count = count_flops(nn.Sequential(conv), x)
    out_len = (11 + 2 - 3) // 2 + 1
    outputs = 5 * 4 * out_len
    assert count.total_mults == outputs * 2 * 3
    assert count.total_adds == outputs * (2 * 3 - 1 + 1)
    with FlopCounterMode(display=False) as torch_counter:
        conv(x)
    assert torch_counter.get_total_flops() == 2 * count.total_mults


def test_lstm_gate_count():
    lstm = nn.LSTM(input_size=3, hidden_size=5, batch_first=True)
    count = count_flops(lstm, torch.zeros(2, 7, 3))
    (row,) = count.rows
    per_step = 4 * 5 * (3 + 5) + 5 * 3  # gate pre-activations + c' = f⊙c + i⊙g, h' = o⊙tanh c'
    assert row.mults == 2 * 7 * per_step
    assert row.adds == 2 * 7 * (4 * 5 * (2 + 4 + 1 + 2) + 5 * 1)
    assert row.nonlinear == 2 * 7 * (4 * 5 + 5)


def test_unsupported_layers_are_named_not_guessed():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    count = count_flops(model, torch.zeros(2, 4))
    assert count.unsupported == ["1"]
    assert "not counted: 1" in count.table()
