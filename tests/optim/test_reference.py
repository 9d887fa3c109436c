"""Each optimizer against an independent NumPy reference written from the notes' equations.

The references below are transcribed from notes 000 §7.2 (and the papers where the notes
stop: torch's extra options, Nadam), one line per equation, in float64; they share no code
with trainlab. 100+ steps on random parameters and gradients of several shapes, weight decay
on and off, several learning rates; agreement to 1e-6 relative at every step.
"""

from __future__ import annotations

import numpy as np
import pytest
from optim_harness import assert_same_trajectory, random_problem, trajectory

import trainlab.optim as O


def run_reference(update, params0, grads, **hyper):
    """Apply ``update(theta, g, state, t, **hyper) -> theta`` per parameter for every step."""
    thetas = [p.copy() for p in params0]
    states = [{} for _ in thetas]
    out = []
    for t, step_grads in enumerate(grads, start=1):
        thetas = [update(theta, g, s, t, **hyper) for theta, g, s in zip(thetas, step_grads, states)]
        out.append([theta.copy() for theta in thetas])
    return out


def l2(g, theta, wd):
    """Notes 003 §L2: the gradient of J + (λ/2)||w||² is ∇J + λw."""
    return g + wd * theta


# --- SGD, momentum, Nesterov (000 §7.2.1, §7.2.4) ------------------------------------------


