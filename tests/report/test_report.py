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
    assert next(r.id for r in found.runs) == lone and len(found.runs) == 7  # no duplicates


def test_figures_are_deterministic_and_inline():
    curves = {"a": [(np.arange(5), np.arange(5.0)), (np.arange(5), np.arange(5.0) + 1)]}
    one, two = (figure_to_svg(band_figure(curves, title="t", ylabel="y")) for _ in range(2))
    assert one == two and one.startswith("<svg") and "<?xml" not in one
    assert 'id="figure_1"' not in one  # group ids that would clash between inline figures


def test_study_report_with_a_real_study(store):
    from trainlab.tune import Categorical, Float, minimize

    space = {"lr": Float(1e-4, 1.0, log=True), "<opt>": Categorical(["sgd", "adam"])}
    minimize(
        lambda p: (np.log10(p["lr"]) + 2) ** 2 + (p["<opt>"] == "sgd"),
        space,
        n_trials=8,
        storage=store.url,
        name="tiny<study>",
        seed=0,
    )
    html = build_report(["tiny<study>"], store)
    study = _section(html, "study-tiny&lt;study&gt;")
    assert study.count("<svg") == 4  # best so far, importances, slices, parallel coordinates
    for caption in ("permutation importance", "one dot per complete trial", "one line per complete trial"):
        assert caption in study
    assert "&lt;opt&gt;" in study and "8 complete" in study
    assert "<study>" not in html and "<opt>" not in html


def test_study_report_from_a_stub_object():
    # the documented attributes only: name, direction, trials (number, state, value, params, run_id), best_trial
    trials = [
        SimpleNamespace(number=i, state="complete" if i != 2 else "pruned", value=v, params={"x": x}, run_id=None)
        for i, (v, x) in enumerate([(3.0, 0.1), (1.0, 0.2), (None, 0.3), (2.0, 0.4)])
    ]
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


def _summary_row(variant, values):
    values = np.asarray(values)
    return {
        "variant": variant,
        "n": len(values),
        "metric": "val_acc",
        "final_mean": values.mean(),
        "final_std": values.std(ddof=1) if len(values) > 1 else 0.0,  # as compare records one seed
    }


def test_answer_sentence_matches_a_hand_computation():
    from scipy import stats

    from trainlab.report.answer import comparison_sentence, welch_interval

    a, b = [0.80, 0.82, 0.84], [0.70, 0.71, 0.75]
    # by hand: means 0.82 and 0.72; s² = 0.0004 and 0.0007; se² = 0.0004/3 + 0.0007/3
    se2 = 0.0004 / 3 + 0.0007 / 3
    df = se2**2 / ((0.0004 / 3) ** 2 / 2 + (0.0007 / 3) ** 2 / 2)
    half = stats.t.ppf(0.975, df) * np.sqrt(se2)
    diff = welch_interval(0.82, 0.02, 3, 0.72, np.sqrt(0.0007), 3)
    assert diff.estimate == pytest.approx(0.10) and diff.df == pytest.approx(df)
    assert (diff.low, diff.high) == pytest.approx((0.10 - half, 0.10 + half))
    assert diff.significant == (stats.ttest_ind(a, b, equal_var=False).pvalue < 0.05)
    sentence = comparison_sentence([_summary_row("adam", a), _summary_row("sgd", b)])
    assert sentence == (
        f"adam is best of 2 variants on final val_acc: 0.82 vs 0.72 for the runner-up sgd (means over 3 and 3 seeds); "
        f"difference +0.1, 95% CI [{0.10 - half:+.4g}, {0.10 + half:+.4g}] (Welch's t interval of the difference of means)"
        " — significant at 5%: the interval excludes 0."
    )
    close = comparison_sentence([_summary_row("adam", [0.80, 0.82, 0.84]), _summary_row("sgd", [0.79, 0.81, 0.83])])
    assert close.endswith("not significant at 5%: the interval includes 0.")
    one = comparison_sentence([_summary_row("adam", [0.8]), _summary_row("sgd", [0.7])])
    assert one.endswith("with one seed the difference cannot be told from seed noise (run more seeds).")


def test_report_leads_with_the_answer_and_folds_the_runs(filled_store):
    html = build_report(["cmp", filled_store.ids["lone"]], filled_store)
    anchors = re.findall(r'<section id="([^"]+)">', html)
    assert anchors[0] == "answer" and anchors[1] == "comparison-cmp" and anchors[-1] == "runs"
    answer = _section(html, "answer")
    # both variants: final val_acc 0.81 ± 0.01 over 3 seeds: difference 0, not significant
    assert "on final val_acc: 0.81 vs 0.81" in answer and "not significant at 5%" in answer
    assert f"Run {filled_store.ids['lone']} (lone) completed at step 50: val_acc 0.8, val_loss 0.3" in answer
    assert "<details><summary>all 7 runs</summary>" in _section(html, "runs")


def test_single_run_captions_do_not_claim_seeds(filled_store):
    html = build_report([filled_store.ids["lone"]], filled_store)
    curves = _section(html, "curves")
    assert "mean over" not in curves and "against optimizer step; one run" in curves


def test_many_variants_become_small_multiples(store):
    for v in range(7):
        for seed in range(2):
            add_run(store, f"many/v{v}", seed, lr=0.01 * (v + 1), group="many", steps=20)
    html = build_report(["many"], store)
    curves = _section(html, "curves")
    assert "one panel per variant, grey: the best variant" in curves
    svg = re.findall(r"<svg.*?</svg>", curves, re.S)[0]
    assert svg.count("(best)") == 1 and all(f"many/v{v}" in svg for v in range(7))


def test_legends_sit_outside_the_plot_area():
    curves = {f"variant {i}": [(np.arange(50), np.linspace(2, 0.1 * i, 50))] for i in range(4)}
    fig = band_figure(curves, title="t", ylabel="y")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    legend_box, axes_box = ax.get_legend().get_window_extent(renderer), ax.get_window_extent(renderer)
    assert legend_box.x0 >= axes_box.x1  # entirely right of the axes: it covers no curve


def test_study_report_marks_pruned_trials_and_draws_rungs(store):
    from trainlab.tune import ASHA, Float, Random, Study, TrialPruned

    study = Study(
        "pruned-study",
        {"x": Float(0, 1), "y": Float(0, 1)},
        sampler=Random(),
        pruner=ASHA(min_resource=1, eta=3, max_resource=9),
        storage=store.url,
    )
    for _ in range(12):
        trial = study.ask()
        try:
            for step in range(1, 10):
                trial.report(step, trial.params["x"] + 1.0 / step)
                if trial.should_prune():
                    raise TrialPruned()
            study.tell(trial, trial.params["x"])
        except TrialPruned:
            study.tell(trial, state="pruned")
    html = _section(build_report(["pruned-study"], store), "study-pruned-study")
    n_pruned = sum(t.state == "pruned" for t in study.trials)
    assert n_pruned >= 3 and f"{n_pruned} pruned trials as crosses at their last reported value" in html
    assert "dashed: the pruner&#x27;s rungs" in html
    n_complete = sum(t.state == "complete" for t in study.trials)
    # best so far, intermediate values, slices, parallel coordinates; importance from 5 complete trials
    assert html.count("<svg") == 4 + (n_complete >= 5)
