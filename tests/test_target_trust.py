"""Code named in a config read back from a store runs only under the trust rule
(trainlab.targets.check_stored, SECURITY.md): a tampered stored config naming ``os:system``
is refused on ``--resume``, on a ``compare`` rerun and in a study worker, and nothing runs."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trainlab import targets
from trainlab.errors import ConfigError
from trainlab.store import Store
from trainlab.train import Callback, load_config, run

MODEL = """
from torch import nn

class Net(nn.Module):
    def __init__(self, input_shape, num_classes, width=8):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(input_shape[0], width), nn.ReLU(), nn.Linear(width, num_classes))
    def forward(self, x):
        return self.net(x)
"""

DATA = """
import numpy as np

def blobs(n=200):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    x = (rng.normal(size=(n, 2)) + 2 * y[:, None]).astype(np.float32)
    return (x[:150], y[:150]), (x[150:], y[150:])
"""

CONFIG = """
name = "trusty"
[model]
target = "nets:Net"
[data]
target = "blobs.py:blobs"
batch_size = 16
[train]
epochs = 3
checkpoint_every = 2
[compare]
seeds = 1
"model.args.width" = [4]
[search]
trials = 1
sampler = "random"
params = { "optim.lr" = { type = "float", low = 0.01, high = 0.1 } }
"""


class StopAfterFirstSteps(Callback):
    def on_step_end(self, trainer, step, logs):
        if step == 3:
            raise KeyboardInterrupt


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "nets.py").write_text(textwrap.dedent(MODEL))
    (folder / "blobs.py").write_text(textwrap.dedent(DATA))
    (folder / "cfg.toml").write_text(textwrap.dedent(CONFIG))
    return folder / "cfg.toml"


def trainlab(*args, cwd, env=None):
    return subprocess.run(
        [sys.executable, "-m", "trainlab", *args], capture_output=True, text=True, timeout=600, cwd=cwd, env=env
    )


def os_system(config: dict, marker: Path, *, record: bool = True) -> dict:
    """The config an attacker with write access to the store would leave: os.system with a
    command, and (cleverly) the true file and hash of os.py recorded beside it."""
    bad = json.loads(json.dumps(config))
    bad["model"] = {"target": "os:system", "args": {"command": f"touch {marker}"}}
    loc = targets.locate("os:system")
    if record:
        bad["sources"]["model"] = {
            "target": "os:system",
            "file": str(loc.file),
            "sha256": targets.file_sha256(loc.file),
        }
    return bad


def tamper_run(db: Path, run_id: str, config: dict) -> None:
    with sqlite3.connect(db) as con:
        con.execute("UPDATE runs SET config = ? WHERE id = ?", (json.dumps(config), run_id))


def interrupted_run(project: Path, db: Path, group: str | None = None) -> str:
    result = run(load_config(project), store=Store(db), callbacks=[StopAfterFirstSteps()], group=group)
    assert result.status == "interrupted"
    return result.run_id


def assert_refused(out, *words):
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_resume_refuses_os_system_and_nothing_runs(project, tmp_path):
    db, marker = tmp_path / "runs.db", tmp_path / "pwned"
    run_id = interrupted_run(project, db)
    tamper_run(db, run_id, os_system(Store(db).get_run(run_id).config, marker))
    out = trainlab("run", "--resume", run_id, "--store", str(db), cwd=tmp_path)
    assert_refused(out, "model.target = 'os:system'", f"run {run_id}", "standard library")
    # allowing it changes nothing: the standard library is never allowed
    out = trainlab("--allow-target", "os", "run", "--resume", run_id, "--store", str(db), cwd=tmp_path)
    assert_refused(out, "standard library")
    assert not marker.exists()


def test_compare_rerun_refuses_a_tampered_run_of_its_group(project, tmp_path):
    db, marker = tmp_path / "runs.db", tmp_path / "pwned"
    cfg = load_config(project)
    from trainlab.compare import plan

    ((_, variant),) = plan(cfg)
    interrupted = run(variant, store=Store(db), callbacks=[StopAfterFirstSteps()], group="trusty")
    tamper_run(db, interrupted.run_id, os_system(Store(db).get_run(interrupted.run_id).config, marker))
    out = trainlab("compare", str(project), "--store", str(db), "-q", cwd=tmp_path)
    assert_refused(out, "model.target = 'os:system'", "not trusted")
    assert not marker.exists()


def test_a_study_worker_and_tune_resume_refuse_a_tampered_study(project, tmp_path):
    db, marker = tmp_path / "runs.db", tmp_path / "pwned"
    out = trainlab("tune", str(project), "--store", str(db), "--trials", "1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    with sqlite3.connect(db) as con:
        (objective,) = con.execute("SELECT objective FROM tune_studies WHERE name = 'trusty'").fetchone()
        stored = json.loads(objective)
        stored["config"] = os_system(stored["config"], marker)
        con.execute("UPDATE tune_studies SET objective = ? WHERE name = 'trusty'", (json.dumps(stored),))
    out = trainlab(
        "tune", str(project), "--store", str(db), "--resume", "trusty", "--trials", "1", "--jobs", "2", cwd=tmp_path
    )
    assert_refused(out, "model.target = 'os:system'", "study 'trusty'")

    # the worker's own check, as a worker process runs it (the driver's check bypassed)
    from trainlab.tune import Study
    from trainlab.tune.runs import RunObjective

    study = Study.load("trusty", storage=str(db))
    objective = RunObjective(stored["config"], str(db))
    trial = study.ask()
    done = study.run_trial(trial, objective)
    assert done.state == "failed" and "not trusted" in done.message and "standard library" in done.message
    with pytest.raises(ConfigError, match="not trusted"):
        objective(study.ask())
    assert not marker.exists()


def test_edited_moved_and_unrecorded_code_is_refused_and_allow_target_allows_a_module(project, tmp_path, monkeypatch):
    db, marker = tmp_path / "runs.db", tmp_path / "pwned"
    run_id = interrupted_run(project, db)
    config = Store(db).get_run(run_id).config

    (project.parent / "nets.py").write_text((project.parent / "nets.py").read_text() + "\n# edited\n")
    with pytest.raises(ConfigError, match=r"nets.py changed since the run was made"):
        targets.check_stored(config, what="run x")
    (project.parent / "nets.py").write_text(textwrap.dedent(MODEL))

    no_record = json.loads(json.dumps(config))
    del no_record["sources"]["model"]
    with pytest.raises(ConfigError, match="records no source hash"):
        targets.check_stored(no_record, what="run x")

    # an installed module (on sys.path, outside the config's folder): refused unless allowed
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "installednets.py").write_text(textwrap.dedent(MODEL))
    monkeypatch.syspath_prepend(str(lib))
    outside = json.loads(json.dumps(config))
    outside["model"]["target"] = "installednets:Net"
    outside["sources"]["model"] = targets.source_record("installednets:Net", None, "model.target")
    with pytest.raises(
        ConfigError, match=r"is not in the config's folder; if you trust it, allow it with --allow-target MODULE"
    ):
        targets.check_stored(outside, what="run x")
    targets.check_stored(outside, what="run x", allow=["installednets"])
    monkeypatch.setenv(targets.ALLOW_ENV, "other,installednets")
    targets.check_stored(outside, what="run x")
    with pytest.raises(ConfigError, match="standard library"):
        targets.check_stored(os_system(config, marker), what="run x", allow=["os"])

    # the untampered stored config resumes (its code is in the config's folder, unchanged)
    out = trainlab("run", "--resume", run_id, "--store", str(db), "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert Store(db).get_run(run_id).status == "completed"
    assert not marker.exists()


def test_nothing_is_imported_before_the_verdict(project, tmp_path):
    """A stored target whose module would announce its import is refused without importing it."""
    lib = tmp_path / "lib2"
    lib.mkdir()
    (lib / "loud.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\ndef f(): pass\n")
    cfg = load_config(project).to_dict()
    cfg["model"] = {"target": "loud:f"}
    cfg["sources"]["model"] = {
        "target": "loud:f",
        "file": str(lib / "loud.py"),
        "sha256": targets.file_sha256(lib / "loud.py"),
    }
    sys.path.insert(0, str(lib))
    try:
        with pytest.raises(ConfigError, match="not in the config's folder"):
            targets.check_stored(cfg, what="run x")
    finally:
        sys.path.remove(str(lib))
    assert "loud" not in sys.modules and not (tmp_path / "imported").exists()
    assert os.environ.get(targets.ALLOW_ENV) is None
