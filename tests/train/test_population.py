"""Population training (issue 20): member k of a population is the sequential run of its config.

Each member is compared with the ordinary run of the same config and seed: final val loss
within 1e-3 relative after a few epochs (the two compute the same formulas in another order of
floating-point operations), for the MLP, the CNN and the GRU, with per-member learning rates,
dropout probabilities, clipping thresholds and label smoothing.
"""

from __future__ import annotations

import pytest
import torch

import trainlab.optim
from trainlab.store import Store
from trainlab.train import load_config, run, run_population
from trainlab.train.population import plan, structure_key, unsupported

BASE = {
    "name": "pop",
    "data": {"name": "mnist1d", "batch_size": 64, "subset": 512},
    "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
    "train": {"epochs": 3, "threads": 1, "clip_norm": 1.0, "label_smoothing": 0.05},
}
MODELS = {
    "mlp": {"name": "mlp", "hidden": [32, 32]},
    "cnn": {"name": "cnn", "channels": [8, 8], "dropout": 0.1},
    "gru": {"name": "gru", "hidden": [16]},
}
# (seed, lr, dropout, clip_norm) of each member
MEMBERS = [(0, 0.05, 0.1, 1.0), (1, 0.2, 0.0, 0.5), (2, 0.02, 0.2, 5.0)]


def member_configs(model: dict, **extra) -> list:
    base = load_config({**BASE, "model": model})
    return [
        base.override({"seed": s, "optim.lr": lr, "model.dropout": p, "train.clip_norm": c, **extra})
        for s, lr, p, c in MEMBERS
    ]


@pytest.mark.parametrize("model", list(MODELS))
def test_member_follows_its_sequential_run(model, tmp_path):
    configs = member_configs(MODELS[model])
    store = Store(tmp_path / "s.db")
    population = run_population(configs, store=store, group="g")
    for cfg, member in zip(configs, population):
        alone = run(cfg, store=store)
        assert member.status == alone.status == "completed"
        assert member.final["step"] == alone.final["step"] == 24
        rel = abs(member.final["val_loss"] / alone.final["val_loss"] - 1)
        assert rel < 1e-3, (model, cfg.seed, member.final["val_loss"], alone.final["val_loss"])
        assert member.final["val_acc"] == pytest.approx(alone.final["val_acc"], abs=0.01)
        # the same rows as a sequential run: every metric key at the same steps
        assert set(member.history) == set(alone.history)
        for key in ("train_lr", "lr", "epoch"):
            assert member.history[key] == alone.history[key]
        assert member.final["population"].endswith(f"/{len(configs)}")
        record = store.get_run(member.run_id)
        assert record.group == "g" and record.config_hash == cfg.hash() and record.seed == cfg.seed
        assert "checkpoint" in store.artifacts(member.run_id)


def test_members_learn_distinct_things():
    """Different seeds give different initializations: the members are not copies."""
    configs = member_configs(MODELS["mlp"], **{"train.epochs": 1})
    results = run_population(configs, store=Store(":memory:"))
    losses = [r.final["val_loss"] for r in results]
    assert len(set(losses)) == 3


def test_schedules_and_adam_betas_per_member(tmp_path):
    base = load_config(
        {**BASE, "model": MODELS["mlp"], "optim": {"name": "adamw", "lr": 1e-3}, "train": {"epochs": 2, "threads": 1}}
    )
    configs = [
        base.override({"seed": 0, "schedule.name": "cosine"}),
        base.override(
            {
                "seed": 1,
                "optim.betas": [0.8, 0.99],
                "optim.weight_decay": 0.1,
                "schedule.name": "step",
                "schedule.step_size": 5,
            }
        ),
        base.override({"seed": 2, "optim.lr": 3e-3, "schedule.name": "constant"}),
    ]
    assert len({structure_key(c) for c in configs}) == 1
    store = Store(tmp_path / "s.db")
    for cfg, member in zip(configs, run_population(configs, store=store)):
        alone = run(cfg, store=store)
        assert member.history["train_lr"] == alone.history["train_lr"]
        assert abs(member.final["val_loss"] / alone.final["val_loss"] - 1) < 1e-3