def sgd_ref(theta, g, s, t, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    g = l2(g, theta, weight_decay)
    if momentum == 0:
        return theta - lr * g  # θ_t = θ_{t-1} − α g_t
    # Δθ_t = ρ Δθ_{t-1} − α g_t
    delta = momentum * s.get("delta", np.zeros_like(theta)) - lr * g
    s["delta"] = delta
    if not nesterov:
        return theta + delta
    # Nesterov: g is taken at the look-ahead point φ = θ + ρΔθ, and φ is what is stored:
    # φ_t = θ_t + ρΔθ_t = φ_{t-1} − ρΔθ_{t-1} + (1 + ρ)Δθ_t = φ_{t-1} + ρΔθ_t − α g_t
    return theta + momentum * delta - lr * g


# --- AdaGrad, RMSprop, AdaDelta (000 §7.2.3) -----------------------------------------------


def divide(g, G, eps, eps_inside_sqrt):
    """The notes' g / √(G + ε), or the papers' g / (√G + ε)."""
    return g / np.sqrt(G + eps) if eps_inside_sqrt else g / (np.sqrt(G) + eps)


def adagrad_ref(
    theta, g, s, t, lr, eps, eps_inside_sqrt, weight_decay=0.0, lr_decay=0.0, initial_accumulator_value=0.0
):
    g = l2(g, theta, weight_decay)
    s["G"] = s.get("G", np.full_like(theta, initial_accumulator_value)) + g * g  # G_t = Σ g_τ ⊙ g_τ
    lr_t = lr / (1 + (t - 1) * lr_decay)
    return theta - lr_t * divide(g, s["G"], eps, eps_inside_sqrt)  # Δθ_t = −α/√(G_t + ε) ⊙ g_t


def rmsprop_ref(theta, g, s, t, lr, alpha, eps, eps_inside_sqrt, weight_decay=0.0, centered=False, momentum=0.0):
    g = l2(g, theta, weight_decay)
    s["G"] = alpha * s.get("G", 0.0) + (1 - alpha) * g * g  # G_t = β G_{t-1} + (1 − β) g ⊙ g
    G = s["G"]
    if centered:  # Graves 2013: the variance G − ḡ²
        s["mean"] = alpha * s.get("mean", 0.0) + (1 - alpha) * g
        G = G - s["mean"] ** 2
    step = divide(g, G, eps, eps_inside_sqrt)
    if momentum:
        s["b"] = momentum * s.get("b", 0.0) + step
        step = s["b"]
    return theta - lr * step


def adadelta_ref(theta, g, s, t, lr, rho, eps, eps_inside_sqrt, weight_decay=0.0):
    g = l2(g, theta, weight_decay)
    s["G"] = rho * s.get("G", 0.0) + (1 - rho) * g * g
    X2 = s.get("X2", np.zeros_like(theta))  # ΔX²_{t-1}
    if eps_inside_sqrt:  # Δθ_t = −√(ΔX²_{t-1} + ε) / √(G_t + ε) g_t
        delta = -np.sqrt(X2 + eps) / np.sqrt(s["G"] + eps) * g
    else:
        delta = -(np.sqrt(X2) + eps) / (np.sqrt(s["G"]) + eps) * g
    s["X2"] = rho * X2 + (1 - rho) * delta * delta  # ΔX²_t = ρ ΔX²_{t-1} + (1 − ρ) Δθ_t²
    return theta + lr * delta


# --- Adam, AMSGrad, AdamW, Nadam (000 §7.2.4, §7.7.2) --------------------------------------


def adam_ref(theta, g, s, t, lr, betas, eps, eps_inside_sqrt, weight_decay=0.0, amsgrad=False, decoupled=False):
    b1, b2 = betas
    if decoupled:
        theta = (1 - lr * weight_decay) * theta  # θ ← (1 − β)θ, β = αλ (000 §7.7.2)
    else:
        g = l2(g, theta, weight_decay)
    s["M"] = b1 * s.get("M", 0.0) + (1 - b1) * g  # M_t = β₁ M_{t-1} + (1 − β₁) g_t
    s["G"] = b2 * s.get("G", 0.0) + (1 - b2) * g * g  # G_t = β₂ G_{t-1} + (1 − β₂) g_t ⊙ g_t
    G = s["G"]
    if amsgrad:
        s["Gmax"] = np.maximum(s.get("Gmax", 0.0), G)
        G = s["Gmax"]
    M_hat, G_hat = s["M"] / (1 - b1**t), G / (1 - b2**t)
    return theta - lr * divide(M_hat, G_hat, eps, eps_inside_sqrt)  # Δθ_t = −α/√(Ĝ_t + ε) M̂_t


def nadam_ref(theta, g, s, t, lr, betas, eps, eps_inside_sqrt, weight_decay=0.0, momentum_decay=4e-3):
    b1, b2 = betas
    g = l2(g, theta, weight_decay)
    mu = lambda k: b1 * (1 - 0.5 * 0.96 ** (k * momentum_decay))  # noqa: E731  Dozat's schedule
    s["prod"] = s.get("prod", 1.0) * mu(t)
    s["M"] = b1 * s.get("M", 0.0) + (1 - b1) * g
    s["G"] = b2 * s.get("G", 0.0) + (1 - b2) * g * g
    M_tilde = mu(t + 1) * s["M"] / (1 - s["prod"] * mu(t + 1)) + (1 - mu(t)) * g / (1 - s["prod"])
    return theta - lr * divide(M_tilde, s["G"] / (1 - b2**t), eps, eps_inside_sqrt)


# --- the cases ---------------------------------------------------------------------------

CASES = [
    # (trainlab name, trainlab kwargs, reference, reference kwargs)
    ("sgd", dict(lr=0.1), sgd_ref, dict(lr=0.1)),
    ("sgd", dict(lr=0.03, weight_decay=0.1), sgd_ref, dict(lr=0.03, weight_decay=0.1)),
    ("sgd", dict(lr=0.01, momentum=0.9), sgd_ref, dict(lr=0.01, momentum=0.9)),
    ("sgd", dict(lr=0.05, momentum=0.5, weight_decay=0.01), sgd_ref, dict(lr=0.05, momentum=0.5, weight_decay=0.01)),
    ("sgd", dict(lr=0.01, momentum=0.9, nesterov=True), sgd_ref, dict(lr=0.01, momentum=0.9, nesterov=True)),
    ("sgd", dict(lr=0.02, momentum=0.8, nesterov=True, weight_decay=0.05), sgd_ref, dict(lr=0.02, momentum=0.8, nesterov=True, weight_decay=0.05)),
    ("adagrad", dict(lr=0.1, eps_inside_sqrt=True), adagrad_ref, dict(lr=0.1, eps=1e-10, eps_inside_sqrt=True)),
    ("adagrad", dict(lr=0.01, eps=1e-3), adagrad_ref, dict(lr=0.01, eps=1e-3, eps_inside_sqrt=False)),
    ("adagrad", dict(lr=0.05, eps=0.1, eps_inside_sqrt=True, weight_decay=0.1), adagrad_ref, dict(lr=0.05, eps=0.1, eps_inside_sqrt=True, weight_decay=0.1)),
    ("adagrad", dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.01), adagrad_ref, dict(lr=0.05, eps=1e-10, eps_inside_sqrt=False, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.01)),
    ("rmsprop", dict(lr=0.001, alpha=0.9, eps=1e-6, eps_inside_sqrt=True), rmsprop_ref, dict(lr=0.001, alpha=0.9, eps=1e-6, eps_inside_sqrt=True)),
    ("rmsprop", dict(lr=0.01, eps=1e-3), rmsprop_ref, dict(lr=0.01, alpha=0.99, eps=1e-3, eps_inside_sqrt=False)),
    ("rmsprop", dict(lr=0.01, eps=1e-3, weight_decay=0.1, centered=True), rmsprop_ref, dict(lr=0.01, alpha=0.99, eps=1e-3, eps_inside_sqrt=False, weight_decay=0.1, centered=True)),
    ("rmsprop", dict(lr=0.003, alpha=0.9, eps=0.1, centered=True, momentum=0.9, eps_inside_sqrt=True), rmsprop_ref, dict(lr=0.003, alpha=0.9, eps=0.1, eps_inside_sqrt=True, centered=True, momentum=0.9)),
    ("adadelta", dict(), adadelta_ref, dict(lr=1.0, rho=0.9, eps=1e-6, eps_inside_sqrt=True)),
    ("adadelta", dict(lr=0.5, rho=0.95, eps=1e-4, weight_decay=0.1), adadelta_ref, dict(lr=0.5, rho=0.95, eps=1e-4, eps_inside_sqrt=True, weight_decay=0.1)),
    ("adadelta", dict(lr=2.0, eps=1e-3, eps_inside_sqrt=False), adadelta_ref, dict(lr=2.0, rho=0.9, eps=1e-3, eps_inside_sqrt=False)),
    ("adam", dict(lr=1e-3, eps_inside_sqrt=True), adam_ref, dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, eps_inside_sqrt=True)),
    ("adam", dict(lr=0.01, eps=1e-4), adam_ref, dict(lr=0.01, betas=(0.9, 0.999), eps=1e-4, eps_inside_sqrt=False)),
    ("adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-4, weight_decay=0.1), adam_ref, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-4, eps_inside_sqrt=False, weight_decay=0.1)),
    ("adam", dict(lr=0.003, eps=1e-3, amsgrad=True, eps_inside_sqrt=True, weight_decay=0.01), adam_ref, dict(lr=0.003, betas=(0.9, 0.999), eps=1e-3, eps_inside_sqrt=True, amsgrad=True, weight_decay=0.01)),
    ("adam", dict(lr=0.003, eps=1e-3, amsgrad=True), adam_ref, dict(lr=0.003, betas=(0.9, 0.999), eps=1e-3, eps_inside_sqrt=False, amsgrad=True)),
    ("adamw", dict(lr=0.01, eps=1e-4), adam_ref, dict(lr=0.01, betas=(0.9, 0.999), eps=1e-4, eps_inside_sqrt=False, weight_decay=0.01, decoupled=True)),
    ("adamw", dict(lr=0.003, weight_decay=0.5, eps_inside_sqrt=True, amsgrad=True), adam_ref, dict(lr=0.003, betas=(0.9, 0.999), eps=1e-8, eps_inside_sqrt=True, weight_decay=0.5, amsgrad=True, decoupled=True)),
    ("nadam", dict(lr=0.002, eps=1e-4), nadam_ref, dict(lr=0.002, betas=(0.9, 0.999), eps=1e-4, eps_inside_sqrt=False)),
    ("nadam", dict(lr=0.01, eps=1e-3, weight_decay=0.1, eps_inside_sqrt=True), nadam_ref, dict(lr=0.01, betas=(0.9, 0.999), eps=1e-3, eps_inside_sqrt=True, weight_decay=0.1)),
    ("nadam", dict(lr=0.001, betas=(0.8, 0.9), momentum_decay=0.01), nadam_ref, dict(lr=0.001, betas=(0.8, 0.9), eps=1e-8, eps_inside_sqrt=False, momentum_decay=0.01)),
]  # fmt: skip


