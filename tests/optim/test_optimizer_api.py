"""The torch.optim.Optimizer contract and the conventions the notes make explicit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from optim_harness import assert_same_trajectory, random_problem, trajectory

import trainlab.optim as O
import trainlab.optim._base as base
from trainlab._io import atomic_torch_save, torch_load

# Options that make every optimizer create all of its state buffers.
FULL = {
    "sgd": dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adagrad": dict(lr=0.05, lr_decay=0.01, weight_decay=0.01),
    "rmsprop": dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01),
    "adadelta": dict(weight_decay=0.01),
    "adam": dict(lr=0.01, amsgrad=True, weight_decay=0.01),
    "adamw": dict(lr=0.01, amsgrad=True),
    "nadam": dict(lr=0.01, weight_decay=0.01),
}
VARIANTS = [(n, {}) for n in O.OPTIMIZERS] + [(n, {"fused": False}) for n in O.OPTIMIZERS if "fused" in O.options(n)]
VARIANT_IDS = [n + ("-multi_tensor" if v else "") for n, v in VARIANTS]


def _set_grads(params, grads):
    for p, g in zip(params, grads):
        p.grad = torch.as_tensor(g, dtype=p.dtype)


@pytest.mark.parametrize(("name", "variant"), VARIANTS, ids=VARIANT_IDS)
def test_state_dict_resume_is_bit_identical(name, variant, tmp_path):
    params0, grads = random_problem(seed=11, steps=60)
    make = lambda ps: O.create(name, ps, **FULL[name], **variant)  # noqa: E731
    ps = [torch.tensor(p, dtype=torch.float32, requires_grad=True) for p in params0]
    opt = make(ps)
    for g in grads[:30]:
        _set_grads(ps, g)
        opt.step()
    atomic_torch_save(tmp_path / "ckpt.pt", {"params": [p.detach() for p in ps], "optim": opt.state_dict()})
    saved = torch_load(tmp_path / "ckpt.pt")  # weights_only=True: the state holds tensors and floats only
    resumed = [p.clone().requires_grad_() for p in saved["params"]]
    opt2 = make(resumed)
    opt2.load_state_dict(saved["optim"])
    for g in grads[30:]:
        _set_grads(ps, g)
        _set_grads(resumed, g)
        opt.step()
        opt2.step()
    for a, b in zip(ps, resumed):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("name", "variant"), VARIANTS, ids=VARIANT_IDS)
def test_grad_none_is_skipped_and_grads_are_not_modified(name, variant):
    with_grad, frozen = torch.randn(5, requires_grad=True), torch.randn(3, requires_grad=True)
    frozen_before = frozen.detach().clone()
    opt = O.create(name, [with_grad, frozen], **FULL[name], maximize=True, **variant)
    grad = torch.randn(5)
    with_grad.grad = grad.clone()
    before = with_grad.detach().clone()
    opt.step()
    opt.step()
    assert torch.equal(frozen, frozen_before) and len(opt.state[frozen]) == 0
    assert not torch.equal(with_grad, before)
    assert torch.equal(with_grad.grad, grad)  # maximize, weight decay, Nesterov: computed in copies


@pytest.mark.parametrize(("name", "variant"), VARIANTS, ids=VARIANT_IDS)
def test_maximize_is_descent_on_the_negated_gradient(name, variant):
    params0, grads = random_problem(seed=2, steps=30)
    neg = [[-g for g in step] for step in grads]
    up = trajectory(lambda ps: O.create(name, ps, **FULL[name], maximize=True, **variant), params0, grads)
    down = trajectory(lambda ps: O.create(name, ps, **FULL[name], **variant), params0, neg)
    assert_same_trajectory(up, down, rtol=1e-12)


@pytest.mark.parametrize("name", O.OPTIMIZERS)
def test_closure_is_evaluated_with_grad_and_its_loss_returned(name):
    w = torch.randn(4, requires_grad=True)
    opt = O.create(name, [w], **FULL[name])
    calls = []

    def closure():
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()  # needs grad mode, although step() runs under no_grad
        calls.append(loss.item())
        return loss

    loss = opt.step(closure)
    assert len(calls) == 1 and loss.item() == calls[0]


@pytest.mark.parametrize("name", O.OPTIMIZERS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_low_precision_params_follow_the_float64_trajectory(name, dtype):
    """State stays in the parameter's dtype; the path follows float64 within that precision."""
    params0, grads = random_problem(seed=4, steps=20)
    make = lambda ps: O.create(name, ps, **FULL[name])  # noqa: E731
    exact = trajectory(make, params0, grads)
    low = trajectory(make, params0, grads, dtype=dtype)
    tol = 1e-5 if dtype == torch.float32 else 5e-2
    assert_same_trajectory(low, exact, rtol=tol, atol=tol)
    p = torch.zeros(3, dtype=dtype, requires_grad=True)
    opt = O.create(name, [p], **FULL[name])
    p.grad = torch.ones(3, dtype=dtype)
    opt.step()
    assert p.dtype == dtype
    assert all(v.dtype == dtype for k, v in opt.state[p].items() if torch.is_tensor(v) and k != "step")


