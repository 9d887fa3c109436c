import numpy as np
import pytest
from scipy import stats

from trainlab.compare import bootstrap_ci, compare, parse_compare, plan, run_comparison, steps_to_target
from trainlab.errors import ConfigError
from trainlab.train import load_config


def test_parse_lists_product_and_named_variants():
    variants, seeds = parse_compare(
        {
            "seeds": 2,
            "optim": {"name": ["sgd", "adam"]},
            "variants": {"nest": {"optim": {"nesterov": True, "momentum": 0.9}}},
        }
    )
    assert seeds == [0, 1]
    assert [(v.name, v.overrides) for v in variants] == [
        ("sgd", {"optim.name": "sgd"}),
        ("adam", {"optim.name": "adam"}),
        ("nest", {"optim.nesterov": True, "optim.momentum": 0.9}),
    ]
    variants, seeds = parse_compare({"seeds": [5, 7], "optim.lr": [0.1, 0.2], "model.hidden": [[8], [16]]})
    assert seeds == [5, 7] and len(variants) == 4 and variants[0].name == "lr=0.1,hidden=[8]"


@pytest.mark.parametrize(
    "table,msg",
    [
        (None, "no \\[compare\\] section"),
        ({"seeds": 0, "optim.lr": [0.1]}, "compare.seeds must be >= 1"),
        ({"optim.lr": 0.1}, "compare.optim.lr must be a non-empty list"),
        ({"seeds": 2}, "no variants"),
    ],
)
def test_bad_compare_tables(table, msg):
    with pytest.raises(ConfigError, match=msg):
        parse_compare(table)


def test_plan_validates_every_variant_before_running():
    cfg = load_config({"name": "c", "compare": {"seeds": 1, "variants": {"bad": {"optim.lrr": 1}}}})
    with pytest.raises(ConfigError, match="compare variant 'bad': .*did you mean 'optim.lr'"):
        plan(cfg)


def test_bootstrap_ci_matches_scipy_percentile_bootstrap():
    x = np.random.default_rng(1).normal(0.6, 0.05, size=8)
    lo, hi = bootstrap_ci(x, n_resamples=20000)
    ref = stats.bootstrap(
        (x,), np.mean, confidence_level=0.95, n_resamples=20000, method="percentile", random_state=3
    ).confidence_interval
    assert lo == pytest.approx(ref.low, abs=3e-3) and hi == pytest.approx(ref.high, abs=3e-3)
    assert lo < x.mean() < hi
    assert bootstrap_ci([0.5]) == (0.5, 0.5)


def test_steps_to_target():
    steps, values = np.array([10, 20, 30]), np.array([0.2, 0.6, 0.7])
    assert steps_to_target(steps, values, 0.5, "max") == 20
    assert steps_to_target(steps, values, 0.9, "max") is None
    assert steps_to_target(steps, np.array([3.0, 1.0, 0.5]), 1.0, "min") == 20


def test_compare_runs_every_variant_and_seed_and_resumes(store, tiny_config):
    tiny_config["train"]["epochs"] = 1
    tiny_config["compare"] = {"seeds": 2, "optim.lr": [0.05, 0.1], "target": 0.15}
    rows = compare(tiny_config, store=store)
    assert sorted(r["variant"] for r in rows) == ["0.05", "0.1"]
    assert all(r["n"] == 2 and r["final_ci"][0] <= r["final_mean"] <= r["final_ci"][1] for r in rows)
    records = store.list_runs(group="tiny")
    assert len(records) == 4 and {r.name for r in records} == {"tiny/0.05", "tiny/0.1"}
    assert sorted(r.seed for r in records) == [0, 0, 1, 1]
    # steps to the [compare] target, in the summary and in the report, without passing it again
    for r in rows:
        hits = [
            steps_to_target(*store.metrics(rec.id, ["val_acc"])["val_acc"], 0.15, "max")
            for rec in records
            if rec.name == f"tiny/{r['variant']}"
        ]
        reached = [h for h in hits if h is not None]
        assert r["reached"] == f"{len(reached)}/2" and r["steps_to_target"] == (np.mean(reached) if reached else None)
    from trainlab.report.build import build_report

    assert "steps to val_acc 0.15" in build_report(["tiny"], store)
    # a rerun skips the finished runs
    run_comparison(load_config(tiny_config), store=store, quiet=True)
    assert len(store.list_runs(group="tiny")) == 4
    # one more seed runs only the new ones
    run_comparison(load_config(tiny_config), store=store, seeds=3, quiet=True)
    assert len(store.list_runs(group="tiny")) == 6


