"""Learning-rate schedules against formulas written here from the notes (000 §7.2.3, 002),
against torch's schedulers where torch has the same schedule, and through resume."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch

from trainlab import schedules as S
from trainlab._io import atomic_torch_save, torch_load
from trainlab.errors import ConfigError

T = np.arange(0, 2500)  # every test spans well over 1000 steps


def values(schedule, steps=T) -> np.ndarray:
    return np.array([schedule(int(t)) for t in steps])


def assert_close(actual, expected, atol=1e-12):
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=atol)


def progress(t, total):
    """u of a span of ``total`` steps (docs/schedules.md): 0 at step 0, 1 at the last step, total − 1."""
    return np.minimum(t, total - 1) / max(total - 1, 1)


# --- closed forms, each NumPy reference written from the notes / paper ---------------


def test_constant():
    assert_close(values(S.constant(0.3)), np.full(T.shape, 0.3))


def test_step_decay():
    assert_close(values(S.step(0.1, step_size=300, gamma=0.5)), 0.1 * 0.5 ** np.floor(T / 300))


def test_piecewise_constant_switches_at_the_boundary():
    f = S.piecewise_constant([100, 1000], [0.1, 0.01, 0.001])
    expected = np.where(T < 100, 0.1, np.where(T < 1000, 0.01, 0.001))
    assert_close(values(f), expected)
    assert (f(99), f(100), f(999), f(1000)) == (0.1, 0.01, 0.01, 0.001)


@pytest.mark.parametrize("staircase", [False, True])
def test_inverse_time(staircase):
    beta, k = 0.5, 1 if not staircase else 100
    f = S.inverse_time(0.2, beta, decay_steps=k, staircase=staircase)
    exponent = np.floor(T / k) if staircase else T / k
    assert_close(values(f), 0.2 / (1 + beta * exponent))


def test_inverse_time_notes_form():
    # notes 000 §7.2.3: α_t = α0 / (1 + β t)
    assert_close(values(S.inverse_time(1.0, 0.01)), 1.0 / (1 + 0.01 * T))


@pytest.mark.parametrize("decay_steps,staircase", [(1, False), (250, False), (250, True)])
def test_exponential(decay_steps, staircase):
    f = S.exponential(0.1, 0.9, decay_steps=decay_steps, staircase=staircase)
    exponent = np.floor(T / decay_steps) if staircase else T / decay_steps
    assert_close(values(f), 0.1 * 0.9**exponent)


@pytest.mark.parametrize("decay_steps,staircase", [(1, False), (100, False), (100, True)])
def test_natural_exponential(decay_steps, staircase):
    f = S.natural_exponential(0.1, 0.3, decay_steps=decay_steps, staircase=staircase)
    exponent = np.floor(T / decay_steps) if staircase else T / decay_steps
    assert_close(values(f), 0.1 * np.exp(-0.3 * exponent))


@pytest.mark.parametrize("power", [0.5, 1.0, 2.0])
def test_polynomial(power):
    total, lr, end = 2000, 0.1, 0.001
    f = S.polynomial(lr, total, end_lr=end, power=power)
    expected = (lr - end) * (1 - progress(T, total)) ** power + end
    assert_close(values(f), expected)
    assert f(0) == lr and f(total - 1) == pytest.approx(end, abs=1e-15) and f(total + 500) == f(total - 1)


def test_linear_is_a_straight_line_to_end_lr():
    f = S.linear(0.1, 1000, end_lr=0.02)
    expected = np.interp(T, [0, 999], [0.1, 0.02])  # 1000 steps: 0..999; interp holds the end value after
    assert_close(values(f), expected, atol=1e-15)


@pytest.mark.parametrize("min_lr", [0.0, 0.005])
def test_cosine(min_lr):
    total, lr = 2000, 0.1
    f = S.cosine(lr, total, min_lr=min_lr)
    assert_close(values(f), min_lr + 0.5 * (lr - min_lr) * (1 + np.cos(np.pi * progress(T, total))))
    assert f(0) == lr and f(total - 1) == min_lr  # exactly: the last step of the span runs at min_lr
    if min_lr == 0:  # the notes' form ½ α0 (1 + cos(tπ/T)) with the notes' T = total_steps − 1
        t = np.arange(total)
        assert_close(values(f, t), 0.5 * lr * (1 + np.cos(t * np.pi / (total - 1))))


def test_a_span_of_one_step_runs_at_lr():
    assert [S.cosine(0.1, 1, min_lr=0.01)(t) for t in range(3)] == [0.1, 0.1, 0.1]


def smith_triangular(t, lo, hi, s, mode, gamma=1.0):
    """Smith 2017, §3.1 (and his 'triangular2' / 'exp_range' policies)."""
    cycle = np.floor(1 + t / (2 * s))
    x = np.abs(t / s - 2 * cycle + 1)
    scale = {"triangular": 1.0, "triangular2": 1 / 2 ** (cycle - 1), "exp_range": gamma**t}[mode]
    return lo + (hi - lo) * np.maximum(0, 1 - x) * scale


@pytest.mark.parametrize("mode,gamma", [("triangular", 1.0), ("triangular2", 1.0), ("exp_range", 0.999)])
def test_cyclic_triangular(mode, gamma):
    f = S.cyclic_triangular(0.001, 0.1, step_size=200, mode=mode, gamma=gamma)
    assert_close(values(f), smith_triangular(T, 0.001, 0.1, 200, mode, gamma))
    peak = {"triangular": 0.1, "triangular2": 0.1, "exp_range": 0.001 + 0.099 * gamma**200}[mode]
    assert f(0) == pytest.approx(0.001) and f(200) == pytest.approx(peak) and f(400) == pytest.approx(0.001)


def sgdr_reference(t, lr, t0, mult, min_lr):
    """Loshchilov & Hutter 2017 eq. 5 with periods T_i = T_0 mult^i."""
    periods = t0 * float(mult) ** np.arange(64)
    starts = np.concatenate([[0.0], np.cumsum(periods)])
    i = np.searchsorted(starts, t, side="right") - 1
    t_cur, t_i = t - starts[i], periods[i]
    return min_lr + 0.5 * (lr - min_lr) * (1 + np.cos(np.pi * t_cur / t_i))


@pytest.mark.parametrize("mult", [1, 2, 1.5])
def test_sgdr(mult):
    f = S.sgdr(0.1, first_period=100, period_mult=mult, min_lr=0.001)
    assert_close(values(f), sgdr_reference(T, 0.1, 100, mult, 0.001))
    assert f(100) == pytest.approx(0.1)  # a warm restart: back to the full lr


def test_warmup_follows_the_notes_then_shifts_the_schedule():
    w, inner = 500, S.exponential(0.1, 0.999)
    f = S.warmup(inner, w)
    t = T.astype(float)
    # notes 000 §7.2.3: α'_t = t / T' · α0 during warm-up, then the decay from its own step 0
    expected = np.where(t < w, t / w * 0.1, 0.1 * 0.999 ** (t - w))
    assert_close(values(f), expected)


def test_warmup_with_a_start_lr():
    f = S.warmup(S.constant(0.4), 100, start_lr=0.1)
    assert_close(values(f, range(200)), np.concatenate([0.1 + 0.3 * np.arange(100) / 100, np.full(100, 0.4)]))


def test_warmup_zero_steps_is_the_schedule():
    inner = S.cosine(0.1, 100)
    assert S.warmup(inner, 0) is inner


def test_join_shifts_each_piece_to_its_own_start():
    f = S.join([S.constant(0.1), S.linear(0.1, 100), S.constant(0.05)], [1000, 1500])
    t = T.astype(float)
    expected = np.where(t < 1000, 0.1, np.where(t < 1500, 0.1 * (1 - progress(t - 1000, 100)), 0.05))
    assert_close(values(f), expected)


def test_join_accepts_plain_functions():
    f = S.join([lambda t: 1.0 + t, lambda t: 10.0 * t], [3])
    assert [f(t) for t in range(6)] == [1.0, 2.0, 3.0, 0.0, 10.0, 20.0]


# --- the same schedules in torch agree to 1e-9 over 2500 steps ------------------------


def torch_lrs(make_scheduler, n=len(T), lr=0.1, momentum=0.0):
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr, momentum=momentum)
    sched = make_scheduler(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


TORCH_EQUIVALENTS = {
    "StepLR": (S.step(0.1, 300, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 300, 0.5)),
    "MultiStepLR": (
        S.piecewise_constant([400, 900, 2000], [0.1, 0.01, 0.001, 0.0001]),
        lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [400, 900, 2000], 0.1),
    ),
    "ExponentialLR": (S.exponential(0.1, 0.998), lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.998)),
    "CosineAnnealingLR": (
        S.cosine(0.1, 2501, min_lr=0.001),  # 2501 steps: the last, 2500, at eta_min, as torch's T_max
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=2500, eta_min=0.001),
    ),
    "CyclicLR": (
        S.cyclic_triangular(0.001, 0.1, 150),
        lambda o: torch.optim.lr_scheduler.CyclicLR(o, 0.001, 0.1, step_size_up=150, cycle_momentum=False),
    ),
    "CyclicLR-triangular2": (
        S.cyclic_triangular(0.001, 0.1, 150, mode="triangular2"),
        lambda o: torch.optim.lr_scheduler.CyclicLR(
            o, 0.001, 0.1, step_size_up=150, mode="triangular2", cycle_momentum=False
        ),
    ),
    "CyclicLR-exp_range": (
        S.cyclic_triangular(0.001, 0.1, 150, mode="exp_range", gamma=0.9995),
        lambda o: torch.optim.lr_scheduler.CyclicLR(
            o, 0.001, 0.1, step_size_up=150, mode="exp_range", gamma=0.9995, cycle_momentum=False
        ),
    ),
    "CosineAnnealingWarmRestarts": (
        S.sgdr(0.1, 100, period_mult=2, min_lr=0.001),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=100, T_mult=2, eta_min=0.001),
    ),
    "LinearLR": (
        S.linear(0.1, 1001, end_lr=0.025),
        lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=1.0, end_factor=0.25, total_iters=1000),
    ),
    "LinearLR-as-warmup": (
        S.warmup(S.constant(0.1), 1000, start_lr=0.01),
        lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=1000),
    ),
    "PolynomialLR": (
        S.polynomial(0.1, 2001, power=2.0),
        lambda o: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=2000, power=2.0),
    ),
}


@pytest.mark.parametrize("name", sorted(TORCH_EQUIVALENTS))
def test_agrees_with_torch(name):
    ours, make = TORCH_EQUIVALENTS[name]
    np.testing.assert_allclose(values(ours), torch_lrs(make), rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", sorted(TORCH_EQUIVALENTS))
def test_to_torch_reproduces_the_schedule(name):
    ours, _ = TORCH_EQUIVALENTS[name]
    np.testing.assert_allclose(torch_lrs(lambda o: S.to_torch(o, ours)), values(ours), rtol=0, atol=0)


# --- the torch adapter ------------------------------------------------------------------


def test_to_torch_keeps_per_group_ratios():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a], "lr": 0.2}, {"params": [b], "lr": 0.05}])
    f = S.cosine(0.1, 50)
    sched = S.to_torch(opt, f)
    for t in range(60):
        assert opt.param_groups[0]["lr"] == pytest.approx(f(t), abs=1e-15)
        assert opt.param_groups[1]["lr"] == pytest.approx(f(t) * 0.25, abs=1e-15)
        opt.step()
        sched.step()


def train(model, opt, sched, steps, data_seed=0):
    gen = torch.Generator().manual_seed(data_seed)
    lrs = []
    for _ in range(steps):
        x = torch.randn(8, 4, generator=gen)
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def make_run(schedule):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, opt, S.to_torch(opt, schedule)


def test_resume_mid_schedule_gives_the_uninterrupted_rates(tmp_path):
    schedule = S.warmup(S.sgdr(0.1, 40, period_mult=2), 30, start_lr=0.01)
    model, opt, sched = make_run(schedule)
    full = train(model, opt, sched, 300)
    full_weights = model.weight.detach().clone()

    model, opt, sched = make_run(schedule)
    first = train(model, opt, sched, 137)
    atomic_torch_save(
        tmp_path / "ckpt.pt", {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}
    )
    ckpt = torch_load(tmp_path / "ckpt.pt")  # weights_only=True: the state dict is plain data
    model, opt, sched = make_run(schedule)  # a fresh process: build, then load
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["opt"])
    sched.load_state_dict(ckpt["sched"])
    gen_skip = torch.Generator().manual_seed(0)
    for _ in range(137):  # replay the data stream up to the checkpoint
        torch.randn(8, 4, generator=gen_skip)
    rest = []
    for _ in range(300 - 137):
        x = torch.randn(8, 4, generator=gen_skip)
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        rest.append(opt.param_groups[0]["lr"])
    assert first + rest == full
    assert torch.equal(model.weight, full_weights)


def test_state_dict_round_trips_without_the_schedule():
    _, opt, sched = make_run(S.cosine(0.1, 100))
    for _ in range(7):
        opt.step()
        sched.step()
    state = sched.state_dict()
    assert "schedule" not in state and "optimizer" not in state
    assert state["last_epoch"] == 7
    _, opt2, sched2 = make_run(S.cosine(0.1, 100))
    sched2.load_state_dict(state)
    assert sched2.state_dict() == state


def test_to_torch_rejects_ratio_to_a_zero_first_group():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a], "lr": 0.0}, {"params": [b], "lr": 0.1}])
    with pytest.raises(ValueError, match=r"param_groups\[0\]"):
        S.to_torch(opt, S.constant(0.1))


# --- config ---------------------------------------------------------------------------


def test_schedules_names_all_build_from_config():
    required = {
        "step": {"step_size": 10},
        "piecewise_constant": {"boundaries": [10], "values": [0.1, 0.01]},
        "inverse_time": {"decay_rate": 0.1},
        "exponential": {"decay_rate": 0.9},
        "natural_exponential": {"decay_rate": 0.1},
        "cyclic_triangular": {"min_lr": 0.01, "step_size": 10},
        "sgdr": {"first_period": 10},
    }
    assert set(S.SCHEDULES) == {
        "constant", "step", "piecewise_constant", "inverse_time", "exponential",
        "natural_exponential", "polynomial", "linear", "cosine", "cyclic_triangular", "sgdr",
    }  # fmt: skip
    for name in S.SCHEDULES:
        f = S.from_config(name, required.get(name, {}), base_lr=0.1, total_steps=100)
        assert f(0) == pytest.approx(0.01 if name == "cyclic_triangular" else 0.1)


def test_from_config_warmup_then_cosine_ends_at_total_steps():
    total, w = 1000, 100
    f = S.from_config("cosine", {"warmup_steps": w, "min_lr": 0.001}, base_lr=0.4, total_steps=total)
    t = np.arange(total + 50)
    # the decay spans the 900 steps 100..999: u = (t − W)/(T − W − 1)
    decay = 0.001 + 0.5 * (0.4 - 0.001) * (1 + np.cos(np.pi * np.minimum(t - w, total - w - 1) / (total - w - 1)))
    assert_close(values(f, t), np.where(t < w, 0.4 * t / w, decay))
    assert f(total - 1) == 0.001  # the last step of the run, exactly (docs/schedules.md)


def test_warmup_in_python_and_in_a_spec_string_mean_the_same_total_steps():
    """issue 16: warmup(cosine(0.1, total_steps=1000), 100) ended at step 1100, the spec at 1000."""
    python = S.warmup(S.cosine(0.1, total_steps=1000, min_lr=0.001), 100)
    spec, n = S.from_spec("cosine:lr=0.1,total_steps=1000,min_lr=0.001,warmup_steps=100")
    config = S.from_config("cosine", {"min_lr": 0.001, "warmup_steps": 100}, base_lr=0.1, total_steps=1000)
    assert n == 1000
    assert (
        values(python, range(1200)).tolist()
        == values(spec, range(1200)).tolist()
        == values(config, range(1200)).tolist()
    )
    assert python(99) < python(100) == 0.1 and python(999) == 0.001 and python(998) > 0.001


@pytest.mark.parametrize("make", [lambda n: S.linear(0.1, n, end_lr=0.01), lambda n: S.polynomial(0.1, n, 0.01, 2.0)])
def test_warmup_respans_every_schedule_with_total_steps(make):
    f = S.warmup(make(500), 50, start_lr=0.02)
    assert values(f, range(50, 600)).tolist() == values(make(450), range(550)).tolist()
    assert f(499) == pytest.approx(0.01, abs=1e-15) and f(0) == 0.02


def test_warmup_must_leave_a_step_of_the_span():
    with pytest.raises(ValueError, match=r"warmup_steps \(100\) must be smaller than total_steps \(100\)"):
        S.warmup(S.cosine(0.1, 100), 100)


def test_from_config_total_steps_override_counts_the_whole_run():
    f = S.from_config("linear", {"total_steps": 301, "warmup_steps": 100}, base_lr=0.1, total_steps=10_000)
    assert f(100) == pytest.approx(0.1) and f(200) == pytest.approx(0.05) and f(300) == 0.0 and f(5000) == 0.0


def test_linear_scaling_rule_with_goyal_warmup():
    # Goyal et al. 2017: k = 8 (batch 2048 vs 256): warm up from η = 0.1 to kη = 0.8, then decay
    scaled = S.linear_scaling_rule(0.1, batch_size=2048, base_batch_size=256)
    assert scaled == pytest.approx(0.8)
    f = S.from_config(
        "step", {"step_size": 1000, "warmup_steps": 500, "warmup_start_lr": 0.1}, base_lr=scaled, total_steps=5000
    )
    assert f(0) == pytest.approx(0.1) and f(250) == pytest.approx(0.45) and f(500) == pytest.approx(0.8)
    assert f(1500) == pytest.approx(0.08)


def test_from_config_cyclic_max_lr_defaults_to_base_lr():
    f = S.from_config("cyclic_triangular", {"min_lr": 0.01, "step_size": 50}, base_lr=0.3, total_steps=1000)
    assert f(50) == pytest.approx(0.3)
    g = S.from_config("cyclic_triangular", {"min_lr": 0.01, "max_lr": 0.2, "step_size": 50}, base_lr=0.3, total_steps=1)
    assert g(50) == pytest.approx(0.2)


@pytest.mark.parametrize(
    "name,options,match",
    [
        ("cosine", {"min_l": 0.0}, r"schedule\.min_l .*did you mean 'min_lr'.*it takes: total_steps, min_lr"),
        ("cosine", {"lr": 0.1}, r"schedule\.lr is not a key"),
        ("step", {}, r"needs schedule\.step_size"),
        ("step", {"step_size": 0}, r"schedule\.step_size must be a positive integer, got 0"),
        ("cosine", {"warmup_steps": 100}, r"warmup_steps \(100\) must be smaller than total_steps \(100\)"),
        ("cosine", {"warmup_steps": -5}, r"schedule\.warmup_steps must be a positive integer, got -5"),
        ("exponential", {"decay_rate": "fast"}, r"schedule\.decay_rate must be a finite number, got 'fast'"),
        (
            "piecewise_constant",
            {"boundaries": [10], "values": [0.5, 0.1]},
            r"schedule\.values\[0\] \(0\.5\) must equal",
        ),
    ],
)
def test_from_config_errors_name_the_key(name, options, match):
    with pytest.raises(ConfigError, match=match):
        S.from_config(name, options, base_lr=0.1, total_steps=100)


def test_from_config_unknown_name_suggests():
    with pytest.raises(ConfigError, match=r"unknown schedule 'cosin' \(did you mean 'cosine'\?\)"):
        S.from_config("cosin", {}, base_lr=0.1, total_steps=100)


# --- spec syntax ------------------------------------------------------------------------


def test_parse_spec():
    assert S.parse_spec("cosine:lr=0.1,total_steps=1000,warmup_steps=100") == (
        "cosine",
        {"lr": 0.1, "total_steps": 1000, "warmup_steps": 100},
    )
    assert S.parse_spec(" piecewise_constant : boundaries=[10, 20], values=[1e-1,1e-2,1e-3] ") == (
        "piecewise_constant",
        {"boundaries": [10, 20], "values": [0.1, 0.01, 0.001]},
    )
    assert S.parse_spec("cyclic_triangular:mode=triangular2,staircase=true") == (
        "cyclic_triangular",
        {"mode": "triangular2", "staircase": True},
    )
    assert S.parse_spec("constant") == ("constant", {})


@pytest.mark.parametrize(
    "text,match",
    [(":lr=1", "no name"), ("cosine:lr", "key=value"), ("cosine:lr=1,lr=2", "twice"), ("x:b=[1,2", "unbalanced")],
)
def test_parse_spec_errors(text, match):
    with pytest.raises(ConfigError, match=match):
        S.parse_spec(text)


def test_from_spec_builds_schedule_and_length():
    f, n = S.from_spec("cosine:lr=0.1,total_steps=1000,warmup_steps=100")
    assert n == 1000 and f(100) == pytest.approx(0.1) and f(999) == 0.0 and f(998) > 0
    g, m = S.from_spec("piecewise_constant:boundaries=[10],values=[0.1,0.01]", total_steps=20)
    assert m == 20 and (g(9), g(10)) == (0.1, 0.01)
    with pytest.raises(ConfigError, match="needs total_steps"):
        S.from_spec("constant:lr=0.1")


# --- bad arguments name themselves -------------------------------------------------------


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: S.constant(-0.1), r"lr must be >= 0, got -0\.1"),
        (lambda: S.constant(float("nan")), r"lr must be a finite number"),
        (lambda: S.step(0.1, 0), r"step_size must be a positive integer, got 0"),
        (lambda: S.step(0.1, 10, gamma=1.5), r"gamma must be in \(0, 1\], got 1\.5"),
        (lambda: S.piecewise_constant([10, 10], [1, 2, 3]), r"boundaries must be strictly increasing"),
        (lambda: S.piecewise_constant([10, 5], [1, 2, 3]), r"boundaries must be strictly increasing"),
        (lambda: S.piecewise_constant([0], [1, 2]), r"boundaries\[0\] must be a positive integer, got 0"),
        (lambda: S.piecewise_constant([10], [1]), r"values must have one more entry than boundaries \(2\), got 1"),
        (lambda: S.piecewise_constant([10], [1, -2]), r"values\[1\] must be >= 0"),
        (lambda: S.inverse_time(0.1, -1.0), r"decay_rate must be >= 0, got -1\.0"),
        (lambda: S.inverse_time(0.1, 1.0, decay_steps=0), r"decay_steps must be a positive integer"),
        (lambda: S.exponential(0.1, 0.0), r"decay_rate must be in \(0, 1\], got 0\.0"),
        (lambda: S.exponential(0.1, 1.5), r"decay_rate must be in \(0, 1\], got 1\.5"),  # growing: rejected
        (lambda: S.natural_exponential(0.1, -0.5), r"decay_rate must be >= 0"),
        (lambda: S.polynomial(0.1, 0), r"total_steps must be a positive integer, got 0"),
        (lambda: S.polynomial(0.1, 10, power=0), r"power must be > 0, got 0"),
        (lambda: S.cosine(0.1, -3), r"total_steps must be a positive integer, got -3"),
        (lambda: S.cosine(0.1, 10, min_lr=-1), r"min_lr must be >= 0"),
        (lambda: S.cyclic_triangular(0.2, 0.1, 10), r"min_lr must be <= max_lr \(0\.1\), got 0\.2"),
        (lambda: S.cyclic_triangular(0.01, 0.1, 10, mode="tri"), r"mode must be one of .*got 'tri'"),
        (lambda: S.cyclic_triangular(0.01, 0.1, 10, gamma=0.9), r"gamma only applies to mode='exp_range'"),
        (lambda: S.sgdr(0.1, 0), r"first_period must be a positive integer, got 0"),
        (lambda: S.sgdr(0.1, 10, period_mult=0.5), r"period_mult must be >= 1, got 0\.5"),
        (lambda: S.warmup(S.constant(0.1), -1), r"warmup_steps must be a positive integer, got -1"),
        (lambda: S.warmup(S.constant(0.1), 10, start_lr=-1), r"start_lr must be >= 0"),
        (lambda: S.join([S.constant(0.1)], [10]), r"schedules must have one more entry than boundaries"),
        (lambda: S.join([S.constant(0.1), 3], [10]), r"schedules\[1\] must be a callable"),
        (lambda: S.linear_scaling_rule(0.1, 0), r"batch_size must be a positive integer, got 0"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_schedule_rejects_negative_and_fractional_steps():
    f = S.constant(0.1)
    with pytest.raises(ValueError, match="step must be a non-negative integer, got -1"):
        f(-1)
    with pytest.raises(TypeError):
        f(1.5)
    assert f(np.int64(3)) == 0.1 and f(torch.tensor(3)) == 0.1


def test_repr_names_the_schedule_and_its_arguments():
    assert repr(S.cosine(0.1, 100)) == "cosine(lr=0.1, total_steps=100, min_lr=0.0)"


# --- plotting ---------------------------------------------------------------------------


def test_plot_schedule_writes_a_reproducible_svg_without_pyplot(tmp_path):
    import sys

    from trainlab.report.lr_plot import plot_schedule

    had_pyplot = "matplotlib.pyplot" in sys.modules
    f = S.warmup(S.cosine(0.1, 180), 20)
    a = plot_schedule(f, 200, tmp_path / "a.svg")
    b = plot_schedule(f, 200, tmp_path / "sub" / "b.svg", title="warm-up + cosine")
    root = ET.parse(a).getroot()
    assert root.tag.endswith("svg")
    assert a.read_bytes() == plot_schedule(f, 200, tmp_path / "c.svg").read_bytes()  # deterministic
    assert b.exists() and a.read_bytes() != b.read_bytes()
    assert had_pyplot or "matplotlib.pyplot" not in sys.modules
    with pytest.raises(ValueError, match="total_steps must be a positive integer, got 0"):
        plot_schedule(f, 0, tmp_path / "d.svg")


def test_docstring_example():
    f = S.warmup(S.cosine(0.1, total_steps=1000), warmup_steps=100)
    assert (round(f(50), 4), round(f(100), 4), round(f(999), 4)) == (0.05, 0.1, 0.0)
    assert math.isclose(f(550), 0.05 * (1 + math.cos(math.pi * 450 / 899)))  # the 900-step decay runs on steps 100..999


# --- docs/schedules.md: its example, its spec strings and the tests it cites ----------------

DOC = Path(__file__).parents[1] / "docs" / "schedules.md"


def test_docs_example_prints_what_its_comment_says(capsys):
    block = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    exec(compile(block, str(DOC), "exec"), {})
    printed = capsys.readouterr().out.split()
    comment = re.search(r"print\(.*\)\s+# ([\d. ]+)", block).group(1).split()
    assert [float(x) for x in printed] == [float(x) for x in comment]


def test_every_spec_string_in_the_docs_builds():
    specs = re.findall(r"`([a-z_]+:[^`\s]+)`", DOC.read_text())
    assert len(specs) >= 3
    for spec in specs:
        f, n = S.from_spec(spec)
        lrs = values(f, range(n))
        assert n == 1000 and np.all(np.isfinite(lrs)) and lrs.max() == pytest.approx(0.1), spec


def test_every_test_the_docs_cite_exists():
    cited = set(re.findall(r"`(test_[a-z0-9_]+)", DOC.read_text()))
    defined = set(re.findall(r"^def (test_[a-z0-9_]+)", Path(__file__).read_text(), re.M))
    assert cited and cited <= defined, sorted(cited - defined)
