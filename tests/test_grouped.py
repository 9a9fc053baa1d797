import numpy as np
import pytest
import torch
from torch.utils.data import Subset, TensorDataset

from skshortcut import GroupedData, unpack_grouped


def test_len_indexing_and_repr():
    X = np.arange(12).reshape(6, 2)
    data = GroupedData(X, [0, 0, 1, 1, 2, 2])
    assert len(data) == 6 and data.shape == (6, 2)
    sub = data[np.array([True, False, True, False, False, True])]
    assert isinstance(sub, GroupedData)
    np.testing.assert_array_equal(sub.X, X[[0, 2, 5]])
    assert sub.groups.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(data[1:3].X, X[1:3])
    x0, g0 = data[3]
    np.testing.assert_array_equal(x0, X[3])
    assert g0 == 1
    assert "n_groups=3" in repr(data)


def test_indexing_tensors_and_datasets():
    t = torch.arange(10.0).reshape(5, 2)
    assert torch.equal(GroupedData(t, [0, 1, 0, 1, 0])[[1, 3]].X, t[[1, 3]])
    ds = TensorDataset(t)
    sub = GroupedData(ds, [0, 1, 0, 1, 0])[[0, 4]]
    assert isinstance(sub.X, Subset) and len(sub.X) == 2


def test_misaligned_groups_rejected():
    with pytest.raises(ValueError, match="`X` has 3 samples but `groups` has 2"):
        GroupedData(np.zeros((3, 2)), [0, 1])


def test_unpack_plain_and_grouped():
    X = np.zeros((4, 2))
    assert unpack_grouped(X) == (X, None)
    Xo, g = unpack_grouped(X, [1, 1, 0, 0])
    assert Xo is X and g.tolist() == [1, 1, 0, 0]
    data = GroupedData(X, ["a", "b", "a", "b"])
    Xo, g = unpack_grouped(data)
    assert Xo is X and g.tolist() == ["a", "b", "a", "b"]
    # agreeing explicit groups are fine, disagreeing ones are an error
    assert unpack_grouped(data, ["a", "b", "a", "b"])[1].tolist() == ["a", "b", "a", "b"]
    with pytest.raises(ValueError, match="differs from the groups carried"):
        unpack_grouped(data, ["a", "a", "a", "b"])


class _CountingGroups:
    def __init__(self, groups):
        self.groups, self.calls = groups, 0

    def __call__(self):
        self.calls += 1
        return self.groups


def test_lazy_groups_are_computed_once_on_first_read():
    X = np.arange(12).reshape(6, 2)
    source = _CountingGroups([0, 0, 1, 1, 2, 2])
    data = GroupedData(X, source)
    # length, shape, repr, row indexing and unpacking for predict leave them alone
    assert len(data) == 6 and data.shape == (6, 2) and "not computed" in repr(data)
    sub = data[[1, 2, 5]]
    assert unpack_grouped(data, need_groups=False) == (X, None)
    assert source.calls == 0 and not data.groups_computed and not sub.groups_computed
    assert sub.groups.tolist() == [0, 1, 2]
    assert data.groups.tolist() == [0, 0, 1, 1, 2, 2] and source.calls == 1
    assert unpack_grouped(data)[1].tolist() == [0, 0, 1, 1, 2, 2] and source.calls == 1
    assert "n_groups=3" in repr(data)


def test_lazy_groups_are_checked_when_computed():
    data = GroupedData(np.zeros((3, 2)), lambda: [0, 1])
    with pytest.raises(ValueError, match="`X` has 3 samples but `groups` has 2"):
        data.groups
    with pytest.raises(ValueError, match="NaN"):
        GroupedData(np.zeros((2, 2)), lambda: [0.0, np.nan]).groups


def test_explicit_groups_are_compared_even_when_not_needed():
    data = GroupedData(np.zeros((2, 2)), lambda: [0, 1])
    with pytest.raises(ValueError, match="differs from the groups carried"):
        unpack_grouped(data, [1, 1], need_groups=False)