def test_runs_of_an_edited_config_are_never_pooled_with_the_new_ones(store, tiny_config):
    from trainlab.compare import summarize, summarize_plan, variant_key

    tiny_config["train"]["epochs"] = 1
    tiny_config["compare"] = {"seeds": 2, "optim.lr": [0.1]}
    compare(tiny_config, store=store)
    tiny_config["model"]["hidden"] = [8]  # the user edits the config and compares again
    rows = compare(tiny_config, store=store)
    assert [(r["variant"], r["n"]) for r in rows] == [("0.1", 2)]  # this plan's runs only
    assert summarize_plan(load_config(tiny_config), store)[0]["final_mean"] == rows[0]["final_mean"]
    everything = summarize(store, "tiny")  # no plan (the report): two labelled variants
    keys = sorted({variant_key(r.config) for r in store.list_runs(group="tiny")})
    assert len(keys) == 2 and sorted(r["variant"] for r in everything) == [f"0.1 [{k}]" for k in keys]
    assert all(r["n"] == 2 for r in everything)


@pytest.mark.parametrize(
    "table,msg",
    [
        ({"seeds": [1, 1], "optim.lr": [0.1]}, "compare.seeds lists seed 1 twice"),
        ({"seeds": [True], "optim.lr": [0.1]}, "compare.seeds must be a count or a list of integers"),
        (
            {"metric": "bogus", "optim.lr": [0.1]},
            "unknown compare.metric 'bogus'; choose one of: test_acc, test_loss, train_acc",
        ),
        ({"target": "x", "optim.lr": [0.1]}, "compare.target must be a number"),
        ({"target": True, "optim.lr": [0.1]}, "compare.target must be a number"),
        ({"target": float("nan"), "optim.lr": [0.1]}, "compare.target must be a number"),
    ],
)
def test_metric_target_and_seeds_are_checked_before_any_run(table, msg):
    with pytest.raises(ConfigError, match=msg):
        parse_compare(table)


def _result(store, group, variant, seed, status, value, config=None):
    config = config or {"optim": {"lr": variant}, "seed": seed}
    run_id = store.create_run(f"{group}/{variant}", config, seed=seed, group=group, config_hash=f"{variant}-{seed}")
    store.finish_run(run_id, status, final={"val_acc": value, "best_val_acc": value, "seconds": 1.0})
    return run_id


def test_summary_counts_each_seed_once(store):
    """Two comparisons that ran at once before leases existed stored every seed twice."""
    from trainlab.compare import summarize

    for seed, value in enumerate([0.5, 0.6, 0.7]):
        _result(store, "g", 0.1, seed, "completed", value)
        _result(store, "g", 0.1, seed, "completed", value)  # the duplicate
    (row,) = summarize(store, "g", "val_acc")
    assert row["n"] == 3 and row["final_mean"] == pytest.approx(0.6)
    assert row["final_std"] == pytest.approx(np.std([0.5, 0.6, 0.7], ddof=1))


def test_a_diverged_variant_stays_in_the_summary_with_a_note(store):
    from trainlab.compare import print_summary, summarize

    for seed in range(3):
        _result(store, "g", 0.1, seed, "completed", 0.5 + 0.1 * seed)
        _result(store, "g", 9.0, seed, "diverged" if seed < 2 else "completed", None if seed < 2 else 0.3)
        _result(store, "g", 99.0, seed, "diverged", None)
    rows = {r["variant"]: r for r in summarize(store, "g", "val_acc")}
    assert [r["variant"] for r in summarize(store, "g", "val_acc")] == ["0.1", "9.0", "99.0"]  # all-diverged last
    assert "note" not in rows["0.1"] and rows["0.1"]["n"] == 3
    assert (
        rows["9.0"]["note"] == "2 diverged of 3"
        and rows["9.0"]["n"] == 1
        and rows["9.0"]["final_mean"] == pytest.approx(0.3)
    )
    assert rows["99.0"]["note"] == "3 diverged of 3" and rows["99.0"]["n"] == 0 and np.isnan(rows["99.0"]["final_mean"])
    from rich.console import Console

    console = Console(record=True, width=200)
    print_summary(list(rows.values()), console)
    assert "3 diverged of 3" in console.export_text()


def test_a_rerun_does_not_repeat_diverged_runs(store, tiny_config):
    tiny_config["train"] = {"max_steps": 5, "threads": 1}
    tiny_config["compare"] = {"seeds": 2, "optim.lr": [0.1, 1e12]}
    rows = {r["variant"]: r for r in compare(tiny_config, store=store)}
    assert rows["1000000000000.0"]["note"] == "2 diverged of 2" and rows["0.1"]["n"] == 2
    statuses = sorted(r.status for r in store.list_runs(group="tiny"))
    assert statuses == ["completed", "completed", "diverged", "diverged"]
    compare(tiny_config, store=store)
    assert len(store.list_runs(group="tiny")) == 4
    from trainlab.report.build import build_report

    assert "1000000000000.0 (2 diverged of 2)" in build_report(["tiny"], store)  # the report keeps the note too


