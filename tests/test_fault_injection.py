"""Fault injection: kill -9 a real `trainlab run`, `compare` and `tune` at chosen or random
points — before the first checkpoint, inside a checkpoint write (before the previous one is
set aside, before the new file is renamed into place), between a checkpoint and its store
row, mid-step — then resume or rerun, and check that it ends exactly where an uninterrupted
run ends: the same weights, the same metric rows, each (variant, seed) completed once.

The child process is the CLI with one function wrapped to SIGKILL itself at its N-th call
(no hook in trainlab's code). `make test` runs a fixed set of points; the slow tests draw
many random ones (HYPOTHESIS_PROFILE=thorough draws fresh ones each time).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap

import pytest
import torch

from trainlab._io import torch_load
from trainlab.store import Store

STEPS = 36  # 4 epochs of 9 batches; checkpoints at steps 5, 10, ..., 35 and at the end
CONFIG = """
name = "fi"
seed = 0
[data]
name = "spirals"
n_samples = 400
batch_size = 32
[model]
hidden = [16]
dropout = 0.1
[optim]
name = "sgd"
lr = 0.1
momentum = 0.9
[train]
epochs = 4
checkpoint_every = 5
threads = 1
"""
COMPARE = CONFIG + '\n[compare]\nseeds = 2\n"optim.lr" = [0.1, 0.05]\n'
SEARCH = (
    CONFIG.replace("checkpoint_every = 5", "checkpoint_every = 5\neval_every = 9")
    + """
[search]
name = "fi-study"
trials = 3
sampler = "random"
[search.params]
"optim.lr" = { type = "float", low = 0.01, high = 0.3, log = true }
"""
)

# The child: trainlab's CLI with one call site wrapped to kill the process at its N-th call.
HARNESS = textwrap.dedent(
    """
    import os, signal, sys
    point, nth = os.environ["FAULT_POINT"], int(os.environ["FAULT_NTH"])
    calls = 0

    def hit():
        global calls
        calls += 1
        if calls == nth:
            os.kill(os.getpid(), signal.SIGKILL)

    if point == "step":  # before the N-th optimizer step
        from trainlab.train.trainer import Trainer
        step = Trainer._train_step
        def wrapped(self, *args, **kwargs):
            hit()
            return step(self, *args, **kwargs)
        Trainer._train_step = wrapped
    elif point in ("set-aside", "rename"):  # inside a checkpoint write
        replace = os.replace
        target = "checkpoint.prev.pt" if point == "set-aside" else "checkpoint.pt"
        def wrapped(src, dst, *args, **kwargs):
            if os.path.basename(dst) == target:
                hit()
            return replace(src, dst, *args, **kwargs)
        os.replace = wrapped
    elif point == "row":  # the checkpoint file written, its store row not yet
        from trainlab.store import Store
        add = Store.add_artifact
        def wrapped(self, run_id, kind, path):
            if kind == "checkpoint":
                hit()
            return add(self, run_id, kind, path)
        Store.add_artifact = wrapped
    from trainlab.cli import main
    main(sys.argv[1:])
    """
)


def _killed(tmp_path, point: str, nth: int, *args: str) -> subprocess.CompletedProcess:
    harness = tmp_path / "harness.py"
    harness.write_text(HARNESS)
    env = {**os.environ, "FAULT_POINT": point, "FAULT_NTH": str(nth)}
    return subprocess.run([sys.executable, str(harness), *args], env=env, capture_output=True, text=True, timeout=600)


def _state(store: Store, run_id: str):
    """What a run ends with: its final weights and every metric row (steps and values)."""
    weights = torch_load(store.artifacts(run_id)["checkpoint"])["model"]
    rows = {k: (list(s), list(v)) for k, (s, v) in store.metrics(run_id).items()}
    return weights, rows, store.get_run(run_id).final


def _assert_same_end(a, b) -> None:
    (wa, ra, fa), (wb, rb, fb) = a, b
    assert set(wa) == set(wb) and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert ra == rb
    same = ("step", "val_loss", "val_acc", "train_loss", "test_acc", "best_step")
    assert {k: fa.get(k) for k in same} == {k: fb.get(k) for k in same}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("fi")
    for name, text in (("run", CONFIG), ("compare", COMPARE), ("search", SEARCH)):
        (d / f"{name}.toml").write_text(text)
    return d


@pytest.fixture(scope="module")
def reference(files):
    """The uninterrupted run and comparison, made once."""
    from trainlab.compare import run_comparison
    from trainlab.train import load_config, run

    store = Store(files / "reference.db")
    single = run(load_config(files / "run.toml"), store=store)
    runs = run_comparison(load_config(files / "compare.toml"), store=store, quiet=True, vectorize="off")
    by_name = {(r.name, r.seed): _state(store, r.id) for r in runs}
    return _state(store, single.run_id), by_name


def _kill_and_resume_a_run(tmp_path, files, reference, point: str, nth: int) -> None:
    from trainlab.train import run

    db = tmp_path / f"{point}-{nth}.db"
    proc = _killed(tmp_path, point, nth, "run", str(files / "run.toml"), "-q", "--store", str(db))
    store = Store(db)
    (record,) = store.list_runs()
    assert proc.returncode == -9 and record.status == "running", proc.stderr[-2000:]
    resumed = run(None, store=store, resume=record.id)
    assert resumed.status == "completed" and resumed.final["step"] == STEPS
    _assert_same_end(_state(store, record.id), reference[0])
    assert [r.status for r in store.list_runs()] == ["completed"]


@pytest.mark.parametrize(
    "point,nth",
    [
        ("step", 3),  # before the first checkpoint: starts again from step 0
        ("rename", 1),  # the first checkpoint's temporary file written, not yet renamed into place
        ("row", 1),  # the first checkpoint on disk, its store row not yet written
        ("rename", 3),  # the third: the second kept aside, the new one not yet in place
        pytest.param("set-aside", 2, marks=pytest.mark.slow),  # the second: the first not yet set aside
        pytest.param("step", 23, marks=pytest.mark.slow),  # mid-run, between checkpoints
    ],
)
def test_a_killed_run_resumes_to_the_uninterrupted_end(tmp_path, files, reference, point, nth):
    _kill_and_resume_a_run(tmp_path, files, reference, point, nth)


@pytest.mark.slow
def test_runs_killed_at_random_points_resume_to_the_uninterrupted_end(tmp_path, files, reference):
    rng = random.Random(os.environ.get("HYPOTHESIS_PROFILE", "fast") + "seed")
    if os.environ.get("HYPOTHESIS_PROFILE") == "thorough":
        rng = random.Random()
    for i in range(8):  # a folder each: a point may be drawn twice
        point = rng.choice(["step", "set-aside", "rename", "row"])
        nth = rng.randint(1, STEPS) if point == "step" else rng.randint(1, 7)
        (tmp_path / str(i)).mkdir()
        _kill_and_resume_a_run(tmp_path / str(i), files, reference, point, nth)


def _kill_and_rerun_a_comparison(tmp_path, files, reference, point: str, nth: int) -> None:
    from trainlab.compare import run_comparison
    from trainlab.train import load_config

    db = tmp_path / f"compare-{point}-{nth}.db"
    argv = ["compare", str(files / "compare.toml"), "-q", "--vectorize", "off", "--store", str(db)]
    proc = _killed(tmp_path, point, nth, *argv)
    assert proc.returncode == -9, proc.stderr[-2000:]
    store = Store(db)
    runs = run_comparison(load_config(files / "compare.toml"), store=store, quiet=True, vectorize="off")
    assert sorted((r.name, r.seed, r.status) for r in runs) == sorted(
        (name, seed, "completed") for name, seed in reference[1]
    )
    for r in runs:  # each (variant, seed) once, ending where the uninterrupted comparison's run ends
        _assert_same_end(_state(store, r.id), reference[1][(r.name, r.seed)])


@pytest.mark.parametrize("point,nth", [("rename", 9), pytest.param("step", 2 * STEPS + 3, marks=pytest.mark.slow)])
def test_a_killed_comparison_reruns_to_the_uninterrupted_end(tmp_path, files, reference, point, nth):
    """Killed in the second run's first checkpoint write (8 writes per run); slow: in the
    third run before its first checkpoint. Runs one by one (``--vectorize off``): a run
    re-made alone after a killed population trains on the sequential path, equal to the
    population's only to rounding (tests/train/test_population.py), not bit for bit."""
    _kill_and_rerun_a_comparison(tmp_path, files, reference, point, nth)


