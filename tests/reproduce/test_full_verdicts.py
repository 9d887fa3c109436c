"""The verdicts docs/gallery.md reports for the claims that hold, from the full versions: a change
that flips one fails `make test-all` (slow: each runs its full experiment, minutes to tens of minutes)."""

import pytest

from trainlab.reproduce import run_experiment
from trainlab.store import Store

# the 11 claims that hold in the last full `trainlab reproduce all` (docs/gallery.md's results table)
HOLD = (
    "init-depth",
    "zero-init-symmetry",
    "vanishing-gradients",
    "l1-vs-l2",
    "early-stopping",
    "augmentation",
    "label-smoothing",
    "preprocessing",
    "mnist1d-table",
    "optimizer-paths",
    "batch-size-sharpness",
)


@pytest.mark.slow
@pytest.mark.parametrize("name", HOLD)
def test_full_version_holds(name, tmp_path):
    _, outcome, _ = run_experiment(name, store=Store(tmp_path / "r.db"), out_dir=tmp_path, log=lambda _: None)
    assert outcome.holds, outcome.statement