def test_orphaned_running_runs_are_resumed_or_made_again(store, tiny_config):
    """Runs left `running` by a killed comparison do not pile up: a rerun resumes the one with
    a checkpoint and makes again the one killed before its first (deleting the stub)."""
    import socket
    import subprocess
    import sys

    from trainlab.store import artifacts_table, runs_table

    tiny_config["train"] = {"max_steps": 5, "threads": 1}
    tiny_config["compare"] = {"seeds": 2, "optim.lr": [0.1]}
    compare(tiny_config, store=store)
    with_ckpt, stub = sorted(store.list_runs(group="tiny"), key=lambda r: r.seed)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with store.engine.begin() as conn:
        conn.execute(
            runs_table.update().values(status="running", owner=f"{socket.gethostname()}:{dead.pid}", final=None)
        )
        conn.execute(artifacts_table.delete().where(artifacts_table.c.run_id == stub.id))
    rows = compare(tiny_config, store=store)
    records = store.list_runs(group="tiny")
    assert [r["n"] for r in rows] == [2] and len(records) == 2
    assert all(r.status == "completed" for r in records) and sorted(r.seed for r in records) == [0, 1]
    ids = {r.id for r in records}
    assert with_ckpt.id in ids and stub.id not in ids


def test_two_comparisons_at_once_make_each_run_once(store, tiny_config):
    """Two comparisons of one config on one store (threads here; processes in
    tests/test_concurrency.py): each (variant, seed) is made once, by whichever holds its lease."""
    import threading
    from collections import Counter

    from trainlab.compare import summarize_plan
    from trainlab.store import Store

    tiny_config["train"] = {"max_steps": 5, "threads": 1}
    tiny_config["compare"] = {"seeds": 3, "optim.lr": [0.05, 0.1]}
    cfg = load_config(tiny_config)
    start, errors = threading.Barrier(2), []

    def one_comparison():
        try:
            start.wait()
            run_comparison(cfg, store=Store(store.url), quiet=True, poll_seconds=0.05)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=one_comparison) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    made = Counter((r.name, r.seed) for r in store.list_runs(group="tiny"))
    assert len(made) == 6 and set(made.values()) == {1}
    assert [r["n"] for r in summarize_plan(cfg, store)] == [3, 3]


def test_ctrl_c_stops_the_comparison_and_a_rerun_resumes_it(store, tiny_config, monkeypatch):
    """Ctrl-C during a run: that run saves its checkpoint and ends ``interrupted`` (the Trainer
    catches the KeyboardInterrupt), and the comparison starts no other run but raises it again;
    the same comparison run again resumes the interrupted run and makes the rest."""
    from trainlab.train.trainer import Trainer

    tiny_config["train"].update(epochs=2, checkpoint_seconds=0)
    tiny_config["compare"] = {"seeds": 2, "optim.lr": [0.05, 0.1]}
    steps = []
    real_step = Trainer._train_step

    def step_then_ctrl_c(self, group):
        steps.append(self.run_id)
        if len(steps) == 20:  # in the second run (the tiny config makes 16 steps a run)
            raise KeyboardInterrupt
        return real_step(self, group)

    monkeypatch.setattr(Trainer, "_train_step", step_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt, match="run the same command again to continue"):
        run_comparison(load_config(tiny_config), store=store, quiet=True, vectorize="off")
    records = store.list_runs(group="tiny")
    assert sorted(r.status for r in records) == ["completed", "interrupted"]  # no third run started
    interrupted = next(r.id for r in records if r.status == "interrupted")
    monkeypatch.setattr(Trainer, "_train_step", real_step)
    run_comparison(load_config(tiny_config), store=store, quiet=True, vectorize="off")
    records = store.list_runs(group="tiny")
    assert len(records) == 4 and {r.status for r in records} == {"completed"}
    assert store.get_run(interrupted).status == "completed"  # resumed, not made again


def test_an_interrupted_population_whose_member_was_made_alone_is_made_again(store, tiny_config, monkeypatch):
    """Ctrl-C in a population; on the rerun with --jobs 2 the population is split, and a
    worker that makes one member alone deletes its stub (no checkpoint of its own): the worker
    holding the other members then cannot resume the population as a whole and makes them
    again (it once stopped the rerun with "no run '…' in store")."""
    from trainlab.compare import _make_run
    from trainlab.train.population import Population

    tiny_config["compare"] = {"seeds": 3, "optim.lr": [0.1]}
    cfg = load_config(tiny_config)
    real_step, calls = Population._train_step, []

    def step_then_ctrl_c(self, xb, yb):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_step(self, xb, yb)

    monkeypatch.setattr(Population, "_train_step", step_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        run_comparison(cfg, store=store, quiet=True)
    monkeypatch.setattr(Population, "_train_step", real_step)
    first = {r.seed: r.id for r in store.list_runs(group="tiny")}
    assert len(first) == 3 and {r.status for r in store.list_runs(group="tiny")} == {"interrupted"}
    member = next(c for _, c in plan(cfg) if c.seed == 1)
    assert _make_run(member.to_dict(), store.url, "tiny", 1) == "completed"  # the other worker
    run_comparison(cfg, store=store, quiet=True)
    records = store.list_runs(group="tiny")
    assert sorted(r.seed for r in records) == [0, 1, 2] and {r.status for r in records} == {"completed"}
    assert first[1] not in {r.id for r in records}  # made again, its stub gone