@pytest.mark.slow
def test_comparisons_killed_at_random_points_rerun_to_the_uninterrupted_end(tmp_path, files, reference):
    rng = random.Random() if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else random.Random(19)
    for i in range(4):
        point = rng.choice(["step", "set-aside", "rename", "row"])
        nth = rng.randint(1, 4 * STEPS) if point == "step" else rng.randint(1, 4 * 8)
        (tmp_path / str(i)).mkdir()
        _kill_and_rerun_a_comparison(tmp_path / str(i), files, reference, point, nth)


def test_a_killed_study_resumes_and_completes_each_trial_once(tmp_path, files):
    """Killed in its second trial: `tune --resume` re-queues that trial with its parameters
    and seed, completes it once, and each completed trial's value is exactly what an
    uninterrupted run of its (parameters, seed) gives."""
    from trainlab.train import load_config, run
    from trainlab.tune import Study

    db = tmp_path / "study.db"
    proc = _killed(tmp_path, "step", STEPS + 20, "tune", str(files / "search.toml"), "--store", str(db))
    assert proc.returncode == -9, proc.stderr[-2000:]
    trials = Study.load("fi-study", storage=str(db)).trials  # opening it reaps the killed trial
    assert [t.state for t in trials] == ["complete", "failed", "waiting"] and trials[2].requeued_from == 1
    killed = trials[1]
    assert (trials[2].params, trials[2].seed) == (killed.params, killed.seed)

    from trainlab.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["tune", str(files / "search.toml"), "--resume", "fi-study", "--trials", "2", "--store", str(db)])
    assert exit_.value.code in (0, None)
    trials = Study.load("fi-study", storage=str(db)).trials
    complete = [t for t in trials if t.state == "complete"]
    assert len(complete) == 3 and not [t for t in trials if t.state in ("running", "waiting")]
    keys = [(t.params["optim.lr"], t.seed) for t in complete]
    assert len(set(keys)) == 3 and (killed.params["optim.lr"], killed.seed) in keys  # the killed trial, once
    store = Store(db)
    assert not [r for r in store.list_runs() if r.status == "running"]
    base = load_config(files / "search.toml")
    for t in complete:
        alone = run(base.override({**t.params, "seed": t.seed}), store=Store(":memory:"))
        assert t.value == alone.final["val_loss"]
