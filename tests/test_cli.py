import json
import subprocess
import sys

import pytest


def trainlab(*args, env=None):
    return subprocess.run([sys.executable, "-m", "trainlab.cli", *args], capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture
def cfg_file(tmp_path, tiny_config):
    import tomllib  # noqa: F401  (py3.11+) -- the file is TOML written by hand below

    text = """
name = "cli"
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
epochs = 1
threads = 1
"""
    path = tmp_path / "cfg.toml"
    path.write_text(text)
    return path


def test_run_prints_id_last_and_show_json(tmp_path, cfg_file):
    db = str(tmp_path / "s.db")
    r = trainlab("run", str(cfg_file), "optim.lr=0.05", "--store", db, "--quiet")
    assert r.returncode == 0, r.stderr
    run_id = r.stdout.strip().splitlines()[-1]
    s = trainlab("show", run_id, "--json", "--store", db)
    obj = json.loads(s.stdout)
    assert obj["id"] == run_id and obj["status"] == "completed" and obj["config"]["optim"]["lr"] == 0.05
    assert {"val_loss", "val_acc", "train_loss", "step"} <= set(obj["final"])
    listing = trainlab("runs", "--store", db)
    assert run_id in listing.stdout


def test_config_errors_are_one_line_and_exit_2(tmp_path, cfg_file):
    db = str(tmp_path / "s.db")
    for args, needle in [
        (("run", str(cfg_file), "optim.lrr=1"), "did you mean 'optim.lr'"),
        (("run", str(tmp_path / "missing.toml")), "config file not found"),
        (("run", str(cfg_file), "model.name=[1, 2]"), "model.name"),
        (("show", "nosuchrun"), "no run 'nosuchrun'"),
        (("run", "--resume", "nosuchrun"), "no run 'nosuchrun'"),
    ]:
        r = trainlab(*args, "--store", db)
        assert r.returncode == 2, (args, r.stderr)
        assert needle in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_store_from_environment_and_data_list(tmp_path, cfg_file):
    import os

    env = {**os.environ, "TRAINLAB_STORE": str(tmp_path / "env.db")}
    r = trainlab("run", str(cfg_file), "-q", env=env)
    assert r.returncode == 0 and (tmp_path / "env.db").exists()
    assert "mnist1d" in trainlab("data", "list").stdout


def test_compare_writes_the_report_and_prints_its_path_last(tmp_path, cfg_file):
    cfg_file.write_text(cfg_file.read_text() + '\n[compare]\nseeds = 2\n"optim.lr" = [0.05, 0.1]\n')
    db, out = str(tmp_path / "s.db"), tmp_path / "report.html"
    r = trainlab("compare", str(cfg_file), "--store", db, "--quiet", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == str(out.absolute())
    html = out.read_text()
    assert "optim.lr" in html and html.count("<svg") >= 1


def test_every_documented_command_is_reachable_from_the_trainlab_executable(tmp_path, cfg_file):
    """tune, nas, studies, show-study, lr-find, diagnose and report through `trainlab` itself."""
    db = str(tmp_path / "s.db")
    base = cfg_file.read_text()
    tune_cfg = tmp_path / "tune.toml"
    tune_cfg.write_text(base + '\n[search]\nname = "t"\nsampler = "random"\ntrials = 2\n[search.params]\n"optim.lr" = { type = "float", low = 0.01, high = 0.5, log = true }\n')
    r = trainlab("tune", str(tune_cfg), "--store", db)
    assert r.returncode == 0, r.stderr
    assert "best trial" in r.stdout
    nas_cfg = tmp_path / "nas.toml"
    nas_cfg.write_text(base + '\n[search]\nname = "n"\nsampler = "random"\ntrials = 2\n[search.architecture]\ndepth = [1]\nwidths = [8, 16]\n')
    assert trainlab("nas", str(nas_cfg), "--store", db).returncode == 0
    studies = trainlab("studies", "--store", db)
    assert studies.returncode == 0 and "t" in studies.stdout and "n" in studies.stdout
    shown = json.loads(trainlab("show-study", "t", "--json", "--store", db).stdout)
    assert len(shown["trials"]) == 2 and all(t["state"] == "complete" for t in shown["trials"])

    lr = trainlab("lr-find", str(cfg_file), "--steps", "10", "--store", db)
    assert lr.returncode == 0, lr.stderr
    assert "suggested lr" in lr.stderr
    run_id = trainlab("run", str(cfg_file), "--store", db, "-q").stdout.strip().splitlines()[-1]
    diag = trainlab("diagnose", run_id, "--flops", "--gradcheck", "--store", db)
    assert diag.returncode == 0, diag.stderr
    assert json.loads(open(diag.stdout.strip().splitlines()[-1]).read())["gradcheck"]["ok"] is True
    page = tmp_path / "r.html"
    rep = trainlab("report", run_id, "t", "-o", str(page), "--store", db)
    assert rep.returncode == 0, rep.stderr
    assert rep.stdout.strip() == str(page.absolute()) and "<svg" in page.read_text()
