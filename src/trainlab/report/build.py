"""The run report: runs, comparisons and studies from the store, as one self-contained HTML file.

``trainlab report TARGET... -o report.html`` — each TARGET is a run id (or a unique prefix), a
study name, or a comparison name (the ``group`` of its runs), tried in that order. The page
leads with the answer, then the evidence:

* Answer — one sentence per comparison, run or study (:mod:`trainlab.report.answer`): the best
  variant, its margin over the runner-up with Welch's 95% interval and whether it is significant.
* Comparison — per variant mean ± std and 95% bootstrap CI (``trainlab.compare.summarize``).
* Configs side by side — one column per variant, the keys that differ highlighted and first.
* Curves — training/validation loss and accuracy and the learning rate against step; per
  variant the mean over seeds with a 95% t-interval band (:mod:`trainlab.report.bands`); beyond
  five variants small multiples, one panel per variant with the best drawn faintly in each.
* Per-layer statistics — heatmaps (layer × step) of activation std and gradient norm from
  ``[diagnose] stats_every`` (:mod:`trainlab.diagnose.stats`), first seed of each variant.
* LR finder — runs written by ``trainlab lr-find`` (metrics ``lr_find/*``).
* Sharpness — runs measured by ``trainlab diagnose RUN --sharpness`` (metrics ``sharpness/*``).
* Study — best so far (pruned trials marked), intermediate values with the rungs, parameter
  importances, slices, parallel coordinates (:mod:`trainlab.report.study`).
* Runs — every run's status, steps, final and best metrics, wall time, message (folded).

Runs of one *variant* are runs with the same name and the same config apart from the seed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainlab.credentials import display_url
from trainlab.errors import ConfigError
from trainlab.report import answer as A
from trainlab.report import html as H
from trainlab.report import plots as P
from trainlab.report.study import study_section
from trainlab.store import RunRecord, Store

Curve = tuple[np.ndarray, np.ndarray]

CURVES = (
    ("train_loss", "training loss"),
    ("val_loss", "validation loss"),
    ("train_acc", "training accuracy"),
    ("val_acc", "validation accuracy"),
    ("lr", "learning rate"),
)
LAYER_HEATMAPS = (("act_std", "activation std", False), ("grad_norm", "gradient norm", True))
SHARPNESS = (
    ("hessian_top", "Hessian top eigenvalue"),
    ("hessian_trace", "Hessian trace (Hutchinson)"),
    ("epsilon_sharpness", "ε-sharpness (%)"),
)


@dataclass
class RunData:
    record: RunRecord
    metrics: dict[str, Curve]

    def curve(self, key: str) -> Curve | None:
        if key == "lr":  # the per-step lr the trainer logs beats the one logged at evaluations
            return self.metrics.get("train_lr") or self.metrics.get("lr")
        return self.metrics.get(key)


@dataclass
class Variant:
    label: str
    runs: list[RunData] = field(default_factory=list)

    @property
    def config(self) -> dict[str, Any]:
        return {k: v for k, v in self.runs[0].record.config.items() if k != "seed"}


@dataclass
class Targets:
    runs: list[RunRecord] = field(default_factory=list)
    comparisons: list[str] = field(default_factory=list)
    studies: list[Any] = field(default_factory=list)


def _load_study(name: str, store: Store) -> Any | None:
    try:
        from trainlab.tune import Study
    except ImportError:  # the tune package is optional for a report
        return None
    try:
        return Study.load(name, storage=store.url)
    except ConfigError:
        return None


def resolve_targets(targets: Sequence[str], store: Store) -> Targets:
    """Each target as a run id, else a study, else a comparison group; unknown ones are an error."""
    if not targets:
        raise ConfigError("give at least one TARGET: a run id, a study name or a comparison name")
    out = Targets()
    seen: set[str] = set()

    def add(records: Sequence[RunRecord]) -> None:
        for r in records:
            if r.id not in seen:
                seen.add(r.id)
                out.runs.append(r)

    for target in targets:
        try:
            add([store.get_run(target)])
            continue
        except ConfigError:
            pass
        study = _load_study(target, store)
        if study is not None:
            out.studies.append(study)
            continue
        group = store.list_runs(group=target)
        if group:
            out.comparisons.append(target)
            add(group)
            continue
        raise ConfigError(
            f"'{target}' is neither a run id, a study nor a comparison in store {display_url(store.url)} "
            "(list runs with `trainlab runs`)"
        )
    return out


def group_variants(runs: Sequence[RunData]) -> list[Variant]:
    """Runs with the same name and config (apart from seed) form one variant, in first-seen order
    (labelled as in the comparison table: :func:`trainlab.compare.group_by_variant`)."""
    from trainlab.compare import group_by_variant

    by_record = {id(run.record): run for run in runs}
    groups = group_by_variant([run.record for run in runs], lambda r: r.name)
    return [Variant(label, [by_record[id(r)] for r in records]) for label, records in groups.items()]


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _cell(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, dict, bool)) or value is None else str(value)


# -- sections ---------------------------------------------------------------------------------


SMALL_MULTIPLES_ABOVE = 5  # more variants than this: one panel each instead of one crowded plot


def runs_section(runs: Sequence[RunData]) -> str:
    headers = [
        "run",
        "name",
        "seed",
        "status",
        "step",
        "val_loss",
        "val_acc",
        "best_val_acc",
        "test_acc",
        "seconds",
        "message",
    ]
    rows = []
    for run in runs:
        r, f = run.record, run.record.final
        rows.append(
            [
                r.id,
                r.name,
                r.seed,
                r.status,
                f.get("step"),
                f.get("val_loss"),
                f.get("val_acc"),
                f.get("best_val_acc"),
                f.get("test_acc"),
                f.get("seconds"),
                r.message or "",
            ]
        )
    return H.section("Runs", H.details(f"all {len(rows)} runs", H.table(rows, headers)), anchor="runs")


def _summary(name: str, store: Store) -> list[dict[str, Any]] | str:
    """The comparison's summary rows (best first), or the reason there are none."""
    from trainlab.compare import summarize

    try:
        return summarize(store, name)
    except ConfigError as err:
        return str(err)