def test_mixed_dtypes_in_one_group_each_follow_their_own_batch():
    a, b = (
        torch.ones(3, dtype=torch.float32, requires_grad=True),
        torch.ones(3, dtype=torch.float64, requires_grad=True),
    )
    opt = O.Adam([a, b], lr=0.1)
    a.grad, b.grad = torch.full((3,), 2.0), torch.full((3,), 2.0, dtype=torch.float64)
    opt.step()
    # step 1 of Adam moves every coordinate by lr·g/(|g| + ε) ≈ lr, whatever the scale of g
    torch.testing.assert_close(a, torch.full((3,), 0.9), rtol=0, atol=1e-6)
    torch.testing.assert_close(b, torch.full((3,), 0.9, dtype=torch.float64), rtol=0, atol=1e-8)


@pytest.mark.parametrize("name", O.OPTIMIZERS)
def test_tiles_do_not_change_the_numbers(name, monkeypatch):
    """A tile is a run of whole tensors; cutting the batch finer gives the same bits."""
    params0, grads = random_problem(seed=8, steps=10, shapes=[(3,), (50,), (2, 4), (7,), (1,)])
    make = lambda ps: O.create(name, ps, **FULL[name], **({"fused": False} if "fused" in O.options(name) else {}))  # noqa: E731
    one_tile = trajectory(make, params0, grads)
    monkeypatch.setattr(base, "TILE_BYTES", 64)
    many_tiles = trajectory(make, params0, grads)
    assert_same_trajectory(many_tiles, one_tile, rtol=0, atol=0)


def test_add_param_group_fills_defaults_and_validates():
    opt = O.Adam([torch.zeros(2, requires_grad=True)], lr=0.01)
    opt.add_param_group({"params": [torch.zeros(3, requires_grad=True)], "lr": 0.1})
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match=r"lr must be >= 0, got -1"):
        opt.add_param_group({"params": [torch.zeros(1, requires_grad=True)], "lr": -1})
    assert len(opt.param_groups) == 2  # the rejected group is not kept


