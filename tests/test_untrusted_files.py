"""Files from others, and files for others (issue 21).

Checkpoints and weights load with ``weights_only=True`` and npz files with
``allow_pickle=False``: a file that asks its unpickler to call something is refused, with
nothing run (checked by the side effect the call would have had). Every ``torch.load`` and
``np.load`` in the package is checked for those arguments, so new code cannot forget them.
The store, run folders, checkpoints and reports are created with the user's umask and are
never world-writable.
"""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from trainlab.errors import ConfigError

SRC = Path(__file__).resolve().parents[1] / "src" / "trainlab"
UNPICKLERS = ("pickle.load", "pickle.loads", "pickle.Unpickler", "dill.load", "cloudpickle.load", "joblib.load")


class Planted:
    """Unpickling this creates ``marker``: the harmless stand-in for ``os.system``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    from trainlab._io import torch_load
    from trainlab.train.checkpoint import load_checkpoint

    marker = tmp_path / "ran"
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": {"w": torch.ones(2)}, "extra": Planted(marker)}, path)
    for load in (torch_load, load_checkpoint):
        with pytest.raises(ConfigError, match=r"checkpoint.pt: refused to load.*io.open.*nothing in it was run"):
            load(path)
    assert not marker.exists()
    torch.save({"model": {"w": torch.ones(2)}, "step": 3}, path)  # a plain state dict loads
    assert torch_load(path)["step"] == 3


def test_an_npz_with_an_object_array_is_refused_and_nothing_runs(tmp_path):
    from trainlab.data import load

    marker = tmp_path / "ran"
    path = tmp_path / "data.npz"
    np.savez(path, x=np.array([Planted(marker)] * 4, dtype=object), y=np.zeros(4, dtype=np.int64))
    with pytest.raises(ConfigError, match=r"data.npz: array .x. holds Python objects, which are never unpickled"):
        load("npz", path=str(path))
    assert not marker.exists()


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        func = getattr(node, "func", None)
        if isinstance(node, ast.Call) and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            yield node, f"{node.func.value.id}.{node.func.attr}"


def _keyword(call: ast.Call, name: str):
    return next((k.value.value for k in call.keywords if k.arg == name and isinstance(k.value, ast.Constant)), None)


def test_every_load_in_the_package_refuses_pickled_code():
    checked, problems = 0, []
    for path in sorted(SRC.rglob("*.py")):
        for call, name in _calls(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(SRC.parent)}:{call.lineno}"
            if name == "torch.load":
                checked += 1
                if _keyword(call, "weights_only") is not True:
                    problems.append(f"{where}: torch.load without weights_only=True")
            elif name in ("np.load", "numpy.load"):
                checked += 1
                if _keyword(call, "allow_pickle") is not False:
                    problems.append(f"{where}: np.load without allow_pickle=False")
            elif name in UNPICKLERS:
                problems.append(f"{where}: {name} runs whatever the file asks for")
    assert problems == []
    assert checked >= 3  # torch_load, the mnist1d cache and the npz loader: the scan sees them


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o000])
def test_store_run_folders_checkpoints_and_reports_follow_the_umask(umask, tmp_path, tiny_config):
    from trainlab.report.build import write_report
    from trainlab.store import Store
    from trainlab.train import load_config, run

    root = tmp_path / "lab"
    old = os.umask(umask)
    try:
        store = Store(root / "store" / "trainlab.db")  # two folders that do not exist yet
        result = run(load_config(tiny_config), store=store, quiet=True)
        write_report([result.run_id], root / "reports" / "r.html", store)
    finally:
        os.umask(old)
    modes = _modes(root)
    run_dir = f"store/{result.run_id}"
    assert {"store", "store/trainlab.db", run_dir, f"{run_dir}/checkpoint.pt", "reports/r.html"} <= set(modes)
    folders = {p for p in modes if (root / p).is_dir()}
    for path, mode in modes.items():
        assert mode & 0o002 == 0, f"{path} is world-writable: {mode:o}"
        assert mode & umask == 0, f"{path} ignores the umask {umask:03o}: {mode:o}"
    if umask:  # 022 -> 755 / 644, 077 -> 700 / 600, as `mkdir` and `touch` would make them
        assert all(modes[p] == 0o777 & ~umask for p in folders), modes
        assert all(modes[p] == 0o666 & ~umask for p in set(modes) - folders), modes
    else:  # umask 000 would make them world-writable; trainlab never asks for that bit
        assert all(modes[p] == 0o775 for p in folders) and modes["reports/r.html"] == 0o664
