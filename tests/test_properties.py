"""Property-based tests (hypothesis): generated data files (npz, csv, idx), configs, overrides
and [compare] tables, valid and broken. Whatever the input: a result or one ConfigError — on
the command line exit 0 or exit 2 with one line — never a traceback, never a run left running.

Examples per test: the "fast" profile in `make test` (a fixed set, the same every run), the
"thorough" one in `make test-all` (HYPOTHESIS_PROFILE=thorough); see tests/conftest.py.
"""

import struct
import uuid

import numpy as np
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st

from conftest import run_cli
from trainlab.compare import parse_compare
from trainlab.data import load
from trainlab.errors import ConfigError
from trainlab.store import Store
from trainlab.train.config import load_config

FEW = max(5, settings.default.max_examples // 3)  # examples that train a model: fewer
TINY_MODEL_AND_TRAIN = "[model]\nhidden = [4]\n[train]\nmax_steps = 3\nthreads = 1\n"


def check_dataset_invariants(d) -> None:
    """What a loaded data set promises: finite inputs, labels 0..K-1 (or finite targets), agreeing shapes."""
    assert len(d.x_train) >= 1 and d.x_train.ndim >= 2 and d.x_train[0].numel() >= 1
    for x, y in ((d.x_train, d.y_train), (d.x_val, d.y_val), (d.x_test, d.y_test)):
        assert x.dtype == torch.float32 and torch.isfinite(x).all()
        assert x.shape[1:] == d.x_train.shape[1:] and len(x) == len(y) and y.ndim == 1
        if d.num_classes:
            assert y.dtype == torch.long and (len(y) == 0 or (y.min() >= 0 and y.max() < d.num_classes))
        else:
            assert torch.isfinite(y).all()


# -- data files ------------------------------------------------------------------------------

DTYPES = ["float32", "float64", "int64", "uint8", "bool", "complex64", "<U2"]


@st.composite
def arrays(draw, rows: int, *, labels: bool):
    """An array of ``rows`` rows (sometimes not): any dtype, 0-3 dimensions, NaN/inf sometimes."""
    ndim = draw(st.sampled_from([1, 1, 1, 2, 0, 3]) if labels else st.sampled_from([2, 2, 2, 1, 0, 3]))
    n = rows if draw(st.integers(0, 9)) else draw(st.integers(0, 12))
    shape = () if ndim == 0 else (n, *draw(st.lists(st.integers(0, 3), min_size=ndim - 1, max_size=ndim - 1)))
    dtype = draw(st.sampled_from(["int64", "int64", "float64", "uint8", "<U2", "float32"] if labels else DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if labels:
        top = draw(st.sampled_from([2, 3, 10, 200_000, 2_000_000_000]))
        values = rng.integers(draw(st.sampled_from([0, 0, 0, -2])), top, size=shape)
        if draw(st.booleans()):
            values = values + draw(st.sampled_from([0.0, 0.5]))
    else:
        values = rng.normal(size=shape)
    if dtype.startswith("<U"):
        return np.full(shape, "ab")
    a = np.asarray(values).astype(dtype)
    if a.dtype.kind == "f" and a.size and draw(st.integers(0, 5)) == 0:
        a.flat[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return a


@st.composite
def npz_contents(draw):
    """A valid data set (classes or regression targets, with or without a test split), then
    none, one or two of its arrays replaced by a generated one, or dropped."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    rows, features, classes = draw(st.integers(8, 40)), draw(st.integers(1, 5)), draw(st.integers(2, 4))
    targets = (lambda n: rng.integers(0, classes, n)) if draw(st.booleans()) else (lambda n: rng.normal(size=n))
    content = {"x": rng.normal(size=(rows, features)).astype(np.float32), "y": targets(rows)}
    if draw(st.booleans()):
        test_rows = draw(st.integers(1, 10))
        content["x_test"], content["y_test"] = rng.normal(size=(test_rows, features)), targets(test_rows)
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
        key = draw(st.sampled_from(sorted(content)))
        if draw(st.integers(0, 5)) == 0:
            del content[key]
        else:
            content[key] = draw(arrays(len(content[key]) if np.ndim(content[key]) else 0, labels=key.startswith("y")))
    return content


@given(content=npz_contents(), val=st.sampled_from([0.0, 0.1, 0.5]), test=st.sampled_from([0.2, 0.5]))
def test_npz_loads_or_is_one_config_error(tmp_path, content, val, test):
    path = tmp_path / f"{uuid.uuid4().hex}.npz"
    np.savez(path, **content)
    try:
        d = load("npz", path=str(path), val_fraction=val, test_fraction=test)
    except ConfigError as err:
        assert "\n" not in str(err) and str(path) in str(err)
        event("refused")
        return
    event("loaded")
    check_dataset_invariants(d)


CELLS = st.sampled_from(["0", "1", "2", "-1", "0.5", "1e3", "nan", "inf", "cat", "dog", "", "é"])


@given(
    header=st.lists(st.sampled_from(["a", "b", "c", "label", "label", "é"]), min_size=0, max_size=4),
    rows=st.lists(st.lists(CELLS, min_size=0, max_size=5), min_size=0, max_size=12),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1"]),
)
def test_csv_loads_or_is_one_config_error(tmp_path, header, rows, encoding):
    path = tmp_path / f"{uuid.uuid4().hex}.csv"
    path.write_bytes("\n".join(",".join(r) for r in [header, *rows]).encode(encoding))
    try:
        d = load("csv", path=str(path), label_column="label", val_fraction=0.0, test_fraction=0.3)
    except ConfigError as err:
        assert "\n" not in str(err)
        return
    check_dataset_invariants(d)


@st.composite
def idx_bytes(draw, *, labels: bool):
    code, dtype = draw(st.sampled_from([(0x08, ">u1"), (0x09, ">i1"), (0x0C, ">i4"), (0x0D, ">f4")]))
    ndim = draw(st.sampled_from([1, 1, 0, 2]) if labels else st.sampled_from([3, 3, 2, 1, 0]))
    shape = [
        draw(st.integers(0, 12)),
        *draw(st.lists(st.integers(0, 4), min_size=max(ndim - 1, 0), max_size=max(ndim - 1, 0))),
    ]
    shape = shape[:ndim]
    values = np.random.default_rng(draw(st.integers(0, 999))).integers(-2 if labels else 0, 12, size=shape)
    data = bytes([0, 0, code, ndim]) + b"".join(struct.pack(">I", s) for s in shape) + values.astype(dtype).tobytes()
    cut = draw(st.sampled_from([0, 0, 0, 1, 5]))
    return data[: len(data) - cut] if cut else data


@given(images=idx_bytes(labels=False), labels=idx_bytes(labels=True))
def test_idx_loads_or_is_one_config_error(tmp_path, images, labels):
    name = uuid.uuid4().hex
    (tmp_path / f"{name}.img").write_bytes(images)
    (tmp_path / f"{name}.lab").write_bytes(labels)
    try:
        d = load(
            "idx",
            path=str(tmp_path / f"{name}.img"),
            labels=str(tmp_path / f"{name}.lab"),
            val_fraction=0.0,
            test_fraction=0.3,
        )
    except ConfigError as err:
        assert "\n" not in str(err)
        return
    check_dataset_invariants(d)


# -- configs, overrides, [compare] tables -------------------------------------------------------

KEYS = [
    "optim.lr", "optim.name", "optim.momentum", "optim.lrr", "model.hidden", "model.activation", "model.dropout",
    "data.batch_size", "data.val_fraction", "data.subset", "train.max_steps", "train.eval_every", "schedule.name",
    "seed", "name", "model", "nosuch.key", "data.name", "train.early_stopping.patience",
]  # fmt: skip
VALUES = st.one_of(
    st.integers(-3, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(["sgd", "adam", "relu", "cosine", "mnist1d", "bogus", "", "[1,", "{a=1}", "'x'"]),
    st.lists(st.integers(-1, 64), max_size=3),
)


def _toml(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and not np.isfinite(value):
        return "nan" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


OVERRIDES = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(KEYS), VALUES).map(lambda kv: f"{kv[0]}={_toml(kv[1])}"),
        st.sampled_from(["~optim.momentum", "~model.hidden", "noequals", "=1", "a..b=1", "model.hidden.x=1"]),
    ),
    max_size=4,
)


@given(overrides=OVERRIDES)
def test_overrides_give_a_config_or_one_config_error(overrides):
    base = {"name": "p", "data": {"name": "spirals"}, "optim": {"name": "sgd", "momentum": 0.9}}
    try:
        cfg = load_config(base, overrides)
    except ConfigError as err:
        assert "\n" not in str(err)
        return
    assert cfg.override({}) == cfg  # a valid config stays valid


@given(
    table=st.dictionaries(
        st.sampled_from(["seeds", "metric", "target", "optim.lr", "optim.name", "variants", "model.hidden"]),
        st.one_of(
            VALUES,
            st.lists(st.integers(0, 5), max_size=4),
            st.dictionaries(st.sampled_from(["a", "b"]), st.dictionaries(st.just("optim.lr"), VALUES), max_size=2),
        ),
        max_size=5,
    )
)
def test_compare_tables_parse_or_are_one_config_error(table):
    try:
        variants, seeds = parse_compare(table)
    except ConfigError as err:
        assert "\n" not in str(err)
        return
    assert variants and seeds and len(set(seeds)) == len(seeds)


# -- the command line, end to end ----------------------------------------------------------------

RUN_OVERRIDES = st.lists(
    st.sampled_from(
        [
            "optim.lr=0.1", "optim.lr=1e9", "optim.lr=-1", "optim.name=adam", "optim.name=bogus", "model.hidden=[4]",
            "model.hidden=[]", "data.batch_size=0", "data.batch_size=3", "data.val_fraction=0.9", "data.subset=1",
            "train.max_steps=2", "train.eval_every=1", "schedule.name=cosine", "model.activation=tanh", "seed=3",
        ]
    ),
    max_size=3,
)  # fmt: skip


@settings(max_examples=FEW)
@given(content=npz_contents(), overrides=RUN_OVERRIDES)
def test_trainlab_run_exits_0_or_2_with_one_line_and_leaves_no_run_running(tmp_path, content, overrides):
    path = tmp_path / f"{uuid.uuid4().hex}.npz"
    np.savez(path, **content)
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'name = "prop"\n[data]\nname = "npz"\npath = "{path}"\nbatch_size = 8\n{TINY_MODEL_AND_TRAIN}')
    db = tmp_path / "prop.db"
    code, out, err = run_cli("run", str(cfg), *overrides, "-q", "--store", str(db))
    event(f"exit {code}")
    assert "Traceback" not in err, err
    if code == 1:  # a result, not an error: the run diverged (e.g. optim.lr=1e9)
        assert "diverged" in err and Store(db).get_run(out.strip().splitlines()[-1]).status == "diverged"
    else:
        assert code in (0, 2), err
        assert code == 0 or len(err.strip().splitlines()) == 1, err
    assert not Store(db).list_runs(status="running")


@settings(max_examples=FEW)
@given(
    table=st.fixed_dictionaries(
        {"seeds": st.one_of(st.integers(1, 2), st.lists(st.integers(0, 2), min_size=1, max_size=3))},
        optional={
            "metric": st.sampled_from(["val_acc", "val_loss", "bogus"]),
            "target": st.one_of(st.floats(0, 1), st.just("x")),
        },
    ),
    lrs=st.lists(st.sampled_from([0.05, 0.1, 1e12]), min_size=1, max_size=2, unique=True),
)
def test_trainlab_compare_exits_0_or_2_and_counts_each_seed_once(tmp_path, table, lrs):
    import json

    cfg = tmp_path / f"{uuid.uuid4().hex}.toml"
    compare = "\n".join(f"{k} = {json.dumps(v)}" for k, v in table.items())
    cfg.write_text(
        f'name = "pc"\n[data]\nname = "spirals"\nn_samples = 120\nbatch_size = 16\n{TINY_MODEL_AND_TRAIN}'
        f'[compare]\n{compare}\n"optim.lr" = {json.dumps(lrs)}\n'
    )
    db = tmp_path / f"{uuid.uuid4().hex}.db"
    code, out, err = run_cli("compare", str(cfg), "-q", "--store", str(db))
    event(f"exit {code}")
    assert "Traceback" not in err and code in (0, 2), err
    if code == 2:
        assert len(err.strip().splitlines()) == 1
        return
    runs = Store(db).list_runs(group="pc")
    seeds = table["seeds"] if isinstance(table["seeds"], list) else list(range(table["seeds"]))
    assert len(runs) == len(lrs) * len(seeds) and not [r for r in runs if r.status == "running"]