def answer_section(found: Targets, summaries: dict[str, list[dict[str, Any]] | str]) -> str:
    """The answer first: one sentence per comparison, lone run and study."""
    sentences = [
        f"{name}: {A.comparison_sentence(rows)}" if isinstance(rows, list) else f"{name}: {rows}"
        for name, rows in summaries.items()
    ]
    grouped = {r.group for r in found.runs if r.group in summaries}
    lone = [r for r in found.runs if r.group not in grouped]
    if len(lone) <= 3:
        sentences += [A.run_sentence(r) for r in lone]
    else:
        sentences.append(
            f"{len(lone)} runs outside any comparison; their final metrics are in the runs table at the end."
        )
    sentences += [A.study_sentence(s) for s in found.studies]
    body = "".join(f'<p class="answer">{H.escape(s)}</p>' for s in sentences)
    return H.section("Answer", H.Markup(body), anchor="answer")


def comparison_section(name: str, rows: list[dict[str, Any]] | str) -> str:
    if isinstance(rows, str):
        return H.section(f"Comparison {name}", rows, anchor=f"comparison-{name}")
    metric = rows[0]["metric"]
    body = []
    for r in rows:
        cells = [r["variant"] + (f" ({r['note']})" if r.get("note") else ""), r["n"]]  # e.g. "2 diverged of 3"
        for label in ("final", "best"):
            low, high = r[f"{label}_ci"]
            cells += [f"{r[f'{label}_mean']:.4f} ± {r[f'{label}_std']:.4f}", f"[{low:.4f}, {high:.4f}]"]
        if "reached" in r:
            steps = r["steps_to_target"]
            cells += ["–" if steps is None else f"{steps:.0f}", r["reached"]]
        body.append([*cells, r["seconds"]])
    headers = ["variant", "seeds", f"final {metric}", "95% CI", f"best {metric}", "95% CI"]
    note = "Mean ± standard deviation over seeds; 95% percentile-bootstrap interval of the mean; sorted best first."
    if "reached" in rows[0]:
        headers += [f"steps to {metric} {rows[0]['target']:g}", "reached"]
        note += " Steps to target: the mean over the seeds that reached it, at the first evaluation that did."
    headers.append("seconds")
    return H.section(f"Comparison {name}", H.table(body, headers), note, anchor=f"comparison-{name}")


def configs_section(variants: Sequence[Variant]) -> str:
    flat = [_flatten(v.config) for v in variants]
    keys = sorted(set().union(*flat))
    differ = [k for k in keys if len({_cell(f[k]) if k in f else "\0missing" for f in flat}) > 1]
    same = [k for k in keys if k not in differ]
    headers = ["key", *(v.label for v in variants)]

    def rows(ks: Sequence[str]) -> list[list[Any]]:
        return [[k, *(_cell(f[k]) if k in f else "–" for f in flat)] for k in ks]

    if len(variants) == 1:
        return H.section("Config", H.details(f"{len(keys)} keys", H.table(rows(keys), headers)), anchor="configs")
    parts: list[str] = [H.paragraph(f"{len(differ)} of {len(keys)} keys differ (highlighted); seeds are not shown.")]
    if differ:
        parts.append(H.table(rows(differ), headers, highlight=range(len(differ))))
    if same:
        parts.append(H.details(f"the {len(same)} keys all variants share", H.table(rows(same), headers)))
    return H.section("Configs side by side", *parts, anchor="configs")


