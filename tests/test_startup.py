"""Start-up: each path imports only what it needs (issue 20).

Importing is most of a short command's wall time: torch ~1.5 s, torch._dynamo 2-4 s, the
mnist1d package (scipy, matplotlib) 1.6 s, scikit-learn ~1 s. Each case runs in a fresh
interpreter and lists the heavy modules it ended up importing. Timings themselves are not
tested (they vary with the machine); they are measured with ``python -X importtime`` and
hyperfine, see docs/architecture.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

HEAVY = (
    "torch",
    "torch._dynamo",
    "matplotlib",
    "scipy",
    "sklearn",
    "sqlalchemy",
    "mnist1d",
    "optuna",
    "pandas",
    "rich",
)


def imported_after(code: str, tmp_path) -> set[str]:
    script = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return set(json.loads(r.stdout.strip().splitlines()[-1]))


CLI = """
from trainlab.cli import main
try:
    main({args!r})
except SystemExit as exit:
    assert not exit.code, exit.code
"""


@pytest.mark.parametrize(
    ("name", "code", "allowed"),
    [
        ("import trainlab", "import trainlab", set()),
        ("trainlab --help", CLI.format(args=["--help"]), set()),
        ("trainlab run --help", CLI.format(args=["run", "--help"]), set()),
        ("trainlab --version", CLI.format(args=["--version"]), set()),
        ("trainlab examples", CLI.format(args=["examples"]), set()),
        ("trainlab runs", CLI.format(args=["runs", "--store", "s.db"]), {"sqlalchemy", "rich"}),
        ("import trainlab.optim", "import trainlab.optim", {"torch"}),
        ("import trainlab.schedules", "import trainlab.schedules", {"torch"}),
        ("import trainlab.tune", "import trainlab.tune", set()),
    ],
)
def test_a_path_imports_only_what_it_needs(name, code, allowed, tmp_path):
    extra = imported_after(code, tmp_path) - allowed
    assert not extra, f"{name} imports {sorted(extra)}"


def test_optimizers_never_import_torch_dynamo(tmp_path):
    """torch.optim.Optimizer's add_param_group/zero_grad/state_dict import torch._dynamo (2-4 s)."""
    code = """
        import torch, trainlab.optim
        model = torch.nn.Linear(3, 2)
        for name in trainlab.optim.OPTIMIZERS:
            opt = trainlab.optim.create(name, model, lr=0.01)
            model(torch.randn(4, 3)).sum().backward()
            opt.step(); opt.zero_grad()
            opt.load_state_dict(opt.state_dict())
    """
    assert "torch._dynamo" not in imported_after(code, tmp_path)


def test_a_short_run_on_cached_mnist1d_imports_neither_mnist1d_nor_plotting(tmp_path, tiny_config):
    from trainlab.data import load

    load("mnist1d")  # make sure the cache exists (the first load generates it)
    code = f"""
        from trainlab.store import Store
        from trainlab.train import run
        config = {tiny_config!r}
        config["train"]["max_steps"] = 1
        assert run(config, store=Store(":memory:")).status == "completed"
    """
    extra = imported_after(code, tmp_path) - {"torch", "sqlalchemy"}
    assert not extra, f"a 1-step run imports {sorted(extra)}"


def test_mnist1d_args_written_out_are_the_package_defaults():
    """The cache key comes from MNIST1D_ARGS (no import of mnist1d); they must be the package's."""
    from mnist1d.data import get_dataset_args

    from trainlab.data.datasets import MNIST1D_ARGS, _mnist1d_cache

    assert vars(get_dataset_args()) == MNIST1D_ARGS
    assert _mnist1d_cache().name == "mnist1d-1ce091391605.npz"  # the key caches made before this change have


@pytest.mark.slow
def test_generating_mnist1d_into_an_empty_cache_gives_the_cached_data(tmp_path, monkeypatch):
    import numpy as np

    from trainlab.data import datasets

    cached = datasets._mnist1d()
    monkeypatch.setenv("TRAINLAB_CACHE", str(tmp_path))
    fresh = datasets._mnist1d()
    assert (tmp_path / datasets._mnist1d_cache().name).exists()
    for a, b in zip(cached, fresh):
        np.testing.assert_array_equal(a, b)


def test_callback_and_subpackages_after_a_bare_import(tmp_path):
    """`import trainlab` then `trainlab.Callback`, `trainlab.optim.Adam`, `trainlab.train.run`:
    each loads on first use (a new user's first try), and an unknown name is an AttributeError."""
    code = (
        "import trainlab, sys; assert 'torch' not in sys.modules;"
        "from trainlab.callbacks import Callback; assert trainlab.Callback is Callback;"
        "from trainlab.optim import Adam; assert trainlab.optim.Adam is Adam;"
        "assert callable(trainlab.train.run) and callable(trainlab.compare);"
        "assert not hasattr(trainlab, 'nosuch') and not hasattr(trainlab, '_private')"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
