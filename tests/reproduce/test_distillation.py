"""distillation: teacher and students wired through the store, and the figures the check used."""

import numpy as np
import pytest

from trainlab.models import count_parameters
from trainlab.reproduce import run_experiment
from trainlab.reproduce.distillation import MARGIN, config
from trainlab.store import Store
from trainlab.train import setup


def test_student_is_smaller_than_the_teacher():
    teacher = count_parameters(setup(config("teacher", quick=True)).model)
    student = count_parameters(setup(config("student (labels)", quick=True)).model)
    # CNN 1·25·5+25 + 2·(25·25·5+25) + 125·10+10; MLP 40·32+32 + 32·32+32 + 32·10+10
    assert (teacher, student) == (7710, 2698)


def test_both_students_share_everything_but_the_teacher():
    labels = config("student (labels)", quick=False)
    distilled = config("student (distilled)", quick=False, teacher_run="abc")
    assert distilled.pop("distill") == {"teacher": "abc", "temperature": 4.0, "alpha": 0.9}
    assert distilled == labels


def test_quick_run(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("distillation", quick=True, store=store, log=lambda _: None)
    group = "reproduce/distillation/quick"
    records = store.list_runs(group=group)
    assert len(records) == 3 * seeds and all(r.status == "completed" for r in records)
    by_role = {}
    for r in records:
        by_role.setdefault(r.name.removeprefix(f"{group}/"), []).append(r)
    assert set(by_role) == {"teacher", "student (labels)", "student (distilled)"}
    # each distilled student learned from the teacher of its own seed
    teachers = {r.seed: r.id for r in by_role["teacher"]}
    assert sorted(teachers) == list(range(seeds))
    for r in by_role["student (distilled)"]:
        assert r.config["distill"]["teacher"] == teachers[r.seed]
    f = outcome.figures
    for role, runs in by_role.items():
        assert f["test_acc"][role] == pytest.approx([r.final["test_acc"] for r in sorted(runs, key=lambda r: r.seed)])
    check = f["check"]
    assert check["diff"] == pytest.approx(
        np.mean(f["test_acc"]["student (distilled)"]) - np.mean(f["test_acc"]["student (labels)"])
    )
    assert outcome.holds == check["holds"] == (check["ci"][0] > MARGIN)
    assert all(svg.startswith("<svg") for _, svg in outcome.plots)
    # a rerun finds the teachers by config hash, so the students' configs (naming them) match too: nothing is trained again
    _, again, _ = run_experiment("distillation", quick=True, store=store, log=lambda _: None)
    assert len(store.list_runs(group=group)) == 3 * seeds
    assert again.figures["test_acc"] == f["test_acc"]
