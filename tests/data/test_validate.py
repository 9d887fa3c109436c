"""Data is checked as it loads, before a run exists: every class of bad array or file the
fault probe found is one ConfigError naming the file, the array and the fix."""

import struct

import numpy as np
import pytest
import torch

from trainlab.data import load
from trainlab.data.validate import check_dataset
from trainlab.errors import ConfigError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 4)).astype(np.float32)
Y = np.arange(60) % 3


def _with_nan(x):
    x = x.copy()
    x[7, 2] = np.nan
    x[9, 0] = np.inf
    return x


@pytest.mark.parametrize(
    "arrays,message",
    [
        (
            dict(x=_with_nan(X), y=Y),
            r"x has 2 NaN or infinite value\(s\), in 2 row\(s\) \(the first is row 7\); drop or fill",
        ),
        (dict(x=X, y=Y.astype(float) + np.where(Y == 1, np.nan, 0)), r"y has 20 NaN or infinite"),
        (
            dict(x=X, y=Y, x_test=np.zeros((5, 7), np.float32), y_test=np.zeros(5, int)),
            r"x_test has rows of shape \(7,\) but x has \(4,\)",
        ),
        (dict(x=X, y=Y, x_test=X[:5]), "x_test is given without y_test"),
        (dict(x=X, y=Y, y_test=Y[:5]), "y_test is given without x_test"),
        (dict(x=X[:, 0], y=Y), r"x has shape \(60,\); it needs one row per sample and at least one feature"),
        (dict(x=np.float32(1.0), y=Y), r"x has shape \(\)"),
        (dict(x=np.array([["a"] * 4] * 60), y=Y), r"x holds text \(dtype <U1\); it must hold numbers"),
        (dict(x=X.astype(np.complex64), y=Y), "x holds complex numbers"),
        (dict(x=X, y=np.stack([Y, Y], 1)), r"y has shape \(60, 2\); give one label per row"),
        (dict(x=X, y=Y[:50]), "x has 60 rows but y has 50 labels"),
        (dict(x=X, y=Y - 1), r"negative labels in y \(the smallest is -1\)"),
        (
            dict(x=X, y=np.where(Y == 2, 2_000_000_000, Y)),
            "3 distinct labels in y go up to 2000000000, which would make 2000000001 outputs",
        ),
        (
            dict(x=X, y=Y, x_test=X[:4], y_test=np.array([0, 1, 2, 200_000])),
            "y_test has label 200000, outside the training labels 0..2 of y",
        ),
        (dict(x=X, y=Y, x_test=X[:4], y_test=np.array([0, 1, -1, 2])), "y_test has label -1, outside"),
        (dict(x=X[:0], y=Y[:0]), "x has no rows"),
        (dict(x=X[:, :0], y=Y), r"x has shape \(60, 0\): no features"),
        (dict(x=X[:1], y=Y[:1]), "only 1 row: no training rows are left"),
    ],
)
def test_bad_npz_arrays_are_refused_at_load(tmp_path, arrays, message):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    with pytest.raises(ConfigError, match=message) as err:
        load("npz", path=str(path), val_fraction=0.5, test_fraction=0.5)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_npz_keys_are_named_as_the_config_names_them(tmp_path):
    np.savez(tmp_path / "d.npz", feats=X, cls=Y, feats_test=np.zeros((3, 5), np.float32), cls_test=Y[:3])
    with pytest.raises(ConfigError, match=r"feats_test has rows of shape \(5,\) but feats has \(4,\)"):
        load("npz", path=str(tmp_path / "d.npz"), x_key="feats", y_key="cls")


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", r"not a readable \.npz file \(No data left in file\)"),  # was "Aborted." (exit 1)
        (b"PK\x03\x04 truncated zip", r"not a readable \.npz file"),
        (None, "array 'x' holds Python objects, which are never unpickled"),
    ],
)
def test_unreadable_npz_files(tmp_path, content, message):
    path = tmp_path / "d.npz"
    if content is None:
        np.savez(path, x=np.array([[1, None]] * 10, dtype=object), y=np.zeros(10, int))
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load("npz", path=str(path))


def test_valid_variants_still_load(tmp_path):
    np.savez(tmp_path / "a.npz", x=X, y=Y[:, None] + 1)  # (N, 1) labels, 1-based: class 0 unused
    d = load("npz", path=str(tmp_path / "a.npz"))
    assert d.num_classes == 4 and d.y_train.dtype == torch.long and d.y_train.ndim == 1
    np.savez(
        tmp_path / "b.npz", x=X, y=Y.astype(np.float64), x_test=X[:6], y_test=Y[:6]
    )  # whole-number floats: classes
    d = load("npz", path=str(tmp_path / "b.npz"))
    assert d.num_classes == 3 and len(d.x_test) == 6
    np.savez(tmp_path / "c.npz", x=X.astype(np.uint8), y=RNG.normal(size=60))  # fractional targets: regression
    d = load("npz", path=str(tmp_path / "c.npz"))
    assert d.num_classes == 0 and d.y_train.dtype == torch.float32 and d.x_train.dtype == torch.float32


