"""The one error rule: a user error is one line on stderr naming the key, file or URL and the
fix, exit status 2, no traceback; ``--debug`` / ``TRAINLAB_DEBUG=1`` shows the traceback; an
internal error says it is a bug. Through ``trainlab.cli.main`` in this process (fast)."""

import os
import stat
import subprocess
import sys

import pytest

from trainlab.errors import ConfigError
from trainlab.store import Store

CONFIG = """
name = "e"
[data]
name = "spirals"
n_samples = 200
batch_size = 32
[model]
hidden = [8]
[train]
max_steps = 3
threads = 1
"""
COMPARE = CONFIG + '\n[compare]\nseeds = 2\n"optim.lr" = [0.1]\n'
SEARCH = (
    CONFIG
    + """
[search]
trials = 2
sampler = "random"
[search.params]
"optim.lr" = { type = "float", low = 0.01, high = 0.5 }
"""
)


def assert_one_line(code: int, err: str, needle: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and "Background on this error" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err, err


@pytest.fixture
def files(tmp_path):
    """Bad inputs of every kind the fault probe tried, by name."""
    f = {}
    for name, text in (("cfg", CONFIG), ("compare", COMPARE), ("search", SEARCH)):
        f[name] = tmp_path / f"{name}.toml"
        f[name].write_text(text)
    f["binary"] = tmp_path / "binary.toml"
    f["binary"].write_bytes(b"\x00\xff\xfe\x89PNG")
    f["deep"] = tmp_path / "deep.toml"
    f["deep"].write_text("a = " + "[" * 5000 + "]" * 5000)
    f["corrupt_db"] = tmp_path / "corrupt.db"
    f["corrupt_db"].write_bytes(os.urandom(4096))
    f["a_file"] = tmp_path / "a_file"
    f["a_file"].write_text("x")
    f["fifo"] = tmp_path / "fifo"
    os.mkfifo(f["fifo"])
    return f


@pytest.mark.parametrize(
    "args,needle",
    [
        (("run", "{binary}"), "not a UTF-8 text file (byte 0xff at offset 1)"),
        (("run", "{tmp}"), "is a folder; give a .toml file"),
        (("run", "{tmp}/missing.toml"), "config file not found"),
        (("run", "{tmp}/" + "n" * 300 + ".toml"), "File name too long"),
        (("run", "{deep}"), "nested too deeply"),
        (("run", "/dev/zero"), "not a regular file"),
        (("run", "{fifo}"), "not a regular file"),
        (("run", "{cfg}", "optim.lrr=1"), "did you mean 'optim.lr'"),
        (("run", "{cfg}", "model.hidden=" + "[" * 3000 + "]" * 3000), "nested too deeply"),
        (("run", "{cfg}", "--bogus"), "No such option: --bogus (see `trainlab run --help`)"),
        (("tune", "{search}", "--trials", "abc"), "Invalid value for '--trials'"),
        (("tune", "{search}", "--trials", "0"), "--trials must be an integer >= 1, got 0"),
        (("tune", "{search}", "--jobs", "0"), "--jobs must be an integer >= 1, got 0"),
        (("compare", "{compare}", 'compare.metric="bogus"'), "unknown compare.metric 'bogus'; choose one of: test_acc"),
        (("compare", "{compare}", 'compare.target="x"'), "compare.target must be a number"),
        (("compare", "{compare}", "compare.seeds=[1, 1]"), "compare.seeds lists seed 1 twice"),
        (("compare", "{compare}", "--jobs", "0"), "--jobs must be >= 1"),
        (
            ("run", "{cfg}", "model.init=normal", "model.init_std=inf"),
            "model.init_std: Input should be a finite number, got inf",
        ),
        (("run", "{cfg}", "train.clip_norm=inf"), "train.clip_norm: Input should be a finite number"),
        (("run", "{cfg}", "optim.lr=nan"), "optim.lr: Input should be a finite number"),
        (
            ("run", "{cfg}", "model.hidden=[1e9]"),
            "model.hidden.0: Input should be a valid integer, got 1000000000.0 (a whole number",
        ),
        (("run", "{cfg}", "data.batch_size=32.0"), "data.batch_size: Input should be a valid integer"),
        (
            ("run", "{cfg}", "optim.lr=true"),
            "optim.lr: Input should be a valid number, got True (a number, not true/false)",
        ),
        (("run", "{cfg}", "data.drop_last=1"), "data.drop_last: Input should be a valid boolean"),
        (("run", "{cfg}", "seed=4294967297"), "seed: must be in 0 .. 2**32-1"),
        (("run", "{cfg}", "seed=-1"), "seed: must be in 0 .. 2**32-1"),
        (
            ("run", "{cfg}", "data.drop_last=true", "data.batch_size=1000"),
            "data.batch_size = 1000 is larger than the 144 training samples",
        ),
        (
            ("run", "{cfg}", "model.name=cnn", "model.kernel_size=1000"),
            "model.kernel_size = 1000 is larger than the input (2); use at most 2",
        ),
        (("tune", "{search}", 'search.seed="abc"'), "search.seed: must be an integer in 0 .. 2**32-1"),
        (("compare", "{compare}", "compare.seeds=[1, 4294967297]"), "seed: must be in 0 .. 2**32-1"),
        (("report", "nosuchrun", "-o", "{tmp}/r.html"), "'nosuchrun' is neither a run id"),
        (("show", "a" * 100_000), "a run id has 1 to 64 characters"),
        (("runs", "--store", "{corrupt_db}"), "is not a SQLite database"),
        (("show", "x", "--store", "{corrupt_db}"), "is not a SQLite database"),
        (("runs", "--store", "{a_file}/sub/s.db"), "part of that path is a file"),
        (("runs", "--store", "mysql://user:pw@localhost/db"), "pip install mysqlclient"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, files, tmp_path, args, needle):
    names = {k: str(v) for k, v in files.items()}
    argv = [a.format(tmp=tmp_path, **names) if "{" in a and "[" not in a else a for a in args]
    if "--store" not in argv:
        argv += ["--store", str(tmp_path / "s.db")]
    code, _, err = cli(*argv)
    assert_one_line(code, err, needle)
    if args[0] in ("compare", "tune", "run") and (tmp_path / "s.db").exists():
        assert Store(tmp_path / "s.db").list_runs() == []  # rejected before anything ran


def test_tune_trials_zero_creates_no_study(cli, files, tmp_path):
    code, _, err = cli("tune", str(files["search"]), "--trials", "0", "--store", str(tmp_path / "s.db"))
    assert_one_line(code, err, "--trials must be")
    code, out, _ = cli("studies", "--store", str(tmp_path / "s.db"))
    assert code == 0 and " e " not in out


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node (a private /dev/full) needs root")
def test_report_to_a_device_is_refused_and_the_device_kept(cli, files, tmp_path):
    """`report -o /dev/full` replaced the device with a file; a private /dev/full stands in for it."""
    device = tmp_path / "full"
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    store = str(tmp_path / "s.db")
    code, out, err = cli("run", str(files["cfg"]), "-q", "--store", store)
    assert code == 0, err
    run_id = out.strip().splitlines()[-1]
    code, _, err = cli("report", run_id, "-o", str(device), "--store", store)
    assert_one_line(code, err, f"cannot write {device}: it is a device, not a regular file")
    assert stat.S_ISCHR(os.stat(device).st_mode)
    for target, needle in ((tmp_path, "it is a folder"), (files["fifo"], "it is a pipe")):
        code, _, err = cli("report", run_id, "-o", str(target), "--store", store)
        assert_one_line(code, err, needle)


def test_debug_shows_the_traceback(cli, files, tmp_path, monkeypatch):
    from trainlab.cli import main

    missing = str(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="config file not found"):
        main(["--debug", "run", missing])
    with pytest.raises(ConfigError, match="config file not found"):
        main(["run", missing, "--debug"])  # anywhere before a `--`
    monkeypatch.setenv("TRAINLAB_DEBUG", "1")
    with pytest.raises(ConfigError):
        main(["run", missing])
    monkeypatch.setenv("TRAINLAB_DEBUG", "0")
    code, _, err = cli("run", missing)
    assert_one_line(code, err, "config file not found")


def test_debug_flag_reaches_a_real_process(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "trainlab.cli", "--debug", "run", str(tmp_path / "missing.toml")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 1 and "Traceback" in r.stderr and "ConfigError: config file not found" in r.stderr


def test_an_internal_error_is_called_a_bug(cli, tmp_path, monkeypatch):
    def broken(self, **kwargs):
        raise RuntimeError("a bug in the listing")

    monkeypatch.setattr(Store, "list_runs", broken)
    code, _, err = cli("runs", "--store", str(tmp_path / "s.db"))
    assert code == 1
    assert "Traceback" in err and "RuntimeError: a bug in the listing" in err
    assert "this is a bug in trainlab" in err.strip().splitlines()[-1]


def test_schedule_plot_of_a_trillion_steps_finishes(cli, tmp_path):
    out = tmp_path / "lr.svg"
    code, stdout, err = cli("schedule", "plot", "cosine:lr=0.1,total_steps=1000000000000", "-o", str(out))
    assert code == 0, err
    assert stdout.strip() == str(out) and out.read_text().count("<svg") == 1


def test_runs_reap_marks_runs_of_dead_processes_interrupted(cli, tmp_path):
    import socket

    from trainlab.store import runs_table

    db = tmp_path / "s.db"
    store = Store(db)
    dead, alive = store.create_run("dead", {}), store.create_run("alive", {})
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    with store.engine.begin() as conn:
        conn.execute(
            runs_table.update().where(runs_table.c.id == dead).values(owner=f"{socket.gethostname()}:{proc.pid}")
        )
    code, out, err = cli("runs", "--reap", "--store", str(db))
    assert code == 0 and f"marked 1 run(s) interrupted: their process is gone ({dead})" in err
    assert store.get_run(dead).status == "interrupted" and store.get_run(alive).status == "running"
    assert "interrupted" in out
