"""gradcheck passes correct backward passes and flags a wrong one."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.diagnose.gradcheck import gradcheck, relative_error


class WrongSquare(torch.autograd.Function):
    """x² with a deliberately wrong backward: x instead of 2x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x


class SquareNet(nn.Module):
    def __init__(self, wrong: bool):
        super().__init__()
        self.first, self.second, self.wrong = nn.Linear(4, 6), nn.Linear(6, 3), wrong

    def forward(self, x):
        h = self.first(x)
        return self.second(WrongSquare.apply(h) if self.wrong else h * h)


def _batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(10, 4, generator=g), torch.randint(0, 3, (10,), generator=g)


def test_correct_model_passes_every_parameter():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Sigmoid(), nn.Linear(8, 3))
    result = gradcheck(model, nn.functional.cross_entropy, _batch(), max_per_param=None)
    assert result.ok, result.table()
    assert [r.name for r in result.rows] == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert [r.checked for r in result.rows] == [32, 8, 64, 8, 24, 3]
    assert max(r.max_abs_error for r in result.rows) < 1e-8
    assert model[0].weight.dtype == torch.float32  # the user's model is untouched


def test_wrong_backward_is_flagged_on_the_parameters_before_it():
    torch.manual_seed(0)
    result = gradcheck(SquareNet(wrong=True), nn.functional.cross_entropy, _batch())
    assert not result.ok
    # the bad derivative halves the gradient of everything below the square: rel. error 1/2
    assert result.failed == ["first.weight", "first.bias"]
    assert result.rows[0].max_rel_error == pytest.approx(0.5, rel=1e-4)
    assert "NO" in result.table()
    torch.manual_seed(0)
    assert gradcheck(SquareNet(wrong=False), nn.functional.cross_entropy, _batch()).ok


def test_agrees_with_torch_autograd_gradcheck():
    # torch's own check on the same function of the first layer's weight, for both versions
    x, y = _batch()
    for wrong, expected in ((False, True), (True, False)):
        torch.manual_seed(0)
        net = SquareNet(wrong).double()
        w0 = net.first.weight.detach().clone().requires_grad_(True)

        def f(w, net=net):
            h = nn.functional.linear(x.double(), w, net.first.bias)
            h = WrongSquare.apply(h) if net.wrong else h * h
            return nn.functional.cross_entropy(net.second(h), y)

        assert torch.autograd.gradcheck(f, (w0,), raise_exception=False) is expected
        torch.manual_seed(0)
        assert gradcheck(SquareNet(wrong), nn.functional.cross_entropy, (x, y)).ok is expected


def test_relative_error_treats_two_tiny_gradients_as_equal():
    a = torch.tensor([1.0, 1e-12, 0.0, 2.0], dtype=torch.float64)
    n = torch.tensor([1.1, -1e-12, 0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(
        relative_error(a, n, atol=1e-9), torch.tensor([0.1 / 1.1, 0.0, 0.0, 0.5], dtype=torch.float64)
    )


def test_bad_arguments():
    model = nn.Linear(2, 2)
    batch = (torch.zeros(1, 2), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="h must be > 0.*got 0"):
        gradcheck(model, nn.functional.cross_entropy, batch, h=0)
    with pytest.raises(ValueError, match="max_per_param must be an integer >= 1 or None, got 0"):
        gradcheck(model, nn.functional.cross_entropy, batch, max_per_param=0)
