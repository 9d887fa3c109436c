import json
import re
import subprocess
import sys

import pytest

import trainlab as trainlab_package


def trainlab(*args, env=None, cwd=None):
    """``python -m trainlab ARGS`` (the same command line as the ``trainlab`` script), output piped."""
    return subprocess.run(
        [sys.executable, "-m", "trainlab", *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd
    )


@pytest.fixture
def cfg_file(tmp_path):
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
    tune_cfg.write_text(
        base
        + '\n[search]\nname = "t"\nsampler = "random"\ntrials = 2\n[search.params]\n"optim.lr" = { type = "float", low = 0.01, high = 0.5, log = true }\n'
    )
    r = trainlab("tune", str(tune_cfg), "--store", db)
    assert r.returncode == 0, r.stderr
    assert "best trial" in r.stdout
    nas_cfg = tmp_path / "nas.toml"
    nas_cfg.write_text(
        base
        + '\n[search]\nname = "n"\nsampler = "random"\ntrials = 2\n[search.architecture]\ndepth = [1]\nwidths = [8, 16]\n'
    )
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


# --- command-line conventions (issue 16) ---------------------------------------------------
# In-process (fast: torch is already imported); captured output is not a terminal, as in a pipe.


@pytest.fixture
def cli(capsys, monkeypatch):
    """``cli(*args) -> (exit status, stdout, stderr)``: ``trainlab ARGS`` run in this process."""
    from trainlab.cli import main

    monkeypatch.setenv("TRAINLAB_ARTIFACTS", "")  # --artifacts sets it; monkeypatch restores it
    monkeypatch.delenv("TRAINLAB_ARTIFACTS")

    def invoke(*args):
        try:
            main(list(args))
            code = 0
        except SystemExit as exit:
            code = exit.code or 0
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


def test_python_m_trainlab_is_the_trainlab_command():
    r = trainlab("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"trainlab {trainlab_package.__version__}"


def test_version_and_short_help(cli):
    assert cli("-V") == (0, f"trainlab {trainlab_package.__version__}\n", "")
    long, short = cli("--help"), cli("-h")
    assert long == short and long[0] == 0
    assert "-h, --help" in long[1] and "--version" in long[1] and "init" in long[1] and "examples" in long[1]
    code, out, _ = cli("run", "-h")
    assert code == 0 and "run [OPTIONS] [CONFIG] [KEY=VALUE]..." in out


def test_help_keeps_bracketed_text_and_plain_metavars(cli):
    tune = cli("tune", "--help")[1]
    for text in (
        "trainlab[ray]",
        "[default: search.trials]",
        "[search] section",
        "[env: TRAINLAB_STORE]",
        "--trials N",
        "--store URL",
    ):
        assert text in tune, text
    assert "\\[" not in tune
    for command in (
        "run",
        "compare",
        "tune",
        "nas",
        "runs",
        "show",
        "reproduce",
        "lr-find",
        "diagnose",
        "report",
        "init",
        "studies",
    ):
        text = cli(command, "--help")[1]
        assert not re.search(r"<(bool|str|int|float|path|list)", text), (command, text)
    assert "-q, --quiet  " in cli("run", "--help")[1]  # a flag shows no metavar


def test_tune_and_nas_take_overrides_and_print_a_line_per_trial_when_piped(cli, tmp_path, cfg_file):
    db = str(tmp_path / "s.db")
    base = cfg_file.read_text()
    tune_cfg = tmp_path / "tune.toml"
    tune_cfg.write_text(
        base
        + '\n[search]\nname = "t"\nsampler = "random"\ntrials = 2\n[search.params]\n"optim.lr" = { type = "float", low = 0.01, high = 0.5, log = true }\n'
    )
    code, out, err = cli("tune", str(tune_cfg), "train.max_steps=3", "model.hidden=[8]", "--store", db)
    assert code == 0, err
    lines = [x for x in err.splitlines() if x.startswith("trial ")]
    assert [x.split()[:3] for x in lines] == [["trial", "0", "complete:"], ["trial", "1", "complete:"]], err
    assert "val_loss" in lines[0] and "optim.lr=" in lines[0] and " run " in lines[0] and "best trial" in out
    from trainlab.store import Store
    from trainlab.tune import Study

    for t in Study.load("t", storage=db).trials:
        config = Store(db).get_run(t.run_id).config
        assert config["train"]["max_steps"] == 3 and config["model"]["hidden"] == [8]
    nas_cfg = tmp_path / "nas.toml"
    nas_cfg.write_text(
        base
        + '\n[search]\nname = "n"\nsampler = "random"\ntrials = 1\n[search.architecture]\ndepth = [1]\nwidths = [8]\n'
    )
    code, _, err = cli("nas", str(nas_cfg), "train.max_steps=2", "--store", db)
    assert code == 0 and "trial 0 complete" in err, err
    code, _, err = cli("tune", str(tune_cfg), "train.epochz=1", "--store", db, "--name", "t2")
    assert code == 2 and "train.epochz" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = cli("tune", str(tune_cfg), "train.epochs=1", "--resume", "t", "--store", db)
    assert code == 2 and "do not pass overrides" in err


def test_compare_prints_a_line_per_finished_run_when_piped(cli, tmp_path, cfg_file):
    cfg_file.write_text(cfg_file.read_text() + '\n[compare]\nseeds = 2\n"optim.lr" = [0.05, 0.1]\n')
    code, out, err = cli("compare", str(cfg_file), "train.max_steps=2", "--store", str(tmp_path / "s.db"))
    assert code == 0, err
    lines = [x for x in err.splitlines() if x.startswith("compare cli: ")]
    assert [x.split()[2] for x in lines] == ["1/4", "2/4", "3/4", "4/4"] and all(" completed (" in x for x in lines), (
        err
    )


def test_examples_and_init(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("examples")
    assert code == 0 and "quickstart" in out and "MNIST-1D" in out
    assert cli("init")[:2] == (0, "quickstart.toml\n")
    assert (tmp_path / "quickstart.toml").read_text().startswith("# The quickstart")
    code, _, err = cli("init")
    assert code == 2 and "exists; pass --force" in err
    (tmp_path / "quickstart.toml").write_text("edited")
    assert cli("init", "--force")[0] == 0 and (tmp_path / "quickstart.toml").read_text().startswith("# The quickstart")
    assert (
        cli("init", "tune_mnist1d", "-o", "sub/t.toml")[0] == 0
        and "[search]" in (tmp_path / "sub" / "t.toml").read_text()
    )
    code, _, err = cli("init", "quikstart")
    assert code == 2 and "did you mean 'quickstart'" in err
    code, _, err = cli("run", "examples/quickstart.toml")
    assert code == 2 and "trainlab init quickstart -o examples/quickstart.toml" in err


def test_memory_store_writes_nothing_and_artifacts_go_where_asked(cli, tmp_path, cfg_file, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code, _, err = cli("run", str(cfg_file), "train.checkpoint_every=1", "--store", ":memory:", "-q")
    assert code == 0, err
    assert list(work.iterdir()) == []  # no file named ':memory:', no runs/ folder
    compare_cfg = tmp_path / "c.toml"
    compare_cfg.write_text(cfg_file.read_text() + '\n[compare]\nseeds = 1\n"optim.lr" = [0.05, 0.1]\n')
    code, out, err = cli("compare", str(compare_cfg), "train.max_steps=2", "--store", ":memory:")
    assert code == 0 and "0.05" in out and list(work.iterdir()) == [], err
    code, _, err = cli("compare", str(compare_cfg), "train.max_steps=3", "--store", ":memory:", "--jobs", "2")
    assert code == 2 and "--jobs" in err

    db, folders = tmp_path / "db" / "s.db", tmp_path / "folders"
    code, out, _ = cli("run", str(cfg_file), "--store", str(db), "--artifacts", str(folders), "-q")
    assert code == 0 and (folders / out.split()[-1]).is_dir() and not (db.parent / out.split()[-1]).exists()
    monkeypatch.setenv("TRAINLAB_ARTIFACTS", str(folders / "env"))
    code, out, _ = cli("run", str(cfg_file), "--store", str(db), "-q")
    assert (folders / "env" / out.split()[-1]).is_dir()
    monkeypatch.delenv("TRAINLAB_ARTIFACTS")
    code, out, _ = cli("run", str(cfg_file), "--store", str(db), "-q")
    assert (db.parent / out.split()[-1]).is_dir()  # the default: beside the database


def test_ctrl_c_is_one_line_saying_what_is_kept_and_exit_130(tmp_path, cfg_file, monkeypatch, capsys):
    """Ctrl-C (KeyboardInterrupt) in any command: exit status 130 as a shell's, and one line
    saying that finished work is kept and the same command continues it."""
    import trainlab.train
    from trainlab.cli import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainlab.train, "run", interrupted)
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(cfg_file), "--store", str(tmp_path / "s.db")])
    assert exit_.value.code == 130
    err = capsys.readouterr().err
    assert "interrupted: what finished is kept in the store" in err and "Traceback" not in err
