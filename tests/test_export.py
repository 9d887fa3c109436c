"""Exports: runs, groups and studies to csv / json / parquet, `runs --json/--csv`, studies into Optuna."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from report.conftest import add_run
from trainlab.cli import main
from trainlab.errors import ConfigError
from trainlab.export import export, trial_rows
from trainlab.tune import Categorical, Float, Int, Random, Study


@pytest.fixture
def filled(store):
    ids = [add_run(store, "cmp/sgd", seed, group="cmp", steps=20) for seed in range(2)]
    space = {
        "lr": Float(1e-3, 1.0, log=True),
        "opt": Categorical(["sgd", "adam"]),
        "hidden": Categorical([[8], [16, 16]]),
        "k": Int(1, 3, when={"opt": "sgd"}),
    }
    study = Study("st", space, sampler=Random(), storage=store.url)
    for i in range(6):
        t = study.ask()
        t.report(1, 1.0 + i)
        t.report(2, 0.5 + i)
        study.tell(
            t, 0.4 + i if i != 4 else None, state="complete" if i not in (2, 4) else ("pruned" if i == 2 else "failed")
        )
    study.enqueue({"lr": 0.1, "opt": "adam", "hidden": [8]})
    store.ids = ids
    return store, study


def test_run_and_group_csv_hold_every_logged_row(filled, tmp_path):
    store, _ = filled
    rows = list(csv.DictReader(io.StringIO(export("cmp", "csv", store=store))))
    for run_id in store.ids:
        mine = [r for r in rows if r["run_id"] == run_id]
        logged = store.metrics(run_id)
        assert len(mine) == sum(
            len(s) for s, _ in logged.values()
        )  # 20 train_loss + 20 train_lr + 2 val_loss + 2 val_acc
        got = sorted((int(r["step"]), float(r["value"])) for r in mine if r["key"] == "train_loss")
        steps, values = logged["train_loss"]
        assert got == list(zip(steps.tolist(), values.tolist()))
    assert {r["group"] for r in rows} == {"cmp"} and rows[0].keys() == {
        "run_id",
        "name",
        "group",
        "seed",
        "status",
        "step",
        "key",
        "value",
    }
    one = export(store.ids[0][:6], "csv", tmp_path / "one.csv", store=store)
    assert one.read_text() == to_text(store, store.ids[0])


def to_text(store, run_id):
    return export(run_id, "csv", store=store)


def test_run_json_has_config_final_and_metrics(filled):
    store, _ = filled
    doc = json.loads(export(store.ids[1], "json", store=store))
    [run] = doc["runs"]
    assert (
        run["id"] == store.ids[1]
        and run["config"]["optim"]["lr"] == 0.1
        and run["final"]["val_acc"] == pytest.approx(0.81)
    )
    steps, values = store.metrics(store.ids[1])["val_loss"]
    assert run["metrics"]["val_loss"] == {"steps": steps.tolist(), "values": values.tolist()}


def test_study_exports_one_row_per_trial(filled, tmp_path):
    store, study = filled
    rows = list(csv.DictReader(io.StringIO(export("st", "csv", store=store))))
    assert [r["state"] for r in rows] == ["complete", "complete", "pruned", "complete", "failed", "complete", "waiting"]
    assert rows[2]["value"] == "2.4" and rows[4]["value"] == ""  # pruned with the value told, failed with none
    assert rows[6]["params_hidden"] == "[8]" and rows[6]["params_k"] == ""
    assert list(rows[0])[:3] == ["number", "state", "value"]
    doc = json.loads(export("st", "json", store=store))
    assert doc["n_trials"] == 7 and doc["trials"][1]["intermediate"] == [[1, 2.0], [2, 1.5]]


def test_parquet_round_trip(filled, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="the parquet extra is not installed")
    store, study = filled
    path = export("st", "parquet", tmp_path / "st.parquet", store=store)
    table = pq.read_table(path).to_pylist()
    assert table == trial_rows(study)
    path = export("cmp", "parquet", tmp_path / "cmp.parquet", store=store)
    assert pq.read_table(path).num_rows == sum(len(s) for i in store.ids for s, _ in store.metrics(i).values())


def test_trials_dataframe(filled):
    pytest.importorskip("pandas", reason="the pandas extra is not installed")
    _, study = filled
    df = study.trials_dataframe()
    assert list(df["number"]) == list(range(7))
    assert df.loc[0, "value"] == pytest.approx(0.4) and np.isnan(df.loc[4, "value"])
    assert {"params_lr", "params_opt", "params_hidden", "params_k"} <= set(df.columns)


def test_study_into_optuna_loads_with_the_same_trials(filled, tmp_path):
    optuna = pytest.importorskip("optuna", reason="the optuna extra is not installed")
    store, study = filled
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    assert export("st", "optuna", url, store=store) == url
    loaded = optuna.load_study(study_name="st", storage=url)
    ours = study.trials
    assert [t.number for t in loaded.trials] == [t.number for t in ours]
    assert [t.state.name for t in loaded.trials] == [
        "COMPLETE",
        "COMPLETE",
        "PRUNED",
        "COMPLETE",
        "FAIL",
        "COMPLETE",
        "WAITING",
    ]
    for mine, theirs in zip(ours, loaded.trials):
        assert theirs.value == (mine.value if mine.state in ("complete", "pruned") else None)
        assert theirs.intermediate_values == dict(mine.intermediate)
        expected = {k: (json.dumps(v) if isinstance(v, list) else v) for k, v in mine.params.items()}
        assert theirs.params == expected
        assert theirs.user_attrs["seed"] == mine.seed
    assert loaded.direction.name == "MINIMIZE" and loaded.best_trial.number == study.best_trial.number
    assert loaded.best_value == pytest.approx(study.best_value)
    assert loaded.trials[0].distributions["lr"] == optuna.distributions.FloatDistribution(1e-3, 1.0, log=True)
    with pytest.raises(ConfigError, match="already has a study 'st'"):
        export("st", "optuna", url, store=store)


def test_export_errors(filled, tmp_path):
    store, _ = filled
    with pytest.raises(ConfigError, match="unknown --format 'xml'"):
        export("st", "xml", store=store)
    with pytest.raises(ConfigError, match="--format parquet needs -o FILE"):
        export("st", "parquet", store=store)
    with pytest.raises(ConfigError, match="--format optuna exports a study; 'cmp' is a group"):
        export("cmp", "optuna", f"sqlite:///{tmp_path / 'o.db'}", store=store)
    with pytest.raises(ConfigError, match="'nope' is neither a run id, a study nor a comparison"):
        export("nope", "csv", store=store)


def cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exit_:
        return exit_.code or 0
    return 0


def test_cli_runs_json_and_csv_and_export(filled, capsys, tmp_path):
    store, _ = filled
    assert cli(["runs", "--store", store.url, "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in runs] == store.ids and runs[0]["final"]["val_acc"] == 0.8
    assert cli(["runs", "--store", store.url, "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["id"] for r in rows] == store.ids and rows[1]["final.val_acc"] == "0.81"
    assert cli(["export", "st", "--format", "json", "-o", str(tmp_path / "st.json"), "--store", store.url]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "st.json")
    assert cli(["export", "nope", "--store", store.url]) == 2
    assert "neither a run id" in capsys.readouterr().err
    assert cli(["runs", "--json", "--csv", "--store", store.url]) == 2
