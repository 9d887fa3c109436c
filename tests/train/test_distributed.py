"""Data-parallel training (trainlab.train.distributed): N processes follow the one-process run.

Process-starting tests are slow on a loaded 2-core machine: one 2-process run stays in the
default suite (N = 2 against N = 1); the kill/resume, SyncBatchNorm-in-a-run and torchrun tests
are marked slow.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from trainlab._io import torch_load
from trainlab.errors import ConfigError
from trainlab.store import Store
from trainlab.train import run

TIMEOUT = 600  # seconds: starting processes on a shared, loaded machine takes long


def _config(**train) -> dict:
    return {
        "name": "ddp",
        "seed": 0,
        # 51 is odd on purpose: the ranks get 26 and 25 samples (weighted losses) and the last
        # batch of an epoch (512 = 10·51 + 2) one sample each
        "data": {"name": "mnist1d", "batch_size": 51, "subset": 512},
        "model": {"name": "mlp", "hidden": [32]},
        "optim": {"name": "sgd", "lr": 0.2, "momentum": 0.9, "scale_lr": "linear", "base_batch_size": 64},
        "train": {"epochs": 3, "threads": 1, **train},
    }


def test_two_processes_follow_the_one_process_run(tmp_path):
    store = Store(tmp_path / "runs.db")
    cfg = _config()
    one = run(cfg, store=store)
    two = run(cfg, store=store, nproc=2)
    assert one.status == two.status == "completed"
    assert two.final["step"] == one.final["step"] == 3 * 11
    # the same trajectory up to the order of floating-point sums
    assert two.final["val_loss"] == pytest.approx(one.final["val_loss"], rel=2e-3)
    v1, v2 = dict(one.history["val_loss"]), dict(two.history["val_loss"])
    assert sorted(v1) == sorted(v2) == [11, 22, 33]
    assert all(v2[s] == pytest.approx(v1[s], rel=2e-3) for s in v1)
    # the training loss logged on N ranks is the global batch's, not rank 0's half
    t1, t2 = dict(one.history["train_loss"]), dict(two.history["train_loss"])
    assert all(t2[s] == pytest.approx(t1[s], rel=2e-3) for s in t1)
    a1, a2 = dict(one.history["train_acc"]), dict(two.history["train_acc"])
    assert all(abs(a2[s] - a1[s]) <= 2 / 512 for s in a1)  # at most a couple of argmax ties flip
    # optim.scale_lr = "linear" scales by the GLOBAL batch: 0.2 · 51/64
    assert dict(two.history["train_lr"])[10] == pytest.approx(0.2 * 51 / 64)
    # one run in the store, written by rank 0, with its checkpoint and one RNG state per rank
    runs = store.list_runs()
    assert [r.id for r in runs] == [one.run_id, two.run_id] and runs[1].status == "completed"
    ckpt = torch_load(store.artifacts(two.run_id)["checkpoint"])
    assert len(ckpt["rank_rng"]) == 2
    assert not torch.equal(
        ckpt["rank_rng"][0]["torch"], ckpt["rank_rng"][1]["torch"]
    )  # each rank its own dropout stream
    assert two.model is not None and set(two.model.state_dict()) == set(ckpt["model"])


def test_refusals_name_the_option(tmp_path, cli, tiny_config):
    code, _, err = cli("run", "examples/quickstart.toml", "--nproc", "0")
    assert code == 2 and "--nproc must be >= 1" in err
    with pytest.raises(ConfigError, match="':memory:'"):
        run(tiny_config, store=":memory:", nproc=2)
    with pytest.raises(ConfigError, match="no trial or callbacks"):
        run(tiny_config, store=Store(tmp_path / "r.db"), nproc=2, callbacks=[object()])


def test_a_one_process_checkpoint_is_not_resumed_on_two(tmp_path, tiny_config):
    """The checkpoint records how many processes wrote it; a resume must use as many."""
    from trainlab.train.trainer import Trainer

    store = Store(tmp_path / "r.db")
    tiny_config["train"].update(epochs=1)
    result = run(tiny_config, store=store)
    trainer = Trainer(tiny_config, store=store)
    trainer.dist = type("Two", (), {"world_size": 2})()
    with pytest.raises(ConfigError, match="checkpointed by 1 process"):
        trainer._read_checkpoint(result.run_id)


# -- SyncBatchNorm: the statistics of the global batch --------------------------------------


def _weights() -> torch.Tensor:
    """A loss Σ w·y that weighs every output differently (so the gradient tests every path)."""
    return torch.arange(12 * 3 * 5, dtype=torch.float64).view(12, 3, 5) / 180


def _sync_bn_rank(rank: int, world: int, init: str, out: str) -> None:
    import torch.distributed as dist

    from trainlab.train.distributed import SyncBatchNorm

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    torch.manual_seed(0)
    x = torch.randn(12, 3, 5, dtype=torch.float64) * 3 + 1  # (batch, channels, length)
    bn = SyncBatchNorm(3, momentum=0.5).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64))
        bn.bias.copy_(torch.tensor([0.0, -1.0, 0.3], dtype=torch.float64))
    part = torch.tensor_split(x, world)[rank].clone().requires_grad_(True)
    y = bn(part)
    (y * torch.tensor_split(_weights(), world)[rank]).sum().backward()
    torch.save(
        {"y": y.detach(), "dx": part.grad, "rm": bn.running_mean, "rv": bn.running_var, "dw": bn.weight.grad},
        f"{out}/rank{rank}.pt",
    )
    dist.destroy_process_group()


def test_sync_batchnorm_uses_the_global_batch_statistics(tmp_path):
    import torch.multiprocessing as mp

    world = 2
    mp.spawn(_sync_bn_rank, args=(world, f"file://{tmp_path}/rdzv", str(tmp_path)), nprocs=world)
    parts = [torch.load(tmp_path / f"rank{r}.pt") for r in range(world)]
    torch.manual_seed(0)
    x = (torch.randn(12, 3, 5, dtype=torch.float64) * 3 + 1).numpy()
    # NumPy reference: Ioffe & Szegedy's batch norm over the whole batch of 12
    mean = x.mean(axis=(0, 2))
    var = x.var(axis=(0, 2))  # biased: what normalizes
    n = 12 * 5
    gamma, beta = np.array([1.0, 2.0, 0.5]), np.array([0.0, -1.0, 0.3])
    y = gamma[None, :, None] * (x - mean[None, :, None]) / np.sqrt(var[None, :, None] + 1e-5) + beta[None, :, None]
    np.testing.assert_allclose(torch.cat([p["y"] for p in parts]).numpy(), y, rtol=1e-10, atol=1e-12)
    for p in parts:  # the same running statistics on every rank: 0.5·init + 0.5·batch (unbiased var)
        np.testing.assert_allclose(p["rm"].numpy(), 0.5 * mean, rtol=1e-12)
        np.testing.assert_allclose(p["rv"].numpy(), 0.5 + 0.5 * var * n / (n - 1), rtol=1e-12)
    # gradients: the one-process batch norm's, through the global statistics
    xt = torch.tensor(x, requires_grad=True)
    ref = torch.nn.BatchNorm1d(3, momentum=0.5).double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(gamma))
        ref.bias.copy_(torch.tensor(beta))
    yr = ref(xt)
    (yr * _weights()).sum().backward()
    # each rank's loss weighs only its own outputs; their sum is the one-process loss
    np.testing.assert_allclose(torch.cat([p["dx"] for p in parts]).numpy(), xt.grad.numpy(), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(sum(p["dw"] for p in parts).numpy(), ref.weight.grad.numpy(), rtol=1e-8)


@pytest.mark.slow
def test_sync_bn_run_follows_the_one_process_batch_norm_run(tmp_path):
    store = Store(tmp_path / "runs.db")
    cfg = _config()
    cfg["data"]["batch_size"] = 64
    cfg["model"].update(norm="batch", sync_bn=True)
    one = run(cfg, store=store)
    two = run(cfg, store=store, nproc=2)
    assert two.final["step"] == one.final["step"]
    assert two.final["val_loss"] == pytest.approx(one.final["val_loss"], rel=2e-3)
    w1 = torch_load(store.artifacts(one.run_id)["checkpoint"])["model"]
    w2 = torch_load(store.artifacts(two.run_id)["checkpoint"])["model"]
    running = [k for k in w1 if k.endswith("running_var")]
    assert running and all(torch.allclose(w1[k], w2[k], rtol=1e-3) for k in running)


# -- a worker killed with SIGKILL, then --resume ----------------------------------------------


def _workers(pid: int) -> dict[int, int]:
    """rank -> pid of the worker processes under ``pid`` (Linux: named trainlab-rankR)."""
    found: dict[int, int] = {}
    stack = [pid]
    while stack:
        p = stack.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            for c in children:
                stack.append(c)
                try:
                    name = Path(f"/proc/{c}/comm").read_text().strip()
                except OSError:
                    continue
                if name.startswith("trainlab-rank"):
                    found[int(name.removeprefix("trainlab-rank"))] = c
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the workers through /proc (Linux)")
def test_kill_one_worker_then_resume_is_bit_identical(tmp_path):
    cfg = _config(epochs=30, checkpoint_every=10)
    cfg["model"]["dropout"] = 0.2  # each rank draws its own masks: its RNG state must come back
    cfg_path = tmp_path / "cfg.toml"
    cfg_path.write_text(_toml(cfg))
    db = tmp_path / "kill.db"
    env = {**os.environ, "TRAINLAB_STORE": str(db)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainlab", "run", str(cfg_path), "--nproc", "2", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    store = Store(db)
    deadline, run_id = time.time() + TIMEOUT, None
    while time.time() < deadline and proc.poll() is None:  # the first checkpoint, then kill -9 rank 1
        runs = store.list_runs()
        if runs and "checkpoint" in store.artifacts(runs[0].id):
            run_id = runs[0].id
            break
        time.sleep(0.05)
    assert run_id is not None, proc.communicate()[1].decode()[-2000:]
    os.kill(_workers(proc.pid)[1], signal.SIGKILL)
    out, err = proc.communicate(timeout=TIMEOUT)
    record = store.get_run(run_id)
    assert record.status == "interrupted", (record.status, err.decode()[-2000:])
    assert (
        "rank 1" in record.message and "SIGKILL" in record.message and f"--resume {run_id} --nproc 2" in record.message
    )
    assert proc.returncode == 1 and out.decode().split()[-1] == run_id
    killed_at = torch_load(store.artifacts(run_id)["checkpoint"])["step"]
    assert 0 < killed_at < 30 * 11, "the run finished before it could be killed; make it longer"

    with pytest.raises(ConfigError, match="resume it with --nproc 2"):
        run(None, store=store, resume=run_id)  # one process cannot continue a 2-process checkpoint
    resumed = run(None, store=store, resume=run_id, nproc=2)
    full = run(cfg, store=store, nproc=2)
    assert resumed.status == full.status == "completed" and resumed.final["step"] == full.final["step"] == 330
    wa = torch_load(store.artifacts(full.run_id)["checkpoint"])["model"]
    wb = torch_load(store.artifacts(run_id)["checkpoint"])["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert resumed.final["val_loss"] == full.final["val_loss"]


# -- torchrun -----------------------------------------------------------------------------


@pytest.mark.slow
def test_torchrun_module_entry_point_makes_one_run(tmp_path):
    cfg_path = tmp_path / "cfg.toml"
    cfg_path.write_text(_toml(_config(epochs=1)))
    db = tmp_path / "torchrun.db"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "trainlab",
        "run",
        str(cfg_path),
        "--store",
        str(db),
        "-q",
    ]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=TIMEOUT, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = Store(db).list_runs()
    assert len(runs) == 1 and runs[0].status == "completed" and runs[0].final["step"] == 11
    assert done.stdout.split() == [runs[0].id]  # rank 0 alone prints


def _toml(cfg: dict) -> str:
    lines = [f"name = {json.dumps(cfg['name'])}", f"seed = {cfg['seed']}"]
    for section in ("data", "model", "optim", "train"):
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in cfg[section].items()]
    return "\n".join(lines) + "\n"


# -- trainlab.fit and a user's Dataset / DataLoader ---------------------------------------------


class TwoLayer(torch.nn.Module):  # module level: fit(nproc=2) pickles it to the workers
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))

    def forward(self, x):
        return self.net(x)


def _arrays():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 8, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return x, y


def test_fit_refuses_a_dataloader_and_unpicklable_objects_before_starting_processes(tmp_path):
    from torch.utils.data import DataLoader, TensorDataset

    from trainlab import fit

    x, y = _arrays()
    store = str(tmp_path / "r.db")
    with pytest.raises(ConfigError, match="a DataLoader cannot be split over N processes.*give its Dataset instead"):
        fit(TwoLayer(), DataLoader(TensorDataset(x, y), batch_size=30), val=(x, y), store=store, nproc=2)
    with pytest.raises(ConfigError, match="fit\\(nproc=N\\): loss cannot be sent to the worker processes"):
        fit(TwoLayer(), (x, y), loss=lambda out, t: torch.nn.functional.cross_entropy(out, t), store=store, nproc=2)


@pytest.mark.slow
def test_fit_on_two_processes_follows_one_with_arrays_and_a_dataset(tmp_path):
    """fit(..., nproc=2) with (X, y) tensors, and with a torch Dataset (each rank loads only its
    slice of every global batch), follows fit on one process."""
    from torch.utils.data import TensorDataset

    from trainlab import fit

    x, y = _arrays()
    store = Store(tmp_path / "r.db")
    kw = dict(val=(x[:60], y[:60]), epochs=3, batch_size=30, lr=0.2, store=store, **{"train.threads": 1})
    one = fit(TwoLayer(), (x[60:], y[60:]), **kw)
    two = fit(TwoLayer(), (x[60:], y[60:]), nproc=2, **kw)
    two_ds = fit(TwoLayer(), TensorDataset(x[60:], y[60:]), nproc=2, **kw)
    one_ds = fit(TwoLayer(), TensorDataset(x[60:], y[60:]), **kw)
    assert one.final["step"] == two.final["step"] == two_ds.final["step"] == one_ds.final["step"] == 3 * 8
    assert two.final["val_loss"] == pytest.approx(one.final["val_loss"], rel=2e-3)
    assert two_ds.final["val_loss"] == pytest.approx(one_ds.final["val_loss"], rel=2e-3)
    assert isinstance(two.model, TwoLayer)  # the trained weights, in the user's own class
    w = torch_load(store.artifacts(two.run_id)["checkpoint"])["model"]
    assert all(torch.equal(w[k], v) for k, v in two.model.state_dict().items())


@pytest.mark.slow
def test_torchrun_runs_a_script_that_calls_fit(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_distributed import TwoLayer, _arrays\n"
        "from trainlab import fit\n"
        "x, y = _arrays()\n"
        f"r = fit(TwoLayer(), (x[60:], y[60:]), val=(x[:60], y[:60]), epochs=2, batch_size=30, lr=0.2, store={str(tmp_path / 'r.db')!r})\n"
        "print(r.run_id, r.final.get('val_loss'))\n"
    )
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script)]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=TIMEOUT, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = Store(tmp_path / "r.db").list_runs()
    assert len(runs) == 1 and runs[0].status == "completed" and runs[0].final["step"] == 2 * 8
    printed = dict(line.split() for line in done.stdout.splitlines() if line.strip())
    assert set(printed) == {runs[0].id}  # both ranks return the one run's id
