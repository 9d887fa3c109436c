"""lr-schedules: each arm's learning rate against the notes' formulas in NumPy — as built from the
config and as the Trainer logged it — and the quick run's figures against the store."""

import math

import numpy as np
import pytest

from trainlab.reproduce import run_experiment
from trainlab.reproduce.lr_schedules import BASE_LR, MARGIN, config, schedule_table
from trainlab.schedules import from_config
from trainlab.store import Store

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
    a, b = config({"name": "constant"}, 1, False), config({"name": "cosine"}, 1, False)
    assert {k: v for k, v in a.items() if k not in ("schedule", "name")} == {
        k: v for k, v in b.items() if k not in ("schedule", "name")
    }
    assert a["optim"] == {"name": "sgd", "lr": BASE_LR, "momentum": 0.9}


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
    for arm, section in f["schedules"].items():
        mine = sorted(
            (r for r in runs if r.config["schedule"] == {**config(section, 0, True)["schedule"]}), key=lambda r: r.seed
        )
        assert len(mine) == seeds
        assert [r.final["test_acc"] for r in mine] == pytest.approx(f["test_acc"][arm])
        # the lr the optimizer really used (logged after each step s: the lr of step s)
        steps, lrs = store.metrics(mine[0].id, ["train_lr"])["train_lr"]
        np.testing.assert_allclose(lrs, formulas[arm](steps), rtol=1e-6, err_msg=arm)
    for arm, c in f["checks"].items():
        assert c["diff"] == pytest.approx(np.mean(f["test_acc"][arm]) - np.mean(f["test_acc"]["constant"]))
        assert c["holds"] == (c["ci"][0] > MARGIN)
    assert outcome.holds == all(c["holds"] for c in f["checks"].values())
    assert len(outcome.plots) == 3 and all(svg.startswith("<svg") for _, svg in outcome.plots)