def test_a_path_that_is_not_a_data_file(tmp_path):
    with pytest.raises(ConfigError, match="data.path: .* is a folder; give the data file itself"):
        load("npz", path=str(tmp_path))
    with pytest.raises(ConfigError, match=r"data.path: /dev/zero is not a regular file"):
        load("npz", path="/dev/zero")  # was an unbounded read


def _csv(tmp_path, data: bytes):
    path = tmp_path / "d.csv"
    path.write_bytes(data)
    return str(path)


def test_csv_encoding_header_and_values(tmp_path):
    rows = "".join(f"{i},{i * 2},{'cat' if i % 2 else 'dog'}\n" for i in range(20))
    bom = _csv(tmp_path, b"\xef\xbb\xbflabel,a,b\n" + "".join(f"{i % 2},{i},{i}\n" for i in range(20)).encode())
    assert load("csv", path=bom, label_column="label").num_classes == 2  # the BOM is not part of 'label'
    latin = _csv(tmp_path, ("a,b,label\n1,2,caf\xe9\n" + rows).encode("latin-1"))
    with pytest.raises(
        ConfigError, match=r"not UTF-8 text \(byte 0xe9 at offset 17\); save it as UTF-8, e.g. iconv -f latin1"
    ):
        load("csv", path=latin, label_column="label")
    dup = _csv(tmp_path, ("a,a,label\n" + rows).encode())
    with pytest.raises(ConfigError, match="the header names column 'a' more than once"):
        load("csv", path=dup, label_column="label")
    nan = _csv(tmp_path, ("a,b,label\n1,nan,x\n" + rows).encode())
    with pytest.raises(ConfigError, match="line 2: column 'b' holds 'nan'; drop or fill that row"):
        load("csv", path=nan, label_column="label")
    inf = _csv(tmp_path, ("a,b,label\n" + rows + "-inf,1,x\n").encode())
    with pytest.raises(ConfigError, match="line 22: column 'a' holds '-inf'"):
        load("csv", path=inf, label_column="label")


def _idx(path, arr: np.ndarray, code: int) -> str:
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0D: ">f4"}[code]
    path.write_bytes(
        bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape) + arr.astype(dtype).tobytes()
    )
    return str(path)


def test_idx_labels_and_image_shapes(tmp_path):
    images = _idx(tmp_path / "img", np.zeros((12, 4, 4)), 0x08)
    good = _idx(tmp_path / "lab", np.arange(12) % 3, 0x08)
    assert load("idx", path=images, labels=good).num_classes == 3
    negative = _idx(tmp_path / "neg", np.arange(12) % 3 - 1, 0x09)
    with pytest.raises(ConfigError, match=r"neg: negative labels in this file \(the smallest is -1\)"):
        load("idx", path=images, labels=negative)
    fractional = _idx(tmp_path / "frac", (np.arange(12) % 3) + 0.5, 0x0D)
    with pytest.raises(ConfigError, match="frac: the labels are fractional numbers"):
        load("idx", path=images, labels=fractional)  # was truncated to whole numbers
    flat = _idx(tmp_path / "flat", np.zeros(12), 0x08)
    with pytest.raises(ConfigError, match=r"flat: images of shape \(\) \(the file holds \(12,\)\)"):
        load("idx", path=flat, labels=good)
    (tmp_path / "nodims").write_bytes(bytes([0, 0, 0x08, 0]) + b"\x05")
    with pytest.raises(ConfigError, match="nodims: the header gives no dimensions"):
        load("idx", path=str(tmp_path / "nodims"), labels=good)


def test_the_checks_take_tensors_for_user_data():
    x, y, _, _, k = check_dataset(torch.randn(10, 3), torch.arange(10) % 2, source="fit(train=...)")
    assert k == 2 and x.shape == (10, 3)
    with pytest.raises(ConfigError, match=r"fit\(train=\.\.\.\): x has 1 NaN"):
        check_dataset(torch.tensor([[float("nan")], [1.0]]), torch.tensor([0, 1]), source="fit(train=...)")
    with pytest.raises(ConfigError, match="y has label 5, but this data set has 3 classes"):
        check_dataset(np.ones((4, 1)), np.array([0, 1, 2, 5]), num_classes=3, source="s")


def test_bad_data_creates_no_run(cli, tmp_path):
    np.savez(tmp_path / "d.npz", x=_with_nan(X), y=Y)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'name = "v"\n[data]\nname = "npz"\npath = "{tmp_path / "d.npz"}"\n[train]\nmax_steps = 2\n')
    code, _, err = cli("run", str(cfg), "-q", "--store", str(tmp_path / "s.db"))
    assert code == 2 and "NaN or infinite" in err and len(err.strip().splitlines()) == 1
    from trainlab.store import Store

    assert Store(tmp_path / "s.db").list_runs() == []
