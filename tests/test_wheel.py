"""The wheel works outside the repository: built, installed in a clean venv, run from another folder.

Slow (it installs torch and every dependency into a new venv: minutes, most of it pip). torch is
installed first as ``torch==2.13.0`` (the CPU build on this machine's disk), as ``make setup``
does, so pip never resolves an unpinned torch to a multi-GB CUDA build.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def sh(*args, cwd=None, timeout=1800):
    r = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, args))}\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    return r


@pytest.mark.slow
def test_the_wheel_works_from_any_folder(tmp_path):
    pytest.importorskip("build", reason="python -m build (the dev extra) builds the wheel")
    sh(sys.executable, "-m", "build", "--wheel", "--outdir", tmp_path / "dist", ROOT)
    (wheel,) = (tmp_path / "dist").glob("trainlab-*.whl")
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    pip, python, trainlab = env / "bin" / "pip", env / "bin" / "python", env / "bin" / "trainlab"
    sh(pip, "install", "-q", "torch==2.13.0")
    sh(pip, "install", "-q", wheel)

    work = tmp_path / "elsewhere"  # no examples/, no src/: only what the wheel brought
    work.mkdir()
    assert sh(trainlab, "--version", cwd=work).stdout.strip().startswith("trainlab ")
    assert "quickstart" in sh(trainlab, "examples", cwd=work).stdout
    assert sh(trainlab, "init", cwd=work).stdout.strip() == "quickstart.toml"
    run = sh(
        trainlab,
        "run",
        "quickstart.toml",
        "train.max_steps=3",
        "data.subset=256",
        "--store",
        ":memory:",
        "-q",
        cwd=work,
    )
    assert len(run.stdout.strip().splitlines()[-1]) == 12
    assert sorted(p.name for p in work.iterdir()) == ["quickstart.toml"]  # :memory: left nothing behind
    assert "Usage: python -m trainlab" in sh(python, "-m", "trainlab", "-h", cwd=work).stdout
    # the user-code example ships with its model and data files, and runs where `init` put it
    custom = work / "custom"
    custom.mkdir()
    assert sh(trainlab, "init", "custom/custom", "-o", custom, cwd=work).stdout.strip() == str(custom / "custom.toml")
    assert sorted(p.name for p in custom.iterdir()) == ["custom.toml", "gated_mlp.py", "rings.py"]
    run = sh(trainlab, "run", custom / "custom.toml", "train.max_steps=3", "--store", ":memory:", "-q", cwd=tmp_path)
    assert len(run.stdout.strip().splitlines()[-1]) == 12
    located = sh(python, "-c", "import trainlab, pathlib; print(pathlib.Path(trainlab.__file__).parent)", cwd=work)
    assert Path(located.stdout.strip()).is_relative_to(env)  # the installed package, not the checkout