def curves_caption(label: str, series: dict[str, list[Curve]], multiples: bool = False, best: str | None = None) -> str:
    """A caption that says what is drawn: one run's curve, or means over seeds with their band."""
    sizes = {len(c) for c in series.values()}
    if sizes == {1}:
        what = "one run per line" if len(series) > 1 else "one run"
    else:
        what = "mean over each variant's seeds (n in the legend), band: 95% t-interval where n ≥ 2"
    text = f"{label} against optimizer step; {what}"
    if multiples:
        text += f"; one panel per variant, grey: the best variant ({best})"
    return text


def curves_section(variants: Sequence[Variant], best: str | None = None) -> str | None:
    """One figure per curve key; beyond ``SMALL_MULTIPLES_ABOVE`` variants small multiples, with
    ``best`` (the comparison's best variant, else the first) drawn faintly in each panel."""
    figures = []
    for key, label in CURVES:
        series = {
            v.label: [c for c in (run.curve(key) for run in v.runs) if c is not None and len(c[0])] for v in variants
        }
        series = {k: c for k, c in series.items() if c}
        if not series:
            continue
        log_y = key == "lr" and _spans_decades(series)
        if len(series) > SMALL_MULTIPLES_ABOVE:
            ref = best if best in series else next(iter(series))
            fig = P.small_multiples_figure(series, best=ref, title=label, ylabel=label, log_y=log_y)
            figures.append(H.figure(P.figure_to_svg(fig), curves_caption(label, series, True, ref)))
        else:
            fig = P.band_figure(series, title=label, ylabel=label, log_y=log_y)
            figures.append(H.figure(P.figure_to_svg(fig), curves_caption(label, series)))
    if not figures:
        return None
    return H.section("Curves", H.Markup(f'<div class="grid">{"".join(figures)}</div>'), anchor="curves")


def _spans_decades(series: dict[str, list[Curve]]) -> bool:
    """All values positive and max / min > 10: a log axis shows them (learning rates of 1e-3 and 1)."""
    values = np.concatenate([c[1] for curves in series.values() for c in curves])
    return bool(values.size and values.min() > 0 and values.max() / values.min() > 10)


def _layer_matrix(metrics: dict[str, Curve], stat: str) -> tuple[np.ndarray, list[str], np.ndarray] | None:
    from trainlab.diagnose.stats import PREFIX, layer_names

    layers = layer_names(metrics, stat)
    if not layers:
        return None
    steps = np.unique(np.concatenate([metrics[f"{PREFIX}{name}/{stat}"][0] for name in layers]))
    matrix = np.full((len(layers), len(steps)), np.nan)
    for i, name in enumerate(layers):
        s, v = metrics[f"{PREFIX}{name}/{stat}"]
        matrix[i, np.searchsorted(steps, s)] = v
    return steps, layers, matrix


def layers_section(variants: Sequence[Variant]) -> str | None:
    parts = []
    for variant in variants:
        run = next((r for r in variant.runs if any(k.startswith("layer/") for k in r.metrics)), None)
        if run is None:
            continue
        figs = []
        for stat, label, log in LAYER_HEATMAPS:
            data = _layer_matrix(run.metrics, stat)
            if data is not None:
                fig = P.heatmap_figure(*data, title=f"{variant.label}: {label}", log=log)
                figs.append(
                    H.figure(
                        P.figure_to_svg(fig),
                        f"{label} per layer (rows, input first) over steps; run {run.record.id}, seed {run.record.seed}"
                        + (", log colour scale" if log else ""),
                    )
                )
        if figs:
            parts.append(H.Markup(f'<h3>{H.escape(variant.label)}</h3><div class="grid">{"".join(figs)}</div>'))
    if not parts:
        return None
    note = "Vanishing gradients show as a fade from the output rows to the input rows; saturation or dying as an activation std collapsing."
    return H.section("Per-layer statistics", note, *parts, anchor="layers")


