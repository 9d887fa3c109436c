"""Gradient clipping against the notes' formulas (NumPy) and torch.nn.utils."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainlab.optim import clip_grad_norm_, clip_grad_value_

SHAPES = [(3,), (4, 5), (2, 3, 2)]


def _params(seed, scale=1.0, dtype=torch.float64, none_at=None):
    gen = torch.Generator().manual_seed(seed)
    ps = [torch.zeros(s, dtype=dtype, requires_grad=True) for s in SHAPES]
    for i, p in enumerate(ps):
        p.grad = None if i == none_at else scale * torch.randn(p.shape, generator=gen, dtype=torch.float64).to(dtype)
    return ps


def _numpy_grads(ps):
    return [p.grad.double().numpy().copy() for p in ps if p.grad is not None]


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("scale", [0.01, 10.0])
def test_clip_norm_matches_the_notes_and_torch(norm_type, scale):
    ps, theirs = _params(0, scale), _params(0, scale)
    grads = _numpy_grads(ps)
    flat = np.concatenate([g.ravel() for g in grads])  # the global norm: all gradients as one vector
    norm = np.abs(flat).max() if norm_type == math.inf else (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    max_norm = 1.0
    total = clip_grad_norm_(ps, max_norm, norm_type)
    np.testing.assert_allclose(total.item(), norm, rtol=1e-12)
    # notes: g ← (b/‖g‖) g when ‖g‖ > b (torch's 1e-6 in the denominator is inside rtol)
    factor = max_norm / norm if norm > max_norm else 1.0
    for p, g in zip(ps, grads):
        np.testing.assert_allclose(p.grad.numpy(), factor * g, rtol=1e-5)
    expected_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert torch.equal(total, expected_total)
    for a, b in zip(ps, theirs):
        assert torch.equal(a.grad, b.grad)


def test_clip_norm_below_threshold_leaves_grads_unchanged_and_clipped_norm_is_max_norm():
    ps = _params(1, scale=0.01)
    before = _numpy_grads(ps)
    clip_grad_norm_(ps, 100.0)
    for p, g in zip(ps, before):
        assert np.array_equal(p.grad.numpy(), g)
    big = _params(2, scale=100.0)
    clip_grad_norm_(big, 0.5)
    after = torch.linalg.vector_norm(torch.cat([p.grad.ravel() for p in big]))
    assert 0.5 - 1e-6 < after.item() <= 0.5


def test_clip_norm_skips_none_grads_and_takes_a_tensor_or_mixed_dtypes():
    ps, theirs = _params(3, 5.0, none_at=1), _params(3, 5.0, none_at=1)
    assert torch.equal(clip_grad_norm_(ps, 1.0), torch.nn.utils.clip_grad_norm_(theirs, 1.0))
    assert ps[1].grad is None
    single = torch.zeros(4, requires_grad=True)
    single.grad = torch.tensor([3.0, 4.0, 0.0, 0.0])
    assert clip_grad_norm_(single, 1.0).item() == pytest.approx(5.0)
    torch.testing.assert_close(single.grad, torch.tensor([0.6, 0.8, 0.0, 0.0]), rtol=1e-5, atol=0)
    mixed = [torch.zeros(2, requires_grad=True), torch.zeros(2, dtype=torch.float64, requires_grad=True)]
    mixed[0].grad, mixed[1].grad = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 4.0], dtype=torch.float64)
    assert clip_grad_norm_(mixed, 10.0).item() == pytest.approx(5.0)
    assert clip_grad_norm_([torch.zeros(2, requires_grad=True)], 1.0).item() == 0.0  # no grads at all


def test_clip_norm_nonfinite():
    ps = _params(4)
    ps[0].grad[0] = float("inf")
    with pytest.raises(RuntimeError, match="total norm of order 2.0 of the gradients is inf"):
        clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    assert math.isinf(clip_grad_norm_(ps, 1.0).item())


@pytest.mark.parametrize("clip", [0.1, 1.5])
def test_clip_value_matches_the_notes_and_torch(clip):
    ps, theirs = _params(5, 2.0, none_at=2), _params(5, 2.0, none_at=2)
    grads = _numpy_grads(ps)
    clip_grad_value_(ps, clip)
    torch.nn.utils.clip_grad_value_(theirs, clip)
    for p, q, g in zip(ps, theirs, grads):
        np.testing.assert_array_equal(p.grad.numpy(), np.maximum(np.minimum(g, clip), -clip))  # max(min(g, b), a)
        assert torch.equal(p.grad, q.grad)
    assert ps[2].grad is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ps: clip_grad_norm_(ps, 0.0), r"max_norm must be a finite number > 0, got 0.0"),
        (lambda ps: clip_grad_norm_(ps, -1), r"max_norm must be a finite number > 0, got -1"),
        (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=0), r"norm_type must be > 0"),
        (lambda ps: clip_grad_value_(ps, 0.0), r"clip_value must be a finite number > 0, got 0.0"),
        (lambda ps: clip_grad_value_(ps, float("inf")), r"clip_value must be a finite number > 0, got inf"),
    ],
)
def test_bad_clip_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call(_params(6))