def test_torch_lr_scheduler_drives_the_learning_rate():
    w = torch.ones(1, requires_grad=True)
    opt = O.SGD([w], lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        w.grad = torch.ones(1)
        opt.step()
        sched.step()
    assert w.item() == pytest.approx(1 - (1 + 0.5 + 0.25))


# --- bad arguments ------------------------------------------------------------------------

BAD = [
    ("sgd", dict(lr=-0.1), r"lr must be >= 0, got -0.1"),
    ("sgd", dict(momentum=-0.5), r"momentum must be in \[0, 1\), got -0.5"),
    ("sgd", dict(momentum=1.0), r"momentum must be in \[0, 1\), got 1.0"),
    ("sgd", dict(nesterov=True), r"nesterov=True needs momentum in \(0, 1\) and dampening = 0, got momentum=0.0"),
    ("sgd", dict(nesterov=True, momentum=0.9, dampening=0.1), r"dampening = 0, got momentum=0.9, dampening=0.1"),
    ("sgd", dict(dampening=2.0), r"dampening must be in \[0, 1\], got 2.0"),
    ("sgd", dict(weight_decay=-1e-4), r"weight_decay must be >= 0"),
    ("sgd", dict(lr=float("nan")), r"lr must be finite, got nan"),
    ("sgd", dict(lr="0.1"), r"lr must be a number, got '0.1'"),
    ("adam", dict(eps=0.0), r"eps must be > 0, got 0.0"),
    ("adam", dict(eps=-1e-8), r"eps must be > 0"),
    ("adam", dict(betas=(0.9, 1.0)), r"betas\[1\] must be in \[0, 1\), got 1.0"),
    ("adam", dict(betas=(-0.1, 0.999)), r"betas\[0\] must be in \[0, 1\), got -0.1"),
    ("adam", dict(betas=0.9), r"betas must be a pair"),
    ("adam", dict(amsgrad=1), r"amsgrad must be True or False, got 1"),
    ("adam", dict(eps_inside_sqrt=True, fused=True), r"fused=True: torch's fused Adam kernel does not compute"),
    ("adamw", dict(lr=-1.0), r"lr must be >= 0"),
    ("nadam", dict(momentum_decay=-1.0), r"momentum_decay must be >= 0"),
    ("adagrad", dict(lr_decay=-0.1), r"lr_decay must be >= 0"),
    ("adagrad", dict(initial_accumulator_value=-1.0), r"initial_accumulator_value must be >= 0"),
    ("adagrad", dict(eps=0), r"eps must be > 0"),
    ("rmsprop", dict(alpha=1.0), r"alpha must be in \[0, 1\), got 1.0"),
    ("rmsprop", dict(momentum=-0.1), r"momentum must be in \[0, 1\)"),
    ("adadelta", dict(rho=1.5), r"rho must be in \[0, 1\), got 1.5"),
    ("adadelta", dict(eps=0.0), r"eps must be > 0"),
]


@pytest.mark.parametrize(("name", "kwargs", "message"), BAD, ids=[f"{n}-{k}" for n, k, _ in BAD])
def test_bad_arguments_name_the_argument_and_range(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        O.create(name, [torch.zeros(1, requires_grad=True)], **kwargs)


def test_sparse_and_complex_are_refused_clearly():
    with pytest.raises(ValueError, match="complex parameters are not supported"):
        O.Adam([torch.zeros(2, dtype=torch.complex64, requires_grad=True)])
    emb = torch.nn.Embedding(4, 2, sparse=True)
    emb(torch.tensor([1])).sum().backward()
    with pytest.raises(RuntimeError, match="Adam does not support sparse gradients"):
        O.Adam(emb.parameters()).step()


# --- the notes' conventions ---------------------------------------------------------------


def _quadratic(seed=0, n=6):
    """f(θ) = ½ θᵀAθ − bᵀθ with A symmetric positive definite: ∇f(θ) = Aθ − b."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n, n))
    return q @ q.T / n + np.eye(n), rng.standard_normal(n)


def test_nesterov_of_the_notes_is_torchs_nesterov():
    """The notes: Δθ_t = ρΔθ_{t-1} − α ∇f(θ_{t-1} + ρΔθ_{t-1}) (gradient at the look-ahead).
    torch/trainlab store φ = θ + ρΔθ and step φ ← φ − α(g + ρb), b ← ρb + g, g = ∇f(φ).
    Same trajectory: φ_t = θ_t + ρΔθ_t at every step, for a gradient that depends on θ."""
    A, b = _quadratic()
    lr, rho = 0.05, 0.9
    theta, delta = np.ones(6), np.zeros(6)
    phi = torch.ones(6, dtype=torch.float64, requires_grad=True)
    opt = O.SGD([phi], lr=lr, momentum=rho, nesterov=True)
    for _ in range(150):
        look_ahead = theta + rho * delta
        delta = rho * delta - lr * (A @ look_ahead - b)
        theta = theta + delta
        phi.grad = torch.from_numpy(A @ phi.detach().numpy() - b)
        opt.step()
        np.testing.assert_allclose(phi.detach().numpy(), theta + rho * delta, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(theta, np.linalg.solve(A, b), atol=1e-4)  # and it converged


def _notes_momentum(params0, grads, lrs, rho):
    """Δθ_t = ρΔθ_{t-1} − α_t g_t: each gradient enters with the α of its own step."""
    theta, delta, out = params0[0].copy(), np.zeros_like(params0[0]), []
    for g, lr in zip(grads, lrs):
        delta = rho * delta - lr * g[0]
        theta = theta + delta
        out.append([theta.copy()])
    return out


def test_momentum_conventions_agree_for_constant_lr_and_differ_when_it_changes():
    params0, grads = random_problem(seed=9, steps=60, shapes=[(5,)])
    constant, decaying = [0.1] * 60, [0.1 * 0.9**t for t in range(60)]
    make = lambda ps: O.SGD(ps, lr=0.1, momentum=0.9)  # noqa: E731
    ours_constant = trajectory(make, params0, grads, lrs=constant)
    assert_same_trajectory(ours_constant, _notes_momentum(params0, grads, constant, 0.9), rtol=1e-9)
    ours_decaying = trajectory(make, params0, grads, lrs=decaying)
    notes_decaying = _notes_momentum(params0, grads, decaying, 0.9)
    gap = np.abs(ours_decaying[-1][0] - notes_decaying[-1][0]).max()
    assert gap > 1e-2  # torch's θ ← θ − α_t b_t rescales the whole remembered sum by α_t


def test_sgd_weight_decay_is_the_notes_decoupled_decay():
    """000 §7.7.2: θ_t = (1 − β)θ_{t-1} − α g_t equals L2 with λ = β/α for plain SGD."""
    params0, grads = random_problem(seed=12, steps=50)
    lr, lam = 0.05, 0.2
    l2 = trajectory(lambda ps: O.SGD(ps, lr=lr, weight_decay=lam), params0, grads)
    thetas, decoupled = [p.copy() for p in params0], []
    for step in grads:
        thetas = [(1 - lr * lam) * th - lr * g for th, g in zip(thetas, step)]
        decoupled.append([th.copy() for th in thetas])
    assert_same_trajectory(l2, decoupled, rtol=1e-10)


def test_adam_l2_is_not_adamw_decoupled_decay():
    """The notes: for Adam, weight decay and L2 are not equivalent (000 §7.7.2)."""
    params0, grads = random_problem(seed=13, steps=50)
    l2 = trajectory(lambda ps: O.Adam(ps, lr=0.01, weight_decay=0.1), params0, grads)
    decoupled = trajectory(lambda ps: O.AdamW(ps, lr=0.01, weight_decay=0.1), params0, grads)
    plain = trajectory(lambda ps: O.Adam(ps, lr=0.01), params0, grads)
    assert np.abs(l2[-1][1] - decoupled[-1][1]).max() > 1e-3
    # AdamW's decay is exactly the (1 − αλ) shrink: with zero gradients it is all that happens
    zero = [[np.zeros_like(g) for g in step] for step in grads[:5]]
    only_decay = trajectory(lambda ps: O.AdamW(ps, lr=0.01, weight_decay=0.1), params0, zero)
    np.testing.assert_allclose(only_decay[-1][0], params0[0] * (1 - 0.01 * 0.1) ** 5, rtol=1e-12)
    assert np.abs(plain[-1][1] - decoupled[-1][1]).max() > 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_sgd_low_precision_updates_every_element(dtype):
    """torch 2.12-2.13's fused CPU SGD skips whole SIMD blocks in 16-bit (pytorch#191763);
    trainlab must not use it there. 1000 elements span many SIMD blocks."""
    p = torch.zeros(1000, dtype=dtype, requires_grad=True)
    opt = O.SGD([p], lr=0.5, momentum=0.9)
    for _ in range(3):
        p.grad = torch.ones(1000, dtype=dtype)
        opt.step()
    # b = 1, 1.9, 2.71: θ = −0.5 (1 + 1.9 + 2.71) = −2.805, representable to 16-bit precision
    torch.testing.assert_close(p.float(), torch.full((1000,), -2.805), rtol=1e-2, atol=0)
