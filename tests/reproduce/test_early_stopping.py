"""early-stopping: the U depth by hand, and where the callback stops on the full run's curve (exact)."""

import numpy as np
import pytest

from trainlab.reproduce import run_experiment
from trainlab.reproduce.early_stopping import PATIENCE, TEST_MARGIN, U_MARGIN, config, u_depth
from trainlab.store import Store

GROUP = "reproduce/early-stopping/quick"


def test_u_depth_by_hand():
    assert u_depth(np.array([3.0, 2.0, 1.0, 2.0, 2.5])) == pytest.approx(1.5)  # min(3 − 1, 2.5 − 1)
    assert u_depth(np.array([1.0, 4.0, 3.0])) == pytest.approx(0.0)  # lowest at the start: no fall
    assert u_depth(np.array([5.0, 4.0, 3.0])) == pytest.approx(0.0)  # lowest at the end: no rise


def test_u_depth_rejects_bad_curves():
    with pytest.raises(ValueError, match="non-empty 1-D finite curve"):
        u_depth(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="non-empty 1-D finite curve"):
        u_depth(np.array([]))


def test_config_adds_the_callback_only_to_the_early_stopped_run():
    assert "early_stopping" not in config(False, quick=False)["train"]
    assert config(True, quick=False)["train"]["early_stopping"] == {
        "monitor": "val_loss",
        "patience": PATIENCE,
        "restore_best": True,
    }


def test_early_stopping_stops_patience_evaluations_after_the_bottom_of_the_same_curve(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("early-stopping", quick=True, store=store, log=lambda _: None)
    f = outcome.figures
    records = store.list_runs(group=GROUP)
    steps_per_epoch = 300 // 50  # quick: 300 samples, batch 50, evaluated every epoch
    for seed in range(seeds):
        full = next(r for r in records if r.seed == seed and r.name.endswith("/full"))
        early = next(r for r in records if r.seed == seed and r.name.endswith("/early-stopped"))
        s_full, v_full = store.metrics(full.id, ["val_loss"])["val_loss"]
        s_early, v_early = store.metrics(early.id, ["val_loss"])["val_loss"]
        # same seed, same computation until the stop: the early run's curve is a prefix of the full one — up to
        # float rounding (~1e-7 here; Adam can grow it, see the module), as the full runs train as one population
        assert "population" in full.final and "population" not in early.final
        assert np.array_equal(s_early, s_full[: len(s_early)])
        np.testing.assert_allclose(v_early, v_full[: len(v_early)], rtol=1e-4)
        best = int(s_early[np.argmin(v_early)])
        assert f["early_stopping_best_step"][seed] == best == early.final["early_stopping_best_step"]
        assert early.final["step"] == best + PATIENCE * steps_per_epoch == f["early-stopped"]["steps"][seed]
        assert f["full_lowest_val_loss_step"][seed] == int(s_full[np.argmin(v_full)])
        low = v_full.min()
        assert f["u_depth"][seed] == pytest.approx(min(v_full[0] - low, v_full[-1] - low))
        assert f["full"]["test_loss"][seed] == pytest.approx(full.final["test_loss"])
        assert f["early-stopped"]["test_loss"][seed] == pytest.approx(early.final["test_loss"])
    c = f["checks"]
    assert c["u_shape"]["diff"] == pytest.approx(np.mean(f["u_depth"]))
    assert c["test_loss"]["diff"] == pytest.approx(
        np.mean(f["early-stopped"]["test_loss"]) - np.mean(f["full"]["test_loss"])
    )
    assert c["u_shape"]["holds"] == (c["u_shape"]["ci"][0] > U_MARGIN) and c["test_loss"]["holds"] == (
        c["test_loss"]["ci"][1] < -TEST_MARGIN
    )
    assert outcome.holds == (c["u_shape"]["holds"] and c["test_loss"]["holds"])
    assert "Test accuracy, early-stopped − full" in outcome.notes
    assert len(outcome.plots) == 1 and outcome.plots[0][1].startswith("<svg")
