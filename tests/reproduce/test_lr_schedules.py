"""lr-schedules: each arm's learning rate against the notes' formulas in NumPy — as built from the
config and as the Trainer logged it —, the time-to-accuracy rule and the training loss against NumPy,
and the quick run's figures against the store."""

import math

import numpy as np
import pytest
import torch

from trainlab.reproduce import run_experiment
from trainlab.reproduce.lr_schedules import (
    BASE_LR,
    CYCLIC,
    DECAYS,
    LOSS_MARGIN,
    STEPS_MARGIN,
    config,
    mean_lr,
    schedule_table,
    steps_to_reach,
    training_loss,
)
from trainlab.reproduce.sweep import trained_model
from trainlab.schedules import from_config
from trainlab.store import Store
from trainlab.train import setup

A0 = BASE_LR


def notes_formulas(total: int) -> dict:
    """The notes' (000 §7.2.3) and the papers' formulas with this experiment's constants."""
    t_cap = total
    w = max(1, total // 20)
    s_cyc = math.ceil(total / 8)
    t0 = math.ceil(total / 7)

    def cosine(t, length):  # a span of `length` steps: the notes' T is its last step, length − 1
        return 0.5 * A0 * (1 + np.cos(np.pi * np.minimum(t, length - 1) / (length - 1)))

    def triangular(t):  # Smith 2017, eq. in §3.1
        cycle = np.floor(1 + t / (2 * s_cyc))
        x = np.abs(t / s_cyc - 2 * cycle + 1)
        return A0 / 100 + (A0 - A0 / 100) * np.maximum(0, 1 - x)

    def sgdr(t):  # Loshchilov & Hutter eq. 5 with T_i = T0 · 2^i
        out = []
        for step in t:
            cur, length = step, t0
            while cur >= length:
                cur, length = cur - length, 2 * length
            out.append(0.5 * A0 * (1 + math.cos(math.pi * cur / length)))
        return np.array(out)

    return {
        "constant": lambda t: np.full(len(t), A0),
        "step": lambda t: A0 * 0.1 ** np.floor(t / math.ceil(t_cap / 3)),
        "inverse time": lambda t: A0 / (1 + (99 / total) * t),  # α0 / (1 + β t)
        "exponential": lambda t: A0 * (0.01 ** (1 / total)) ** t,  # α0 β^t
        "natural exponential": lambda t: A0 * np.exp(-(math.log(100) / total) * t),  # α0 exp(−β t)
        "cosine": lambda t: cosine(t, total),
        "warm-up + cosine": lambda t: np.where(t < w, t / w * A0, cosine(t - w, total - w)),  # α'_t = t/T' · α0
        "cyclic triangular": triangular,
        "SGDR": sgdr,
    }


@pytest.mark.parametrize("total", [160, 2280])
def test_every_arm_follows_its_formula(total):
    t = np.arange(total)
    formulas = notes_formulas(total)
    table = schedule_table(total)
    assert set(table) == set(formulas)
    for arm, section in table.items():
        f = from_config(
            section["name"], {k: v for k, v in section.items() if k != "name"}, base_lr=A0, total_steps=total
        )
        np.testing.assert_allclose([f(int(s)) for s in t], formulas[arm](t), rtol=1e-9, atol=1e-15, err_msg=arm)


def test_decays_end_near_a_hundredth_and_restarts_end_low():
    total = 2280
    formulas = notes_formulas(total)
    end = {arm: float(f(np.array([total - 1]))[0]) for arm, f in formulas.items()}
    for arm in ("inverse time", "exponential", "natural exponential"):
        assert end[arm] == pytest.approx(A0 / 100, rel=0.01)
    assert end["step"] == pytest.approx(A0 / 100)
    for arm in ("cosine", "warm-up + cosine", "SGDR", "cyclic triangular"):
        assert end[arm] < A0 / 50, arm  # each run ends at the bottom of its last cycle, not after a restart


def test_config_is_the_same_but_for_the_schedule():
    a, b = config({"name": "constant"}, False), config({"name": "cosine"}, False)
    assert {k: v for k, v in a.items() if k != "schedule"} == {k: v for k, v in b.items() if k != "schedule"}
    assert a["optim"] == {"name": "sgd", "lr": BASE_LR, "momentum": 0.9}
    assert "seed" not in a and "name" not in a  # the sweep sets them


def test_claimed_arms_are_the_table_but_the_constant():
    assert set(DECAYS) | set(CYCLIC) == set(schedule_table(2280)) - {"constant"}
    assert not set(DECAYS) & set(CYCLIC)


@pytest.mark.parametrize("total", [160, 2280])
def test_mean_lr_is_the_formulas_average(total):
    formulas = notes_formulas(total)
    t = np.arange(total)
    for arm, section in schedule_table(total).items():
        assert mean_lr(section, total) == pytest.approx(formulas[arm](t).mean() / A0, rel=1e-9), arm
    assert mean_lr({"name": "constant"}, total) == pytest.approx(1.0)
    assert mean_lr({"name": "cosine"}, total) == pytest.approx(0.5, abs=1e-12)  # symmetric about α0/2


def test_steps_to_reach():
    steps = np.array([57, 114, 171, 228])
    values = np.array([0.5, 0.7, 0.69, 0.8])
    assert steps_to_reach(steps, values, 0.7, never=285) == 114  # the first step at or above the target
    assert steps_to_reach(steps, values, 0.75, never=285) == 228
    assert steps_to_reach(steps, values, 0.81, never=285) == 285  # never reached
    assert steps_to_reach(steps, values, 0.1, never=285) == 57


def test_training_loss_is_the_mean_cross_entropy():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Dropout(0.5), torch.nn.Linear(7, 3))
    x, y = torch.randn(50, 5), torch.randint(0, 3, (50,))
    with torch.no_grad():  # NumPy reference, dropout off (eval mode)
        w1, b1 = model[0].weight.double().numpy(), model[0].bias.double().numpy()
        w2, b2 = model[2].weight.double().numpy(), model[2].bias.double().numpy()
    z = (x.double().numpy() @ w1.T + b1) @ w2.T + b2
    logp = z - z.max(1, keepdims=True) - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True))
    assert training_loss(model, x, y) == pytest.approx(-logp[np.arange(50), y.numpy()].mean(), rel=1e-5)
    assert not model.training


