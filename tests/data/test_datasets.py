import gzip
import struct

import numpy as np
import pytest
import torch

from trainlab.data import load, read_cifar10_binary, read_idx
from trainlab.errors import ConfigError


def _idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    return header + arr.astype(">u1" if code == 0x08 else ">f4").tobytes()


def test_mnist1d_shapes_and_split_are_deterministic():
    a = load("mnist1d", split_seed=3)
    b = load("mnist1d", split_seed=3)
    c = load("mnist1d", split_seed=4)
    assert a.x_train.shape == (3600, 40) and a.x_val.shape == (400, 40) and a.x_test.shape == (1000, 40)
    assert a.num_classes == 10 and a.input_shape == (40,)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    assert not torch.equal(a.x_train, c.x_train)
    # the package's own test split is kept as the test set, untouched by the split seed
    assert torch.equal(a.x_test, c.x_test)


@pytest.mark.parametrize(
    "name,shape,classes",
    [("digits", (1, 8, 8), 10), ("spirals", (2,), 3), ("adding", (50, 2), 0)],
)
def test_builtin_data_sets(name, shape, classes):
    d = load(name)
    assert d.input_shape == shape and d.num_classes == classes
    total = len(d.x_train) + len(d.x_val) + len(d.x_test)
    assert len(d.x_test) == round(0.2 * total)


def test_adding_problem_target_is_sum_of_marked_values():
    d = load("adding", n_samples=100, seq_len=10)
    x, y = d.x_train, d.y_train
    assert torch.all(x[:, :, 1].sum(1) == 2)
    assert torch.allclose((x[:, :, 0] * x[:, :, 1]).sum(1), y)


def test_spirals_has_balanced_classes():
    d = load("spirals", n_samples=300, classes=3, val_fraction=0.0, test_fraction=0.01)
    counts = torch.bincount(torch.cat([d.y_train, d.y_test]), minlength=3)
    assert counts.tolist() == [100, 100, 100]


def test_subset_keeps_first_n_training_samples():
    d = load("mnist1d", subset=100)
    assert len(d.x_train) == 100 and len(d.x_val) == 400


def test_unknown_name_and_option_are_named():
    with pytest.raises(ConfigError, match="did you mean 'mnist1d'"):
        load("mnist1")
    with pytest.raises(ConfigError, match="data.seq_len is not an option of data set 'spirals'"):
        load("spirals", seq_len=3)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([1, 0], dtype=np.uint8)
    opener = gzip.open if gz else open
    with opener(tmp_path / "img", "wb") as f:
        f.write(_idx_bytes(images))
    with opener(tmp_path / "lab", "wb") as f:
        f.write(_idx_bytes(labels))
    assert np.array_equal(read_idx(tmp_path / "img"), images)
    d = load("idx", path=str(tmp_path / "img"), labels=str(tmp_path / "lab"), val_fraction=0.0, test_fraction=0.5)
    assert d.input_shape == (1, 3, 4) and d.num_classes == 2
    assert float(torch.cat([d.x_train, d.x_test]).max()) == pytest.approx(23 / 255)


def test_idx_errors_name_file_and_fault(tmp_path):
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x01\x02\x08\x01" + struct.pack(">I", 3) + b"abc")
    with pytest.raises(ConfigError, match=r"bad\.idx: bad magic number"):
        read_idx(bad)
    short = tmp_path / "short.idx"
    short.write_bytes(_idx_bytes(np.zeros((4, 2), np.uint8))[:-3])
    with pytest.raises(ConfigError, match=r"short\.idx: wrong length: 17 bytes, header \(4, 2\) says 20"):
        read_idx(short)
    with pytest.raises(ConfigError, match="file not found"):
        load("idx", path=str(tmp_path / "missing"), labels=str(short))


def test_cifar10_binary(tmp_path):
    rng = np.random.default_rng(0)
    records = []
    for label in (3, 7, 1):
        records.append(np.concatenate([[label], rng.integers(0, 256, 3072)]).astype(np.uint8))
    (tmp_path / "data_batch_1.bin").write_bytes(np.stack(records).tobytes())
    x, y = read_cifar10_binary(tmp_path / "data_batch_1.bin")
    assert y.tolist() == [3, 7, 1] and x.shape == (3, 3, 32, 32)
    assert x[1, 2, 31, 31] == pytest.approx(records[1][-1] / 255)  # last byte: blue plane, last pixel
    (tmp_path / "cut.bin").write_bytes(np.stack(records).tobytes()[:-5])
    with pytest.raises(ConfigError, match=r"cut\.bin: wrong length: 9214 bytes"):
        read_cifar10_binary(tmp_path / "cut.bin")
    assert load("cifar10-binary", path=str(tmp_path), val_fraction=0.0, test_fraction=0.34).num_classes == 10


def test_npz_and_csv(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    y = np.arange(20) % 4
    np.savez(tmp_path / "d.npz", x=x, y=y)
    assert load("npz", path=str(tmp_path / "d.npz")).num_classes == 4
    np.savez(tmp_path / "nolabels.npz", x=x)
    with pytest.raises(ConfigError, match="missing array 'y'"):
        load("npz", path=str(tmp_path / "nolabels.npz"))
    (tmp_path / "not.npz").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match=r"not\.npz: not a readable \.npz"):
        load("npz", path=str(tmp_path / "not.npz"))

    lines = ["a,b,label"] + [f"{i},{i * 2},{'cat' if i % 2 else 'dog'}" for i in range(10)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    d = load("csv", path=str(tmp_path / "d.csv"), label_column="label", val_fraction=0.0, test_fraction=0.2)
    assert d.num_classes == 2 and d.input_shape == (2,)
    both = torch.cat([d.x_train, d.x_test])
    assert sorted(both[:, 0].tolist()) == list(range(10))
    with pytest.raises(ConfigError, match="missing column 'target'"):
        load("csv", path=str(tmp_path / "d.csv"), label_column="target")
    (tmp_path / "ragged.csv").write_text("a,label\n1,2\n3\n")
    with pytest.raises(ConfigError, match="line 3 has 1 fields"):
        load("csv", path=str(tmp_path / "ragged.csv"), label_column="label")
