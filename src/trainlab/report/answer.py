"""The sentence a report leads with: which variant is best, by how much, and whether that is more than seed noise.

For the best and the runner-up variant (by the mean of the comparison's final metric over
seeds) the margin is the difference of the two means, with Welch's t interval of that
difference (Welch 1947; unequal variances, Satterthwaite's degrees of freedom)::

    d = x̄_best − x̄_runner-up
    se = √(s₁²/n₁ + s₂²/n₂)
    ν = se⁴ / ((s₁²/n₁)² / (n₁ − 1) + (s₂²/n₂)² / (n₂ − 1))
    d ± t_{0.975, ν} · se

The difference is called significant (at 5%, two-sided) when the interval excludes 0 — the
same decision as Welch's t-test. It needs two seeds per variant; with fewer the sentence says
so instead. A t interval rather than a bootstrap: with 3 seeds a percentile bootstrap can
never be wider than the values' range and claims significance too easily.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trainlab.stats import Difference, welch_interval

__all__ = ["Difference", "comparison_sentence", "welch_interval"]


def _f(v: float) -> str:
    return f"{v:.4g}"


def comparison_sentence(rows: Sequence[Mapping[str, Any]]) -> str:
    """The answer for a comparison's summary rows (:func:`trainlab.compare.summarize`, best first)."""
    metric = rows[0]["metric"]
    best = rows[0]
    if len(rows) == 1:
        mean = _f(best["final_mean"])
        return f"{best['variant']}: final {metric} {mean} (mean over {best['n']} seeds); nothing to compare it with."
    second = rows[1]
    diff = welch_interval(
        best["final_mean"], best["final_std"], best["n"], second["final_mean"], second["final_std"], second["n"]
    )
    head = (
        f"{best['variant']} is best of {len(rows)} variants on final {metric}: {_f(best['final_mean'])} "
        f"vs {_f(second['final_mean'])} for the runner-up {second['variant']} "
        f"(means over {best['n']} and {second['n']} seeds)"
    )
    if diff is None:
        return f"{head}; with one seed the difference cannot be told from seed noise (run more seeds)."
    verdict = (
        "significant at 5%: the interval excludes 0"
        if diff.significant
        else "not significant at 5%: the interval includes 0"
    )
    return (
        f"{head}; difference {diff.estimate:+.4g}, 95% CI [{diff.low:+.4g}, {diff.high:+.4g}] "
        f"(Welch's t interval of the difference of means) — {verdict}."
    )


def run_sentence(record: Any) -> str:
    """The answer for a single run: its status and final metrics."""
    f = record.final
    shown = [
        f"{k} {_f(f[k])}"
        for k in ("val_acc", "val_loss", "test_acc", "test_loss")
        if isinstance(f.get(k), (int, float))
    ]
    best = [f"best {k[5:]} {_f(f[k])}" for k in ("best_val_acc", "best_val_loss") if isinstance(f.get(k), (int, float))]
    step = f" at step {f['step']}" if f.get("step") is not None else ""
    text = f"Run {record.id} ({record.name}) {record.status}{step}"
    if shown:
        text += ": " + ", ".join(shown)
    if best:
        text += " (" + ", ".join(best) + ")"
    return text + "."


def study_sentence(study: Any) -> str:
    """The answer for a study: the best trial, its value and parameters, out of how many trials."""
    trials = study.trials
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    tally = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    best = study.best_trial
    metric = getattr(study, "metric", None) or "objective"
    if best is None:
        return f"Study {study.name}: no complete trial yet ({tally or 'no trials'})."
    params = ", ".join(f"{k}={_f(v) if isinstance(v, float) else v}" for k, v in best.params.items())
    return (
        f"Study {study.name}: best {metric} {_f(best.value)} ({study.direction}) at trial {best.number} "
        f"with {params}, of {len(trials)} trials ({tally})."
    )