@pytest.mark.slow
def test_quick_run_figures_match_the_store_and_the_formulas(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("lr-schedules", quick=True, store=store, log=lambda _: None)
    f = outcome.figures
    total = f["total_steps"]
    assert total == 10 * math.ceil(1000 / 64)
    formulas = notes_formulas(total)
    runs = store.list_runs(group="reproduce/lr-schedules/quick")
    assert len(runs) == len(formulas) * seeds
    data = setup({**config({"name": "constant"}, True), "seed": 0}).data
    by_arm = {}
    for arm, section in f["schedules"].items():
        mine = sorted(
            (r for r in runs if r.config["schedule"] == config(section, True)["schedule"]), key=lambda r: r.seed
        )
        assert [r.seed for r in mine] == list(range(seeds))
        by_arm[arm] = mine
        assert [r.final["test_acc"] for r in mine] == pytest.approx(f["test_acc"][arm])
        # the lr the optimizer really used (logged after each step s: the lr of step s)
        steps, lrs = store.metrics(mine[0].id, ["train_lr"])["train_lr"]
        np.testing.assert_allclose(lrs, formulas[arm](steps), rtol=1e-6, err_msg=arm)
        # the training loss of each final checkpoint, recomputed from the weights in NumPy
        for r, loss in zip(mine, f["train_loss"][arm]):
            model = trained_model(store, r)
            x = data.x_train.double().numpy()
            layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
            for k, layer in enumerate(layers):
                x = x @ layer.weight.detach().double().numpy().T + layer.bias.detach().double().numpy()
                if k < len(layers) - 1:
                    x = np.maximum(x, 0.0)
            logp = x - x.max(1, keepdims=True)
            logp -= np.log(np.exp(logp).sum(1, keepdims=True))
            assert loss == pytest.approx(-logp[np.arange(len(x)), data.y_train.numpy()].mean(), rel=1e-4)
    # time to accuracy: each seed's target is its constant run's final val accuracy
    never = f["never"]
    assert never == total + total // 10
    for i in range(seeds):
        target = by_arm["constant"][i].final["val_acc"]
        assert f["target_val_acc"][i] == pytest.approx(target)
        for arm, mine in by_arm.items():
            steps, acc = store.metrics(mine[i].id, ["val_acc"])["val_acc"]
            reached = [s for s, a in zip(steps, acc) if a >= target]
            assert f["steps_to_target"][arm][i] == (reached[0] if reached else never)
    assert f["steps_to_target"]["constant"][0] <= total  # the constant run reaches its own final accuracy
    for arm, c in f["checks"]["train_loss"].items():
        assert c["diff"] == pytest.approx(np.mean(f["train_loss"][arm]) - np.mean(f["train_loss"]["constant"]))
        assert c["holds"] == (c["ci"][1] < -LOSS_MARGIN)
    for arm, c in f["checks"]["steps_to_target"].items():
        assert c["diff"] == pytest.approx(
            np.mean(f["steps_to_target"][arm]) - np.mean(f["steps_to_target"]["constant"])
        )
        assert c["holds"] == (c["ci"][1] < -STEPS_MARGIN)
    assert set(f["checks"]["train_loss"]) == set(DECAYS) and set(f["checks"]["steps_to_target"]) == set(CYCLIC)
    every = [c["holds"] for part in f["checks"].values() for c in part.values()]
    assert outcome.holds == all(every)
    assert len(outcome.plots) == 4 and all(svg.startswith("<svg") for _, svg in outcome.plots)
