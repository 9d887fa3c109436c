"""A full disk and a read-only filesystem, for real: a small tmpfs mounted in a private user and
mount namespace (``unshare``), so no root and no real disk is needed. Reading commands still
work; writing ones are one line each."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CONFIG = """
name = "d"
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


def _namespaces_work(tmp_path: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {tmp_path}"],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.slow
def test_full_disk_and_read_only_store(tmp_path):
    mnt, logs = tmp_path / "mnt", tmp_path / "logs"
    mnt.mkdir()
    logs.mkdir()
    if not _namespaces_work(mnt):
        pytest.skip("cannot mount a tmpfs in a user namespace here (unshare --user --mount is not allowed)")
    (logs / "cfg.toml").write_text(CONFIG)
    py, store = sys.executable, mnt / "s.db"

    def step(name, *args):  # one trainlab command; its stdout, stderr and exit status into logs/
        out = f"> {logs}/{name}.out 2> {logs}/{name}.err; echo $? > {logs}/{name}.rc"
        return f"{py} -m trainlab.cli {' '.join(args)} --store {store} {out}"

    script = textwrap.dedent(
        f"""
        set -u
        mount -t tmpfs -o size=3m tmpfs {mnt}
        {py} -m trainlab.cli run {logs}/cfg.toml -q --store {store} > {logs}/id.out 2> {logs}/id.err
        ID=$(tail -1 {logs}/id.out)
        dd if=/dev/zero of={mnt}/filler bs=64k > /dev/null 2>&1
        {step("runs", "runs")}
        {step("show", "show", "$ID", "--json")}
        {step("run", "run", f"{logs}/cfg.toml", "-q")}
        {step("report", "report", "$ID", "-o", f"{mnt}/r.html")}
        rm {mnt}/filler
        mount -o remount,ro {mnt}
        {step("ro_runs", "runs")}
        {step("ro_run", "run", f"{logs}/cfg.toml", "-q")}
        """
    )
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    run_id = (logs / "id.out").read_text().strip().splitlines()[-1]

    def result(name):
        return (
            int((logs / f"{name}.rc").read_text()),
            (logs / f"{name}.out").read_text(),
            (logs / f"{name}.err").read_text(),
        )

    for name in ("runs", "show", "ro_runs"):  # reading works on a full disk and on a read-only filesystem
        code, out, err = result(name)
        assert code == 0 and run_id in out, (name, err)
    # The words depend on where SQLite notices (opening the file, or the first write); the class is what matters.
    for name, needles in (
        ("run", ("s.db: the disk is full", "s.db cannot be written: the disk is full")),
        ("report", ("r.html: the disk is full; nothing was written",)),
        ("ro_run", ("s.db: the database is read-only", "s.db cannot be written: the file or its folder is read-only")),
    ):
        code, _, err = result(name)
        assert code == 2 and any(n in err for n in needles), (name, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (name, err)
