import numpy as np
import pytest
from scipy import stats

from trainlab.compare import bootstrap_ci, compare, parse_compare, plan, run_comparison, steps_to_target
from trainlab.errors import ConfigError
from trainlab.train import load_config


def test_parse_lists_product_and_named_variants():
    variants, seeds = parse_compare({"seeds": 2, "optim": {"name": ["sgd", "adam"]}, "variants": {"nest": {"optim": {"nesterov": True, "momentum": 0.9}}}})
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
    ref = stats.bootstrap((x,), np.mean, confidence_level=0.95, n_resamples=20000, method="percentile", random_state=3).confidence_interval
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
        hits = [steps_to_target(*store.metrics(rec.id, ["val_acc"])["val_acc"], 0.15, "max") for rec in records if rec.name == f"tiny/{r['variant']}"]
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
