"""augmentation: the configs differ only in the augmentation, and the quick run is tied to the store."""

import numpy as np
import pytest

from trainlab.reproduce import run_experiment
from trainlab.reproduce.augmentation import AUGMENT, MARGIN, config
from trainlab.store import Store

GROUP = "reproduce/augmentation/quick"


def test_the_arms_differ_only_in_the_augmentation():
    plain, augmented = config([], quick=False), config(AUGMENT, quick=False)
    assert (
        augmented["data"].pop("augment") == ["shift:3", "scale:0.1", "noise:0.05"]
        and plain["data"].pop("augment") == []
    )
    assert plain == augmented and plain["data"]["subset"] == 500


def test_quick_run_figures_match_the_store(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("augmentation", quick=True, store=store, log=lambda _: None)
    f = outcome.figures
    records = store.list_runs(group=GROUP)
    assert len(records) == 2 * seeds
    for arm, augment in (("no augmentation", []), ("shift + stretch + noise", AUGMENT)):
        runs = sorted((r for r in records if r.config["data"]["augment"] == augment), key=lambda r: r.seed)
        assert len(runs) == seeds
        for key in ("val_acc", "best_val_acc", "test_acc"):
            assert f[arm][key] == pytest.approx([r.final[key] for r in runs])
        # the final validation accuracy is the last point of the stored curve
        assert f[arm]["val_acc"] == pytest.approx([store.metrics(r.id, ["val_acc"])["val_acc"][1][-1] for r in runs])
    check = f["check"]
    assert check["diff"] == pytest.approx(
        np.mean(f["shift + stretch + noise"]["val_acc"]) - np.mean(f["no augmentation"]["val_acc"])
    )
    assert outcome.holds == check["holds"] == (check["ci"][0] > MARGIN)
    assert len(outcome.plots) == 3 and all(svg.startswith("<svg") for _, svg in outcome.plots)
