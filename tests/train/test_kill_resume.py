"""A run killed with SIGKILL mid-training resumes to exactly the weights of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import torch

from trainlab._io import torch_load
from trainlab.store import Store
from trainlab.train import run


def test_sigkill_mid_training_then_resume_is_bit_identical(tmp_path, tiny_config):
    tiny_config["model"]["dropout"] = 0.1
    tiny_config["train"].update(epochs=40, checkpoint_every=10)
    tiny_config["data"]["augment"] = []
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(tiny_config))
    db = tmp_path / "kill.db"
    code = (
        "import json, sys; from trainlab.train import run; from trainlab.store import Store;"
        "import torch; torch.set_num_threads(1);"
        f"run(json.load(open({str(cfg_path)!r})), store=Store({str(db)!r}))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    store = Store(db)
    deadline = time.time() + 60
    run_id = None
    while time.time() < deadline:  # wait for the first checkpoint, then kill without warning
        runs = store.list_runs()
        if runs and "checkpoint" in store.artifacts(runs[0].id):
            run_id = runs[0].id
            break
        time.sleep(0.02)
    assert run_id is not None, proc.stderr.read().decode() if proc.poll() is not None else "no checkpoint within 60 s"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    record = store.get_run(run_id)
    assert record.status == "running", "the run finished before it could be killed; make it longer"
    killed_at = torch_load(store.artifacts(run_id)["checkpoint"])["step"]
    assert 0 < killed_at < 40 * 8

    resumed = run(None, store=store, resume=run_id)
    full = run(tiny_config, store=store)
    assert resumed.status == "completed" and resumed.final["step"] == full.final["step"] == 320
    wa = torch_load(store.artifacts(full.run_id)["checkpoint"])["model"]
    wb = torch_load(store.artifacts(run_id)["checkpoint"])["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert resumed.final["val_loss"] == full.final["val_loss"]
