"""Loggers mirror the store: csv rows, TensorBoard events read back with TensorBoard's own reader,
MLflow metrics/params/artifacts from a local SQLite tracking store."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest

from trainlab.errors import ConfigError
from trainlab.loggers import create_loggers
from trainlab.train import load_config, run


def _config(tiny_config, **log):
    return {**tiny_config, "train": {**tiny_config["train"], "log_every": 1, "epochs": 1}, "log": log}


def _store_rows(store, run_id):
    return {k: (s.tolist(), v.tolist()) for k, (s, v) in store.metrics(run_id).items()}


def test_csv_and_tensorboard_mirror_the_store(store, tiny_config, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = run(_config(tiny_config, to=["csv", "tensorboard"], dir=str(tmp_path / "tb")), store=store)
    stored = _store_rows(store, result.run_id)
    assert {"train_loss", "train_lr", "val_loss", "val_acc"} <= set(stored)

    with open(store.run_dir(result.run_id) / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    from_csv: dict[str, tuple[list, list]] = {}
    for r in rows:
        steps, values = from_csv.setdefault(r["key"], ([], []))
        steps.append(int(r["step"]))
        values.append(float(r["value"]))
    assert {k: (sorted(zip(*v))) for k, v in from_csv.items()} == {k: sorted(zip(*v)) for k, v in stored.items()}

    [logdir] = (tmp_path / "tb").iterdir()
    assert logdir.name == f"tiny-{result.run_id}"
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    events.Reload()
    for key, (steps, values) in stored.items():
        got = events.Scalars(key)
        assert [e.step for e in got] == steps, key
        np.testing.assert_allclose([e.value for e in got], values, rtol=1e-6)  # float32 in the event file
    # the config as hparams, the final metrics beside it
    final = events.Scalars("final/val_loss")
    assert final[0].value == pytest.approx(result.final["val_loss"], rel=1e-6)
    assert store.artifacts(result.run_id)["tensorboard"] == logdir


def test_hparams_hold_the_flattened_config(store, tiny_config, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    result = run(_config(tiny_config, to=["tensorboard"]), store=store)
    events = EventAccumulator(str(store.run_dir(result.run_id) / "tensorboard"))
    events.Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert info.hparams["optim.lr"].number_value == pytest.approx(0.1)
    assert info.hparams["optim.name"].string_value == "sgd"
    assert info.hparams["model.hidden"].string_value == "[32]"


def test_mlflow_logs_params_metrics_and_the_report(store, tiny_config, tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # MLflow puts a SQL store's artifacts under ./mlruns

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run(_config(tiny_config, to=["csv", "mlflow"], mlflow_uri=uri, mlflow_experiment="exp"), store=store)
    client = MlflowClient(tracking_uri=uri)
    [mlrun] = client.search_runs([client.get_experiment_by_name("exp").experiment_id])
    assert mlrun.data.tags["trainlab.run_id"] == result.run_id and mlrun.info.status == "FINISHED"
    assert mlrun.data.params["optim.lr"] == "0.1" and mlrun.data.params["model.hidden"] == "[32]"
    for key, (steps, values) in _store_rows(store, result.run_id).items():
        history = sorted((m.step, m.value) for m in client.get_metric_history(mlrun.info.run_id, key))
        expected = sorted(set(zip(steps, values)))  # MLflow keeps one of two equal (step, value) rows
        assert [s for s, _ in history] == [s for s, _ in expected], key
        np.testing.assert_allclose([v for _, v in history], [v for _, v in expected], rtol=1e-12)
    assert mlrun.data.metrics["final/test_acc"] == pytest.approx(result.final["test_acc"])
    artifacts = {a.path for a in client.list_artifacts(mlrun.info.run_id)}
    assert artifacts == {"report.html", "metrics.csv"}


def test_missing_extra_is_one_line_naming_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(
        ConfigError,
        match=r"^logger 'tensorboard' needs the 'tensorboard' package: pip install 'trainlab\[tensorboard\]'$",
    ):
        create_loggers(["csv", "tensorboard"])


def test_bad_logger_names_are_config_errors():
    with pytest.raises(ConfigError, match="unknown logger 'tb'; choose one of: csv, mlflow, tensorboard"):
        create_loggers(["tb"])
    with pytest.raises(ConfigError, match="log.to.0"):
        load_config({"log": {"to": ["tensorbord"]}})


def test_log_section_leaves_the_config_hash_alone(tiny_config):
    plain = load_config(tiny_config)
    logged = load_config({**tiny_config, "log": {"to": ["csv"]}})
    assert plain.hash() == logged.hash()


def test_a_failing_mirror_warns_and_the_run_completes(store, tiny_config, monkeypatch):
    from trainlab.loggers.csv import CSVLogger

    def boom(self, rows):
        raise OSError("disk full")

    monkeypatch.setattr(CSVLogger, "write", boom)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(_config(tiny_config, to=["csv"]), store=store)
    assert result.status == "completed"
    assert [str(w.message) for w in caught if "logger stopped" in str(w.message)] == [
        "csv logger stopped (OSError: disk full); the run store still has every metric"
    ]
    assert "val_loss" in store.metrics(result.run_id)


def test_fast_checksum_equals_tensorboards_own():
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    from trainlab.loggers.tensorboard import fast_masked_crc32c

    fast = fast_masked_crc32c()
    if fast is None:
        pytest.skip("google-crc32c (C) is not installed: TensorBoard's own checksum is used")
    rng = np.random.default_rng(0)
    for n in (0, 1, 7, 64, 1000):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert fast(data) == masked_crc32c(data)