def test_a_diverging_member_is_marked_diverged_alone(tmp_path):
    base = load_config({**BASE, "model": MODELS["mlp"], "train": {"epochs": 2, "threads": 1}})
    configs = [
        base.override({"seed": 0}),
        base.override({"seed": 1, "optim.lr": 1e6}),
        base.override({"seed": 2, "optim.lr": 0.1}),
    ]
    store = Store(tmp_path / "s.db")
    results = run_population(configs, store=store)
    assert [r.status for r in results] == ["completed", "diverged", "completed"]
    alone = run(configs[1], store=store)
    assert alone.status == "diverged"
    assert results[1].final["step"] == alone.final["step"] and results[1].message == alone.message
    for cfg, member in zip(configs[::2], results[::2]):
        ref = run(cfg, store=store)
        assert abs(member.final["val_loss"] / ref.final["val_loss"] - 1) < 1e-3
        assert member.final["step"] == 16


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("sgd", {"momentum": [0.9, 0.5, 0.0], "weight_decay": [1e-3, 0.0, 1e-2]}),
        ("sgd", {"momentum": [0.9, 0.5, 0.7], "nesterov": True}),
        ("adam", {"betas": [(0.9, 0.999), (0.8, 0.999), (0.5, 0.9)], "amsgrad": True}),
        ("adamw", {"weight_decay": [0.1, 0.01, 0.0], "eps": [1e-8, 1e-6, 1e-3]}),
        ("nadam", {"betas": [(0.9, 0.999), (0.8, 0.99), (0.5, 0.99)]}),
        ("rmsprop", {"alpha": [0.9, 0.99, 0.5], "momentum": [0.5, 0.0, 0.9], "centered": True}),
        ("adagrad", {"lr_decay": [0.1, 0.0, 0.5], "initial_accumulator_value": [0.0, 0.1, 1.0]}),
        ("adadelta", {"rho": [0.9, 0.5, 0.95], "eps_inside_sqrt": False}),
    ],
)
def test_optimizer_with_per_member_values_steps_each_member_as_alone(name, values):
    """[K] hyperparameters on stacked parameters: member k's slice moves as a single
    parameter does under member k's scalars (the single-parameter optimizers are checked
    against NumPy and torch in tests/optim)."""
    K, lrs = 3, [0.1, 0.01, 0.05]
    torch.manual_seed(0)
    w0 = torch.randn(K, 5, 4, dtype=torch.float64)

    def member(k):
        return {key: (v[k] if isinstance(v, list) else v) for key, v in values.items()}

    singles = []
    for k in range(K):
        w = w0[k].clone().requires_grad_()
        opt = trainlab.optim.create(name, [w], lr=lrs[k], **member(k))
        for _ in range(6):
            opt.zero_grad()
            (w.sin() * w + 0.5 * w**2).sum().backward()
            opt.step()
        singles.append(w.detach())
    stacked = {}
    for key, v in values.items():
        if not isinstance(v, list):
            stacked[key] = v
        elif isinstance(v[0], tuple):
            stacked[key] = tuple(torch.tensor([m[i] for m in v], dtype=torch.float64) for i in range(2))
        else:
            stacked[key] = torch.tensor(v, dtype=torch.float64)
    w = w0.clone().requires_grad_()
    opt = trainlab.optim.create(name, [w], lr=torch.tensor(lrs, dtype=torch.float64), **stacked)
    for _ in range(6):
        opt.zero_grad()
        (w.sin() * w + 0.5 * w**2).sum().backward()
        opt.step()
    for k in range(K):
        torch.testing.assert_close(w.detach()[k], singles[k], rtol=1e-12, atol=1e-12)


def test_per_member_values_are_checked_by_element():
    w = torch.zeros(3, 2, requires_grad=True)
    with pytest.raises(ValueError, match=r"lr\[1\] must be >= 0"):
        trainlab.optim.SGD([w], lr=torch.tensor([0.1, -0.1, 0.2]))


def test_plan_groups_by_structure_and_says_why_not():
    base = load_config({**BASE, "model": MODELS["mlp"]})
    configs = [
        base.override({"seed": 0}),
        base.override({"seed": 1, "optim.lr": 0.3}),
        base.override({"seed": 0, "model.hidden": [8]}),  # another architecture, alone
        base.override({"seed": 0, "model.norm": "batch"}),
        base.override({"seed": 1, "model.norm": "batch"}),
    ]
    populations, alone = plan(configs)
    assert populations == [[0, 1]]
    assert "share a population" in alone[2]
    assert alone[3] == alone[4] == "model.norm = 'batch' has no batched kernels"
    assert unsupported(configs[0]) is None


