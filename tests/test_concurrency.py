"""Real processes on one store: two comparisons at once make each run once; a killed driver's
workers exit, and the rerun finishes what was left; two tune processes share a study."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter

import pytest

from trainlab.store import Store

CONFIG = """
name = "{name}"
[data]
name = "spirals"
n_samples = 200
batch_size = 32
[model]
hidden = [8]
[optim]
lr = 0.1
[train]
max_steps = {steps}
checkpoint_every = {ckpt}
threads = 1
[compare]
seeds = 2
"optim.lr" = [0.05, 0.1]
"""


def _config(tmp_path, name="cc", steps=30, ckpt=0):
    path = tmp_path / f"{name}.toml"
    path.write_text(CONFIG.format(name=name, steps=steps, ckpt=ckpt))
    return path


def _trainlab(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "trainlab.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw
    )


def _assert_each_run_once(store: Store, group: str, per_variant: int = 2) -> None:
    records = store.list_runs(group=group)
    made = Counter((r.name, r.seed) for r in records)
    assert all(n == 1 for n in made.values()), made
    assert len(made) == 2 * per_variant and all(r.status == "completed" for r in records), [
        (r.name, r.seed, r.status) for r in records
    ]


@pytest.mark.slow
def test_two_compares_at_once_make_each_run_once(tmp_path):
    """Both ran all runs (18 for 9) and the summary said n = 6; now 4 runs, n = 2 each."""
    cfg, db = _config(tmp_path), str(tmp_path / "s.db")
    Store(db)  # the schema first, so the two race on runs, not on tables
    procs = [_trainlab("compare", str(cfg), "--store", db, "-q") for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    _assert_each_run_once(Store(db), "cc")
    for out, _ in outs:  # each process's summary: two variants of two distinct seeds
        rows = [line for line in out.splitlines() if line.startswith("│ 0.")]
        assert len(rows) == 2 and all(row.split("│")[2].strip() == "2" for row in rows), out
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM run_leases").fetchone()[0] == 0  # every lease given back


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                kids.append(int(entry))
    return kids


def _alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads the process table from /proc (Linux)")
def test_kill_9_of_the_compare_driver_ends_its_workers_and_a_rerun_finishes(tmp_path):
    # runs of seconds (~0.15 ms a step): with 3000 steps both finished inside the half second
    # the workers take to notice their driver's death
    cfg, db = _config(tmp_path, "kk", steps=50_000, ckpt=500), str(tmp_path / "s.db")
    Store(db)
    driver = _trainlab("compare", str(cfg), "--store", db, "-q", "--jobs", "2")
    deadline, workers = time.time() + 300, []
    while time.time() < deadline:  # both workers training a population of 2 seeds, with a checkpoint each
        workers = _children(driver.pid)
        with sqlite3.connect(db) as con:
            ckpts = con.execute(
                "SELECT count(DISTINCT run_id) FROM artifacts WHERE kind IN ('checkpoint', 'population')"
            ).fetchone()[0]
        if ckpts >= 4:
            break
        assert driver.poll() is None, driver.communicate()[1]
        time.sleep(0.2)
    assert ckpts >= 4, "the workers made no checkpoint within 300 s"
    os.kill(driver.pid, signal.SIGKILL)
    driver.communicate()
    gone_by = time.time() + 10
    while any(_alive(w) for w in workers) and time.time() < gone_by:
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)], "workers outlived their driver"
    store = Store(db)
    assert [r.status for r in store.list_runs()] == ["running"] * 4  # until reaped
    rerun = _trainlab("compare", str(cfg), "--store", db, "-q", "--jobs", "2")
    _, err = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, err
    _assert_each_run_once(store, "kk")
    resumed = [r for r in store.list_runs() if r.final.get("step") == 50_000]
    assert len(resumed) == 4


SEARCH = """
name = "tt"
[data]
name = "spirals"
n_samples = 200
batch_size = 32
[model]
hidden = [8]
[train]
max_steps = 10
threads = 1
[search]
sampler = "random"
trials = 3
[search.params]
"optim.lr" = { type = "float", low = 0.01, high = 0.5, log = true }
"""


@pytest.mark.slow
def test_two_tunes_at_once_share_one_study_and_make_each_run_once(tmp_path):
    cfg, db = tmp_path / "t.toml", str(tmp_path / "s.db")
    cfg.write_text(SEARCH)
    Store(db)
    first = [_trainlab("tune", str(cfg), "--store", db) for _ in range(2)]
    results = [p.communicate(timeout=600) for p in first]
    codes = sorted(p.returncode for p in first)
    assert codes == [0, 2], results  # one creates the study; the other is told to --resume it
    loser = next(err for p, (_, err) in zip(first, results) if p.returncode == 2)
    assert "study 'tt' already exists" in loser and "--resume tt" in loser and len(loser.strip().splitlines()) == 1
    again = [_trainlab("tune", str(cfg), "--resume", "tt", "--store", db) for _ in range(2)]
    assert [p.communicate(timeout=600) and p.returncode for p in again] == [0, 0]
    from trainlab.tune import Study

    trials = Study.load("tt", storage=db).trials
    assert len(trials) == 9 and all(t.state == "complete" for t in trials)
    runs = Store(db).list_runs(group="tt")
    assert (
        len(runs) == 9
        and len({r.config_hash for r in runs}) == 9
        and {t.run_id for t in trials} == {r.id for r in runs}
    )
