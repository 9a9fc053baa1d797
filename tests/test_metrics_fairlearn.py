"""Group metrics agree with fairlearn's MetricFrame, case by case."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score

from skshortcut import group_accuracies, group_balanced_accuracy, worst_group_accuracy

fairlearn_metrics = pytest.importorskip("fairlearn.metrics")


def _frame(y_true, y_pred, groups):
    return fairlearn_metrics.MetricFrame(
        metrics=accuracy_score, y_true=list(y_true), y_pred=list(y_pred),
        sensitive_features=groups if isinstance(groups, dict) else list(groups),
    )


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.sampled_from(["a", "b", "c", "d"])), min_size=1, max_size=60)
)
def test_group_accuracies_equal_metricframe(data):
    y_true, y_pred, groups = (np.array(col) for col in zip(*data))
    frame = _frame(y_true, y_pred, groups)
    res = group_accuracies(y_true, y_pred, groups=groups)
    expected = frame.by_group
    assert [str(g) for g in res.groups] == [str(g) for g in expected.index]
    np.testing.assert_allclose(res.accuracy, expected.to_numpy(dtype=float))
    assert worst_group_accuracy(y_true, y_pred, groups=groups) == pytest.approx(frame.group_min())
    assert group_balanced_accuracy(y_true, y_pred, groups=groups) == pytest.approx(float(expected.mean()))


def test_two_column_groups_equal_metricframe_with_two_sensitive_features():
    rng = np.random.RandomState(0)
    y_true = rng.randint(0, 2, 200)
    y_pred = np.where(rng.rand(200) < 0.8, y_true, 1 - y_true)
    table = np.c_[y_true, rng.randint(0, 3, 200)]
    frame = _frame(y_true, y_pred, {"class": table[:, 0], "attribute": table[:, 1]})
    res = group_accuracies(y_true, y_pred, groups=table)
    assert len(res.groups) == len(frame.by_group)
    np.testing.assert_allclose(np.sort(res.accuracy), np.sort(frame.by_group.to_numpy(dtype=float)))
    assert worst_group_accuracy(y_true, y_pred, groups=table) == pytest.approx(frame.group_min())
