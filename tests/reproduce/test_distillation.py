"""distillation: teacher and students wired through the store, and the figures the check used."""

import numpy as np
import pytest

from trainlab.models import count_parameters
from trainlab.reproduce import run_experiment
from trainlab.reproduce.distillation import MARGIN, config
from trainlab.store import Store
from trainlab.train import setup


def test_student_is_smaller_than_the_teacher():
    teacher = count_parameters(setup(config("teacher", 0, quick=True)).model)
    student = count_parameters(setup(config("student (labels)", 0, quick=True)).model)
    # CNN 1·25·5+25 + 2·(25·25·5+25) + 125·10+10; MLP 40·32+32 + 32·32+32 + 32·10+10
    assert (teacher, student) == (7710, 2698)


def test_both_students_share_everything_but_the_teacher():
    labels = config("student (labels)", 1, quick=False)
    distilled = config("student (distilled)", 1, quick=False, teacher_run="abc")
    assert distilled.pop("distill") == {"teacher": "abc", "temperature": 4.0, "alpha": 0.9}
    assert {k: v for k, v in distilled.items() if k != "name"} == {k: v for k, v in labels.items() if k != "name"}


def test_quick_run(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("distillation", quick=True, store=store, log=lambda _: None)
    records = store.list_runs(group="reproduce/distillation/quick")
    assert len(records) == 3 * seeds and all(r.status == "completed" for r in records)
    by_name = {}
    for r in records:
        by_name.setdefault(r.name, []).append(r)
    # each distilled student learned from the teacher of its own seed
    teachers = {r.seed: r.id for r in by_name["distillation/teacher"]}
    for r in by_name["distillation/student (distilled)"]:
        assert r.config["distill"]["teacher"] == teachers[r.seed]
    f = outcome.figures
    for role, runs in by_name.items():
        assert sorted(f["test_acc"][role.split("/", 1)[1]]) == pytest.approx(sorted(r.final["test_acc"] for r in runs))
    check = f["check"]
    assert check["diff"] == pytest.approx(
        np.mean(f["test_acc"]["student (distilled)"]) - np.mean(f["test_acc"]["student (labels)"])
    )
    assert outcome.holds == check["holds"] == (check["ci"][0] > MARGIN)
    assert all(svg.startswith("<svg") for _, svg in outcome.plots)
