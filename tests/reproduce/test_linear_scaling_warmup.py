"""linear-scaling-warmup: the linear rule and Goyal's warm-up as the runs get them, the per-epoch
curve with diverged runs at chance, the equivalence check, and the quick run's figures."""

import math

import numpy as np
import pytest

from trainlab.reproduce import run_experiment
from trainlab.reproduce.linear_scaling_warmup import (
    ARMS,
    CHANCE_LOSS,
    EARLY_MARGIN,
    MATCH_TOLERANCE,
    SMALL_BATCH,
    SMALL_LR,
    config,
    per_epoch,
    sizes,
    within,
)
from trainlab.store import Store
from trainlab.train import setup


def test_large_batch_gets_k_times_the_lr_and_goyals_warmup():
    k = sizes(False)["large_batch"] / SMALL_BATCH
    small, cold, warm = (setup(config(arm, False)) for arm in ARMS)
    assert small.lr == pytest.approx(SMALL_LR) and small.schedule(1000) == pytest.approx(SMALL_LR)
    assert cold.lr == pytest.approx(k * SMALL_LR) and cold.schedule(0) == pytest.approx(k * SMALL_LR)
    steps_per_epoch = 3600 // 512
    assert warm.steps_per_epoch == cold.steps_per_epoch == steps_per_epoch  # drop_last: full batches only
    w = sizes(False)["warmup_epochs"] * steps_per_epoch
    t = np.arange(w + 20)
    # Goyal et al. §2.2: from η to kη linearly over the warm-up, then constant kη
    expected = np.where(t < w, SMALL_LR + (k * SMALL_LR - SMALL_LR) * t / w, k * SMALL_LR)
    np.testing.assert_allclose([warm.schedule(int(s)) for s in t], expected, rtol=1e-12)


def test_per_epoch_fills_diverged_epochs_with_chance():
    epoch = np.array([0.5, 1.0, 2.0, 3.0])  # 0.5: an evaluation mid-epoch, not an epoch end
    values = np.array([9.0, 2.0, 1.5, np.nan])
    np.testing.assert_array_equal(per_epoch(epoch, values, 5), [2.0, 1.5, CHANCE_LOSS, CHANCE_LOSS, CHANCE_LOSS])
    assert pytest.approx(-np.log(0.1)) == CHANCE_LOSS


def test_within_is_an_equivalence_check():
    same = within([0.60, 0.61, 0.62, 0.61], [0.61, 0.60, 0.62, 0.61], 0.02, "d")
    assert same.holds and abs(same.diff) < 1e-12 and -0.02 < same.ci[0] <= same.ci[1] < 0.02
    apart = within([0.60, 0.61, 0.62], [0.66, 0.67, 0.68], 0.02, "d")
    assert not apart.holds and apart.diff == pytest.approx(-0.06)
    assert "not inside ±0.02" in apart.statement


@pytest.mark.slow
def test_quick_run_figures_match_the_store(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("linear-scaling-warmup", quick=True, store=store, log=lambda _: None)
    f = outcome.figures
    s = sizes(True)
    runs = store.list_runs(group="reproduce/linear-scaling-warmup/quick")
    assert len(runs) == len(ARMS) * seeds
    for arm in ARMS:
        mine = sorted((r for r in runs if r.name.endswith(f"/{arm}")), key=lambda r: r.seed)
        assert [r.seed for r in mine] == list(range(seeds))
        assert all(r.config["data"]["batch_size"] == config(arm, True)["data"]["batch_size"] for r in mine)
        for r, curve, early, acc in zip(
            mine, f["val_loss_per_epoch"][arm], f["early_val_loss"][arm], f["test_acc"][arm]
        ):
            steps, values = store.metrics(r.id, ["val_loss"])["val_loss"]
            steps_per_epoch = 1000 // r.config["data"]["batch_size"]
            assert steps.tolist() == [steps_per_epoch * e for e in range(1, s["epochs"] + 1)]
            if r.status == "completed":
                np.testing.assert_allclose(curve, values)
                assert acc == pytest.approx(r.final["test_acc"])
            assert early == pytest.approx(np.mean(curve[: s["warmup_epochs"]]))
    small, cold, warm = ARMS
    fails, matches = f["checks"]["fails_early"], f["checks"]["matches"]
    assert fails["diff"] == pytest.approx(np.mean(f["early_val_loss"][cold]) - np.mean(f["early_val_loss"][small]))
    assert fails["holds"] == (fails["ci"][0] > EARLY_MARGIN)
    assert matches["diff"] == pytest.approx(np.mean(f["test_acc"][warm]) - np.mean(f["test_acc"][small]))
    assert matches["holds"] == (matches["ci"][0] > -MATCH_TOLERANCE and matches["ci"][1] < MATCH_TOLERANCE)
    assert outcome.holds == (fails["holds"] and matches["holds"])
    assert f["lr"][cold] == pytest.approx(SMALL_LR * s["large_batch"] / SMALL_BATCH)
    assert len(outcome.plots) == 1 and outcome.plots[0][1].startswith("<svg")
    assert not any(math.isnan(v) for v in f["early_val_loss"][cold])