def lr_find_section(runs: Sequence[RunData]) -> str | None:
    from trainlab.diagnose.lr_finder import suggest_lr

    parts = []
    for run in runs:
        if "lr_find/loss" not in run.metrics:
            continue
        lrs = run.metrics["lr_find/lr"][1]
        losses = run.metrics["lr_find/loss"][1]
        smoothed = run.metrics.get("lr_find/smoothed", (None, losses))[1]
        suggested = run.record.final.get("suggested_lr") or suggest_lr(lrs, smoothed)[0]
        fig = P.lr_find_figure(lrs, losses, smoothed, float(suggested), title=f"{run.record.name} ({run.record.id})")
        parts.append(
            H.figure(
                P.figure_to_svg(fig),
                f"exponential LR range test; suggested lr {float(suggested):.3g} (steepest descent of the smoothed loss)",
            )
        )
    return H.section("LR finder", *parts, anchor="lr-finder") if parts else None


def _last(metrics: dict[str, Curve], key: str) -> float | None:
    curve = metrics.get(key)
    return float(curve[1][-1]) if curve is not None and len(curve[1]) else None


def sharpness_section(variants: Sequence[Variant]) -> str | None:
    rows: list[list[Any]] = []
    values: dict[str, dict[str, list[float | None]]] = {}
    for variant in variants:
        for run in variant.runs:
            m = run.metrics
            if not any(k.startswith("sharpness/") for k in m):
                continue
            got = {key: _last(m, f"sharpness/{key}") for key, _ in SHARPNESS}
            rows.append(
                [
                    variant.label,
                    run.record.id,
                    run.record.seed,
                    got["hessian_top"],
                    got["hessian_trace"],
                    _last(m, "sharpness/hessian_trace_stderr"),
                    got["epsilon_sharpness"],
                    _last(m, "sharpness/epsilon"),
                    _last(m, "sharpness/loss"),
                ]
            )
            for key, _ in SHARPNESS:
                values.setdefault(key, {}).setdefault(variant.label, []).append(got[key])
    if not rows:
        return None
    headers = ["variant", "run", "seed", "λ_max(H)", "tr(H)", "± s.e.", "ε-sharpness %", "ε", "loss"]
    figs = [
        H.figure(
            P.figure_to_svg(P.points_figure(values[key], title=label, ylabel=label)),
            f"{label}: one dot per run, bar = mean",
        )
        for key, label in SHARPNESS
        if key in values
    ]
    note = "Flat minima generalize better (notes 000 §7.1; Keskar et al. 2017): smaller values are flatter."
    return H.section(
        "Sharpness",
        note,
        H.table(rows, headers),
        H.Markup(f'<div class="grid">{"".join(figs)}</div>'),
        anchor="sharpness",
    )


# -- the page -----------------------------------------------------------------------------------


def build_report(targets: Sequence[str], store: Store | None = None, *, title: str | None = None) -> str:
    """The HTML text of the report on ``targets`` (run ids, study names, comparison names)."""
    store = store if isinstance(store, Store) else Store(store)
    found = resolve_targets(targets, store)
    runs = [RunData(r, store.metrics(r.id)) for r in found.runs]
    summaries = {name: _summary(name, store) for name in found.comparisons}
    sections: list[str] = [answer_section(found, summaries)]
    if runs:
        variants = group_variants(runs)
        sections += [comparison_section(name, rows) for name, rows in summaries.items()]
        sections.append(configs_section(variants))
        best = next((rows[0]["variant"] for rows in summaries.values() if isinstance(rows, list)), None)
        if best is not None:  # the comparison's variant label as the report labels it (name/variant)
            best = next((v.label for v in variants if v.label.split("/", 1)[-1] == best), best)
        sections += [
            s
            for s in (
                curves_section(variants, best),
                layers_section(variants),
                lr_find_section(runs),
                sharpness_section(variants),
            )
            if s
        ]
    sections += [study_section(study) for study in found.studies]
    if runs:
        sections.append(runs_section(runs))
    import trainlab

    title = title or f"trainlab report: {', '.join(targets)}"
    counts = f"{len(runs)} runs, {len(found.comparisons)} comparisons, {len(found.studies)} studies"
    subtitle = f"{counts} · store {display_url(store.url)} · trainlab {trainlab.__version__}"
    return H.page(title, sections, subtitle=subtitle)


def write_report(
    targets: Sequence[str],
    output: str | os.PathLike = "report.html",
    store: Store | None = None,
    *,
    title: str | None = None,
) -> Path:
    """Build the report and write it atomically to ``output``; returns the path."""
    return H.write_html(output, build_report(targets, store, title=title))