def _id(case):
    name, kwargs = case[0], case[1]
    return name + "-" + ",".join(f"{k}={v}" for k, v in kwargs.items())


# Optimizers with a fused torch kernel run both paths: the kernel and trainlab's multi-tensor one.
RUNS = [(case, None) for case in CASES] + [(case, False) for case in CASES if "fused" in O.options(case[0])]


@pytest.mark.parametrize(
    ("case", "fused"), RUNS, ids=[f"{_id(c)}-{'auto' if f is None else 'multi_tensor'}" for c, f in RUNS]
)
def test_matches_numpy_reference(case, fused):
    name, kwargs, reference, ref_kwargs = case
    if fused is not None:
        kwargs = {**kwargs, "fused": fused}
    params0, grads = random_problem(seed=len(_id(case)), steps=120)
    ours = trajectory(lambda ps: O.create(name, ps, **kwargs), params0, grads)
    assert_same_trajectory(ours, run_reference(reference, params0, grads, **ref_kwargs), rtol=1e-6)


def test_every_optimizer_has_a_reference_case():
    assert {c[0] for c in CASES} == set(O.OPTIMIZERS)


def test_eps_placement_changes_the_result():
    """The switch is real: with a large ε, inside and outside the root differ at step 1."""
    params0, grads = random_problem(seed=1, steps=1)
    inside = trajectory(lambda ps: O.AdaGrad(ps, lr=0.1, eps=0.5, eps_inside_sqrt=True), params0, grads)
    outside = trajectory(lambda ps: O.AdaGrad(ps, lr=0.1, eps=0.5), params0, grads)
    g, theta = grads[0][0], params0[0]
    np.testing.assert_allclose(inside[0][0], theta - 0.1 * g / np.sqrt(g * g + 0.5), rtol=1e-12)
    np.testing.assert_allclose(outside[0][0], theta - 0.1 * g / (np.abs(g) + 0.5), rtol=1e-12)
    assert np.abs(inside[0][0] - outside[0][0]).max() > 1e-3
