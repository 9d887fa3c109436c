"""Knowledge distillation: a small student learns more from a teacher's soft targets than from labels.

Source: 000 §7.7.6 (标签平滑 → 知识蒸馏: a teacher network's outputs, which rank the wrong
classes by how related they are, as soft targets for a student network); Hinton, Vinyals &
Dean (2015), "Distilling the knowledge in a neural network". The student minimizes

    α · T² · KL(softmax(v / T) ‖ softmax(z / T)) + (1 − α) · CE(z, y)

with z the student's and v the teacher's logits (``trainlab.regularization.distillation_loss``;
α weights the soft term, T² keeps its gradient scale independent of T — Hinton §2).

Set-up on MNIST-1D: the teacher is a CNN (three Conv1d layers of 25 channels, kernel 5,
stride 2; 7.7k parameters) trained on the labels; the student is a small MLP (40 → 32 → 32
→ 10, ReLU; 2.7k parameters, no spatial prior), trained either on the labels alone or
from the teacher (T = 4, α = 0.9) — same data, optimizer (Adam, lr 1e-2, batch 100) and
number of steps. Seed s trains teacher s and both students with seed s.

Runs: the teachers and the label-trained students are one sweep
(:mod:`trainlab.reproduce.sweep`; each model's seeds train as one population); each
distilled student is then a sweep of its own seed, its config naming its teacher's run id
(``distill.teacher``). A rerun finds the teachers by config hash, so their run ids and with
them the students' configs are the same, and nothing is trained again. (One sweep per seed
because a sweep's configurations share one list of seeds, and student s's config differs
per seed by its teacher; distillation runs alone anyway: the population trainer does not
batch it.)

Claim: the distilled student's test accuracy exceeds the label-trained student's by more
than 2 points (95% CI of the difference across seeds).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trainlab.reproduce import Context, Experiment, Outcome, Protocol
from trainlab.reproduce.checks import greater
from trainlab.reproduce.sweep import Runs, sweep

NAME = "distillation"
MARGIN = 0.02  # two points of test accuracy: chosen before running
TEMPERATURE, ALPHA = 4.0, 0.9

TEACHER = {"name": "cnn", "channels": [25, 25, 25], "kernel_size": 5, "stride": 2, "activation": "relu"}
STUDENT = {"name": "mlp", "hidden": [32, 32], "activation": "relu"}
ROLES = ("teacher", "student (labels)", "student (distilled)")


def config(role: str, quick: bool, teacher_run: str | None = None) -> dict[str, Any]:
    """``role``: one of :data:`ROLES` (the distilled student needs ``teacher_run``, the
    teacher's run id); the sweep adds seed and name."""
    cfg: dict[str, Any] = {
        "data": {"name": "mnist1d", "batch_size": 100, **({"subset": 1000} if quick else {})},
        "model": TEACHER if role == "teacher" else STUDENT,
        "optim": {"name": "adam", "lr": 1e-2},
        "train": {"max_steps": 200 if quick else 3000, "threads": 1},  # one thread: tiny models on shared cores
    }
    if teacher_run is not None:
        cfg["distill"] = {"teacher": teacher_run, "temperature": TEMPERATURE, "alpha": ALPHA}
    return cfg


def train(ctx: Context) -> Runs:
    """Teachers and label-trained students over the context's seeds, then for each seed the
    student distilled from that seed's teacher: every role's runs, by seed."""
    teacher, labels, distilled = ROLES
    runs = sweep(ctx, NAME, {teacher: config(teacher, ctx.quick), labels: config(labels, ctx.quick)})
    students = [
        sweep(ctx, NAME, {distilled: config(distilled, ctx.quick, record.id)}, seeds=[seed]).records[distilled][0]
        for seed, record in zip(runs.seeds, runs.records[teacher])
    ]
    return Runs({**runs.records, distilled: students}, runs.seeds, runs.store)


def _run(ctx: Context) -> Outcome:
    runs = train(ctx)
    test_acc = {role: runs.final(role, "test_acc") for role in ROLES}
    train_acc = {role: runs.final(role, "train_acc") for role in ROLES}
    curves = {role: runs.metric(role, "val_acc") for role in ROLES}
    check = greater(
        test_acc["student (distilled)"],
        test_acc["student (labels)"],
        margin=MARGIN,
        what="student test acc, distilled - labels only",
    )
    spread = {role: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for role, v in test_acc.items()}
    rows = [
        [role, f"{np.mean(test_acc[role]):.3f} ± {spread[role]:.3f}", f"{np.mean(train_acc[role]):.3f}"]
        for role in ROLES
    ]
    return Outcome(
        holds=check.holds,
        statement=check.statement,
        figures={
            "temperature": TEMPERATURE,
            "alpha": ALPHA,
            "test_acc": test_acc,
            "train_acc": train_acc,
            "check": check.as_dict(),
        },
        tables=[
            (
                "MNIST-1D accuracy (mean ± std over seeds; train accuracy averaged over the last log window)",
                ["model", "test accuracy", "train accuracy"],
                rows,
            )
        ],
        plots=_plots(test_acc, curves),
    )


def _plots(
    test_acc: dict[str, list[float]], curves: dict[str, list[tuple[np.ndarray, np.ndarray]]]
) -> list[tuple[str, str]]:
    from trainlab.report.plots import band_figure, figure_to_svg, points_figure

    points = points_figure(test_acc, title="Test accuracy per seed", ylabel="test accuracy")
    bands = band_figure(curves, title="Validation accuracy during training", ylabel="val accuracy")
    return [
        ("Teacher, and the student with and without the teacher", figure_to_svg(points)),
        ("Validation accuracy (mean and 95% band over seeds)", figure_to_svg(bands)),
    ]


EXPERIMENT = Experiment(
    name=NAME,
    claim="A small student network trained on a teacher's soft targets generalizes better than the same student trained on the labels alone.",
    source="000 §7.7.6 (标签平滑 → 知识蒸馏); Hinton, Vinyals & Dean 2015",
    run=_run,
    quote=(
        "000 §7.7.6: \"更好的办法是按照类别相关性赋予其他标签不同概率，如教师网络（Teacher Network）的输出作为软目标训练学生网络（Student Network），即知识蒸馏\". Hinton, Vinyals & Dean (2015) §3 (paraphrased): a small MNIST net trained on a large net's soft targets at a high temperature makes far fewer test errors than the same net trained on the labels (their §3: 146 test errors for the small net on the labels, 74 when it also matches the large net's soft targets at T = 20)."
    ),
    protocol=(
        Protocol(
            "teacher",
            "CNN, 3 × Conv1d 25 channels (7.7k parameters)",
            "2 × 1200 ReLU units with dropout (MNIST)",
            "a spatial prior the student lacks, at CPU scale",
        ),
        Protocol("student", "MLP 40 → 32 → 32 → 10 (2.7k parameters)", "2 × 800 units, no regularization", "CPU scale"),
        Protocol(
            "loss",
            "α T² KL + (1 − α) CE, T = 4, α = 0.9",
            "soft targets at T = 20 plus a small weight on the hard targets",
            "a T from their range; fixed before running",
        ),
        Protocol("metric", "student test accuracy, distilled − labels > 2 points", "test errors of the student"),
        Protocol("runs", "3 seeds", "single runs"),
    ),
)