def test_population_killed_then_resumed_is_bit_identical(tmp_path):
    """SIGKILL mid-training, then ``run --resume`` of one member: the whole population resumes
    from its checkpoint to exactly the weights, metrics and finals of an uninterrupted one."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    from trainlab._io import torch_load
    from trainlab.train.population import latest_population_checkpoint

    configs = [
        c.override({"train.epochs": 40, "train.checkpoint_every": 10, "train.label_smoothing": 0.0})
        for c in member_configs(MODELS["mlp"])
    ]
    cfg_path = tmp_path / "cfgs.json"
    cfg_path.write_text(json.dumps([c.to_dict() for c in configs]))
    db = tmp_path / "kill.db"
    code = (
        "import json; import torch; torch.set_num_threads(1);"
        "from trainlab.store import Store; from trainlab.train import run_population;"
        f"run_population(json.load(open({str(cfg_path)!r})), store=Store({str(db)!r}), group='g')"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    store = Store(db)
    deadline, run_ids = time.time() + 120, None
    while time.time() < deadline:
        runs = store.list_runs()
        if len(runs) == 3 and all("population" in store.artifacts(r.id) for r in runs):
            run_ids = [r.id for r in runs]
            break
        time.sleep(0.02)
    assert run_ids is not None, proc.stderr.read().decode() if proc.poll() is not None else "no checkpoint within 120 s"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert all(store.get_run(r).status == "running" for r in run_ids), "finished before the kill; make it longer"
    # the kill may fall between setting the last checkpoint aside and writing the new one:
    # read the checkpoint a resume reads (the newest that loads)
    killed_at = latest_population_checkpoint(store.artifacts(run_ids[0])["population"])[1]["step"]
    assert 0 < killed_at < 320
    store.reap()
    resumed = run(None, store=store, resume=run_ids[1])
    assert resumed.run_id == run_ids[1] and resumed.status == "completed"
    full_store = Store(tmp_path / "full.db")
    full = run_population(configs, store=full_store, group="g")
    for run_id, ref in zip(run_ids, full):
        record = store.get_run(run_id)
        assert record.status == "completed" and record.final["step"] == ref.final["step"] == 320
        assert record.final["val_loss"] == ref.final["val_loss"]
        wa = torch_load(store.artifacts(run_id)["checkpoint"])["model"]
        wb = torch_load(full_store.artifacts(ref.run_id)["checkpoint"])["model"]
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
        ma, mb = store.metrics(run_id), full_store.metrics(ref.run_id)
        assert set(ma) == set(mb)
        for key in ma:
            assert ma[key][0].tolist() == mb[key][0].tolist() and ma[key][1].tolist() == mb[key][1].tolist(), key


@pytest.mark.parametrize("kind", ["rnn", "gru"])
def test_recurrence_backward_is_the_gradient(kind):
    """The hand-written backpropagation through time of the RNN and GRU layers equals the
    numerical gradient (float64)."""
    from trainlab.train.population import _Recurrence

    torch.manual_seed(0)
    T, K, B, H = 5, 3, 4, 6
    G = H if kind == "rnn" else 3 * H
    gi = torch.randn(T, K, B, G, dtype=torch.float64, requires_grad=True)
    w = (0.5 * torch.randn(K, H, G, dtype=torch.float64)).requires_grad_()
    b = torch.randn(K, G, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda gi, w, b: _Recurrence.apply(kind, gi, w, b, False), (gi, w, b))
    # only the last state read downstream (the last layer): its gradient alone flows back
    assert torch.autograd.gradcheck(lambda gi, w, b: _Recurrence.apply(kind, gi, w, b, True)[-1], (gi, w, b))


def test_a_completed_member_checkpoint_is_a_run_checkpoint(tmp_path):
    """A member's checkpoint has the sequential format: its optimizer state slice included."""
    from trainlab._io import torch_load

    configs = member_configs(MODELS["mlp"], **{"train.epochs": 1})
    store = Store(tmp_path / "s.db")
    member = run_population(configs, store=store)[1]
    alone = run(configs[1], store=store)
    a = torch_load(store.artifacts(member.run_id)["checkpoint"])
    b = torch_load(store.artifacts(alone.run_id)["checkpoint"])
    assert set(a) - {"population"} == set(b)
    assert a["step"] == b["step"]
    for key in b["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=1e-4, atol=1e-5)
    state_a, state_b = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sorted(state_a) == sorted(state_b) and a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    for index in state_b:  # the same parameter index: the same buffer
        torch.testing.assert_close(
            state_a[index]["momentum_buffer"], state_b[index]["momentum_buffer"], rtol=1e-3, atol=1e-4
        )
