import pytest
import torch

from trainlab.data import BatchIterator


def _data(n=10):
    return torch.arange(n).float()[:, None], torch.arange(n)


def test_each_epoch_is_a_permutation_and_epochs_differ():
    x, y = _data(10)
    it = BatchIterator(x, y, batch_size=3, seed=0)
    assert len(it) == 4
    epochs = [torch.cat([yb for _, yb in it]) for _ in range(3)]
    for e in epochs:
        assert sorted(e.tolist()) == list(range(10))
    assert not torch.equal(epochs[0], epochs[1])
    # same seed, same order
    again = BatchIterator(x, y, batch_size=3, seed=0)
    assert torch.equal(torch.cat([yb for _, yb in again]), epochs[0])


def test_drop_last_and_no_shuffle():
    x, y = _data(10)
    it = BatchIterator(x, y, batch_size=3, drop_last=True, shuffle=False)
    batches = [yb.tolist() for _, yb in it]
    assert batches == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert [yb.tolist() for _, yb in it] == batches
    with pytest.raises(ValueError, match="batch_size 20 exceeds the 10 samples"):
        BatchIterator(x, y, batch_size=20, drop_last=True)


def test_resume_mid_epoch_serves_the_same_batches():
    x, y = _data(50)
    a = BatchIterator(x, y, batch_size=8, seed=5)
    first = iter(a)
    for _ in range(3):
        next(first)
    state = a.state_dict()
    rest_a = [yb for _, yb in first] + [yb for _, yb in a]  # rest of the epoch, then the next epoch
    b = BatchIterator(x, y, batch_size=8, seed=123)
    b.load_state_dict(state)
    rest_b = [yb for _, yb in b] + [yb for _, yb in b]
    assert len(rest_a) == len(rest_b) == 4 + 7
    assert all(torch.equal(p, q) for p, q in zip(rest_a, rest_b))
