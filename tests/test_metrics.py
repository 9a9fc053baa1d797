import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from skshortcut import (
    GroupedData,
    group_accuracies,
    group_balanced_accuracy,
    make_group_scorer,
    worst_group_accuracy,
    worst_group_scorer,
)


def test_group_accuracies_values_and_counts():
    res = group_accuracies([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], groups=["a", "a", "b", "b", "c"])
    assert res.groups.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(res.accuracy, [0.5, 1.0, 0.0])
    assert res.count.tolist() == [2, 2, 1]
    assert res.worst == 0.0 and res.worst_group == "c"
    assert res.balanced == pytest.approx(0.5)
    assert "worst-group accuracy 0.000" in str(res)


def test_worst_and_balanced():
    y = np.array([0, 0, 0, 0, 1, 1])
    p = np.array([0, 0, 0, 1, 0, 1])
    g = np.array([0, 0, 0, 0, 1, 1])
    assert worst_group_accuracy(y, p, groups=g) == pytest.approx(0.5)
    assert group_balanced_accuracy(y, p, groups=g) == pytest.approx((0.75 + 0.5) / 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(y_true=[0, 1], y_pred=[0], groups=[0, 1]), "Inconsistent numbers of samples"),
        (dict(y_true=[], y_pred=[], groups=[]), "`y_true` is empty"),
        (dict(y_true=[0.0, np.nan], y_pred=[0, 1], groups=[0, 1]), "`y_true` contains NaN"),
        (dict(y_true=[0, 1], y_pred=[0, 1], groups=[0, np.nan]), "`groups` contains NaN"),
        (dict(y_true=[0, 1], y_pred=[[0, 1], [1, 0]], groups=[0, 1]), "`y_pred` must be one-dimensional"),
        (dict(y_true=["a", None], y_pred=["a", "b"], groups=[0, 1]), "`y_true` contains missing"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        worst_group_accuracy(kwargs["y_true"], kwargs["y_pred"], groups=kwargs["groups"])


labels = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 4)), min_size=1, max_size=60)


@settings(max_examples=80, deadline=None)
@given(labels)
def test_worst_le_balanced_le_max(rows):
    y, p, g = map(np.array, zip(*rows))
    res = group_accuracies(y, p, groups=g)
    assert res.worst <= res.balanced + 1e-12
    assert res.balanced <= res.accuracy.max() + 1e-12
    assert res.count.sum() == len(y)


@settings(max_examples=60, deadline=None)
@given(labels, st.randoms(use_true_random=False))
def test_invariant_to_renaming_groups_and_permuting_samples(rows, rnd):
    y, p, g = map(np.array, zip(*rows))
    names = {k: f"group-{rnd.random():.6f}-{k}" for k in np.unique(g)}
    g_renamed = np.array([names[k] for k in g])
    perm = np.array(rnd.sample(range(len(y)), len(y)))
    base = worst_group_accuracy(y, p, groups=g)
    assert worst_group_accuracy(y[perm], p[perm], groups=g_renamed[perm]) == pytest.approx(base)
    assert group_balanced_accuracy(y[perm], p[perm], groups=g_renamed[perm]) == pytest.approx(
        group_balanced_accuracy(y, p, groups=g)
    )


def _shortcut_features(n, rng):
    y = rng.randint(0, 2, n)
    s = np.where(rng.rand(n) < 0.9, y, 1 - y)
    X = np.c_[y + rng.normal(0, 1.0, n), s + rng.normal(0, 0.1, n)]
    return X, y, 2 * y + s


def test_worst_group_scorer_in_a_real_grid_search(routing):
    """GridSearchCV(est, grid, scoring=worst_group_scorer).fit(X, y, groups=g) tunes on worst-group accuracy."""
    rng = np.random.RandomState(0)
    X, y, g = _shortcut_features(600, rng)
    search = GridSearchCV(LogisticRegression(), {"C": [1e-3, 1.0]}, scoring=worst_group_scorer, cv=3)
    search.fit(X, y, groups=g)
    # every recorded score is the worst-group accuracy of that fold, recomputed here by hand
    from sklearn.model_selection import StratifiedKFold

    for k, (tr, te) in enumerate(StratifiedKFold(3).split(X, y)):
        for i, params in enumerate(search.cv_results_["params"]):
            est = LogisticRegression(**params).fit(X[tr], y[tr])
            expected = worst_group_accuracy(y[te], est.predict(X[te]), groups=g[te])
            assert search.cv_results_[f"split{k}_test_score"][i] == pytest.approx(expected)
    # and it is not plain accuracy: the shortcut makes the two differ
    assert search.cv_results_["mean_test_score"].max() < 0.9


def test_scorer_without_groups_explains(routing):
    rng = np.random.RandomState(0)
    X, y, _ = _shortcut_features(50, rng)
    est = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="needs `groups`"):
        worst_group_scorer(est, X, y)


def test_scorer_takes_groups_from_grouped_data():
    rng = np.random.RandomState(0)
    X, y, g = _shortcut_features(80, rng)
    est = LogisticRegression().fit(X, y)
    assert worst_group_scorer(est, GroupedData(X, g), y) == pytest.approx(
        worst_group_accuracy(y, est.predict(X), groups=g)
    )


def test_make_group_scorer_sign_and_errors():
    scorer = make_group_scorer(lambda y, p, groups: 0.25, greater_is_better=False)
    est = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    assert scorer(est, [[0.0], [1.0]], [0, 1], groups=[0, 1]) == -0.25
    with pytest.raises(TypeError, match="`metric` must be callable"):
        make_group_scorer("worst")
