"""The CLI commands end to end on a tiny run: lr-find, diagnose, report."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from trainlab.diagnose import commands as diagnose_commands
from trainlab.errors import ConfigError
from trainlab.report import commands as report_commands

TOML = """
name = "tiny"
seed = 0
[data]
name = "mnist1d"
batch_size = 64
subset = 256
[model]
name = "mlp"
hidden = [16]
[optim]
name = "sgd"
lr = 0.1
[train]
epochs = 2
threads = 1
[diagnose]
stats_every = 2
"""


@pytest.fixture
def app():
    app = typer.Typer()
    app.command("lr-find")(diagnose_commands.lr_find)
    app.command("diagnose")(diagnose_commands.diagnose)
    app.command("report")(report_commands.report)
    return app


def test_lr_find_diagnose_and_report(app, store, tmp_path):
    from trainlab.train import run

    config = tmp_path / "tiny.toml"
    config.write_text(TOML)
    run_id = run(str(config), store=store).run_id
    runner, url = CliRunner(), store.url

    out = runner.invoke(app, ["lr-find", str(config), "--store", url, "--steps", "30", "-o", str(tmp_path / "lr.svg")])
    assert out.exit_code == 0, out.output
    lr_run = out.output.strip().splitlines()[-1]
    record = store.get_run(lr_run)
    assert record.name == "tiny/lr-find" and record.final["suggested_lr"] > 0
    assert len(store.metrics(lr_run)["lr_find/loss"][0]) == record.final["steps"]
    assert (tmp_path / "lr.svg").read_text().startswith("<svg")

    out = runner.invoke(
        app,
        [
            "diagnose",
            run_id,
            "--store",
            url,
            "--sharpness",
            "--power-iters",
            "10",
            "--trace-samples",
            "5",
            "--samples",
            "128",
        ],
    )
    assert out.exit_code == 0, out.output
    saved = json.loads(store.artifacts(run_id)["diagnose"].read_text())
    assert saved["samples"] == 128 and set(saved) == {"run_id", "samples", "sharpness"}
    sharp = store.metrics(run_id)["sharpness/hessian_top"]
    assert list(sharp[0]) == [store.get_run(run_id).final["step"]] and sharp[1][0] == pytest.approx(
        saved["sharpness"]["hessian_top"]
    )

    out = runner.invoke(app, ["diagnose", run_id, "--store", url, "--gradcheck", "--flops"])
    assert out.exit_code == 0, out.output
    assert "gradient check: ok" in out.output and "head" in out.output

    html = tmp_path / "report.html"
    out = runner.invoke(app, ["report", run_id, lr_run, "--store", url, "-o", str(html)])
    assert out.exit_code == 0, out.output
    text = html.read_text()
    for anchor in ("curves", "layers", "lr-finder", "sharpness"):
        assert f'<section id="{anchor}">' in text


def test_diagnose_without_checkpoint_is_a_config_error(app, store):
    run_id = store.create_run("bare", {"name": "bare"}, seed=0)
    result = CliRunner().invoke(app, ["diagnose", run_id, "--store", store.url])
    assert isinstance(result.exception, ConfigError) and "has no checkpoint" in str(result.exception)
