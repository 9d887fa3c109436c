"""The report over runs, a comparison and a study, from a store of synthetic runs."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

from trainlab.errors import ConfigError
from trainlab.report.build import build_report, resolve_targets, write_report
from trainlab.report.plots import band_figure, figure_to_svg

from .conftest import add_run


def _section(html: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}">(.*?)</section>', html, re.S)
    assert match, f"no section {anchor}"
    return match.group(1)


def test_comparison_report_has_every_part(filled_store):
    html = build_report(["cmp", filled_store.ids["lone"], filled_store.ids["lr_find"]], filled_store)
    for anchor in ("runs", "comparison-cmp", "configs", "curves", "layers", "lr-finder", "sharpness"):
        _section(html, anchor)
    runs = _section(html, "runs")
    assert runs.count("<tr>") == 1 + 6 + 1 + 1  # header, 2 variants × 3 seeds, the lone run, the LR finder
    comparison = _section(html, "comparison-cmp")
    # synthetic final val_acc = 0.8 + 0.01·seed over seeds 0..2: mean 0.81, sample std 0.01
    assert comparison.count("0.8100 ± 0.0100") == 2
    curves = _section(html, "curves")
    assert curves.count("<svg") == 4  # train loss, val loss, val acc, lr (no train_acc logged)
    assert "cmp/sgd (n=3)" in curves and "cmp/adam (n=3)" in curves
    layers = _section(html, "layers")
    assert layers.count("<svg") == 6  # two heatmaps for each of the three variants with layer stats
    assert "blocks.1.layer" in layers
    assert "suggested lr 0.003" in _section(html, "lr-finder")


def test_configs_side_by_side_highlight_the_keys_that_differ(filled_store):
    html = build_report(["cmp", filled_store.ids["lone"]], filled_store)
    configs = _section(html, "configs")
    highlighted = re.findall(r'<tr class="diff"><td>([^<]+)</td>', configs)
    assert highlighted == ["name", "optim.lr", "optim.name"]
    assert "3 of 8 keys differ" in configs
    assert "<details>" in configs  # the shared keys are folded away


def test_user_strings_stay_text(store):
    evil = '<script>alert("x")</script> $\\frac{a}{b}$'
    run_id = add_run(store, evil, 0, layers=True)
    html = build_report([run_id], store, title="<img src=x onerror=alert(1)>")
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html  # in tables
    # in the SVG figures, matplotlib writes the name escaped and literal ($ is not mathtext)
    svg_text = "".join(re.findall(r"<svg.*?</svg>", html, re.S))
    assert "&lt;script&gt;" in svg_text and "$\\frac{a}{b}$" in svg_text


def test_unknown_target_is_a_config_error_naming_it(filled_store):
    with pytest.raises(ConfigError, match="'nope' is neither a run id, a study nor a comparison"):
        build_report(["nope"], filled_store)
    with pytest.raises(ConfigError, match="at least one TARGET"):
        resolve_targets([], filled_store)


def test_targets_resolve_to_runs_groups_and_prefixes(filled_store):
    lone = filled_store.ids["lone"]
    found = resolve_targets([lone[:6], "cmp", lone], filled_store)
    assert found.comparisons == ["cmp"]
    assert [r.id for r in found.runs][0] == lone and len(found.runs) == 7  # no duplicates


def test_figures_are_deterministic_and_inline():
    curves = {"a": [(np.arange(5), np.arange(5.0)), (np.arange(5), np.arange(5.0) + 1)]}
    one, two = (figure_to_svg(band_figure(curves, title="t", ylabel="y")) for _ in range(2))
    assert one == two and one.startswith("<svg") and "<?xml" not in one
    assert 'id="figure_1"' not in one  # group ids that would clash between inline figures


def test_study_report_with_a_real_study(store):
    from trainlab.tune import Categorical, Float, minimize

    space = {"lr": Float(1e-4, 1.0, log=True), "<opt>": Categorical(["sgd", "adam"])}
    minimize(lambda p: (np.log10(p["lr"]) + 2) ** 2 + (p["<opt>"] == "sgd"), space, n_trials=8, storage=store.url, name="tiny<study>", seed=0)
    html = build_report(["tiny<study>"], store)
    study = _section(html, "study-tiny&lt;study&gt;")
    assert study.count("<svg") == 2  # best so far; parameters against the objective
    assert "&lt;opt&gt;" in study and "8 complete" in study
    assert "<study>" not in html and "<opt>" not in html


def test_study_report_from_a_stub_object():
    # the documented attributes only: name, direction, trials (number, state, value, params, run_id), best_trial
    trials = [SimpleNamespace(number=i, state="complete" if i != 2 else "pruned", value=v, params={"x": x}, run_id=None) for i, (v, x) in enumerate([(3.0, 0.1), (1.0, 0.2), (None, 0.3), (2.0, 0.4)])]
    stub = SimpleNamespace(name="stub", direction="minimize", trials=trials, best_trial=trials[1], metric="val_loss")
    from trainlab.report.build import study_section

    html = study_section(stub)
    assert "3 complete, 1 pruned" in html
    assert html.count("<svg") == 2
    best_rows = re.findall(r"<tr><td>best value</td><td>([^<]+)</td>", html)
    assert best_rows == ["1"]


def test_write_report_writes_the_file(filled_store, tmp_path):
    path = write_report([filled_store.ids["lone"]], tmp_path / "r.html", filled_store)
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
